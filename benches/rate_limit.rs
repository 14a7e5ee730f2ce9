//! Cost of the rate-limit stages: one pre-authentication check, one
//! post-authentication check, and, through the whole `WebhookLayer` stack
//! (tower `oneshot`), a flood request refused by the pre-authentication
//! limit against a verified 1 KiB Standard Webhooks delivery.
//!
//! ```text
//! cargo bench --bench rate_limit -- --warm-up-time 1 --measurement-time 3
//! ```
//! After criterion's figures it prints the medians of its own run and the
//! ratio refused / accepted (target: below 0.25).
#![allow(missing_docs, clippy::unwrap_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::client::{ClientAddr, TrustedProxies};
use tower_webhook::providers::StandardWebhooks;
use tower_webhook::rate_limit::{PostAuthLimiter, PreAuthLimiter, RateLimit};
use tower_webhook::{Secret, Verified, WebhookLayer, testing};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn ext(addr: &str) -> http::Extensions {
    let mut e = http::Extensions::new();
    e.insert(ClientAddr(addr.parse::<SocketAddr>().unwrap()));
    e
}

/// A limit nobody reaches: the accepted path.
fn generous() -> RateLimit {
    RateLimit::per_second(1_000_000_000).unwrap()
}

fn checks(c: &mut Criterion) {
    let pre = PreAuthLimiter::new(generous(), TrustedProxies::none());
    let (h, e) = (HeaderMap::new(), ext("203.0.113.7:40000"));
    c.bench_function("pre_auth_check", |b| {
        b.iter(|| black_box(pre.check(black_box(&h), black_box(&e))))
    });

    let tight = PreAuthLimiter::new(RateLimit::per_hour(1).unwrap(), TrustedProxies::none());
    let _ = tight.check(&h, &e);
    c.bench_function("pre_auth_check_refused", |b| {
        b.iter(|| black_box(tight.check(black_box(&h), black_box(&e))))
    });

    let post = PostAuthLimiter::new(generous(), "hooks");
    let verified = Verified::new("standard-webhooks").with_event_id("msg_1", true);
    let parts = testing::parts("/hooks", HeaderMap::new());
    c.bench_function("post_auth_check", |b| {
        b.iter(|| black_box(post.check(black_box(&verified), black_box(&parts))))
    });
}

type Svc = tower::util::BoxCloneService<
    Request<Full<Bytes>>,
    Response<tower_webhook::middleware::ResponseBody<Full<Bytes>>>,
    Infallible,
>;

fn stack(limit: RateLimit) -> Svc {
    let verifier = StandardWebhooks::new(Secret::standard_webhooks(SECRET).unwrap());
    let layer = WebhookLayer::builder(verifier)
        .pre_auth_limit(limit)
        .build();
    let svc = ServiceBuilder::new().layer(layer).service(service_fn(
        |_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        },
    ));
    tower::util::BoxCloneService::new(svc)
}

/// 1 KiB of JSON.
fn body() -> Bytes {
    let pad = "x".repeat(1024 - 40);
    let b = format!(r#"{{"type":"invoice.paid","pad":"{pad}"}}"#);
    Bytes::from(b.into_bytes())
}

/// A fresh signed delivery (unique id, so de-duplication lets it through).
fn delivery(n: u64, body: &Bytes) -> Request<Full<Bytes>> {
    let ts = testing::unix(SystemTime::now());
    let headers = testing::standard_webhooks(SECRET, &format!("msg_{n}"), ts, body);
    let mut req = Request::post("/hooks/std")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    req.headers_mut().extend(headers);
    req.extensions_mut()
        .insert(ClientAddr("198.51.100.1:40000".parse().unwrap()));
    req
}

/// An unsigned request from the flooding client.
fn flood(body: &Bytes) -> Request<Full<Bytes>> {
    let mut req = Request::post("/hooks/std")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    req.extensions_mut()
        .insert(ClientAddr("203.0.113.9:40000".parse().unwrap()));
    req
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    refusing: Svc,
    accepting: Svc,
    body: Bytes,
}

impl Fixture {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let refusing = stack(RateLimit::per_hour(1).unwrap());
        let accepting = stack(generous());
        let body = body();
        let f = Self {
            rt,
            refusing,
            accepting,
            body,
        };
        // use up the flooder's burst, check both paths once
        assert_eq!(
            f.call(&f.refusing, flood(&f.body)),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            f.call(&f.refusing, flood(&f.body)),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(f.call(&f.accepting, delivery(0, &f.body)), StatusCode::OK);
        f
    }

    fn call(&self, svc: &Svc, req: Request<Full<Bytes>>) -> StatusCode {
        self.rt
            .block_on(svc.clone().oneshot(req))
            .map(|r| r.status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

fn through_the_stack(c: &mut Criterion, f: &Fixture) {
    c.bench_function("stack_flood_refused", |b| {
        b.iter_batched(
            || flood(&f.body),
            |req| f.call(&f.refusing, req),
            BatchSize::SmallInput,
        )
    });
    let mut n = 1_000_000;
    c.bench_function("stack_verified_1kib_accepted", |b| {
        b.iter_batched(
            || {
                n += 1;
                delivery(n, &f.body)
            },
            |req| f.call(&f.accepting, req),
            BatchSize::SmallInput,
        )
    });
}

/// Median ns per call over `samples` batches of `per` pre-built requests.
fn median_ns(f: &Fixture, svc: &Svc, mut make: impl FnMut() -> Request<Full<Bytes>>) -> f64 {
    let (samples, per) = (31, 200);
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let reqs: Vec<_> = (0..per).map(|_| make()).collect();
        let start = Instant::now();
        for req in reqs {
            black_box(f.call(svc, req));
        }
        times.push(start.elapsed().as_nanos() as f64 / per as f64);
    }
    times.sort_by(f64::total_cmp);
    times[samples / 2]
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    checks(&mut c);
    let f = Fixture::new();
    through_the_stack(&mut c, &f);
    c.final_summary();

    // Only under `cargo bench`, not when `cargo test --benches` runs each
    // benchmark once.
    if std::env::args().any(|a| a == "--bench") {
        let refused = median_ns(&f, &f.refusing, || flood(&f.body));
        let mut n = 2_000_000;
        let accepted = median_ns(&f, &f.accepting, || {
            n += 1;
            delivery(n, &f.body)
        });
        let ratio = refused / accepted;
        println!(
            "through the stack (median): refused flood request {refused:.0} ns, \
             verified 1 KiB delivery {accepted:.0} ns, ratio {ratio:.3} (target < 0.25)"
        );
    }
}
