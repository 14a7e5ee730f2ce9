//! Cost of the idempotency bookkeeping per delivery: one claim plus one
//! complete, as the layer does for a fresh event.
//!
//! `cargo bench --bench store -- --warm-up-time 1 --measurement-time 3`
//! measures the in-memory store ([`MemoryStore`], the default) against a
//! Standard Webhooks verification of 1 KiB in the same run, and prints the
//! ratio; with `--features redis` and `REDIS_URL` set it
//! measures Redis on that server too and prints how many round trips
//! (commands the server received from this client) each operation takes.

// `criterion_group!` makes an undocumented public fn.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use tower_webhook::MemoryStore;
use tower_webhook::store::{Claim, EventKey, IdempotencyStore};

#[path = "support/report.rs"]
mod report;

const LEASE: Duration = Duration::from_secs(60);
const TTL: Duration = Duration::from_secs(3600);

/// Runs an operation of the in-memory store, which never waits, without a
/// runtime.
fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    f.now_or_never()
        .expect("the memory store answers without waiting")
}

/// Fills `store` to `capacity` completed ids, then measures claim+complete
/// of a new id (which also evicts one: the steady state).
fn claim_complete(c: &mut Criterion, name: &str, store: &impl IdempotencyStore, capacity: u32) {
    for i in 0..capacity {
        let key = EventKey::new("bench", "fill", &format!("fill-{i}"));
        if let Claim::Fresh(t) = now(store.claim(&key, LEASE)).expect("claim") {
            now(store.complete(&key, t, TTL)).expect("complete");
        }
    }
    let mut n = 0u64;
    c.bench_function(name, |b| {
        b.iter(|| {
            n += 1;
            let key = EventKey::new("bench", "new", itoa::Buffer::new().format(n));
            let Claim::Fresh(t) = now(store.claim(&key, LEASE)).expect("claim") else {
                panic!("new id not fresh");
            };
            black_box(now(store.complete(&key, t, TTL)).expect("complete"))
        });
    });
    // A duplicate: the claim of a completed id.
    let dup = EventKey::new("bench", "new", "1");
    c.bench_function(&format!("{name} duplicate claim"), |b| {
        b.iter(|| black_box(now(store.claim(black_box(&dup), LEASE)).expect("claim")));
    });
}

fn memory(c: &mut Criterion) {
    let capacity = 100_000u32;
    let store = MemoryStore::with_capacity(capacity as usize);
    claim_complete(
        c,
        "memory claim+complete (100k capacity, full)",
        &store,
        capacity,
    );
    println!(
        "memory entries held: {} (capacity {capacity})",
        store.entry_count()
    );
}

/// The reference: what verifying a 1 KiB Standard Webhooks delivery costs.
fn verify_1k(c: &mut Criterion) {
    use tower_webhook::providers::StandardWebhooks;
    use tower_webhook::{Secret, Verifier, testing};
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = format!(r#"{{"type":"invoice.paid","data":"{}"}}"#, "x".repeat(990));
    let at = std::time::SystemTime::now();
    let headers = testing::standard_webhooks(SECRET, "msg_1", testing::unix(at), body.as_bytes());
    let parts = testing::parts("/", headers);
    let v = StandardWebhooks::new(Secret::standard_webhooks(SECRET).expect("secret"));
    assert!(v.verify(&parts, body.as_bytes(), at).is_ok());
    c.bench_function("standard webhooks verify 1 KiB", |b| {
        b.iter(|| black_box(v.verify(black_box(&parts), black_box(body.as_bytes()), at)).is_ok())
    });
}

fn ratios(_: &mut Criterion) {
    println!("\nRatios (medians of this run):");
    let verify = "standard webhooks verify 1 KiB";
    report::ratio(
        "memory claim+complete / verify 1 KiB",
        "memory claim+complete (100k capacity, full)",
        verify,
        Some(1.0),
    );
}

#[cfg(feature = "redis")]
mod redis_bench {
    use super::*;
    use tower_webhook::store::RedisStore;

    /// Calls of each command the server has run, from `INFO commandstats`.
    async fn calls(conn: &mut redis::aio::MultiplexedConnection) -> Vec<(String, u64)> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(conn)
            .await
            .expect("INFO");
        info.lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest
                    .split(',')
                    .next()?
                    .strip_prefix("calls=")?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }

    fn delta(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, u64)> {
        after
            .iter()
            .map(|(name, a)| {
                let b = before
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |(_, b)| *b);
                (name.clone(), a - b)
            })
            .filter(|(name, d)| *d > 0 && name != "info")
            .collect()
    }

    pub(super) fn redis(c: &mut Criterion) {
        let Some(url) = std::env::var("REDIS_URL").ok() else {
            println!("REDIS_URL not set: Redis not measured");
            return;
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let prefix = format!(
            "tw-bench:{:x}:",
            tower_webhook::store::ClaimToken::random().as_u128()
        );
        let store = rt
            .block_on(RedisStore::connect(&url, prefix))
            .expect("REDIS_URL is set but Redis does not answer");
        let mut admin = rt
            .block_on(async {
                redis::Client::open(url.as_str())?
                    .get_multiplexed_async_connection()
                    .await
            })
            .expect("admin connection");

        // Warm the script cache, then count what 1000 operations cost.
        let short = Duration::from_secs(5);
        let warm = EventKey::new("bench", "redis", "warm");
        if let Claim::Fresh(t) = rt.block_on(store.claim(&warm, short)).expect("claim") {
            rt.block_on(store.complete(&warm, t, short))
                .expect("complete");
        }
        const N: u64 = 1000;
        let keys: Vec<_> = (0..N)
            .map(|i| EventKey::new("bench", "redis", &format!("count-{i}")))
            .collect();
        let mut tokens = Vec::new();
        let s0 = rt.block_on(calls(&mut admin));
        for k in &keys {
            match rt.block_on(store.claim(k, short)).expect("claim") {
                Claim::Fresh(t) => tokens.push(t),
                other => panic!("{other:?}"),
            }
        }
        let s1 = rt.block_on(calls(&mut admin));
        for (k, t) in keys.iter().zip(&tokens) {
            assert!(rt.block_on(store.complete(k, *t, short)).expect("complete"));
        }
        let s2 = rt.block_on(calls(&mut admin));
        for k in &keys {
            assert_eq!(
                rt.block_on(store.claim(k, short)).expect("claim"),
                Claim::Done
            );
        }
        let s3 = rt.block_on(calls(&mut admin));
        let show = |what: &str, d: Vec<(String, u64)>| {
            let per: Vec<String> = d
                .iter()
                .map(|(n, c)| format!("{n}={}", *c as f64 / N as f64))
                .collect();
            println!("redis {what}, commands per operation: {}", per.join(" "));
        };
        println!("(round trips = evalsha + eval; the others run inside the script)");
        show("claim (fresh)", delta(&s0, &s1));
        show("complete", delta(&s1, &s2));
        show("claim (duplicate)", delta(&s2, &s3));

        let mut n = 0u64;
        c.bench_function("redis claim+complete (loopback)", |b| {
            b.iter(|| {
                n += 1;
                let key = EventKey::new("bench", "redis", itoa::Buffer::new().format(n));
                rt.block_on(async {
                    let Claim::Fresh(t) = store.claim(&key, short).await.expect("claim") else {
                        panic!("new id not fresh");
                    };
                    black_box(store.complete(&key, t, short).await.expect("complete"))
                })
            });
        });
    }
}

#[cfg(feature = "redis")]
criterion_group!(benches, verify_1k, memory, redis_bench::redis, ratios);
#[cfg(not(feature = "redis"))]
criterion_group!(benches, verify_1k, memory, ratios);
criterion_main!(benches);
