//! Metrics and the audit hook, through a real HTTP server: a scripted
//! sequence of deliveries and the exact counter increments it must cause,
//! and the audit records it must produce.
//!
//! One debugging recorder is installed for this whole test binary; each
//! test uses its own endpoint names, so the tests never see each other's
//! counts.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::any;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower_webhook::observe::{AuditRecord, Outcome};
use tower_webhook::providers::{GitHub, StandardWebhooks};
use tower_webhook::rate_limit::RateLimit;
use tower_webhook::store::{Claim, ClaimToken, EventKey, IdempotencyStore, StoreError};
use tower_webhook::{Secret, WebhookLayer, testing};

const GH: &str = "observe-gh-secret";
const GH_OLD: &str = "observe-gh-old";
const STD: &str = "whsec_b2JzZXJ2ZS1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=";

fn snapshotter() -> &'static Snapshotter {
    static SNAP: OnceLock<Snapshotter> = OnceLock::new();
    SNAP.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        snapshotter
    })
}

/// Counter values of `webhook_deliveries_total` for `endpoint`, by outcome,
/// and the number of samples in its two histograms.
#[derive(Debug, Default, Clone)]
struct Seen {
    deliveries: HashMap<String, u64>,
    verify_samples: usize,
    handling_samples: usize,
}

/// A snapshot drains the debugging recorder (counters and histograms), and
/// tests run concurrently: every snapshot is added to one running total,
/// from which each test reads its own endpoints.
fn seen(endpoint: &str) -> Seen {
    static TOTALS: OnceLock<Mutex<HashMap<String, Seen>>> = OnceLock::new();
    let mut totals = TOTALS.get_or_init(Default::default).lock().expect("lock");
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        let key = key.key();
        let labels: HashMap<&str, &str> = key.labels().map(|l| (l.key(), l.value())).collect();
        let Some(ep) = labels.get("endpoint") else {
            continue;
        };
        let out = totals.entry((*ep).to_owned()).or_default();
        match (key.name(), value) {
            ("webhook_deliveries_total", DebugValue::Counter(n)) => {
                *out.deliveries
                    .entry(labels["outcome"].to_owned())
                    .or_default() += n;
            }
            ("webhook_verify_duration_seconds", DebugValue::Histogram(v)) => {
                out.verify_samples += v.len();
            }
            ("webhook_handling_duration_seconds", DebugValue::Histogram(v)) => {
                out.handling_samples += v.len();
            }
            _ => {}
        }
    }
    totals.get(endpoint).cloned().unwrap_or_default()
}

/// A store that always fails.
#[derive(Debug, Clone, Copy)]
struct Down;

impl IdempotencyStore for Down {
    async fn claim(&self, _: &EventKey, _: Duration) -> Result<Claim, StoreError> {
        Err(StoreError::new("down for the test"))
    }
    async fn complete(&self, _: &EventKey, _: ClaimToken, _: Duration) -> Result<bool, StoreError> {
        Err(StoreError::new("down for the test"))
    }
    async fn release(&self, _: &EventKey, _: ClaimToken) -> Result<bool, StoreError> {
        Err(StoreError::new("down for the test"))
    }
}

/// A handler that fails for bodies containing `fail` and is slow for
/// bodies containing `slow`.
async fn handler(body: Bytes) -> StatusCode {
    let text = String::from_utf8_lossy(&body);
    if text.contains("slow") {
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    if text.contains("fail") {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

fn gh(secret: &str, id: &str, body: &[u8]) -> HeaderMap {
    testing::github(secret, id, "push", body)
}

async fn server(prefix: &str, audit: Option<Arc<Mutex<Vec<AuditRecord>>>>) -> SocketAddr {
    let verifier = GitHub::new(Secret::text(GH).expect("secret").with_label("current"))
        .add_secret(Secret::text(GH_OLD).expect("secret").with_label("old"));
    let mut github = WebhookLayer::builder(verifier)
        .endpoint_name(&format!("{prefix}-gh"))
        .body_limit(1024);
    if let Some(records) = audit {
        github = github.audit(move |r: AuditRecord| {
            let records = Arc::clone(&records);
            async move { records.lock().expect("lock").push(r) }
        });
    }
    let standard = WebhookLayer::builder(StandardWebhooks::new(
        Secret::standard_webhooks(STD).expect("secret"),
    ))
    .endpoint_name(&format!("{prefix}-std"))
    .post_auth_limit(RateLimit::per_minute(2).expect("limit"))
    .build();
    let down = WebhookLayer::builder(GitHub::new(Secret::text(GH).expect("secret")))
        .endpoint_name(&format!("{prefix}-down"))
        .with_store(Down)
        .build();
    let app = Router::new()
        .route("/gh", any(handler).layer(github.build()))
        .route("/std", any(handler).layer(standard))
        .route("/down", any(handler).layer(down));
    common::serve(app).await
}

async fn post_json(
    addr: SocketAddr,
    path: &str,
    headers: HeaderMap,
    body: &'static [u8],
) -> StatusCode {
    common::post(addr, path, headers, Bytes::from_static(body))
        .await
        .status
}

#[tokio::test]
async fn each_outcome_of_a_scripted_sequence_is_counted_exactly() {
    snapshotter();
    let addr = server("seq", None).await;

    // accepted, then its duplicate
    let ok = br#"{"n":1}"#;
    assert_eq!(
        post_json(addr, "/gh", gh(GH, "d-1", ok), ok).await,
        StatusCode::OK
    );
    assert_eq!(
        post_json(addr, "/gh", gh(GH, "d-1", ok), ok).await,
        StatusCode::OK
    );
    // accepted under the old secret
    let old = br#"{"n":2}"#;
    assert_eq!(
        post_json(addr, "/gh", gh(GH_OLD, "d-2", old), old).await,
        StatusCode::OK
    );
    // invalid signature: wrong secret, and no signature at all
    assert_eq!(
        post_json(addr, "/gh", gh("wrong", "d-3", ok), ok).await,
        StatusCode::UNAUTHORIZED
    );
    let mut unsigned = gh(GH, "d-4", ok);
    unsigned.remove("x-hub-signature-256");
    assert_eq!(
        post_json(addr, "/gh", unsigned, ok).await,
        StatusCode::UNAUTHORIZED
    );
    // malformed: a GET, and a media type GitHub does not send
    let get = common::send(addr, Method::GET, "/gh", &HeaderMap::new(), Bytes::new()).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    let mut text = gh(GH, "d-5", ok);
    text.insert("content-type", "text/plain".parse().expect("value"));
    assert_eq!(
        post_json(addr, "/gh", text, ok).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // too large
    let big: &'static [u8] = Box::leak(vec![b' '; 4096].into_boxed_slice());
    assert_eq!(
        post_json(addr, "/gh", gh(GH, "d-6", big), big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // handler error, then the retry is handled (and fails again)
    let fail = br#"{"fail":true}"#;
    for _ in 0..2 {
        assert_eq!(
            post_json(addr, "/gh", gh(GH, "d-7", fail), fail).await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    // in flight: a second copy while the first is slow
    let slow = br#"{"slow":true}"#;
    let first = tokio::spawn(post_json(addr, "/gh", gh(GH, "d-8", slow), slow));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        post_json(addr, "/gh", gh(GH, "d-8", slow), slow).await,
        StatusCode::CONFLICT
    );
    assert_eq!(first.await.expect("first"), StatusCode::OK);

    // Standard Webhooks route: stale, then rate limited after two accepted
    let now = common::now();
    let stale = br#"{"id":"s"}"#;
    let headers = testing::standard_webhooks(STD, "msg_stale", now - 3600, stale);
    assert_eq!(
        post_json(addr, "/std", headers, stale).await,
        StatusCode::UNAUTHORIZED
    );
    for (i, body) in [&br#"{"i":1}"#[..], br#"{"i":2}"#, br#"{"i":3}"#]
        .into_iter()
        .enumerate()
    {
        let body: &'static [u8] = Box::leak(body.to_vec().into_boxed_slice());
        let headers = testing::standard_webhooks(STD, &format!("msg_{i}"), now, body);
        let want = if i < 2 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(post_json(addr, "/std", headers, body).await, want);
    }
    // the store is down
    assert_eq!(
        post_json(addr, "/down", gh(GH, "d-9", ok), ok).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let expect = |seen: &Seen, want: &[(Outcome, u64)]| {
        for o in Outcome::ALL {
            let want = want.iter().find(|(w, _)| *w == o).map_or(0, |(_, n)| *n);
            let got = seen.deliveries.get(o.as_str()).copied().unwrap_or(0);
            assert_eq!(got, want, "outcome {o}: {seen:?}");
        }
    };
    let gh_seen = seen("seq-gh");
    expect(
        &gh_seen,
        &[
            (Outcome::Accepted, 3),
            (Outcome::Duplicate, 1),
            (Outcome::InvalidSignature, 2),
            (Outcome::Malformed, 2),
            (Outcome::TooLarge, 1),
            (Outcome::HandlerError, 2),
            (Outcome::InFlight, 1),
        ],
    );
    // Every delivery is timed; the verify histogram has one sample per
    // body that reached the signature check (all but the GET, the text
    // one and the oversized one).
    assert_eq!(gh_seen.handling_samples, 12);
    assert_eq!(gh_seen.verify_samples, 9);
    expect(
        &seen("seq-std"),
        &[
            (Outcome::Stale, 1),
            (Outcome::Accepted, 2),
            (Outcome::RateLimited, 1),
        ],
    );
    expect(&seen("seq-down"), &[(Outcome::StoreUnavailable, 1)]);
}

#[tokio::test]
async fn metrics_off_records_nothing() {
    snapshotter();
    let layer = WebhookLayer::builder(GitHub::new(Secret::text(GH).expect("secret")))
        .endpoint_name("off-gh")
        .metrics(false)
        .build();
    let addr = common::serve(Router::new().route("/gh", any(handler).layer(layer))).await;
    let ok = br#"{"n":1}"#;
    assert_eq!(
        post_json(addr, "/gh", gh(GH, "o-1", ok), ok).await,
        StatusCode::OK
    );
    assert_eq!(
        post_json(addr, "/gh", gh("wrong", "o-2", ok), ok).await,
        StatusCode::UNAUTHORIZED
    );
    let seen = seen("off-gh");
    assert!(seen.deliveries.values().all(|n| *n == 0), "{seen:?}");
    assert_eq!(seen.handling_samples, 0);
}

async fn wait_for(records: &Mutex<Vec<AuditRecord>>, n: usize) -> Vec<AuditRecord> {
    for _ in 0..200 {
        if records.lock().expect("lock").len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    records.lock().expect("lock").clone()
}

#[tokio::test]
async fn the_audit_hook_sees_every_delivery_without_secrets() {
    snapshotter();
    let records = Arc::new(Mutex::new(Vec::new()));
    let addr = server("audit", Some(Arc::clone(&records))).await;
    let before = SystemTime::now();

    let ok = br#"{"n":1}"#;
    let signed = gh(GH_OLD, "a-1", ok);
    let signature = signed["x-hub-signature-256"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        post_json(addr, "/gh", signed.clone(), ok).await,
        StatusCode::OK
    );
    // The same signed delivery again (a provider's redelivery): a duplicate.
    assert_eq!(post_json(addr, "/gh", signed, ok).await, StatusCode::OK);
    assert_eq!(
        post_json(addr, "/gh", gh("wrong", "a-2", ok), ok).await,
        StatusCode::UNAUTHORIZED
    );
    let fail = br#"{"fail":true}"#;
    assert_eq!(
        post_json(addr, "/gh", gh(GH, "a-3", fail), fail).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let mut got = wait_for(&records, 4).await;
    assert_eq!(got.len(), 4, "{got:?}");
    // spawned tasks may finish in any order
    got.sort_by_key(|r| (r.event_id.clone(), r.outcome.as_str()));
    let by = |id: Option<&str>, outcome: Outcome| {
        got.iter()
            .find(|r| r.event_id.as_deref() == id && r.outcome == outcome)
            .unwrap_or_else(|| panic!("no {outcome} record for {id:?}: {got:?}"))
    };
    let accepted = by(Some("a-1"), Outcome::Accepted);
    assert_eq!(accepted.provider, "github");
    assert_eq!(&*accepted.endpoint, "audit-gh");
    assert_eq!(accepted.status, Some(200));
    assert_eq!(accepted.event_type.as_deref(), Some("push"));
    assert_eq!(accepted.key_label.as_deref(), Some("old"));
    assert_eq!(accepted.client, Some("127.0.0.1".parse().expect("ip")));
    assert!(
        accepted
            .verify_time
            .is_some_and(|v| v <= accepted.total_time)
    );
    assert!(accepted.received_at >= before && accepted.received_at <= SystemTime::now());

    let duplicate = by(Some("a-1"), Outcome::Duplicate);
    assert_eq!(duplicate.key_label.as_deref(), Some("old"));
    assert_eq!(duplicate.status, Some(200));

    // refused before anything was proved: no id, no label
    let refused = by(None, Outcome::InvalidSignature);
    assert_eq!(refused.status, Some(401));
    assert!(refused.key_label.is_none());
    assert!(refused.reason.contains("signature"), "{}", refused.reason);

    let failed = by(Some("a-3"), Outcome::HandlerError);
    assert_eq!(failed.status, Some(500));

    let shown = format!("{got:?}");
    for secret in [
        GH,
        GH_OLD,
        &signature,
        signature.trim_start_matches("sha256="),
    ] {
        assert!(!shown.contains(secret), "{secret} in an audit record");
    }
}

#[tokio::test]
async fn a_slow_audit_hook_holds_at_most_the_bound_and_drops_the_rest() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;
    let started = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&started);
    let layer = WebhookLayer::builder(GitHub::new(Secret::text(GH).expect("secret")))
        .endpoint_name("audit-bound")
        .audit(move |_r: AuditRecord| {
            counter.fetch_add(1, Ordering::SeqCst);
            // a hook that never finishes: its slot is never given back
            std::future::pending::<()>()
        })
        .build();
    let svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(
            |_req: http::Request<http_body_util::Full<Bytes>>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    Bytes::new(),
                )))
            },
        ));
    let extra = 100;
    for _ in 0..tower_webhook::observe::AUDIT_IN_FLIGHT + extra {
        let req = http::Request::get("/gh")
            .body(http_body_util::Full::new(Bytes::new()))
            .expect("request");
        let res = svc.clone().oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    // let the spawned hooks start
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        started.load(Ordering::SeqCst),
        tower_webhook::observe::AUDIT_IN_FLIGHT
    );
}
