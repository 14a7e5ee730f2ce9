//! Rate limits through the real layer: in-process with a manual clock, and
//! through a real HTTP server on loopback.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::client::{ClientAddr, TrustedProxies};
use tower_webhook::providers::GitHub;
use tower_webhook::rate_limit::{ManualClock, PreAuthLimiter, RateLimit};
use tower_webhook::{
    IdempotencyStore, Secret, Verified, Verifier, VerifyError, WebhookLayer, testing,
};

use crate::common;

const SECRET: &str = "s3cret";

fn github() -> GitHub {
    GitHub::new(Secret::text(SECRET).expect("non-empty secret"))
}

fn signed(delivery: &str, body: &[u8]) -> HeaderMap {
    let mut h = testing::github(SECRET, delivery, "push", body);
    h.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    h
}

/// A request from `peer` with `headers`.
fn request(peer: &str, headers: HeaderMap, body: &'static [u8]) -> Request<Full<Bytes>> {
    let mut req = Request::post("/hooks/github")
        .body(Full::new(Bytes::from_static(body)))
        .expect("request builds");
    *req.headers_mut() = headers;
    req.extensions_mut().insert(ClientAddr(
        peer.parse::<SocketAddr>().expect("a socket address"),
    ));
    req
}

type Svc = tower::util::BoxCloneService<
    Request<Full<Bytes>>,
    Response<tower_webhook::middleware::ResponseBody<Full<Bytes>>>,
    Infallible,
>;

fn stack<St: IdempotencyStore>(layer: WebhookLayer<GitHub, St>, handled: Arc<AtomicUsize>) -> Svc {
    let svc = ServiceBuilder::new().layer(layer).service(service_fn(
        move |_req: Request<Full<Bytes>>| {
            let handled = Arc::clone(&handled);
            async move {
                handled.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            }
        },
    ));
    tower::util::BoxCloneService::new(svc)
}

async fn status(svc: &Svc, req: Request<Full<Bytes>>) -> (StatusCode, HeaderMap) {
    let res = svc.clone().oneshot(req).await.unwrap();
    (res.status(), res.headers().clone())
}

#[tokio::test]
async fn burst_is_accepted_then_429_with_rounded_up_retry_after_then_accepted_again() {
    let clock = ManualClock::new();
    let layer = WebhookLayer::builder(github())
        .without_dedup()
        .pre_auth_limit(RateLimit::per_minute(2).unwrap())
        .rate_limit_clock(clock.clone())
        .build();
    let handled = Arc::new(AtomicUsize::new(0));
    let svc = stack(layer, Arc::clone(&handled));
    let body = br#"{"ref":"main"}"#;
    let from = |id: &str| request("192.0.2.1:4000", signed(id, body), body);

    assert_eq!(status(&svc, from("d-1")).await.0, StatusCode::OK);
    assert_eq!(status(&svc, from("d-2")).await.0, StatusCode::OK);
    let (st, h) = status(&svc, from("d-3")).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "30");

    clock.advance(Duration::from_millis(29_001));
    let (st, h) = status(&svc, from("d-3")).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "1", "999 ms round up to one second");

    clock.advance(Duration::from_millis(999));
    assert_eq!(status(&svc, from("d-3")).await.0, StatusCode::OK);
    assert_eq!(handled.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn different_client_addresses_are_limited_independently() {
    let clock = ManualClock::new();
    let layer = WebhookLayer::builder(github())
        .pre_auth_limit(RateLimit::per_hour(1).unwrap())
        .rate_limit_clock(clock)
        .build();
    let svc = stack(layer, Arc::new(AtomicUsize::new(0)));
    let unsigned = |peer: &str| request(peer, HeaderMap::new(), b"{}");

    assert_eq!(
        status(&svc, unsigned("192.0.2.1:1")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&svc, unsigned("192.0.2.1:2")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&svc, unsigned("192.0.2.2:1")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&svc, unsigned("192.0.2.2:1")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

fn forwarded(peer: &str, xff: &str) -> Request<Full<Bytes>> {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", xff.parse().expect("a header value"));
    request(peer, h, b"{}")
}

#[tokio::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let layer = WebhookLayer::builder(github())
        .pre_auth_limit(RateLimit::per_hour(1).unwrap())
        .trusted_proxies(TrustedProxies::new(["10.0.0.0/8"]).unwrap())
        .rate_limit_clock(ManualClock::new())
        .build();
    let svc = stack(layer, Arc::new(AtomicUsize::new(0)));
    // Not a trusted proxy: each fresh X-Forwarded-For buys nothing.
    let first = status(&svc, forwarded("198.51.100.9:1", "203.0.113.1"))
        .await
        .0;
    assert_eq!(first, StatusCode::UNAUTHORIZED);
    let second = status(&svc, forwarded("198.51.100.9:1", "203.0.113.2"))
        .await
        .0;
    assert_eq!(second, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_names_the_client() {
    let layer = WebhookLayer::builder(github())
        .pre_auth_limit(RateLimit::per_hour(1).unwrap())
        .trusted_proxies(TrustedProxies::new(["10.0.0.0/8"]).unwrap())
        .rate_limit_clock(ManualClock::new())
        .build();
    let svc = stack(layer, Arc::new(AtomicUsize::new(0)));
    let proxy = "10.1.1.1:443";
    assert_eq!(
        status(&svc, forwarded(proxy, "203.0.113.1")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // another client behind the same proxy has its own budget
    assert_eq!(
        status(&svc, forwarded(proxy, "203.0.113.2")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // the first client again, even via another hop of the proxy tier
    let again = status(&svc, forwarded(proxy, "6.6.6.6, 203.0.113.1, 10.2.2.2"))
        .await
        .0;
    assert_eq!(again, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn post_auth_limit_counts_only_verified_deliveries_and_runs_before_the_claim() {
    let clock = ManualClock::new();
    let layer = WebhookLayer::builder(github())
        .post_auth_limit(RateLimit::per_hour(1).unwrap())
        .rate_limit_clock(clock.clone())
        .build();
    let handled = Arc::new(AtomicUsize::new(0));
    let svc = stack(layer.clone(), Arc::clone(&handled));
    let body = br#"{"ref":"main"}"#;
    let peer = "192.0.2.1:1";

    // forged: refused by verification, not counted
    let mut forged = signed("d-0", body);
    forged.insert(
        "x-hub-signature-256",
        format!("sha256={}", "0".repeat(64)).parse().unwrap(),
    );
    assert_eq!(
        status(&svc, request(peer, forged, body)).await.0,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        status(&svc, request(peer, signed("d-1", body), body))
            .await
            .0,
        StatusCode::OK
    );
    // other content: GitHub deliveries are also de-duplicated by content
    let body2 = br#"{"ref":"dev"}"#;
    let (st, h) = status(&svc, request(peer, signed("d-2", body2), body2)).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "3600");
    assert_eq!(layer.post_auth_limiter().unwrap().len(), 1);

    // d-2 was refused before its claim: once the limit allows, it is
    // handled, not acknowledged as a duplicate
    clock.advance(Duration::from_secs(3600));
    let (st, h) = status(&svc, request(peer, signed("d-2", body2), body2)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h.get(tower_webhook::middleware::DUPLICATE_HEADER).is_none());
    assert_eq!(handled.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn post_auth_key_function_splits_the_budget() {
    let layer = WebhookLayer::builder(github())
        .without_dedup()
        .post_auth_limit(RateLimit::per_hour(1).unwrap())
        .post_auth_key(|_v: &Verified, parts: &Parts| parts.uri.path().to_owned())
        .rate_limit_clock(ManualClock::new())
        .build();
    let svc = stack(layer, Arc::new(AtomicUsize::new(0)));
    let body = br#"{"ref":"main"}"#;
    let to = |path: &str, id: &str| {
        let mut r = request("192.0.2.1:1", signed(id, body), body);
        *r.uri_mut() = path.parse().unwrap();
        r
    };
    assert_eq!(status(&svc, to("/t/a", "1")).await.0, StatusCode::OK);
    assert_eq!(
        status(&svc, to("/t/a", "2")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(status(&svc, to("/t/b", "3")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_fields_describe_both_stages_when_switched_on() {
    let layer = WebhookLayer::builder(github())
        .without_dedup()
        .pre_auth_limit(RateLimit::per_minute(10).unwrap())
        .post_auth_limit(RateLimit::per_hour(2).unwrap())
        .rate_limit_headers(true)
        .rate_limit_clock(ManualClock::new())
        .build();
    let svc = stack(layer, Arc::new(AtomicUsize::new(0)));
    let body = br#"{"ref":"main"}"#;
    let (st, h) = status(&svc, request("192.0.2.1:1", signed("1", body), body)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        h["ratelimit-policy"],
        r#""pre-auth";q=10;w=60, "post-auth";q=2;w=3600"#
    );
    assert_eq!(
        h["ratelimit"],
        r#""pre-auth";r=9;t=6, "post-auth";r=1;t=1800"#
    );

    status(&svc, request("192.0.2.1:1", signed("2", body), body)).await;
    let (st, h) = status(&svc, request("192.0.2.1:1", signed("3", body), body)).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "1800");
    assert_eq!(
        h["ratelimit"],
        r#""pre-auth";r=7;t=18, "post-auth";r=0;t=3600"#
    );

    // off by default
    let plain = WebhookLayer::builder(github())
        .pre_auth_limit(RateLimit::per_minute(10).unwrap())
        .build();
    let svc = stack(plain, Arc::new(AtomicUsize::new(0)));
    let (_, h) = status(&svc, request("192.0.2.1:1", HeaderMap::new(), b"{}")).await;
    assert!(h.get("ratelimit").is_none() && h.get("ratelimit-policy").is_none());
}

#[test]
fn a_million_client_addresses_shrink_back_under_a_small_bound() {
    let clock = ManualClock::new();
    let limiter = PreAuthLimiter::with_clock(
        RateLimit::per_second(5).unwrap(),
        TrustedProxies::none(),
        &clock,
    );
    let headers = HeaderMap::new();
    let mut ext = http::Extensions::new();
    for i in 0..1_000_000u32 {
        let ip = Ipv4Addr::from(0x0a00_0000 + i);
        ext.insert(ClientAddr(SocketAddr::new(IpAddr::V4(ip), 1)));
        limiter.check(&headers, &ext).unwrap();
    }
    assert_eq!(limiter.len(), 1_000_000);

    // one window later, a few clients are still active
    clock.advance(Duration::from_secs(2));
    for i in 0..3u32 {
        ext.insert(ClientAddr(SocketAddr::new(
            Ipv4Addr::from(0xc000_0200 + i).into(),
            1,
        )));
        limiter.check(&headers, &ext).unwrap();
    }
    limiter.shrink();
    assert_eq!(limiter.len(), 3);
}

#[tokio::test]
async fn the_layer_shrinks_its_limiter_on_its_own() {
    let clock = ManualClock::new();
    let layer = WebhookLayer::builder(github())
        .pre_auth_limit(RateLimit::per_second(10).unwrap())
        .rate_limit_housekeeping(Duration::from_millis(20))
        .rate_limit_clock(clock.clone())
        .build();
    let svc = stack(layer.clone(), Arc::new(AtomicUsize::new(0)));
    for i in 0..50u32 {
        let peer = format!("{}:1", Ipv4Addr::from(0x0a00_0000 + i));
        svc.clone()
            .oneshot(request(&peer, HeaderMap::new(), b"{}"))
            .await
            .unwrap();
    }
    let limiter = layer.pre_auth_limiter().unwrap();
    assert_eq!(limiter.len(), 50);
    clock.advance(Duration::from_secs(2));
    // no call to shrink(): the task the layer started does it
    let mut waited = 0;
    while !limiter.is_empty() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(limiter.len(), 0);
}

#[tokio::test]
async fn the_housekeeping_task_ends_when_the_layer_is_dropped() {
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let layer = WebhookLayer::builder(github())
        .pre_auth_limit(RateLimit::per_second(10).unwrap())
        .rate_limit_housekeeping(Duration::from_millis(10))
        .build();
    let svc = stack(layer, Arc::new(AtomicUsize::new(0)));
    assert_eq!(tasks(), 0, "nothing runs before the first request");
    status(&svc, request("192.0.2.1:1", HeaderMap::new(), b"{}")).await;
    status(&svc, request("192.0.2.2:1", HeaderMap::new(), b"{}")).await;
    assert_eq!(tasks(), 1, "one housekeeping task, started on first use");
    drop(svc);
    let mut waited = 0;
    while tasks() > 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(tasks(), 0);
}

#[test]
fn housekeeping_starts_again_in_a_new_runtime() {
    let clock = ManualClock::new();
    let layer = WebhookLayer::builder(github())
        .pre_auth_limit(RateLimit::per_second(10).unwrap())
        .rate_limit_housekeeping(Duration::from_millis(20))
        .rate_limit_clock(clock.clone())
        .build();
    let svc = stack(layer.clone(), Arc::new(AtomicUsize::new(0)));
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    first.block_on(status(
        &svc,
        request("192.0.2.1:1", HeaderMap::new(), b"{}"),
    ));
    drop(first); // takes the housekeeping task with it

    let limiter = layer.pre_auth_limiter().unwrap();
    runtime().block_on(async {
        status(&svc, request("192.0.2.2:1", HeaderMap::new(), b"{}")).await;
        assert_eq!(limiter.len(), 2);
        clock.advance(Duration::from_secs(2));
        let mut waited = 0;
        while !limiter.is_empty() && waited < 100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
    });
    assert_eq!(limiter.len(), 0);
}

/// Counts, per client IP, the requests whose body was polled and the
/// verifier calls.
#[derive(Default)]
struct Probe {
    bodies_read: [AtomicUsize; 2],
    verified: [AtomicUsize; 2],
    handled: [AtomicUsize; 2],
}

fn slot(ip: IpAddr) -> usize {
    usize::from(ip == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
}

fn peer_slot(ext: &http::Extensions) -> usize {
    let peer = ext
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .expect("the server gives ConnectInfo")
        .0;
    slot(peer.ip())
}

/// A real verifier that counts its calls per client.
struct SlotCounting {
    inner: GitHub,
    probe: Arc<Probe>,
}

impl Verifier for SlotCounting {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }
    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        self.probe.verified[peer_slot(&parts.extensions)].fetch_add(1, Ordering::SeqCst);
        self.inner.verify(parts, body, now)
    }
}

#[tokio::test]
async fn a_flood_is_refused_unread_and_unverified_while_another_client_is_served() {
    let probe = Arc::new(Probe::default());
    let layer = WebhookLayer::builder(SlotCounting {
        inner: github(),
        probe: Arc::clone(&probe),
    })
    .pre_auth_limit(RateLimit::per_hour(10).unwrap())
    .build();

    let p = Arc::clone(&probe);
    let handler = move |req: axum::extract::Request| {
        let p = Arc::clone(&p);
        async move {
            p.handled[peer_slot(req.extensions())].fetch_add(1, Ordering::SeqCst);
            StatusCode::OK
        }
    };
    let p = Arc::clone(&probe);
    // Outside the webhook layer: marks a request's body as read when its
    // first frame is polled.
    let watch_body = move |req: axum::extract::Request| {
        let p = Arc::clone(&p);
        async move {
            let i = peer_slot(req.extensions());
            let (parts, body) = req.into_parts();
            let first = AtomicBool::new(true);
            let body = body.map_frame(move |f| {
                if first.swap(false, Ordering::SeqCst) {
                    p.bodies_read[i].fetch_add(1, Ordering::SeqCst);
                }
                f
            });
            axum::extract::Request::from_parts(parts, axum::body::Body::new(body))
        }
    };
    let app = axum::Router::new()
        .route("/hooks/github", axum::routing::post(handler))
        .layer(layer)
        .layer(axum::middleware::map_request(watch_body));
    let addr = common::serve(app).await;

    let flooder = common::client_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
    let sender = common::client_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    let mut unsigned = HeaderMap::new();
    unsigned.insert("content-type", "application/json".parse().unwrap());
    let body = br#"{"ref":"main","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

    let (mut unauthorized, mut limited, mut delivered) = (0, 0, 0);
    for i in 0..200 {
        let r = common::send_with(
            &flooder,
            addr,
            Method::POST,
            "/hooks/github",
            &unsigned,
            &body[..],
        )
        .await;
        match r.status {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(r.headers["retry-after"], "360");
                limited += 1;
            }
            other => panic!("flood request {i}: {other}"),
        }
        if i % 20 == 0 {
            // distinct content: GitHub deliveries are de-duplicated by it
            let body = format!(r#"{{"ref":"main","n":{i}}}"#);
            let h = signed(&format!("d-{i}"), body.as_bytes());
            let r = common::send_with(&sender, addr, Method::POST, "/hooks/github", &h, body).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "signed delivery {i}: {}",
                r.text()
            );
            delivered += 1;
        }
    }
    assert_eq!((unauthorized, limited, delivered), (10, 190, 10));
    // the flood: only its first 10 (the burst) were read and verified
    assert_eq!(probe.bodies_read[0].load(Ordering::SeqCst), 10);
    assert_eq!(probe.verified[0].load(Ordering::SeqCst), 10);
    assert_eq!(probe.handled[0].load(Ordering::SeqCst), 0);
    // the other client: all read, verified, handled
    assert_eq!(probe.bodies_read[1].load(Ordering::SeqCst), 10);
    assert_eq!(probe.verified[1].load(Ordering::SeqCst), 10);
    assert_eq!(probe.handled[1].load(Ordering::SeqCst), 10);
}
