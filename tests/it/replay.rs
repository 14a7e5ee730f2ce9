//! Replays are caught even without an event id, and byte-identical bodies
//! under two (unsigned) topics are one event.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use tower_webhook::providers::{GitHub, Mandrill, Shopify};
use tower_webhook::{Secret, Verifier, WebhookLayer, testing};

use crate::common::{post as send, serve};

async fn counting<V: Verifier>(verifier: V, calls: Arc<AtomicUsize>) -> std::net::SocketAddr {
    let handler = move || {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    };
    serve(
        Router::new()
            .route("/", post(handler))
            .route_layer(WebhookLayer::new(verifier)),
    )
    .await
}

#[tokio::test]
async fn a_replay_with_the_id_header_stripped_is_still_a_duplicate() {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = counting(
        GitHub::new(Secret::text("gh").expect("secret")),
        Arc::clone(&calls),
    )
    .await;
    let body = br#"{"zen":"no id"}"#;
    let mut h = testing::github("gh", "d-1", "push", body);
    h.remove("x-github-delivery");
    let mut answers = Vec::new();
    for _ in 0..3 {
        let r = send(addr, "/", h.clone(), &body[..]).await;
        answers.push((
            r.status.as_u16(),
            r.headers.contains_key("webhook-duplicate"),
        ));
    }
    assert_eq!(answers, [(200, false), (200, true), (200, true)]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_provider_without_ids_is_deduplicated_by_its_signature() {
    let calls = Arc::new(AtomicUsize::new(0));
    let key = "mandrill-key";
    let url = "http://127.0.0.1/";
    let verifier = Mandrill::new(Secret::text(key).expect("secret"))
        .public_url(tower_webhook::client::PublicUrl::base("http://127.0.0.1").expect("url"));
    let addr = counting(verifier, Arc::clone(&calls)).await;
    let body = b"mandrill_events=%5B%7B%22event%22%3A%22send%22%7D%5D";
    let mut h = testing::mandrill(key, url, body);
    h.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().expect("value"),
    );
    for _ in 0..3 {
        assert_eq!(send(addr, "/", h.clone(), &body[..]).await.status, 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn identical_bodies_under_two_topics_are_one_event() {
    // The topic is not signed: a replay could change it at will, so it is
    // not part of the key. Two genuine deliveries of one body under two
    // topics are the price (the README says so).
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = counting(
        Shopify::new(Secret::text("sh").expect("secret")),
        Arc::clone(&calls),
    )
    .await;
    let body = br#"{"id":820982911946154508,"total_price":"1.00"}"#;
    let created = testing::shopify("sh", "w-1", "orders/create", body);
    let paid = testing::shopify("sh", "w-2", "orders/paid", body);
    assert_eq!(
        send(addr, "/", created.clone(), &body[..]).await.status,
        200
    );
    let r = send(addr, "/", paid, &body[..]).await;
    assert!(r.headers.contains_key("webhook-duplicate"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
