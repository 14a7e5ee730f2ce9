//! Our verifiers against raw HMAC-SHA256 (the floor) and the peer crates
//! doing the same work, in one run, at 256 B, 1 KiB, 16 KiB and 1 MiB.
//!
//! ```text
//! cargo bench -p tower-webhook-peer-bench --bench verify
//! ```
//!
//! Peers: `svix` (`webhooks::Webhook::verify`), `standardwebhooks`
//! (`Webhook::verify`), `async-stripe-webhook` (`Webhook::construct_event`,
//! which also parses the event: that is the work its users get).

#[path = "support/floor.rs"]
mod floor;
#[path = "support/report.rs"]
mod report;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, KeyInit};
use http::HeaderMap;
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

fn parts(headers: HeaderMap) -> http::request::Parts {
    testing::parts("/", headers)
}

fn bench(c: &mut Criterion) {
    let std_key = tower_webhook::Secret::standard_webhooks(STD_SECRET).expect("secret");
    let std_raw = std_key.expose().to_vec();
    let svix = svix::webhooks::Webhook::new(STD_SECRET).expect("svix secret");
    let sw = standardwebhooks::Webhook::new(STD_SECRET).expect("standardwebhooks secret");
    let ours_std = StandardWebhooks::new(std_key.clone());
    let ours_stripe = Stripe::new(Secret::text(STRIPE_SECRET).expect("secret"));
    let ours_gh = GitHub::new(Secret::text("gh-secret").expect("secret"));
    let ours_slack = Slack::new(Secret::text("slack-secret").expect("secret"));
    let ours_shopify = Shopify::new(Secret::text("shopify-secret").expect("secret"));
    let raw_key = Hmac::<Sha256>::new_from_slice(&std_raw).expect("key");

    let mut g = c.benchmark_group("verify");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (size, label) in SIZES {
        let body = event(size);
        let b = body.as_bytes();
        let now = SystemTime::now();
        let ts = testing::unix(now);
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        g.throughput(Throughput::Bytes(size as u64));
        if size >= 16 * 1024 {
            g.sample_size(20);
        }

        let std_headers = testing::standard_webhooks(STD_SECRET, id, ts, b);
        let std_parts = parts(std_headers.clone());
        assert!(ours_std.verify(&std_parts, b, now).is_ok());
        assert!(
            svix.verify(b, &std_headers).is_ok(),
            "svix verifies our signature"
        );
        assert!(
            sw.verify(b, &std_headers).is_ok(),
            "standardwebhooks verifies our signature"
        );

        let ts_text = ts.to_string();
        g.bench_function(BenchmarkId::new("raw_hmac", label), |bn| {
            bn.iter(|| {
                black_box(floor::hmac_sha256(
                    &raw_key,
                    &[id.as_bytes(), b".", ts_text.as_bytes(), b".", black_box(b)],
                ))
            })
        });
        g.bench_function(BenchmarkId::new("ours_standard", label), |bn| {
            bn.iter(|| {
                ours_std
                    .verify(black_box(&std_parts), black_box(b), now)
                    .is_ok()
            })
        });
        g.bench_function(BenchmarkId::new("ours_standard_deferred", label), |bn| {
            bn.iter(|| {
                ours_std
                    .verify_deferred(black_box(&std_parts), black_box(b), now)
                    .is_ok()
            })
        });
        g.bench_function(BenchmarkId::new("svix", label), |bn| {
            bn.iter(|| svix.verify(black_box(b), black_box(&std_headers)).is_ok())
        });
        g.bench_function(BenchmarkId::new("standardwebhooks", label), |bn| {
            bn.iter(|| sw.verify(black_box(b), black_box(&std_headers)).is_ok())
        });

        let stripe_headers = testing::stripe(STRIPE_SECRET, ts, b);
        let stripe_sig = stripe_headers["stripe-signature"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let stripe_parts = parts(stripe_headers);
        assert!(ours_stripe.verify(&stripe_parts, b, now).is_ok());
        let peer = stripe_webhook::Webhook::construct_event(&body, &stripe_sig, STRIPE_SECRET);
        assert!(
            peer.is_ok(),
            "async-stripe-webhook verifies: {:?}",
            peer.err()
        );
        g.bench_function(BenchmarkId::new("ours_stripe", label), |bn| {
            bn.iter(|| {
                ours_stripe
                    .verify(black_box(&stripe_parts), black_box(b), now)
                    .is_ok()
            })
        });
        g.bench_function(BenchmarkId::new("ours_stripe_deferred", label), |bn| {
            bn.iter(|| {
                ours_stripe
                    .verify_deferred(black_box(&stripe_parts), black_box(b), now)
                    .is_ok()
            })
        });
        g.bench_function(BenchmarkId::new("async_stripe_webhook", label), |bn| {
            bn.iter(|| {
                stripe_webhook::Webhook::construct_event(
                    black_box(&body),
                    &stripe_sig,
                    STRIPE_SECRET,
                )
                .is_ok()
            })
        });

        let gh = parts(testing::github("gh-secret", "d-1", "push", b));
        let slack = parts(testing::slack("slack-secret", ts, b));
        let shopify = parts(testing::shopify(
            "shopify-secret",
            "w-1",
            "orders/create",
            b,
        ));
        for (name, v, p) in [
            ("ours_github", &ours_gh as &dyn Verifier, &gh),
            ("ours_slack", &ours_slack, &slack),
            ("ours_shopify", &ours_shopify, &shopify),
        ] {
            assert!(v.verify(p, b, now).is_ok(), "{name}");
            g.bench_function(BenchmarkId::new(name, label), |bn| {
                bn.iter(|| v.verify(black_box(p), black_box(b), now).is_ok())
            });
        }
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();

    println!("\nRatios (medians of this run):");
    for (_, label) in SIZES {
        let p = |n: &str| format!("verify/{n}/{label}");
        println!("-- {label}");
        let floor = if label == "256B" || label == "1KiB" {
            1.5
        } else {
            1.05
        };
        report::ratio(
            "ours_standard / raw_hmac",
            &p("ours_standard"),
            &p("raw_hmac"),
            Some(floor),
        );
        report::ratio(
            "ours_standard_deferred / raw_hmac (the layer's path)",
            &p("ours_standard_deferred"),
            &p("raw_hmac"),
            Some(floor),
        );
        for ours in [
            "ours_stripe",
            "ours_stripe_deferred",
            "ours_github",
            "ours_slack",
            "ours_shopify",
        ] {
            report::ratio(
                &format!("{ours} / raw_hmac"),
                &p(ours),
                &p("raw_hmac"),
                None,
            );
        }
        let peer_target = (label == "1KiB").then_some(0.20);
        report::ratio(
            "ours_standard / svix",
            &p("ours_standard"),
            &p("svix"),
            peer_target,
        );
        report::ratio(
            "ours_standard / standardwebhooks",
            &p("ours_standard"),
            &p("standardwebhooks"),
            peer_target,
        );
        report::ratio(
            "ours_standard_deferred / svix",
            &p("ours_standard_deferred"),
            &p("svix"),
            peer_target,
        );
        report::ratio(
            "ours_standard_deferred / standardwebhooks",
            &p("ours_standard_deferred"),
            &p("standardwebhooks"),
            peer_target,
        );
        report::ratio(
            "ours_stripe_deferred / async_stripe_webhook",
            &p("ours_stripe_deferred"),
            &p("async_stripe_webhook"),
            (label == "1KiB").then_some(0.75),
        );
        report::ratio(
            "ours_stripe / async_stripe_webhook",
            &p("ours_stripe"),
            &p("async_stripe_webhook"),
            (label == "1KiB").then_some(0.75),
        );
    }
}
