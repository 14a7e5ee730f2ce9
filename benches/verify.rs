//! Our verifiers against raw HMAC-SHA256 (the floor) and the peer crates
//! doing the same work, in one run, at 256 B, 1 KiB, 16 KiB and 1 MiB.
//!
//! ```text
//! cargo bench --manifest-path bench-peers/Cargo.toml --bench verify
//! ```
//!
//! Peers: `svix` (`webhooks::Webhook::verify`), `standardwebhooks`
//! (`Webhook::verify`), `async-stripe-webhook` (`Webhook::construct_event`,
//! which also parses the event: that is the work its users get).
//!
//! `VERIFY_INTERLEAVED=<rounds>` runs no criterion: at each size, every
//! case is timed round by round, one batch right after the other, and the
//! ratios are each round's own (medians and quartiles over the rounds). On
//! a machine whose speed changes by phases, criterion's ratios compare
//! medians measured seconds apart, and can be off by more than the
//! figures' margins; these cannot:
//!
//! ```text
//! cargo bench --manifest-path bench-peers/Cargo.toml --bench verify --no-run
//! VERIFY_INTERLEAVED=1000 bench-peers/target/release/deps/verify-<hash>
//! ```

#[path = "support/floor.rs"]
mod floor;
#[path = "support/report.rs"]
mod report;

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, KeyInit};
use http::HeaderMap;
use http::request::Parts;
use report::{Target, spread};
use sha2::Sha256;
use tower_webhook::providers::{GitHub, Shopify, Slack, StandardWebhooks, Stripe};
use tower_webhook::{Secret, Verifier, testing};

const STD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STRIPE_SECRET: &str = "whsec_stripe_bench_secret";
const SIZES: [(usize, &str); 4] = [
    (256, "256B"),
    (1024, "1KiB"),
    (16 * 1024, "16KiB"),
    (1024 * 1024, "1MiB"),
];

/// A Stripe-shaped event of exactly `size` bytes (async-stripe-webhook
/// parses it, so it must be a real event).
fn event(size: usize) -> String {
    // The event type comes last, as in Stripe's own deliveries; the object
    // is one that async-stripe-webhook parses (a bank account).
    let head = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","api_version":"2023-10-16","created":1686089970,"data":{"object":{"object":"bank_account","country":"us","currency":"usd","id":"ba_test","last4":"6789","status":"verified","account_holder_name":""#;
    let tail = r#""}},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"account.external_account.created"}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

fn parts(headers: HeaderMap) -> Parts {
    testing::parts("/", headers)
}

/// One timed case: a name (criterion's function id) and the work of one
/// verification, answering whether it verified.
struct Case {
    name: &'static str,
    run: Box<dyn Fn() -> bool>,
}

/// One of our verifiers as a case, over its request head, the body and the
/// time: `verify`, or with `deferred` `verify_deferred` (the layer's path).
/// Generic, so that each is called as the layer calls it (no `dyn`).
fn ours<V: Verifier + 'static>(
    v: Rc<V>,
    (p, body, now): (Rc<Parts>, Rc<str>, SystemTime),
    deferred: bool,
) -> Box<dyn Fn() -> bool> {
    Box::new(move || {
        let (p, b) = (black_box(&*p), black_box(body.as_bytes()));
        if deferred {
            v.verify_deferred(p, b, now)
        } else {
            v.verify(p, b, now)
        }
        .is_ok()
    })
}

/// Every case at one payload size, each owning what it needs. The same
/// table serves criterion and the interleaved mode.
fn cases(size: usize) -> Vec<Case> {
    let std_key = Secret::standard_webhooks(STD_SECRET).expect("secret");
    let raw_key = Hmac::<Sha256>::new_from_slice(std_key.expose()).expect("key");
    let svix = svix::webhooks::Webhook::new(STD_SECRET).expect("svix secret");
    let sw = standardwebhooks::Webhook::new(STD_SECRET).expect("standardwebhooks secret");
    let ours_std = Rc::new(StandardWebhooks::new(std_key));
    let ours_stripe = Rc::new(Stripe::new(Secret::text(STRIPE_SECRET).expect("secret")));

    let body: Rc<str> = Rc::from(event(size));
    let b = body.as_bytes();
    let now = SystemTime::now();
    let ts = testing::unix(now);
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";

    let std_headers = Rc::new(testing::standard_webhooks(STD_SECRET, id, ts, b));
    let std_parts = Rc::new(parts((*std_headers).clone()));
    assert!(ours_std.verify(&std_parts, b, now).is_ok());
    assert!(
        svix.verify(b, &std_headers).is_ok(),
        "svix verifies our signature"
    );
    assert!(
        sw.verify(b, &std_headers).is_ok(),
        "standardwebhooks verifies our signature"
    );

    let stripe_headers = testing::stripe(STRIPE_SECRET, ts, b);
    let stripe_sig: Rc<str> = Rc::from(stripe_headers["stripe-signature"].to_str().expect("ascii"));
    let stripe_parts = Rc::new(parts(stripe_headers));
    assert!(ours_stripe.verify(&stripe_parts, b, now).is_ok());
    let peer = stripe_webhook::Webhook::construct_event(&body, &stripe_sig, STRIPE_SECRET);
    assert!(
        peer.is_ok(),
        "async-stripe-webhook verifies: {:?}",
        peer.err()
    );

    let mut cases = Vec::new();
    let mut case = |name: &'static str, run: Box<dyn Fn() -> bool>| {
        assert!(run(), "{name} verifies at {size} bytes");
        cases.push(Case { name, run });
    };
    let ts_text = ts.to_string();
    let bd = Rc::clone(&body);
    case(
        "raw_hmac",
        Box::new(move || {
            let mac = floor::hmac_sha256(
                &raw_key,
                &[
                    id.as_bytes(),
                    b".",
                    ts_text.as_bytes(),
                    b".",
                    black_box(bd.as_bytes()),
                ],
            );
            black_box(mac);
            true
        }),
    );
    let on = |p: &Rc<Parts>| (Rc::clone(p), Rc::clone(&body), now);
    case(
        "ours_standard",
        ours(Rc::clone(&ours_std), on(&std_parts), false),
    );
    case(
        "ours_standard_deferred",
        ours(ours_std, on(&std_parts), true),
    );
    let (h, bd) = (Rc::clone(&std_headers), Rc::clone(&body));
    case(
        "svix",
        Box::new(move || svix.verify(black_box(bd.as_bytes()), black_box(&h)).is_ok()),
    );
    let (h, bd) = (std_headers, Rc::clone(&body));
    case(
        "standardwebhooks",
        Box::new(move || sw.verify(black_box(bd.as_bytes()), black_box(&h)).is_ok()),
    );
    case(
        "ours_stripe",
        ours(Rc::clone(&ours_stripe), on(&stripe_parts), false),
    );
    case(
        "ours_stripe_deferred",
        ours(ours_stripe, on(&stripe_parts), true),
    );
    let bd = Rc::clone(&body);
    case(
        "async_stripe_webhook",
        Box::new(move || {
            stripe_webhook::Webhook::construct_event(black_box(&*bd), &stripe_sig, STRIPE_SECRET)
                .is_ok()
        }),
    );
    let github = Rc::new(parts(testing::github("gh-secret", "d-1", "push", b)));
    let slack = Rc::new(parts(testing::slack("slack-secret", ts, b)));
    let shopify = Rc::new(parts(testing::shopify(
        "shopify-secret",
        "w-1",
        "orders/create",
        b,
    )));
    let secret = |s: &str| Secret::text(s).expect("secret");
    case(
        "ours_github",
        ours(
            Rc::new(GitHub::new(secret("gh-secret"))),
            on(&github),
            false,
        ),
    );
    case(
        "ours_slack",
        ours(
            Rc::new(Slack::new(secret("slack-secret"))),
            on(&slack),
            false,
        ),
    );
    case(
        "ours_shopify",
        ours(
            Rc::new(Shopify::new(secret("shopify-secret"))),
            on(&shopify),
            false,
        ),
    );
    cases
}

/// The ratios reported at each size: label, numerator, denominator, and
/// the target at that size (the issue's figures), if any.
fn ratios(label: &str) -> Vec<(String, &'static str, &'static str, Option<Target>)> {
    // The issue's figures: 1.5 × the HMAC at 1 KiB, 1.05 × at 16 KiB and
    // 1 MiB; none at 256 B.
    let floor = match label {
        "1KiB" => Some(Target::AtMost(1.5)),
        "16KiB" | "1MiB" => Some(Target::AtMost(1.05)),
        _ => None,
    };
    let peer = (label == "1KiB").then_some(Target::AtMost(0.20));
    let stripe_peer = (label == "1KiB").then_some(Target::AtMost(0.75));
    let mut out = vec![
        (
            "ours_standard / raw_hmac".to_owned(),
            "ours_standard",
            "raw_hmac",
            floor,
        ),
        (
            "ours_standard_deferred / raw_hmac (the layer's path)".to_owned(),
            "ours_standard_deferred",
            "raw_hmac",
            floor,
        ),
    ];
    for ours in [
        "ours_stripe",
        "ours_stripe_deferred",
        "ours_github",
        "ours_slack",
        "ours_shopify",
    ] {
        out.push((format!("{ours} / raw_hmac"), ours, "raw_hmac", None));
    }
    for (ours, theirs, target) in [
        ("ours_standard", "svix", peer),
        ("ours_standard", "standardwebhooks", peer),
        ("ours_standard_deferred", "svix", peer),
        ("ours_standard_deferred", "standardwebhooks", peer),
        ("ours_stripe_deferred", "async_stripe_webhook", stripe_peer),
        ("ours_stripe", "async_stripe_webhook", stripe_peer),
    ] {
        out.push((format!("{ours} / {theirs}"), ours, theirs, target));
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (size, label) in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        if size >= 16 * 1024 {
            g.sample_size(20);
        }
        for case in cases(size) {
            g.bench_function(BenchmarkId::new(case.name, label), |bn| {
                bn.iter(|| (case.run)())
            });
        }
    }
    g.finish();
}

/// `VERIFY_INTERLEAVED=<rounds>`: no criterion. At each size, every round
/// times a batch of each case, one right after the other (in an order that
/// rotates), and computes the round's ratios; the medians and quartiles
/// over the rounds are printed. A machine whose speed changes by phases
/// moves all the batches of a round alike, so these ratios hold where
/// criterion's, measured seconds apart, do not. 1 MiB runs a tenth of the
/// rounds (at least 20): one of its rounds takes ≈ 20 ms.
fn interleaved(rounds: usize) {
    println!("interleaved: {rounds} rounds per size (a tenth at 1 MiB)");
    for (size, label) in SIZES {
        let cases = cases(size);
        // About 32 KiB hashed per batch: 32 verifications of 1 KiB.
        let per_batch = (32 * 1024 / size).max(1);
        let rounds = if size >= 1024 * 1024 {
            (rounds / 10).max(20)
        } else {
            rounds
        };
        eprintln!("{label}: {rounds} rounds of {per_batch} per case ...");
        let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cases.len()];
        for r in 0..rounds {
            for j in 0..cases.len() {
                let i = (r + j) % cases.len();
                let Some(case) = cases.get(i) else { continue };
                let start = Instant::now();
                for _ in 0..per_batch {
                    black_box((case.run)());
                }
                let ns = start.elapsed().as_secs_f64() * 1e9 / per_batch as f64;
                if let Some(t) = times.get_mut(i) {
                    t.push(ns);
                }
            }
        }
        let of = |name: &str| -> &[f64] {
            cases
                .iter()
                .position(|c| c.name == name)
                .and_then(|i| times.get(i))
                .map_or(&[], Vec::as_slice)
        };
        println!("\n-- {label}: per verification, median [quartiles] over {rounds} rounds");
        for (case, t) in cases.iter().zip(&times) {
            spread(case.name, t.clone(), " ns", None);
        }
        println!("-- {label}: ratios, each round's own, median [quartiles]");
        for (text, a, b, target) in ratios(label) {
            let v = of(a).iter().zip(of(b)).map(|(x, y)| x / y).collect();
            spread(&text, v, "", target);
        }
    }
}

fn main() {
    if let Some(rounds) = std::env::var("VERIFY_INTERLEAVED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return interleaved(rounds);
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();

    println!("\nRatios (medians of this run):");
    for (_, label) in SIZES {
        println!("-- {label}");
        for (text, a, b, target) in ratios(label) {
            let p = |n: &str| format!("verify/{n}/{label}");
            report::ratio(&text, &p(a), &p(b), target.map(Target::value));
        }
    }
}
