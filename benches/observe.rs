//! What metrics cost on a verified 1 KiB delivery: the whole `WebhookLayer`
//! stack in process (`tower::ServiceExt::oneshot`, no sockets), in one run,
//! with metrics off, on with no recorder installed, and on with a
//! Prometheus recorder (`metrics-exporter-prometheus`) installed.
//!
//! ```text
//! cargo bench --bench observe -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Stack: Stripe verification + claim + complete in the default in-memory
//! store, around a service that collects the body. A layer looks its metric
//! handles up on its first delivery: the "no recorder" layer serves one
//! before the recorder is installed, and keeps the no-op handles.

// `criterion_group!` makes an undocumented public fn.
#![allow(missing_docs)]

#[path = "support/deliveries.rs"]
mod deliveries;
#[path = "support/report.rs"]
mod report;

use std::time::SystemTime;

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use http::Request;
use http_body_util::Full;
use tower::ServiceExt;
use tower_layer::Layer;
use tower_webhook::providers::Stripe;
use tower_webhook::{Secret, WebhookLayer};

use deliveries::{collect, event};

const SECRET: &str = "whsec_observe_bench_secret";

fn request(body: &str, at: SystemTime) -> Request<Full<Bytes>> {
    deliveries::stripe(SECRET, body, at, None)
}

fn layer(metrics: bool, endpoint: &str) -> WebhookLayer<Stripe, tower_webhook::MemoryStore> {
    WebhookLayer::builder(Stripe::new(Secret::text(SECRET).expect("secret")))
        .endpoint_name(endpoint)
        .metrics(metrics)
        .build()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let at = SystemTime::now();

    let off = layer(false, "off").layer(tower::service_fn(collect));
    let noop = layer(true, "noop").layer(tower::service_fn(collect));
    let status = |svc: &_, n| {
        let svc: &tower_webhook::WebhookService<_, Stripe, _> = svc;
        rt.block_on(svc.clone().oneshot(request(&event(n), at)))
            .expect("infallible")
            .status()
    };
    // first deliveries: `noop` takes its handles with no recorder installed
    assert_eq!(status(&off, u64::MAX), 200);
    assert_eq!(status(&noop, u64::MAX), 200);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder");
    let prom = layer(true, "prometheus").layer(tower::service_fn(collect));
    assert_eq!(status(&prom, u64::MAX), 200);

    let mut n = 0u64;
    let mut g = c.benchmark_group("observe");
    for (name, svc) in [
        ("metrics_off", &off),
        ("metrics_no_recorder", &noop),
        ("metrics_prometheus", &prom),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    request(&event(n), at)
                },
                |req| rt.block_on(svc.clone().oneshot(req)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
    c.final_summary();

    // The recorder saw the deliveries: the figure is of real work.
    let text = handle.render();
    let accepted = text
        .lines()
        .find(|l| {
            l.starts_with("webhook_deliveries_total")
                && l.contains(r#"endpoint="prometheus""#)
                && l.contains(r#"outcome="accepted""#)
        })
        .expect("accepted deliveries counted");
    println!("\nPrometheus: {accepted}");
    assert!(!text.contains(r#"endpoint="noop""#) && !text.contains(r#"endpoint="off""#));

    println!("\nRatios (medians of this run):");
    report::ratio(
        "metrics_no_recorder / metrics_off",
        "observe/metrics_no_recorder",
        "observe/metrics_off",
        None,
    );
    report::ratio(
        "metrics_prometheus / metrics_off",
        "observe/metrics_prometheus",
        "observe/metrics_off",
        None,
    );
}
