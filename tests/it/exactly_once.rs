//! Exactly-once handling through a real HTTP server: concurrent duplicates,
//! failing and panicking handlers, GitHub replays, and (with `REDIS_URL`)
//! several instances sharing Redis and Redis going away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use tower_webhook::providers::{GitHub, StandardWebhooks};
use tower_webhook::store::IdempotencyStore;
use tower_webhook::{Secret, Webhook, WebhookLayer, testing};

use crate::common;
use crate::common::Reply;

const SW_SECRET: &str = "whsec_ZXhhY3RseS1vbmNlLXRlc3Qtc2VjcmV0LTMyYnl0ZXM=";
const GH_SECRET: &str = "gh-exactly-once";
const PATH: &str = "/hook";

/// What the handler does on its n-th call (counting from 0).
type Behaviour = fn(usize) -> StatusCode;

fn always_ok(_: usize) -> StatusCode {
    StatusCode::OK
}

/// A route behind `layer` whose handler counts its calls, takes 100 ms (so
/// that concurrent duplicates meet a claim in flight) and answers as
/// `behaviour` says; call 0 panics when `panic_first`.
fn app<St: IdempotencyStore>(
    layer: WebhookLayer<impl tower_webhook::Verifier, St>,
    calls: Arc<AtomicUsize>,
    behaviour: Behaviour,
    panic_first: bool,
) -> Router {
    let handler = move |hook: Webhook<Value>| {
        let calls = Arc::clone(&calls);
        async move {
            assert!(hook.meta.event_id().is_some());
            let n = calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            if panic_first && n == 0 {
                panic!("handler panics on purpose (first delivery)");
            }
            behaviour(n)
        }
    };
    Router::new().route(PATH, post(handler)).route_layer(layer)
}

fn standard_layer() -> tower_webhook::middleware::WebhookLayerBuilder<StandardWebhooks> {
    let secret = Secret::standard_webhooks(SW_SECRET).expect("valid secret");
    WebhookLayer::builder(StandardWebhooks::new(secret))
}

fn signed(id: &str, body: &[u8]) -> HeaderMap {
    testing::standard_webhooks(SW_SECRET, id, testing::unix(SystemTime::now()), body)
}

/// POSTs, or `None` when the connection broke (a panicking handler).
async fn try_post(addr: SocketAddr, headers: &HeaderMap, body: &'static [u8]) -> Option<Reply> {
    let mut headers = headers.clone();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let mut req = http::Request::post(format!("http://{addr}{PATH}"));
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let req = req
        .body(http_body_util::Full::new(Bytes::from_static(body)))
        .expect("request builds");
    let res = tokio::time::timeout(Duration::from_secs(10), common::client().request(req))
        .await
        .expect("server answers within 10 s")
        .ok()?;
    let (parts, body) = res.into_parts();
    let body = http_body_util::BodyExt::collect(body)
        .await
        .ok()?
        .to_bytes();
    Some(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

async fn deliver(addr: SocketAddr, headers: &HeaderMap, body: &'static [u8]) -> Reply {
    try_post(addr, headers, body)
        .await
        .expect("the server answered")
}

fn is_duplicate(r: &Reply) -> bool {
    r.status == StatusCode::OK
        && r.headers.get("webhook-duplicate").map(|v| v.as_bytes()) == Some(b"true")
        && r.body.is_empty()
}

/// Sends one event 50 times at once, spread over `addrs`, and checks the
/// answers: one handled, the rest duplicates or 409 with `Retry-After`.
async fn fifty_at_once(addrs: &[SocketAddr], calls: &AtomicUsize, id: &str) {
    let body: &'static [u8] = br#"{"type":"invoice.paid","n":50}"#;
    let headers = signed(id, body);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let addr = addrs[i % addrs.len()];
            let headers = headers.clone();
            tokio::spawn(async move { deliver(addr, &headers, body).await })
        })
        .collect();
    let (mut handled, mut duplicates, mut in_flight) = (0, 0, 0);
    for t in tasks {
        let r = t.await.expect("task runs");
        if is_duplicate(&r) {
            duplicates += 1;
        } else if r.status == StatusCode::OK {
            handled += 1;
        } else if r.status == StatusCode::CONFLICT {
            assert!(
                r.headers.contains_key(http::header::RETRY_AFTER),
                "409 without Retry-After"
            );
            in_flight += 1;
        } else {
            panic!("unexpected answer {} {}", r.status, r.text());
        }
    }
    println!(
        "50 deliveries: {handled} handled, {duplicates} duplicates, {in_flight} in flight (409)"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "handler calls");
    assert_eq!(handled, 1);
    assert_eq!(handled + duplicates + in_flight, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_deliveries_of_one_event_are_handled_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = common::serve(app(
        standard_layer().build(),
        calls.clone(),
        always_ok,
        false,
    ))
    .await;
    fifty_at_once(&[addr], &calls, "msg_fifty").await;
    // Afterwards, a late redelivery is an acknowledged duplicate.
    let body: &'static [u8] = br#"{"type":"invoice.paid","n":50}"#;
    assert!(is_duplicate(
        &deliver(addr, &signed("msg_fifty", body), body).await
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_delivery_that_failed_is_handled_on_retry() {
    fn fail_first(n: usize) -> StatusCode {
        if n == 0 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = common::serve(app(
        standard_layer().build(),
        calls.clone(),
        fail_first,
        false,
    ))
    .await;
    let body: &'static [u8] = br#"{"type":"order.created"}"#;
    let first = deliver(addr, &signed("msg_retry", body), body).await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    let retry = deliver(addr, &signed("msg_retry", body), body).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert!(!is_duplicate(&retry), "the retry must reach the handler");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Now it is done: a third delivery is a duplicate.
    assert!(is_duplicate(
        &deliver(addr, &signed("msg_retry", body), body).await
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_payload_of_the_wrong_shape_releases_the_claim() {
    // The extractor answers 422 before the handler runs; the claim must not
    // stay in flight (nor become done).
    let calls = Arc::new(AtomicUsize::new(0));
    let shaped = {
        let calls = calls.clone();
        move |_: Webhook<Vec<u8>>| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }
    };
    let app = Router::new()
        .route(PATH, post(shaped))
        .route_layer(standard_layer().build());
    let addr = common::serve(app).await;
    let body: &'static [u8] = br#"{"not":"a list"}"#;
    for _ in 0..2 {
        let r = deliver(addr, &signed("msg_shape", body), body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_releases_its_claim_for_the_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = common::serve(app(
        standard_layer().build(),
        calls.clone(),
        always_ok,
        true,
    ))
    .await;
    let body: &'static [u8] = br#"{"type":"order.created","panic":true}"#;
    let first = try_post(addr, &signed("msg_panic", body), body).await;
    assert!(
        first.is_none(),
        "a panicking handler breaks the connection: {first:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The release runs on a spawned task; give it a moment, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    let retry = loop {
        let r = deliver(addr, &signed("msg_panic", body), body).await;
        if r.status != StatusCode::CONFLICT || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert!(!is_duplicate(&retry));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn github_replay_under_a_fresh_delivery_id_is_a_duplicate() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = WebhookLayer::new(GitHub::new(Secret::text(GH_SECRET).expect("secret")));
    let addr = common::serve(app(layer, calls.clone(), always_ok, false)).await;
    let body: &'static [u8] = br#"{"ref":"refs/heads/main","after":"abc"}"#;
    let captured = testing::github(GH_SECRET, "d-original", "push", body);
    let first = deliver(addr, &captured, body).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!is_duplicate(&first));

    let mut replay = captured.clone();
    replay.insert(
        "x-github-delivery",
        "d-freshly-minted".parse().expect("header"),
    );
    let r = deliver(addr, &replay, body).await;
    assert!(
        is_duplicate(&r),
        "replay answered {} {:?}",
        r.status,
        r.headers
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Control: a different signed body under a new id is handled.
    let other: &'static [u8] = br#"{"ref":"refs/heads/main","after":"def"}"#;
    let r = deliver(
        addr,
        &testing::github(GH_SECRET, "d-next", "push", other),
        other,
    )
    .await;
    assert!(r.status == StatusCode::OK && !is_duplicate(&r));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn github_replay_is_not_poisoned_by_a_failed_first_delivery() {
    // The first delivery fails: both its id and its signature digest are
    // released, so the replayed (or redelivered) request is handled.
    fn fail_first(n: usize) -> StatusCode {
        if n == 0 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = WebhookLayer::new(GitHub::new(Secret::text(GH_SECRET).expect("secret")));
    let addr = common::serve(app(layer, calls.clone(), fail_first, false)).await;
    let body: &'static [u8] = br#"{"action":"opened"}"#;
    let first = deliver(
        addr,
        &testing::github(GH_SECRET, "d-1", "issues", body),
        body,
    )
    .await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    let again = deliver(
        addr,
        &testing::github(GH_SECRET, "d-2", "issues", body),
        body,
    )
    .await;
    assert!(again.status == StatusCode::OK && !is_duplicate(&again));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// The memory store, except that claims of a signature digest never answer.
#[derive(Debug, Clone, Default)]
struct StallOnDigest(tower_webhook::MemoryStore);

impl IdempotencyStore for StallOnDigest {
    async fn claim(
        &self,
        key: &tower_webhook::store::EventKey,
        lease: Duration,
    ) -> Result<tower_webhook::store::Claim, tower_webhook::store::StoreError> {
        if key.as_str().contains("/sig:") {
            std::future::pending::<()>().await;
        }
        self.0.claim(key, lease).await
    }
    async fn complete(
        &self,
        key: &tower_webhook::store::EventKey,
        token: tower_webhook::store::ClaimToken,
        ttl: Duration,
    ) -> Result<bool, tower_webhook::store::StoreError> {
        self.0.complete(key, token, ttl).await
    }
    async fn release(
        &self,
        key: &tower_webhook::store::EventKey,
        token: tower_webhook::store::ClaimToken,
    ) -> Result<bool, tower_webhook::store::StoreError> {
        self.0.release(key, token).await
    }
}

#[tokio::test]
async fn a_request_dropped_between_two_claims_releases_the_first() {
    use tower::{ServiceBuilder, ServiceExt};
    use tower_webhook::store::{Claim, EventKey};

    let store = StallOnDigest::default();
    let layer = WebhookLayer::builder(GitHub::new(Secret::text(GH_SECRET).expect("secret")))
        .with_store(store.clone())
        .store_timeout(Duration::from_secs(30))
        .build();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(
            |_: http::Request<http_body_util::Full<Bytes>>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    Bytes::new(),
                )))
            },
        ));
    let body: &'static [u8] = br#"{"zen":"dropped"}"#;
    let mut req = http::Request::post(PATH).header("content-type", "application/json");
    for (k, v) in &testing::github(GH_SECRET, "d-dropped", "ping", body) {
        req = req.header(k, v);
    }
    let req = req
        .body(http_body_util::Full::new(Bytes::from_static(body)))
        .expect("request");
    // The id is claimed, then the digest claim hangs; the caller gives up.
    let gave_up = tokio::time::timeout(Duration::from_millis(200), svc.oneshot(req)).await;
    assert!(gave_up.is_err(), "the digest claim was meant to hang");

    let id = EventKey::new("github", "github", "d-dropped");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store
            .0
            .claim(&id, Duration::from_secs(60))
            .await
            .expect("memory store")
        {
            Claim::Fresh(_) => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "id claim never released: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A store that never answers.
#[derive(Debug, Clone, Default)]
struct Hung;

impl IdempotencyStore for Hung {
    async fn claim(
        &self,
        _: &tower_webhook::store::EventKey,
        _: Duration,
    ) -> Result<tower_webhook::store::Claim, tower_webhook::store::StoreError> {
        std::future::pending().await
    }
    async fn complete(
        &self,
        _: &tower_webhook::store::EventKey,
        _: tower_webhook::store::ClaimToken,
        _: Duration,
    ) -> Result<bool, tower_webhook::store::StoreError> {
        std::future::pending().await
    }
    async fn release(
        &self,
        _: &tower_webhook::store::EventKey,
        _: tower_webhook::store::ClaimToken,
    ) -> Result<bool, tower_webhook::store::StoreError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_hung_store_answers_503_with_retry_after_within_the_store_timeout() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = standard_layer()
        .with_store(Hung)
        .store_timeout(Duration::from_millis(150))
        .build();
    let addr = common::serve(app(layer, calls.clone(), always_ok, false)).await;
    let body: &'static [u8] = br#"{"type":"hung"}"#;
    let started = Instant::now();
    let r = deliver(addr, &signed("msg_hung", body), body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.headers
            .get(http::header::RETRY_AFTER)
            .map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn fail_open_handles_the_delivery_when_the_store_hangs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = standard_layer()
        .with_store(Hung)
        .store_timeout(Duration::from_millis(150))
        .store_policy(tower_webhook::StorePolicy::FailOpen)
        .build();
    let addr = common::serve(app(layer, calls.clone(), always_ok, false)).await;
    let body: &'static [u8] = br#"{"type":"hung"}"#;
    let r = deliver(addr, &signed("msg_open", body), body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!is_duplicate(&r));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The memory store, remembering every key claimed.
#[derive(Debug, Clone, Default)]
struct Recording(
    tower_webhook::MemoryStore,
    Arc<std::sync::Mutex<Vec<String>>>,
);

impl IdempotencyStore for Recording {
    async fn claim(
        &self,
        key: &tower_webhook::store::EventKey,
        lease: Duration,
    ) -> Result<tower_webhook::store::Claim, tower_webhook::store::StoreError> {
        self.1.lock().expect("lock").push(key.as_str().to_owned());
        self.0.claim(key, lease).await
    }
    async fn complete(
        &self,
        key: &tower_webhook::store::EventKey,
        token: tower_webhook::store::ClaimToken,
        ttl: Duration,
    ) -> Result<bool, tower_webhook::store::StoreError> {
        self.0.complete(key, token, ttl).await
    }
    async fn release(
        &self,
        key: &tower_webhook::store::EventKey,
        token: tower_webhook::store::ClaimToken,
    ) -> Result<bool, tower_webhook::store::StoreError> {
        self.0.release(key, token).await
    }
}

#[tokio::test]
async fn github_claims_a_hash_of_the_signature_alone_never_the_signature_nor_unsigned_headers() {
    let store = Recording::default();
    let layer = WebhookLayer::builder(GitHub::new(Secret::text(GH_SECRET).expect("secret")))
        .endpoint_name("gh")
        .with_store(store.clone())
        .build();
    let addr = common::serve(app(layer, Arc::new(AtomicUsize::new(0)), always_ok, false)).await;
    let body: &'static [u8] = br#"{"zen":"keys"}"#;
    let headers = testing::github(GH_SECRET, "d-keys", "ping", body);
    assert_eq!(deliver(addr, &headers, body).await.status, StatusCode::OK);

    let sig = headers["x-hub-signature-256"].to_str().expect("ascii");
    let sig = sig.strip_prefix("sha256=").expect("prefix");
    let keys = store.1.lock().expect("lock").clone();
    assert_eq!(keys.len(), 1, "{keys:?}");
    // the digest lives in its own namespace; neither the (unsigned)
    // delivery id nor the (unsigned) event type is part of it
    let digest = keys[0].strip_prefix("gh:github/sig:").expect("digest key");
    assert!(
        !digest.contains("d-keys") && !digest.contains("ping"),
        "{digest}"
    );
    assert_eq!(digest.len(), 32, "{digest}");
    for window in 0..sig.len() - 8 {
        assert!(
            !digest.contains(&sig[window..window + 8]),
            "signature bytes in {digest}"
        );
    }
}

#[cfg(feature = "redis")]
mod redis {
    use std::sync::Mutex;

    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::AbortHandle;
    use tower_webhook::store::RedisStore;

    use super::*;

    async fn connect(url: &str, prefix: &str) -> RedisStore {
        tokio::time::timeout(Duration::from_secs(10), RedisStore::connect(url, prefix))
            .await
            .expect("REDIS_URL is set but Redis did not answer within 10 s")
            .expect("REDIS_URL is set but Redis refused the connection")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_concurrent_deliveries_through_redis_are_handled_once() {
        let Some(url) = common::redis_url() else {
            return;
        };
        let store = connect(&url, &common::unique_prefix("e1-fifty")).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let layer = standard_layer().with_store(store).build();
        let addr = common::serve(app(layer, calls.clone(), always_ok, false)).await;
        fifty_at_once(&[addr], &calls, "msg_redis_fifty").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_sharing_redis_handle_an_event_once() {
        let Some(url) = common::redis_url() else {
            return;
        };
        let prefix = common::unique_prefix("e1-two");
        let calls = Arc::new(AtomicUsize::new(0));
        let mut addrs = Vec::new();
        for _ in 0..2 {
            // Each instance has its own layer, store and connection.
            let store = connect(&url, &prefix).await;
            let layer = standard_layer().with_store(store).build();
            addrs.push(common::serve(app(layer, calls.clone(), always_ok, false)).await);
        }
        fifty_at_once(&addrs, &calls, "msg_two_instances").await;
    }

    /// A TCP proxy in front of Redis that can be cut (connections closed,
    /// port refusing) and restored on the same port.
    struct Proxy {
        addr: SocketAddr,
        target: SocketAddr,
        tasks: Arc<Mutex<Vec<AbortHandle>>>,
    }

    impl Proxy {
        async fn start(target: SocketAddr) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let proxy = Self {
                addr,
                target,
                tasks: Arc::new(Mutex::new(Vec::new())),
            };
            proxy.run(listener);
            proxy
        }

        fn run(&self, listener: TcpListener) {
            let (target, tasks) = (self.target, Arc::clone(&self.tasks));
            let acceptor = tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let conn = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    tasks.lock().expect("lock").push(conn.abort_handle());
                }
            });
            self.tasks
                .lock()
                .expect("lock")
                .push(acceptor.abort_handle());
        }

        async fn cut(&self) {
            for t in self.tasks.lock().expect("lock").drain(..) {
                t.abort();
            }
            // Wait until the port refuses connections.
            let deadline = Instant::now() + Duration::from_secs(5);
            while TcpStream::connect(self.addr).await.is_ok() {
                assert!(Instant::now() < deadline, "proxy port still open");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }

        async fn restore(&self) {
            let deadline = Instant::now() + Duration::from_secs(5);
            let listener = loop {
                match TcpListener::bind(self.addr).await {
                    Ok(l) => break l,
                    Err(e) => {
                        assert!(
                            Instant::now() < deadline,
                            "cannot rebind {}: {e}",
                            self.addr
                        );
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            };
            self.run(listener);
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            for t in self.tasks.lock().expect("lock").drain(..) {
                t.abort();
            }
        }
    }

    /// `redis://[user:pass@]host:port[/db]` → (`host:port`, URL through `via`).
    async fn through(url: &str, via: Option<SocketAddr>) -> (SocketAddr, String) {
        let (scheme, rest) = url.split_once("://").expect("REDIS_URL has a scheme");
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (format!("{auth}@"), rest),
            None => (String::new(), rest),
        };
        let (host, path) = match rest.split_once('/') {
            Some((host, path)) => (host, format!("/{path}")),
            None => (rest, String::new()),
        };
        let target = tokio::net::lookup_host(host)
            .await
            .expect("REDIS_URL host resolves")
            .next()
            .expect("an address");
        let shown = via.map_or_else(|| host.to_owned(), |a| a.to_string());
        (target, format!("{scheme}://{auth}{shown}{path}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_unreachable_answers_503_with_retry_after_then_recovers() {
        let Some(url) = common::redis_url() else {
            return;
        };
        let (target, _) = through(&url, None).await;
        let proxy = Proxy::start(target).await;
        let (_, proxied) = through(&url, Some(proxy.addr)).await;
        let store = connect(&proxied, &common::unique_prefix("e1-cut")).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let layer = standard_layer().with_store(store).build();
        let addr = common::serve(app(layer, calls.clone(), always_ok, false)).await;

        let body: &'static [u8] = br#"{"type":"before.cut"}"#;
        let r = deliver(addr, &signed("msg_before_cut", body), body).await;
        assert_eq!(r.status, StatusCode::OK, "through the proxy: {}", r.text());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        proxy.cut().await;
        let body: &'static [u8] = br#"{"type":"during.cut"}"#;
        for attempt in 0..3 {
            let started = Instant::now();
            let r = deliver(addr, &signed("msg_during_cut", body), body).await;
            let took = started.elapsed();
            println!("attempt {attempt} while cut: {} in {took:?}", r.status);
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
            assert!(r.headers.contains_key(http::header::RETRY_AFTER));
            assert_eq!(r.text(), r#"{"error":"store_unavailable"}"#);
            // The default store timeout is 2 s; the store gives up sooner.
            assert!(took < Duration::from_secs(3), "503 took {took:?}");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "no handler call without a claim"
        );

        proxy.restore().await;
        let deadline = Instant::now() + Duration::from_secs(15);
        let r = loop {
            let r = deliver(addr, &signed("msg_during_cut", body), body).await;
            if r.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(r.status, StatusCode::OK, "after restoring: {}", r.text());
        assert!(!is_duplicate(&r));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(is_duplicate(
            &deliver(addr, &signed("msg_during_cut", body), body).await
        ));
    }
}
