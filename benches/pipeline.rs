//! The whole `WebhookLayer` stack in process (no sockets), through
//! `tower::ServiceExt::oneshot`, against a bare service that only collects
//! the body, and raw HMAC-SHA256 of the same content, in one run.
//!
//! ```text
//! cargo bench --bench pipeline -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Stack: pre-authentication limit (generous: never refuses here) + Stripe
//! verification + claim + complete in the default in-memory store, filled
//! to its capacity (100 000 ids) before anything is timed, so that each
//! new id evicts the oldest, as on a server that has run a while. Cases:
//!
//! - `bare`: a service that collects the 1 KiB body and answers 200;
//! - `layer_collect`: the layer around that same bare service (verify +
//!   claim + complete, no JSON parse);
//! - `layer_typed`: the layer around a service that also parses the body
//!   into a typed event (what a handler does);
//! - `duplicate`: a delivery of an id already handled (verify + claim, 200);
//! - `rate_limited`: a client over its pre-authentication limit (429);
//! - `raw_hmac`: HMAC-SHA256 of the signed content (`t.` + body), the floor;
//! - `standard_collect` and `standard_raw_hmac`: the same as `layer_collect`
//!   and `raw_hmac` for Standard Webhooks, whose event id is a signed header:
//!   verify + claim + complete with no JSON read at all (Stripe's id is in
//!   the body, so its path scans the body for it).
//!
//! Each fresh delivery carries a new event id, signed before the timed part
//! (`iter_batched`). After the timings, the heap allocations of one delivery
//! are counted with a counting global allocator and printed.
//!
//! Two modes without criterion: `PIPELINE_PROFILE=<n>` (n deliveries
//! through one stack, for `perf record`) and `PIPELINE_INTERLEAVED=<rounds>`
//! (every case timed round by round, one batch right after the other, and
//! each round's ratios: on a machine whose speed changes by phases, these
//! hold where criterion's, measured seconds apart, do not):
//!
//! ```text
//! cargo bench --bench pipeline --no-run
//! PIPELINE_INTERLEAVED=2000 target/release/deps/pipeline-<hash>
//! ```

// `criterion_group!` makes an undocumented public fn.
#![allow(missing_docs)]

#[path = "support/deliveries.rs"]
mod deliveries;
#[path = "support/floor.rs"]
mod floor;
#[path = "support/report.rs"]
mod report;

use std::alloc::System;
use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use futures_util::FutureExt;
use hmac::{Hmac, KeyInit};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt;
use tower_layer::Layer;
use tower_webhook::providers::{StandardWebhooks, Stripe};
use tower_webhook::rate_limit::RateLimit;
use tower_webhook::store::{Claim, EventKey, IdempotencyStore};
use tower_webhook::{MemoryStore, Secret, Verifier, WebhookLayer, testing};

use deliveries::{collect, delivery, event};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SECRET: &str = "whsec_pipeline_bench_secret";
const STD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: serde_json::Value,
}

/// A Stripe delivery of `body`, signed at `at`.
fn request(body: &str, at: SystemTime, peer: SocketAddr) -> Request<Full<Bytes>> {
    deliveries::stripe(SECRET, body, at, Some(peer))
}

/// The same 1 KiB body as a Standard Webhooks delivery with id `msg_<n>`.
fn standard_request(n: u64, at: SystemTime, peer: SocketAddr) -> Request<Full<Bytes>> {
    let body = event(n);
    let headers = testing::standard_webhooks(
        STD_SECRET,
        &standard_id(n),
        testing::unix(at),
        body.as_bytes(),
    );
    delivery("/webhooks/standard", Bytes::from(body), headers, Some(peer))
}

/// The event id of [`standard_request`]`(n)`.
fn standard_id(n: u64) -> String {
    format!("msg_{n:020}")
}

type Resp = Response<Full<Bytes>>;

async fn typed(req: Request<Full<Bytes>>) -> Result<Resp, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let event: Result<Event, _> = serde_json::from_slice(&body);
    let status = if event.is_ok() { 200 } else { 422 };
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = http::StatusCode::from_u16(status).expect("status");
    Ok(res)
}

/// The default store (100 000 ids), already full of completed ids, as a
/// server's is after its first 110 000 deliveries: each new id then evicts
/// the oldest, the steady state (the last 10 000 evicted too, so the store
/// has settled into it). A new store would time its growth instead, and a
/// run shorter than 100 000 deliveries would never leave it.
fn full_store() -> MemoryStore {
    const LEASE: Duration = Duration::from_secs(60);
    let store = MemoryStore::new();
    for i in 0..110_000u32 {
        let key = EventKey::new("fill", "fill", itoa::Buffer::new().format(i));
        let Some(Ok(Claim::Fresh(token))) = store.claim(&key, LEASE).now_or_never() else {
            panic!("fill: a new id is fresh, at once");
        };
        let done = store.complete(&key, token, LEASE).now_or_never();
        assert!(matches!(done, Some(Ok(true))), "fill");
    }
    assert_eq!(store.entry_count(), 100_000);
    store
}

/// The stack under test for `verifier`: the given pre-authentication
/// limit, a full default store, everything else the layer's defaults.
fn stack_for<V: Verifier>(verifier: V, pre_auth: RateLimit) -> WebhookLayer<V, MemoryStore> {
    WebhookLayer::builder(verifier)
        .with_store(full_store())
        .pre_auth_limit(pre_auth)
        .build()
}

fn layer(pre_auth: RateLimit) -> WebhookLayer<Stripe, MemoryStore> {
    stack_for(Stripe::new(Secret::text(SECRET).expect("secret")), pre_auth)
}

fn standard_secret() -> Secret {
    Secret::standard_webhooks(STD_SECRET).expect("secret")
}

type Stack<S, V> = tower_webhook::WebhookService<S, V, MemoryStore>;

/// The stacks every mode runs, each with its own store, around the
/// collecting service `C` or the typed one `T`.
struct Stacks<C, T> {
    /// Stripe: verify + claim + complete (`layer_collect`).
    stripe: Stack<C, Stripe>,
    /// The same around a typed parse of the body (`layer_typed`).
    typed: Stack<T, Stripe>,
    /// Standard Webhooks, whose id is a signed header (`standard_collect`).
    standard: Stack<C, StandardWebhooks>,
    /// One request a minute: after the first, every one is refused
    /// (`rate_limited`).
    strict: Stack<C, Stripe>,
}

impl<C: Clone, T> Stacks<C, T> {
    fn new(collect: C, typed: T, generous: RateLimit) -> Self {
        Self {
            stripe: layer(generous).layer(collect.clone()),
            typed: layer(generous).layer(typed),
            standard: stack_for(StandardWebhooks::new(standard_secret()), generous)
                .layer(collect.clone()),
            strict: layer(RateLimit::per_minute(1).expect("limit")).layer(collect),
        }
    }
}

/// The floors: raw HMAC-SHA256 of what each scheme signs, over one 1 KiB
/// body, keyed once (as the verifiers are).
struct Floors {
    stripe: Hmac<Sha256>,
    standard: Hmac<Sha256>,
    ts: String,
    body: String,
    std_id: String,
}

impl Floors {
    fn new(at: SystemTime) -> Self {
        Self {
            stripe: Hmac::new_from_slice(SECRET.as_bytes()).expect("key"),
            standard: Hmac::new_from_slice(standard_secret().expose()).expect("key"),
            ts: testing::unix(at).to_string(),
            body: event(9),
            std_id: standard_id(9),
        }
    }

    /// Stripe's signed content: `t.body`.
    fn stripe(&self) -> [u8; 32] {
        let body = black_box(self.body.as_bytes());
        floor::hmac_sha256(&self.stripe, &[self.ts.as_bytes(), b".", body])
    }

    /// Standard Webhooks' signed content: `id.ts.body`.
    fn standard(&self) -> [u8; 32] {
        let body = black_box(self.body.as_bytes());
        let parts = [self.std_id.as_bytes(), b".", self.ts.as_bytes(), b".", body];
        floor::hmac_sha256(&self.standard, &parts)
    }
}

/// What every mode starts with: a current-thread runtime, the signing
/// time, the client's address and a pre-authentication limit that never
/// refuses here.
struct Setup {
    rt: tokio::runtime::Runtime,
    at: SystemTime,
    peer: SocketAddr,
    generous: RateLimit,
}

impl Setup {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime"),
            at: SystemTime::now(),
            peer: "10.1.2.3:4000".parse().expect("addr"),
            generous: RateLimit::per_second(1_000_000)
                .and_then(|l| l.burst(1_000_000))
                .expect("limit"),
        }
    }
}

/// Heap allocations (count, bytes) of `n` runs of `f`, per run.
fn allocations(n: u64, mut f: impl FnMut(u64)) -> (f64, f64) {
    let region = Region::new(GLOBAL);
    for i in 0..n {
        f(i);
    }
    let s = region.change();
    (
        s.allocations as f64 / n as f64,
        s.bytes_allocated as f64 / n as f64,
    )
}

fn bench(c: &mut Criterion) {
    let Setup {
        rt,
        at,
        peer,
        generous,
    } = Setup::new();
    let stacks = Stacks::new(
        tower::service_fn(collect),
        tower::service_fn(typed),
        generous,
    );
    let floors = Floors::new(at);
    let bare = tower::service_fn(collect);

    // Sanity: each stack answers what it should.
    let probe = |svc: &mut dyn FnMut(Request<Full<Bytes>>) -> u16, n: u64| {
        svc(request(&event(n), at, peer))
    };
    let mut run_collect = |req| {
        rt.block_on(stacks.stripe.clone().oneshot(req))
            .expect("infallible")
            .status()
            .as_u16()
    };
    assert_eq!(probe(&mut run_collect, u64::MAX), 200);
    assert_eq!(probe(&mut run_collect, u64::MAX), 200, "duplicate acked");

    let mut n = 0u64;
    let mut g = c.benchmark_group("pipeline");
    g.bench_function("bare", |b| {
        b.iter_batched(
            || {
                n += 1;
                request(&event(n), at, peer)
            },
            |req| rt.block_on(bare.oneshot(req)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("layer_collect", |b| {
        b.iter_batched(
            || {
                n += 1;
                request(&event(n), at, peer)
            },
            |req| {
                let res = rt.block_on(stacks.stripe.clone().oneshot(req));
                debug_assert!(res.as_ref().is_ok_and(|r| r.status() == 200));
                res
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("layer_typed", |b| {
        b.iter_batched(
            || {
                n += 1;
                request(&event(n), at, peer)
            },
            |req| rt.block_on(stacks.typed.clone().oneshot(req)),
            BatchSize::SmallInput,
        )
    });
    let dup = event(7);
    g.bench_function("duplicate", |b| {
        b.iter_batched(
            || request(&dup, at, peer),
            |req| rt.block_on(stacks.stripe.clone().oneshot(req)),
            BatchSize::SmallInput,
        )
    });
    let flood = event(8);
    g.bench_function("rate_limited", |b| {
        b.iter_batched(
            || request(&flood, at, peer),
            |req| rt.block_on(stacks.strict.clone().oneshot(req)),
            BatchSize::SmallInput,
        )
    });
    assert_eq!(
        rt.block_on(
            stacks
                .standard
                .clone()
                .oneshot(standard_request(u64::MAX, at, peer))
        )
        .expect("infallible")
        .status(),
        200
    );
    g.bench_function("standard_collect", |b| {
        b.iter_batched(
            || {
                n += 1;
                standard_request(n, at, peer)
            },
            |req| {
                let res = rt.block_on(stacks.standard.clone().oneshot(req));
                debug_assert!(res.as_ref().is_ok_and(|r| r.status() == 200));
                res
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("standard_raw_hmac", |b| {
        b.iter(|| black_box(floors.standard()))
    });
    g.bench_function("raw_hmac", |b| b.iter(|| black_box(floors.stripe())));
    g.finish();

    // Statuses of the refusals, checked once outside the timings (the
    // first delivery of `dup` is accepted when the run skipped its case).
    drop(rt.block_on(stacks.stripe.clone().oneshot(request(&dup, at, peer))));
    let dup_status = rt
        .block_on(stacks.stripe.clone().oneshot(request(&dup, at, peer)))
        .expect("infallible");
    assert_eq!(dup_status.status(), 200);
    assert!(dup_status.headers().contains_key("webhook-duplicate"));
    // (the first request of a run filtered to other cases is allowed)
    drop(rt.block_on(stacks.strict.clone().oneshot(request(&flood, at, peer))));
    let limited = rt
        .block_on(stacks.strict.clone().oneshot(request(&flood, at, peer)))
        .expect("infallible");
    assert_eq!(limited.status(), 429);

    // Allocations: requests are built before the counted region.
    const N: u64 = 1000;
    let count = |svc: &mut dyn FnMut(Request<Full<Bytes>>), reqs: Vec<Request<Full<Bytes>>>| {
        let mut reqs = reqs.into_iter();
        allocations(N, |_| {
            if let Some(r) = reqs.next() {
                svc(r)
            }
        })
    };
    let fresh = |base: u64| -> Vec<_> {
        (0..N)
            .map(|i| request(&event(base + i), at, peer))
            .collect()
    };
    let same = |body: &str| -> Vec<_> { (0..N).map(|_| request(body, at, peer)).collect() };
    let a_bare = count(
        &mut |r| drop(rt.block_on(bare.oneshot(r))),
        fresh(10_000_000),
    );
    let a_collect = count(
        &mut |r| drop(rt.block_on(stacks.stripe.clone().oneshot(r))),
        fresh(20_000_000),
    );
    let a_typed = count(
        &mut |r| drop(rt.block_on(stacks.typed.clone().oneshot(r))),
        fresh(30_000_000),
    );
    let a_dup = count(
        &mut |r| drop(rt.block_on(stacks.stripe.clone().oneshot(r))),
        same(&dup),
    );
    let a_limited = count(
        &mut |r| drop(rt.block_on(stacks.strict.clone().oneshot(r))),
        same(&flood),
    );

    println!("\nAllocations per delivery (mean of {N}; request built beforehand):");
    println!("{:<28} {:>8} {:>10}", "case", "allocs", "bytes");
    for (name, (a, b)) in [
        ("bare (collects the body)", a_bare),
        ("layer_collect", a_collect),
        ("layer_typed", a_typed),
        ("duplicate", a_dup),
        ("rate_limited", a_limited),
    ] {
        println!("{name:<28} {a:>8.1} {b:>10.0}");
    }
    let beyond = a_collect.0 - a_bare.0;
    println!(
        "layer_collect - bare: {beyond:.1} allocations per delivery (target ≤ 8: {})",
        if beyond <= 8.0 { "met" } else { "NOT met" }
    );
}

/// Deliveries timed at a time in the profile and interleaved modes.
const BATCH: u64 = 64;

/// Per-delivery time of a batch that took `spent`.
fn per_delivery(spent: std::time::Duration) -> f64 {
    spent.as_secs_f64() * 1e9 / BATCH as f64
}

/// Per-delivery time of `reqs` through `svc`, one after the other; each
/// answer must have status `expect`.
fn batch<S, B>(
    rt: &tokio::runtime::Runtime,
    svc: &S,
    reqs: Vec<Request<Full<Bytes>>>,
    expect: u16,
) -> f64
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
{
    let start = std::time::Instant::now();
    for req in reqs {
        let res = rt.block_on(svc.clone().oneshot(req)).expect("infallible");
        assert_eq!(res.status(), expect);
        drop(black_box(res));
    }
    per_delivery(start.elapsed())
}

/// `PIPELINE_PROFILE=<n>`: no criterion; runs `n` fresh deliveries through
/// the `layer_collect` stack (`standard_collect` with
/// `PIPELINE_PROFILE_STACK=standard`, the bare service with `=bare`), for
/// `perf record` or callgrind. They are built
/// [`BATCH`] at a time before they run, as in criterion's batches, so the
/// requests are in cache as they are there (built all at once, the first
/// touch of each request head was a cache miss, and looked like the cost
/// of whatever touched it first); in the profile, the set-up is its own
/// call stack.
fn profile(n: u64) {
    let Setup {
        rt,
        at,
        peer,
        generous,
    } = Setup::new();
    let stacks = Stacks::new(
        tower::service_fn(collect),
        tower::service_fn(typed),
        generous,
    );
    let stack = std::env::var("PIPELINE_PROFILE_STACK").unwrap_or_default();
    eprintln!(
        "profile: {n} {} deliveries, built {BATCH} at a time (as criterion's batches: in cache)",
        match stack.as_str() {
            "standard" => "Standard Webhooks",
            "bare" => "bare (Stripe requests)",
            _ => "Stripe",
        }
    );
    let mut per_delivery_ns = 0.0;
    for first in (0..n).step_by(BATCH as usize) {
        let ids = first..n.min(first + BATCH);
        // The bare service gets Stripe's requests.
        let reqs = match stack.as_str() {
            "standard" => ids.map(|i| standard_request(i, at, peer)).collect(),
            _ => ids.map(|i| request(&event(i), at, peer)).collect(),
        };
        per_delivery_ns += match stack.as_str() {
            "standard" => batch(&rt, &stacks.standard, reqs, 200),
            "bare" => batch(&rt, &tower::service_fn(collect), reqs, 200),
            _ => batch(&rt, &stacks.stripe, reqs, 200),
        } * BATCH as f64;
    }
    eprintln!(
        "profile: {:.2} µs per delivery (set-up excluded)",
        per_delivery_ns / 1e3 / n as f64
    );
}

/// `PIPELINE_INTERLEAVED=<rounds>`: no criterion; the pipeline ratios
/// measured round by round. Each round times a batch of [`BATCH`] fresh
/// deliveries through each stack, the bare service, the raw HMAC, and the
/// refusal, one batch right after the other (in an order that rotates),
/// and computes the round's ratios; the medians and quartiles over the
/// rounds are printed. A machine whose speed changes by phases (another
/// tenant on the same cores) moves all the batches of a round alike, so
/// the ratios hold where criterion's, measured seconds apart, do not.
fn interleaved(rounds: usize) {
    use std::time::Instant;
    let Setup {
        rt,
        at,
        peer,
        generous,
    } = Setup::new();
    let stacks = Stacks::new(
        tower::service_fn(collect),
        tower::service_fn(typed),
        generous,
    );
    let floors = Floors::new(at);
    let bare = tower::service_fn(collect);
    let flood = event(8);
    // The first request of the flood is within the limit.
    drop(rt.block_on(stacks.strict.clone().oneshot(request(&flood, at, peer))));

    let mut n = 0u64;
    let mut fresh = |build: &dyn Fn(u64) -> Request<Full<Bytes>>| -> Vec<_> {
        (0..BATCH)
            .map(|_| {
                n += 1;
                build(n)
            })
            .collect()
    };
    let raw_batch = |floor: &dyn Fn() -> [u8; 32]| {
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(floor());
        }
        per_delivery(start.elapsed())
    };
    #[derive(Default)]
    struct Round {
        bare: f64,
        stripe: f64,
        typed: f64,
        standard: f64,
        raw: f64,
        std_raw: f64,
        limited: f64,
    }
    const CASES: usize = 7;
    let mut all = Vec::with_capacity(rounds);
    eprintln!("interleaved: {rounds} rounds of {BATCH} deliveries per case");
    for r in 0..rounds {
        let mut round = Round::default();
        let mut reqs_bare = fresh(&|i| request(&event(i), at, peer));
        let mut reqs_stripe = fresh(&|i| request(&event(i), at, peer));
        let mut reqs_typed = fresh(&|i| request(&event(i), at, peer));
        let mut reqs_std = fresh(&|i| standard_request(i, at, peer));
        let mut reqs_flood: Vec<_> = (0..BATCH).map(|_| request(&flood, at, peer)).collect();
        let take = std::mem::take::<Vec<_>>;
        // Rotate the order: no case is always first or last.
        for j in 0..CASES {
            match (r + j) % CASES {
                0 => round.bare = batch(&rt, &bare, take(&mut reqs_bare), 200),
                1 => round.stripe = batch(&rt, &stacks.stripe, take(&mut reqs_stripe), 200),
                2 => round.typed = batch(&rt, &stacks.typed, take(&mut reqs_typed), 200),
                3 => round.standard = batch(&rt, &stacks.standard, take(&mut reqs_std), 200),
                4 => round.limited = batch(&rt, &stacks.strict, take(&mut reqs_flood), 429),
                5 => round.raw = raw_batch(&|| floors.stripe()),
                _ => round.std_raw = raw_batch(&|| floors.standard()),
            }
        }
        all.push(round);
    }
    let quartiles = |mut v: Vec<f64>| -> (f64, f64, f64) {
        v.sort_by(f64::total_cmp);
        let q = |quarters: usize| v.get((v.len() - 1) * quarters / 4).copied().unwrap_or(0.0);
        (q(1), q(2), q(3))
    };
    let show = |label: &str, v: Vec<f64>, unit: &str, target: Option<(f64, bool)>| {
        let (q1, m, q3) = quartiles(v);
        let verdict = match target {
            Some((t, at_most)) => {
                let met = if at_most { m <= t } else { m >= t };
                let sign = if at_most { "≤" } else { "≥" };
                format!(
                    "  (target {sign} {t:.2}: {})",
                    if met { "met" } else { "NOT met" }
                )
            }
            None => String::new(),
        };
        println!("{label:<58} {m:>8.3}{unit} [{q1:.3} – {q3:.3}]{verdict}");
    };
    println!("\nPer delivery, median [quartiles] over {rounds} rounds:");
    show("bare", all.iter().map(|r| r.bare).collect(), " ns", None);
    show(
        "layer_collect (Stripe)",
        all.iter().map(|r| r.stripe).collect(),
        " ns",
        None,
    );
    show(
        "layer_typed",
        all.iter().map(|r| r.typed).collect(),
        " ns",
        None,
    );
    show(
        "standard_collect",
        all.iter().map(|r| r.standard).collect(),
        " ns",
        None,
    );
    show(
        "rate_limited",
        all.iter().map(|r| r.limited).collect(),
        " ns",
        None,
    );
    show("raw_hmac", all.iter().map(|r| r.raw).collect(), " ns", None);
    show(
        "standard_raw_hmac",
        all.iter().map(|r| r.std_raw).collect(),
        " ns",
        None,
    );
    println!("\nRatios, each round's own, median [quartiles]:");
    show(
        "pipeline cost, Stripe (layer_collect - bare) / raw_hmac",
        all.iter().map(|r| (r.stripe - r.bare) / r.raw).collect(),
        "",
        Some((2.5, true)),
    );
    show(
        "pipeline cost, Standard (standard_collect - bare) / its raw",
        all.iter()
            .map(|r| (r.standard - r.bare) / r.std_raw)
            .collect(),
        "",
        Some((2.5, true)),
    );
    show(
        "rate_limited / layer_typed",
        all.iter().map(|r| r.limited / r.typed).collect(),
        "",
        Some((0.25, true)),
    );
}

fn main() {
    if let Some(n) = std::env::var("PIPELINE_PROFILE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return profile(n);
    }
    if let Some(rounds) = std::env::var("PIPELINE_INTERLEAVED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return interleaved(rounds);
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();

    println!("\nRatios (medians of this run):");
    let p = |n: &str| format!("pipeline/{n}");
    report::ratio(
        "layer_collect / raw_hmac",
        &p("layer_collect"),
        &p("raw_hmac"),
        None,
    );
    report::ratio(
        "layer_typed / raw_hmac",
        &p("layer_typed"),
        &p("raw_hmac"),
        None,
    );
    report::ratio(
        "layer_collect / bare",
        &p("layer_collect"),
        &p("bare"),
        None,
    );
    report::ratio("layer_typed / bare", &p("layer_typed"), &p("bare"), None);
    report::ratio("duplicate / bare", &p("duplicate"), &p("bare"), None);
    report::ratio("rate_limited / bare", &p("rate_limited"), &p("bare"), None);
    report::ratio(
        "rate_limited / layer_typed",
        &p("rate_limited"),
        &p("layer_typed"),
        Some(0.25),
    );
    for (label, layer, raw) in [
        (
            "pipeline cost, Stripe (layer_collect - bare) / raw_hmac",
            "layer_collect",
            "raw_hmac",
        ),
        (
            "pipeline cost, Standard Webhooks (standard_collect - bare) / standard_raw_hmac",
            "standard_collect",
            "standard_raw_hmac",
        ),
    ] {
        match (
            report::median_ns(&p(layer)),
            report::median_ns(&p("bare")),
            report::median_ns(&p(raw)),
        ) {
            (Some(l), Some(b), Some(h)) if h > 0.0 => {
                let r = (l - b) / h;
                println!(
                    "{label}\n{:<48} ({} - {}) / {} = {r:.3}  (target ≤ 2.50: {})",
                    "",
                    report::human(l),
                    report::human(b),
                    report::human(h),
                    if r <= 2.5 { "met" } else { "NOT met" }
                );
            }
            _ => println!("{label}: not measured in this run"),
        }
    }
}
