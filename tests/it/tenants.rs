//! Per-tenant secrets through a real server: `Tenants` on one route, each
//! tenant's secrets verifying only its own deliveries, unknown tenants
//! negatively cached, resolver failures answered 503 and not cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::routing::post;
use axum::{Extension, Router};
use http::HeaderMap;
use tower_webhook::providers::GitHub;
use tower_webhook::received::StoredDelivery;
use tower_webhook::secrets::{Swappable, TenantFrom, Tenants};
use tower_webhook::{Secret, Verified, Verifier, WebhookError, WebhookLayer, testing};

use crate::common::{post as send_post, serve};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const BODY: &[u8] = br#"{"zen":"Keep it logically awesome."}"#;

/// A tenant store: known tenants, how often each id was asked for, and a
/// switch that makes it fail.
#[derive(Default)]
struct Store {
    secrets: Mutex<HashMap<String, &'static str>>,
    calls: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    down: AtomicBool,
    delay: Mutex<Duration>,
}

impl Store {
    fn with(tenants: &[(&str, &'static str)]) -> Arc<Self> {
        let s = Self::default();
        for (t, secret) in tenants {
            s.secrets
                .lock()
                .expect("lock")
                .insert((*t).to_owned(), *secret);
        }
        Arc::new(s)
    }

    fn calls(&self, tenant: &str) -> usize {
        self.calls
            .lock()
            .expect("lock")
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }

    fn tenants(
        self: &Arc<Self>,
        from: TenantFrom,
    ) -> Tenants<impl tower_webhook::secrets::Resolve> {
        let store = Arc::clone(self);
        Tenants::new("github", from, move |tenant: String| {
            let store = Arc::clone(&store);
            async move {
                *store
                    .calls
                    .lock()
                    .expect("lock")
                    .entry(tenant.clone())
                    .or_default() += 1;
                store.total.fetch_add(1, Ordering::SeqCst);
                let delay = *store.delay.lock().expect("lock");
                tokio::time::sleep(delay).await;
                if store.down.load(Ordering::SeqCst) {
                    return Err::<Option<GitHub>, BoxError>("connection refused".into());
                }
                let secret = store.secrets.lock().expect("lock").get(&tenant).copied();
                Ok(match secret {
                    Some(s) => Some(GitHub::new(Secret::text(s)?)),
                    None => None,
                })
            }
        })
    }
}

async fn app_with<V: Verifier + Clone>(verifier: V) -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/hooks/{tenant}",
            post(|Extension(v): Extension<Verified>| async move {
                v.tenant().unwrap_or("<none>").to_owned()
            }),
        )
        .route_layer(WebhookLayer::new(verifier));
    serve(app).await
}

fn signed(secret: &str, delivery: &str) -> HeaderMap {
    testing::github(secret, delivery, "push", BODY)
}

#[tokio::test]
async fn each_tenant_on_one_route_is_verified_with_its_own_secret_only() {
    let store = Store::with(&[("acme", "acme-secret"), ("globex", "globex-secret")]);
    let addr = app_with(store.tenants(TenantFrom::path_segment(1))).await;

    let acme = send_post(addr, "/hooks/acme", signed("acme-secret", "a-1"), BODY).await;
    assert_eq!(acme.status, 200, "{}", acme.text());
    assert_eq!(acme.text(), "acme");
    let globex = send_post(addr, "/hooks/globex", signed("globex-secret", "g-1"), BODY).await;
    assert_eq!(globex.status, 200, "{}", globex.text());
    assert_eq!(globex.text(), "globex");

    // One tenant's secret never verifies the other's delivery.
    let crossed = send_post(addr, "/hooks/globex", signed("acme-secret", "x-1"), BODY).await;
    assert_eq!(crossed.status, 401);
    assert_eq!(crossed.text(), r#"{"error":"invalid_signature"}"#);
    let crossed = send_post(addr, "/hooks/acme", signed("globex-secret", "x-2"), BODY).await;
    assert_eq!(crossed.status, 401);

    // One load per tenant, whatever the number of deliveries.
    assert_eq!((store.calls("acme"), store.calls("globex")), (1, 1));
}

#[tokio::test]
async fn two_tenants_may_send_the_same_event_id_without_being_duplicates() {
    let store = Store::with(&[("acme", "acme-secret"), ("globex", "globex-secret")]);
    let addr = app_with(store.tenants(TenantFrom::path_segment(1))).await;

    let a = send_post(addr, "/hooks/acme", signed("acme-secret", "same-id"), BODY).await;
    let g = send_post(
        addr,
        "/hooks/globex",
        signed("globex-secret", "same-id"),
        BODY,
    )
    .await;
    assert_eq!((a.status, a.text()), (http::StatusCode::OK, "acme"));
    assert_eq!((g.status, g.text()), (http::StatusCode::OK, "globex"));
    assert!(g.headers.get("webhook-duplicate").is_none());
    // Within one tenant, the retry is still a duplicate.
    let again = send_post(addr, "/hooks/acme", signed("acme-secret", "same-id"), BODY).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.headers["webhook-duplicate"], "true");
}

#[tokio::test]
async fn an_unknown_tenant_is_refused_and_asked_for_once_per_negative_ttl() {
    let store = Store::with(&[("acme", "acme-secret")]);
    // A slow store: concurrent requests overlap the one load.
    *store.delay.lock().expect("lock") = Duration::from_millis(100);
    let tenants = store
        .tenants(TenantFrom::path_segment(1))
        .negative_ttl(Duration::from_millis(700));
    let addr = app_with(tenants).await;

    // 10 at once on a cold cache, then 10 one after the other.
    let concurrent: Vec<_> = (0..10)
        .map(|i| {
            tokio::spawn(async move {
                send_post(
                    addr,
                    "/hooks/initech",
                    signed("acme-secret", &format!("u-{i}")),
                    BODY,
                )
                .await
            })
        })
        .collect();
    for h in concurrent {
        let r = h.await.unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.text(), r#"{"error":"invalid_signature"}"#);
    }
    for i in 10..20 {
        let r = send_post(
            addr,
            "/hooks/initech",
            signed("acme-secret", &format!("u-{i}")),
            BODY,
        )
        .await;
        assert_eq!(r.status, 401);
    }
    assert_eq!(store.calls("initech"), 1, "20 requests, one resolver call");

    // After the negative TTL, the store is asked again (the tenant may exist now).
    tokio::time::sleep(Duration::from_millis(800)).await;
    store
        .secrets
        .lock()
        .expect("lock")
        .insert("initech".into(), "initech-secret");
    let r = send_post(
        addr,
        "/hooks/initech",
        signed("initech-secret", "u-20"),
        BODY,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(store.calls("initech"), 2);
}

#[tokio::test]
async fn a_failing_store_gives_503_with_retry_after_and_is_asked_again_next_time() {
    let store = Store::with(&[("acme", "acme-secret")]);
    store.down.store(true, Ordering::SeqCst);
    let tenants = store
        .tenants(TenantFrom::path_segment(1))
        .retry_after(Duration::from_secs(7));
    let addr = app_with(tenants).await;

    for n in 1..=3 {
        let r = send_post(addr, "/hooks/acme", signed("acme-secret", "f-1"), BODY).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.headers["retry-after"], "7");
        assert_eq!(r.text(), r#"{"error":"secrets_unavailable"}"#);
        assert_eq!(store.calls("acme"), n, "errors are not cached");
    }
    store.down.store(false, Ordering::SeqCst);
    let r = send_post(addr, "/hooks/acme", signed("acme-secret", "f-1"), BODY).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_store_that_does_not_answer_in_time_gives_503() {
    let store = Store::with(&[("acme", "acme-secret")]);
    *store.delay.lock().expect("lock") = Duration::from_secs(5);
    let tenants = store
        .tenants(TenantFrom::path_segment(1))
        .resolve_timeout(Duration::from_millis(100));
    let addr = app_with(tenants).await;
    let started = std::time::Instant::now();
    let r = send_post(addr, "/hooks/acme", signed("acme-secret", "t-1"), BODY).await;
    assert_eq!(r.status, 503);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_missing_or_malformed_tenant_id_is_a_400_without_asking_the_store() {
    let store = Store::with(&[("acme", "acme-secret")]);
    let by_path = app_with(store.tenants(TenantFrom::path_segment(1))).await;
    let long = "a".repeat(129);
    let r = send_post(
        by_path,
        &format!("/hooks/{long}"),
        signed("acme-secret", "b-1"),
        BODY,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), r#"{"error":"invalid_tenant"}"#);

    let by_header = Router::new()
        .route("/hook", post(|| async { "ok" }))
        .route_layer(WebhookLayer::new(
            store.tenants(TenantFrom::header("x-tenant").unwrap()),
        ));
    let by_header = serve(by_header).await;
    let with = |values: &[&str]| {
        let mut h = signed("acme-secret", "b-2");
        for v in values {
            h.append("x-tenant", v.parse().unwrap());
        }
        h
    };
    for values in [
        &[][..],
        &[""],
        &[long.as_str()],
        &["acme", "acme"],
        &["ac me"],
    ] {
        let r = send_post(by_header, "/hook", with(values), BODY).await;
        assert_eq!(r.status, 400, "{values:?}: {}", r.text());
        assert_eq!(r.text(), r#"{"error":"invalid_tenant"}"#);
    }
    assert_eq!(store.total.load(Ordering::SeqCst), 0, "never asked");

    let r = send_post(by_header, "/hook", with(&["acme"]), BODY).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn tenants_work_behind_swappable_and_a_boxed_verifier() {
    let store = Store::with(&[("acme", "acme-secret")]);
    let swappable = app_with(Swappable::new(store.tenants(TenantFrom::path_segment(1)))).await;
    let r = send_post(swappable, "/hooks/acme", signed("acme-secret", "s-1"), BODY).await;
    assert_eq!((r.status, r.text()), (http::StatusCode::OK, "acme"));

    let boxed: Arc<dyn Verifier> = Arc::new(store.tenants(TenantFrom::path_segment(1)));
    let boxed = app_with(boxed).await;
    let r = send_post(boxed, "/hooks/acme", signed("acme-secret", "s-2"), BODY).await;
    assert_eq!((r.status, r.text()), (http::StatusCode::OK, "acme"));
    let r = send_post(boxed, "/hooks/acme", signed("wrong", "s-3"), BODY).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_stored_delivery_is_verified_with_its_tenants_secret() {
    let store = Store::with(&[("acme", "acme-secret")]);
    let tenants = store.tenants(TenantFrom::path_segment(1));
    let arrived = SystemTime::now();
    let parts = testing::parts("/hooks/acme", signed("acme-secret", "q-1"));
    let stored = StoredDelivery::new(&parts, BODY, arrived);
    let v = stored.verify_prepared(&tenants).await.unwrap();
    assert_eq!(v.tenant(), Some("acme"));

    let other = StoredDelivery::new(
        &testing::parts("/hooks/initech", signed("acme-secret", "q-2")),
        BODY,
        arrived,
    );
    assert!(matches!(
        other.verify_prepared(&tenants).await,
        Err(WebhookError::Verify(
            tower_webhook::VerifyError::UnknownTenant
        ))
    ));
}

#[tokio::test]
async fn a_delivery_replayed_under_another_tenant_sharing_its_secret_is_a_duplicate() {
    // One app secret for every shop (Shopify, a GitHub App): the tenant
    // named by the request does not make a captured delivery new.
    let store = Store::with(&[("acme", "app-secret"), ("globex", "app-secret")]);
    let addr = app_with(store.tenants(TenantFrom::path_segment(1))).await;
    let a = send_post(addr, "/hooks/acme", signed("app-secret", "d-1"), BODY).await;
    assert_eq!((a.status, a.text()), (http::StatusCode::OK, "acme"));
    let replay = send_post(addr, "/hooks/globex", signed("app-secret", "d-2"), BODY).await;
    assert_eq!(replay.status, http::StatusCode::OK);
    assert!(
        replay.headers.get("webhook-duplicate").is_some(),
        "handled again as globex's: {}",
        replay.text()
    );
}
