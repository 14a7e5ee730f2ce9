//! Secret rotation without a restart: old and new secrets both accepted
//! while both are active, the old one refused after its expiry, and a hot
//! swap under concurrent load never rejects a delivery signed with a secret
//! active in both the old and the new set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::post;
use tower_webhook::providers::GitHub;
use tower_webhook::secrets::Swappable;
use tower_webhook::{Secret, Verifier, WebhookLayer, testing};

use crate::common::{post as send_post, serve};

fn github(secrets: &[&str]) -> GitHub {
    let mut v = GitHub::new(
        Secret::text(secrets[0])
            .expect("secret")
            .with_label(secrets[0]),
    );
    for s in &secrets[1..] {
        v = v.add_secret(Secret::text(s).expect("secret").with_label(*s));
    }
    v
}

#[test]
fn old_and_new_both_verify_until_the_old_expires() {
    let now = SystemTime::now();
    let expiry = now + Duration::from_secs(3600);
    let v = GitHub::new(Secret::text("new").expect("secret").with_label("new")).add_secret(
        Secret::text("old")
            .expect("secret")
            .with_label("old")
            .expires_at(expiry),
    );
    let body = b"{}";
    let old = testing::parts("/", testing::github("old", "d-1", "push", body));
    let new = testing::parts("/", testing::github("new", "d-2", "push", body));
    assert_eq!(
        v.verify(&old, body, now).expect("old accepted").key_label(),
        Some("old")
    );
    assert_eq!(
        v.verify(&new, body, now).expect("new accepted").key_label(),
        Some("new")
    );
    let later = expiry + Duration::from_secs(1);
    assert!(
        v.verify(&old, body, later).is_err(),
        "the old secret expired"
    );
    assert!(v.verify(&new, body, later).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swap_under_load_never_rejects_a_secret_active_in_both_sets() {
    let verifier = Swappable::new(github(&["a", "b"]));
    let handle = verifier.handle();
    let app = Router::new()
        .route("/", post(|| async { "ok" }))
        .route_layer(
            WebhookLayer::builder(verifier.clone())
                .without_dedup()
                .build(),
        );
    let addr = serve(app).await;

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps) = (Arc::clone(&stop), Arc::clone(&swaps));
        tokio::spawn(async move {
            let sets: [&[&str]; 2] = [&["a", "b"], &["b", "c"]];
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                handle.swap(github(sets[i % 2]));
                swaps.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    let mut senders = Vec::new();
    for task in 0..4 {
        senders.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for n in 0..50 {
                let body = format!(r#"{{"n":{n},"task":{task}}}"#);
                let h = testing::github("b", &format!("d-{task}-{n}"), "push", body.as_bytes());
                statuses.push(send_post(addr, "/", h, body).await.status);
            }
            statuses
        }));
    }
    let mut total = 0;
    for s in senders {
        for status in s.await.expect("sender") {
            assert_eq!(
                status, 200,
                "a delivery signed with `b` was refused during a swap"
            );
            total += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.await.expect("swapper");
    assert_eq!(total, 200);
    assert!(
        swaps.load(Ordering::Relaxed) > 10,
        "swaps happened during the load"
    );

    // and the set really changes: after a swap to {b, c}, `a` is refused
    verifier.handle().swap(github(&["b", "c"]));
    let h = testing::github("a", "d-final", "push", b"{}");
    assert_eq!(send_post(addr, "/", h, "{}").await.status, 401);
}
