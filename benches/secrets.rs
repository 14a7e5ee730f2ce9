//! Cost of finding the secrets of a delivery on the hot path: a verifier
//! holding its secrets (static), a [`Swappable`] one (an `arc-swap` load),
//! and [`Tenants`] with a warm cache (tenant id from the path, a moka
//! lookup, the extensions the layer adds), alone and with the verification
//! of a 1 KiB GitHub delivery, in the same run.
//!
//! `cargo bench --bench secrets -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` makes an undocumented public fn.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::request::Parts;
use tower_webhook::providers::GitHub;
use tower_webhook::secrets::{Swappable, TenantFrom, Tenants};
use tower_webhook::{Secret, Verifier, testing};

#[path = "support/report.rs"]
mod report;

const TENANTS: usize = 1000;

fn secret_of(tenant: &str) -> String {
    format!("secret-of-{tenant}")
}

fn delivery(tenant: &str) -> (Parts, Vec<u8>) {
    let body = format!(r#"{{"zen":"{}"}}"#, "x".repeat(1014)).into_bytes();
    assert_eq!(body.len(), 1024);
    let headers = testing::github(&secret_of(tenant), "d-1", "push", &body);
    (testing::parts(&format!("/hooks/{tenant}"), headers), body)
}

fn github(tenant: &str) -> GitHub {
    GitHub::new(Secret::text(&secret_of(tenant)).expect("secret"))
}

/// Runs `prepare` and adds what it gives to `parts`, as the layer does. A
/// warm moka cache answers without waiting.
fn prepare(v: &(impl Verifier + ?Sized), parts: &mut Parts) {
    let ext = v.prepare(parts).map(|fut| {
        fut.now_or_never()
            .expect("a warm cache answers at once")
            .expect("tenant known")
    });
    if let Some(ext) = ext {
        parts.extensions.extend(ext);
    }
}

fn bench(c: &mut Criterion) {
    let (parts, body) = delivery("t42");
    let now = SystemTime::now();

    let fixed = github("t42");
    let swappable = Swappable::new(github("t42"));
    let tenants = Tenants::new(
        "github",
        TenantFrom::path_segment(1),
        |tenant: String| async move { Ok::<_, Infallible>(Some(github(&tenant))) },
    );
    // Warm the cache with every tenant (the first load runs in a runtime:
    // the resolver is wrapped in a timeout).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for i in 0..TENANTS {
            let (p, _) = delivery(&format!("t{i}"));
            let fut = tenants.prepare(&p).expect("tenants prepare");
            fut.await.expect("tenant known");
        }
    });

    let mut g = c.benchmark_group("secrets");
    // The lookup alone.
    g.bench_function("lookup/static", |b| {
        b.iter(|| black_box(fixed.prepare(black_box(&parts)).is_none()))
    });
    g.bench_function("lookup/swappable", |b| {
        b.iter(|| black_box(swappable.current()))
    });
    // What of it is the cache's own read (same key type, same expiry kind).
    let cache: moka::future::Cache<String, Option<std::sync::Arc<GitHub>>> =
        moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(std::time::Duration::from_secs(300))
            .build();
    rt.block_on(async {
        for i in 0..TENANTS {
            let t = format!("t{i}");
            cache
                .insert(t.clone(), Some(std::sync::Arc::new(github(&t))))
                .await;
        }
    });
    g.bench_function("lookup/moka get alone", |b| {
        b.iter(|| {
            black_box(
                cache
                    .get(black_box("t42"))
                    .now_or_never()
                    .expect("moka answers at once"),
            )
        })
    });
    let mut p = parts.clone();
    g.bench_function("lookup/tenants", |b| {
        b.iter(|| prepare(black_box(&tenants), black_box(&mut p)))
    });

    // Lookup + verification of 1 KiB, as the layer runs them.
    for (name, v) in [
        ("verify 1 KiB/static", &fixed as &dyn Verifier),
        ("verify 1 KiB/swappable", &swappable),
        ("verify 1 KiB/tenants", &tenants),
    ] {
        let mut p = parts.clone();
        prepare(v, &mut p);
        assert!(v.verify_deferred(&p, &body, now).is_ok(), "{name}");
        g.bench_function(name, |b| {
            b.iter(|| {
                prepare(v, &mut p);
                black_box(v.verify_deferred(black_box(&p), black_box(&body), now)).is_ok()
            })
        });
    }
    g.finish();
}

fn ratios(_: &mut Criterion) {
    println!("\nRatios (medians of this run):");
    for (label, a) in [
        ("swappable / static (lookup + verify 1 KiB)", "swappable"),
        ("tenants / static (lookup + verify 1 KiB)", "tenants"),
    ] {
        report::ratio(
            label,
            &format!("secrets/verify 1 KiB_{a}"),
            "secrets/verify 1 KiB_static",
            None,
        );
    }
    for which in ["static", "swappable", "tenants", "moka get alone"] {
        match report::median_ns(&format!("secrets/lookup_{which}")) {
            Some(ns) => println!(
                "{:<48} {:>10}",
                format!("lookup alone, {which}"),
                report::human(ns)
            ),
            None => println!("lookup alone, {which}: not measured in this run"),
        }
    }
}

criterion_group!(benches, bench, ratios);
criterion_main!(benches);
