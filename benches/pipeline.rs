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
//! (`iter_batched`); its body is shared as hyper's are (see
//! `deliveries::received`). The heap allocations of a delivery are counted
//! by the `allocations` bench (`cargo bench --bench allocations`), not
//! here: a counting global allocator does two atomic additions per
//! allocation and per free, and slowed the layer's timings (five small
//! allocations more than the bare service's) by ≈ 0.12 × the HMAC.
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
//!
//! `PIPELINE_STORE_CAPACITY=<n>` (any mode) fills stores of `n` ids
//! instead of the default 100 000: an ablation, to see what the full
//! default store's cache misses cost.

// `criterion_group!` makes an undocumented public fn.
#![allow(missing_docs)]

#[path = "support/deliveries.rs"]
mod deliveries;
#[path = "support/floor.rs"]
mod floor;
#[path = "support/report.rs"]
mod report;
#[path = "support/stacks.rs"]
mod stacks;

use std::convert::Infallible;
use std::hint::black_box;
use std::time::SystemTime;

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use hmac::{Hmac, KeyInit};
use http::{Request, Response};
use http_body_util::Full;
use sha2::Sha256;
use tower::ServiceExt;
use tower_webhook::testing;

use deliveries::{collect, event};
use stacks::{
    SECRET, Setup, bench_stacks, request, standard_id, standard_request, standard_secret,
};

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

fn bench(c: &mut Criterion) {
    let Setup { rt, at, peer } = Setup::new();
    let stacks = bench_stacks();
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
}

/// The layer's own cost per delivery (layer − bare service) may be at most
/// this many times the raw HMAC of the signed content.
const PIPELINE_TARGET: f64 = 3.5;

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
    let Setup { rt, at, peer } = Setup::new();
    let stacks = bench_stacks();
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
    let Setup { rt, at, peer } = Setup::new();
    let stacks = bench_stacks();
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
    use report::{Target, spread as show};
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
        Some(Target::AtMost(PIPELINE_TARGET)),
    );
    show(
        "pipeline cost, Standard (standard_collect - bare) / its raw",
        all.iter()
            .map(|r| (r.standard - r.bare) / r.std_raw)
            .collect(),
        "",
        Some(Target::AtMost(PIPELINE_TARGET)),
    );
    show(
        "rate_limited / layer_typed",
        all.iter().map(|r| r.limited / r.typed).collect(),
        "",
        Some(Target::AtMost(0.25)),
    );
    // A tenant on the same core slows general code (the layer, the bare
    // service) but hardly the SHA unit (the raw HMAC): the ratio moves with
    // the machine's phase. The typed stack's time tells the phase; it is
    // in neither ratio, so its own noise does not bias them (the bare
    // service's would: it is subtracted).
    let (fast, _, _) = report::quartiles(all.iter().map(|r| r.typed).collect());
    let quiet: Vec<&Round> = all.iter().filter(|r| r.typed <= fast).collect();
    println!(
        "\nThe same, over the {} rounds whose typed stack was in its fastest quarter \
         (the machine's quiet phases; the figures are the lines above):",
        quiet.len()
    );
    show(
        "pipeline cost, Stripe, quiet rounds",
        quiet.iter().map(|r| (r.stripe - r.bare) / r.raw).collect(),
        "",
        None,
    );
    show(
        "pipeline cost, Standard, quiet rounds",
        quiet
            .iter()
            .map(|r| (r.standard - r.bare) / r.std_raw)
            .collect(),
        "",
        None,
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
                    "{label}\n{:<48} ({} - {}) / {} = {r:.3}  (target ≤ {PIPELINE_TARGET:.2}: {})",
                    "",
                    report::human(l),
                    report::human(b),
                    report::human(h),
                    if r <= PIPELINE_TARGET {
                        "met"
                    } else {
                        "NOT met"
                    }
                );
            }
            _ => println!("{label}: not measured in this run"),
        }
    }
}
