//! Shared test helpers: a real HTTP server on loopback and a real client.
#![allow(dead_code, unreachable_pub)]

pub mod cases;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Serves `app` on `127.0.0.1:0` (with `ConnectInfo<SocketAddr>`) and
/// returns its address. The server runs until the test's runtime ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server runs");
    });
    addr
}

/// A signed GitHub `push` delivery of `body` to `path`, with event id `id`
/// (the request an in-process test sends through the layer or the
/// endpoint).
pub fn github_push(
    path: &str,
    secret: &str,
    id: &str,
    body: &'static [u8],
) -> Request<Full<Bytes>> {
    let mut req = Request::post(path).header("content-type", "application/json");
    for (k, v) in &tower_webhook::testing::github(secret, id, "push", body) {
        req = req.header(k, v);
    }
    req.body(Full::new(Bytes::from_static(body)))
        .expect("request")
}

/// A plain HTTP/1 client (no TLS).
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("<binary>")
    }
}

/// Sends `method path` with `headers` and `body` to `addr`.
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: impl Into<Bytes>,
) -> Reply {
    send_with(&client(), addr, method, path, headers, body).await
}

/// A client whose connections come from `local` (on Linux any
/// `127.0.0.0/8` address works: two clients, two loopback addresses).
pub fn client_from(local: std::net::IpAddr) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(local));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// [`send`] through a given client.
pub async fn send_with(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: impl Into<Bytes>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req.body(Full::new(body.into())).expect("request builds");
    let res = client.request(req).await.expect("server answers");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("body reads").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Sends a request over a raw TCP connection with `connection: close`,
/// ignoring write errors: a server may answer (413) and close before it has
/// read a large body, and an HTTP client library then reports only the
/// broken pipe. Reads the answer to the end.
pub async fn send_raw(
    addr: SocketAddr,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    send_raw_framed(addr, method, path, headers, body, false).await
}

/// [`send_raw`] with the body sent chunked, without a length.
pub async fn send_raw_chunked(
    addr: SocketAddr,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    send_raw_framed(addr, &Method::POST, path, headers, body, true).await
}

async fn send_raw_framed(
    addr: SocketAddr,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    chunked: bool,
) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let framing = if chunked {
        "transfer-encoding: chunked".to_owned()
    } else {
        format!("content-length: {}", body.len())
    };
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{framing}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {}\r\n", v.to_str().expect("ascii header")));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    if chunked {
        for chunk in body.chunks(4096) {
            let _ = stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await;
            let _ = stream.write_all(chunk).await;
            let _ = stream.write_all(b"\r\n").await;
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
    } else {
        let _ = stream.write_all(body).await;
    }
    let mut raw = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut raw),
    );
    // A reset after the answer was sent still leaves the answer in `raw`.
    let _ = read.await.expect("answered in time");
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").expect("a complete answer head");
    let mut lines = head.lines();
    let status_line = lines.next().expect("status line");
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.trim().as_bytes()),
                http::HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(k, v);
        }
    }
    Reply {
        status: StatusCode::from_u16(code).expect("status"),
        headers,
        body: Bytes::from(rest.as_bytes().to_vec()),
    }
}

/// POSTs JSON to `addr`.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    headers: HeaderMap,
    body: impl Into<Bytes>,
) -> Reply {
    let mut headers = headers;
    headers
        .entry(http::header::CONTENT_TYPE)
        .or_insert(http::HeaderValue::from_static("application/json"));
    send(addr, Method::POST, path, &headers, body).await
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A key prefix no other test run uses, so runs against one Redis never collide.
pub fn unique_prefix(test: &str) -> String {
    let n = tower_webhook::store::ClaimToken::random().as_u128();
    format!("tw-test:{test}:{n:032x}:")
}

/// `REDIS_URL`, when the environment names a Redis for the tests.
pub fn redis_url() -> Option<String> {
    std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty())
}

/// The idempotency store contract, as tests run against any backend.
///
/// `$make` is an `async` block giving `Option<impl IdempotencyStore>`; each
/// test makes its own store and passes (printing why) when it gives `None`
/// (a backend that is not configured here). Use it with
/// `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! store_conformance {
    ($make:expr) => {
        mod conformance {
            use std::sync::Arc;
            use std::time::Duration;

            use tower_webhook::store::{Claim, ClaimToken, EventKey, IdempotencyStore};

            #[allow(unused_imports)]
            use super::*;

            const LEASE: Duration = Duration::from_secs(30);
            const TTL: Duration = Duration::from_secs(300);

            macro_rules! store {
                () => {
                    match $make.await {
                        Some(store) => store,
                        None => {
                            eprintln!("backend not configured here: nothing to check");
                            return;
                        }
                    }
                };
            }

            fn key(id: &str) -> EventKey {
                EventKey::new("conformance", "test", id)
            }

            async fn fresh(
                store: &impl IdempotencyStore,
                key: &EventKey,
                lease: Duration,
            ) -> ClaimToken {
                match store.claim(key, lease).await.expect("store answers") {
                    Claim::Fresh(token) => token,
                    other => panic!("expected a fresh claim of {key}, got {other:?}"),
                }
            }

            #[tokio::test]
            async fn first_claim_of_a_key_is_fresh() {
                let store = store!();
                let a = fresh(&store, &key("a"), LEASE).await;
                let b = fresh(&store, &key("b"), LEASE).await;
                assert_ne!(a, b, "each claim gets its own token");
            }

            #[tokio::test]
            async fn second_claim_is_in_flight_for_at_most_the_lease() {
                let store = store!();
                let k = key("evt");
                fresh(&store, &k, LEASE).await;
                match store.claim(&k, LEASE).await.expect("store answers") {
                    Claim::InFlight { retry_after } => {
                        assert!(retry_after <= LEASE, "{retry_after:?} > lease");
                        assert!(
                            retry_after > LEASE - Duration::from_secs(5),
                            "{retry_after:?}"
                        );
                    }
                    other => panic!("expected InFlight, got {other:?}"),
                }
            }

            #[tokio::test]
            async fn completed_key_is_done() {
                let store = store!();
                let k = key("evt");
                let token = fresh(&store, &k, LEASE).await;
                assert!(store.complete(&k, token, TTL).await.expect("store answers"));
                assert_eq!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::Done
                );
                assert_eq!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::Done
                );
            }

            #[tokio::test]
            async fn released_key_is_fresh_again() {
                let store = store!();
                let k = key("evt");
                let first = fresh(&store, &k, LEASE).await;
                assert!(store.release(&k, first).await.expect("store answers"));
                let second = fresh(&store, &k, LEASE).await;
                assert_ne!(first, second);
                assert!(
                    !store.release(&k, first).await.expect("store answers"),
                    "a released token holds nothing"
                );
            }

            #[tokio::test]
            async fn claim_is_fresh_again_after_its_lease_expires() {
                let store = store!();
                let k = key("evt");
                fresh(&store, &k, Duration::from_millis(200)).await;
                assert!(matches!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::InFlight { .. }
                ));
                tokio::time::sleep(Duration::from_millis(350)).await;
                fresh(&store, &k, LEASE).await;
            }

            #[tokio::test]
            async fn done_is_forgotten_after_its_ttl() {
                let store = store!();
                let k = key("evt");
                let token = fresh(&store, &k, LEASE).await;
                assert!(
                    store
                        .complete(&k, token, Duration::from_millis(200))
                        .await
                        .expect("store answers")
                );
                assert_eq!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::Done
                );
                tokio::time::sleep(Duration::from_millis(350)).await;
                fresh(&store, &k, LEASE).await;
            }

            #[tokio::test]
            async fn complete_with_a_wrong_token_is_refused_and_changes_nothing() {
                let store = store!();
                let k = key("evt");
                let token = fresh(&store, &k, LEASE).await;
                let wrong = ClaimToken::from_u128(token.as_u128() ^ 1);
                assert!(!store.complete(&k, wrong, TTL).await.expect("store answers"));
                assert!(matches!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::InFlight { .. }
                ));
                assert!(
                    !store
                        .complete(&key("never-claimed"), wrong, TTL)
                        .await
                        .expect("store answers")
                );
                fresh(&store, &key("never-claimed"), LEASE).await;
                // The real holder still can.
                assert!(store.complete(&k, token, TTL).await.expect("store answers"));
                assert_eq!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::Done
                );
            }

            #[tokio::test]
            async fn release_with_a_wrong_token_is_refused_and_changes_nothing() {
                let store = store!();
                let k = key("evt");
                let token = fresh(&store, &k, LEASE).await;
                let wrong = ClaimToken::from_u128(token.as_u128() ^ 1);
                assert!(!store.release(&k, wrong).await.expect("store answers"));
                assert!(matches!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::InFlight { .. }
                ));
                // Nor can anyone release a completed key.
                assert!(store.complete(&k, token, TTL).await.expect("store answers"));
                assert!(!store.release(&k, token).await.expect("store answers"));
                assert!(!store.release(&k, wrong).await.expect("store answers"));
                assert_eq!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::Done
                );
            }

            #[tokio::test]
            async fn late_holder_cannot_touch_the_next_claim() {
                let store = store!();
                let k = key("evt");
                let late = fresh(&store, &k, Duration::from_millis(100)).await;
                tokio::time::sleep(Duration::from_millis(250)).await;
                let current = fresh(&store, &k, LEASE).await;
                assert!(!store.complete(&k, late, TTL).await.expect("store answers"));
                assert!(!store.release(&k, late).await.expect("store answers"));
                assert!(matches!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::InFlight { .. }
                ));
                assert!(
                    store
                        .complete(&k, current, TTL)
                        .await
                        .expect("store answers")
                );
            }

            #[tokio::test]
            async fn keys_of_other_endpoints_and_providers_are_independent() {
                let store = store!();
                let token = fresh(&store, &EventKey::new("a", "stripe", "evt_1"), LEASE).await;
                assert!(
                    store
                        .complete(&EventKey::new("a", "stripe", "evt_1"), token, TTL)
                        .await
                        .expect("store answers")
                );
                fresh(&store, &EventKey::new("b", "stripe", "evt_1"), LEASE).await;
                fresh(&store, &EventKey::new("a", "github", "evt_1"), LEASE).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn of_32_concurrent_claims_exactly_one_is_fresh() {
                let store = Arc::new(store!());
                let k = key("contended");
                let start = Arc::new(tokio::sync::Barrier::new(32));
                let tasks: Vec<_> = (0..32)
                    .map(|_| {
                        let (store, k, start) = (Arc::clone(&store), k.clone(), Arc::clone(&start));
                        tokio::spawn(async move {
                            start.wait().await;
                            store.claim(&k, LEASE).await.expect("store answers")
                        })
                    })
                    .collect();
                let mut fresh = 0;
                for t in tasks {
                    match t.await.expect("task runs") {
                        Claim::Fresh(_) => fresh += 1,
                        Claim::InFlight { retry_after } => assert!(retry_after <= LEASE),
                        Claim::Done => panic!("nobody completed the key"),
                    }
                }
                assert_eq!(fresh, 1);
            }

            #[tokio::test]
            async fn huge_ttl_and_zero_lease_are_accepted() {
                let store = store!();
                let k = key("forever");
                let token = fresh(&store, &k, LEASE).await;
                assert!(
                    store
                        .complete(&k, token, Duration::MAX)
                        .await
                        .expect("store answers")
                );
                assert_eq!(
                    store.claim(&k, LEASE).await.expect("store answers"),
                    Claim::Done
                );
                // A zero lease expires at once (or within a millisecond).
                let z = key("zero");
                fresh(&store, &z, Duration::ZERO).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                fresh(&store, &z, LEASE).await;
            }
        }
    };
}

/// The bounds every in-memory store must keep: capacity after a million
/// distinct ids, and a brand-new id always admitted when full. `$make`
/// builds a store of a given capacity; the store has `entry_count()`.
#[macro_export]
macro_rules! store_bounds {
    ($make:expr) => {
        mod bounds {
            use std::time::{Duration, Instant};

            use tower_webhook::store::{Claim, EventKey, IdempotencyStore};

            const LEASE: Duration = Duration::from_secs(60);

            #[tokio::test]
            async fn capacity_holds_after_a_million_distinct_ids() {
                let capacity = 10_000;
                let store = ($make)(capacity);
                let started = Instant::now();
                for i in 0..1_000_000u32 {
                    let key = EventKey::new("bulk", "test", &i.to_string());
                    let answer = store.claim(&key, LEASE).await.expect("store answers");
                    assert!(
                        matches!(answer, Claim::Fresh(_)),
                        "id {i} was never seen, yet {answer:?}"
                    );
                }
                let took = started.elapsed();
                let held = store.entry_count();
                println!(
                    "1 000 000 claims into capacity {capacity}: {took:?}, {held} entries held"
                );
                assert!(held <= capacity, "{held} entries > capacity {capacity}");
                assert!(
                    held >= capacity / 2,
                    "only {held} entries kept: the store forgets too eagerly"
                );
            }

            #[tokio::test]
            async fn a_new_id_is_kept_when_the_store_is_full() {
                let capacity = 1_000;
                let store = ($make)(capacity);
                // Fill the store and make every old id "popular": TinyLFU would now
                // refuse a newcomer, LRU must admit it.
                for round in 0..3 {
                    for i in 0..capacity {
                        let key = EventKey::new("full", "test", &i.to_string());
                        let answer = store.claim(&key, LEASE).await.expect("store answers");
                        if round == 0 {
                            let Claim::Fresh(token) = answer else {
                                panic!("{i} not fresh")
                            };
                            assert!(
                                store
                                    .complete(&key, token, LEASE)
                                    .await
                                    .expect("store answers")
                            );
                        }
                    }
                }
                assert_eq!(store.entry_count(), capacity);
                for n in 0..50 {
                    let newcomer = EventKey::new("full", "test", &format!("new-{n}"));
                    let Claim::Fresh(token) =
                        store.claim(&newcomer, LEASE).await.expect("store answers")
                    else {
                        panic!("newcomer {n} not fresh");
                    };
                    store.entry_count(); // no pending work: a no-op read
                    assert!(
                        matches!(
                            store.claim(&newcomer, LEASE).await.expect("store answers"),
                            Claim::InFlight { .. }
                        ),
                        "newcomer {n} was dropped right after its claim"
                    );
                    assert!(
                        store
                            .complete(&newcomer, token, LEASE)
                            .await
                            .expect("store answers")
                    );
                    store.entry_count();
                    assert_eq!(
                        store.claim(&newcomer, LEASE).await.expect("store answers"),
                        Claim::Done
                    );
                    assert!(store.entry_count() <= capacity);
                }
            }
        }
    };
}

/// A log sink for a `tracing` subscriber: what was written, as text.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8 log")
    }

    /// A plain-text `fmt` subscriber writing here, with `filter` (an
    /// `EnvFilter` directive string such as `"trace"` or
    /// `"info,tower_webhook=warn"`).
    pub fn subscriber(&self, filter: &str) -> impl tracing::Subscriber + Send + Sync + use<> {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish()
    }
}
