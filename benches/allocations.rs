//! Heap allocations per delivery through the stacks of the `pipeline`
//! bench, counted with a counting global allocator:
//!
//! ```text
//! cargo bench --bench allocations
//! ```
//!
//! A bench of its own, not a part of `pipeline`: the counting allocator
//! does two atomic additions on every allocation and every free, which
//! would slow whatever allocates more. Here nothing is timed.
//!
//! Each request is built before the counted region: what is counted is
//! the delivery, from `oneshot` to the dropped response. Last, the heap a
//! full default [`MemoryStore`](tower_webhook::MemoryStore) holds per id.

// Nothing is timed here, but criterion's support crate is shared.
#![allow(missing_docs)]

#[path = "support/deliveries.rs"]
mod deliveries;
#[path = "support/stacks.rs"]
mod stacks;

use std::alloc::System;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt;

use deliveries::{collect, event};
use stacks::{Setup, bench_stacks, request, standard_request};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Deliveries counted per case.
const N: u64 = 1000;

/// Heap allocations (count, bytes) per request of running each of `reqs`
/// through `run`.
fn count(reqs: Vec<Request<Full<Bytes>>>, mut run: impl FnMut(Request<Full<Bytes>>)) -> (f64, f64) {
    let n = reqs.len().max(1) as f64;
    let region = Region::new(GLOBAL);
    for req in reqs {
        run(req);
    }
    let s = region.change();
    (s.allocations as f64 / n, s.bytes_allocated as f64 / n)
}

/// The status of an answer (the services here never fail).
fn status<B>(res: Result<http::Response<B>, std::convert::Infallible>) -> u16 {
    res.map_or(0, |r| r.status().as_u16())
}

fn main() {
    let Setup { rt, at, peer } = Setup::new();
    let stacks = bench_stacks();
    let bare = tower::service_fn(collect);

    // The first delivery of `dup` is accepted and the first of `flood`
    // within the limit: every counted one is a duplicate, or refused.
    let dup = event(7);
    let flood = event(8);
    for (svc, body, status) in [(&stacks.stripe, &dup, 200), (&stacks.strict, &flood, 200)] {
        let res = rt
            .block_on(svc.clone().oneshot(request(body, at, peer)))
            .expect("infallible");
        assert_eq!(res.status(), status, "priming");
    }

    let fresh = |base: u64| -> Vec<_> {
        (0..N)
            .map(|i| request(&event(base + i), at, peer))
            .collect()
    };
    let same = |body: &str| -> Vec<_> { (0..N).map(|_| request(body, at, peer)).collect() };
    let a_bare = count(fresh(10_000_000), |r| {
        assert_eq!(status(rt.block_on(bare.oneshot(r))), 200);
    });
    let a_collect = count(fresh(20_000_000), |r| {
        assert_eq!(status(rt.block_on(stacks.stripe.clone().oneshot(r))), 200);
    });
    let a_typed = count(fresh(30_000_000), |r| {
        assert_eq!(status(rt.block_on(stacks.typed.clone().oneshot(r))), 200);
    });
    let a_standard = count(
        (0..N)
            .map(|i| standard_request(40_000_000 + i, at, peer))
            .collect(),
        |r| assert_eq!(status(rt.block_on(stacks.standard.clone().oneshot(r))), 200),
    );
    let a_dup = count(same(&dup), |r| {
        let res = rt
            .block_on(stacks.stripe.clone().oneshot(r))
            .expect("infallible");
        assert!(res.headers().contains_key("webhook-duplicate"));
    });
    let a_limited = count(same(&flood), |r| {
        assert_eq!(status(rt.block_on(stacks.strict.clone().oneshot(r))), 429);
    });

    println!("Allocations per delivery (mean of {N}; request built beforehand):");
    println!("{:<28} {:>8} {:>10}", "case", "allocs", "bytes");
    for (name, (a, b)) in [
        ("bare (collects the body)", a_bare),
        ("layer_collect (Stripe)", a_collect),
        ("layer_typed", a_typed),
        ("standard_collect", a_standard),
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

    memory_per_id(&rt);
}

/// The heap a full default in-memory store holds per id: 100 000 ids
/// claimed and completed under keys of 43 bytes, what was allocated and not
/// freed, divided by the ids held.
fn memory_per_id(rt: &tokio::runtime::Runtime) {
    use std::time::Duration;
    use tower_webhook::IdempotencyStore as _;
    use tower_webhook::store::{Claim, EventKey};
    const IDS: usize = 100_000;
    let region = Region::new(GLOBAL);
    let store = tower_webhook::MemoryStore::with_capacity(IDS);
    for i in 0..IDS {
        // "stripe-endpoint:stripe:evt_" and 16 digits: 43 bytes.
        let key = EventKey::new("stripe-endpoint", "stripe", &format!("evt_{i:016}"));
        let claim = rt.block_on(store.claim(&key, Duration::from_secs(60)));
        let Ok(Claim::Fresh(token)) = claim else {
            panic!("a new id is fresh: {claim:?}");
        };
        let done = rt.block_on(store.complete(&key, token, Duration::from_secs(3600)));
        assert_eq!(done.ok(), Some(true), "completed");
    }
    let s = region.change();
    let held = s.bytes_allocated.saturating_sub(s.bytes_deallocated);
    println!(
        "memory store, {} ids held (43-byte keys): {:.0} heap bytes per id",
        store.entry_count(),
        held as f64 / store.entry_count().max(1) as f64
    );
}
