//! The sharded in-memory store: the shared contract, then its bounds (the same
//! capacity and admission tests as `MokaStore`).

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use tower_webhook::MemoryStore;
use tower_webhook::store::{Claim, EventKey, IdempotencyStore};

store_conformance!(async { Some(MemoryStore::new()) });

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn capacity_holds_after_a_million_distinct_ids() {
    let capacity = 10_000usize;
    let store = MemoryStore::with_capacity(capacity);
    let started = Instant::now();
    for i in 0..1_000_000u32 {
        let key = EventKey::new("bulk", "test", &i.to_string());
        let answer = store.claim(&key, LEASE).await.expect("store answers");
        assert!(
            matches!(answer, Claim::Fresh(_)),
            "id {i} was never seen, yet {answer:?}"
        );
    }
    let took = started.elapsed();
    let held = store.entry_count();
    println!("1 000 000 claims into capacity {capacity}: {took:?}, {held} entries held");
    assert!(held <= capacity, "{held} entries > capacity {capacity}");
    assert!(
        held >= capacity / 2,
        "only {held} entries kept: the store forgets too eagerly"
    );
}

#[tokio::test]
async fn a_new_id_is_kept_when_the_store_is_full() {
    let capacity = 1_000usize;
    let store = MemoryStore::with_capacity(capacity);
    // Fill the store and make every old id "popular": TinyLFU would now
    // refuse a newcomer, LRU must admit it.
    for round in 0..3 {
        for i in 0..capacity {
            let key = EventKey::new("full", "test", &i.to_string());
            let answer = store.claim(&key, LEASE).await.expect("store answers");
            if round == 0 {
                let Claim::Fresh(token) = answer else {
                    panic!("{i} not fresh")
                };
                assert!(
                    store
                        .complete(&key, token, LEASE)
                        .await
                        .expect("store answers")
                );
            }
        }
    }
    assert_eq!(store.entry_count(), capacity);
    for n in 0..50 {
        let newcomer = EventKey::new("full", "test", &format!("new-{n}"));
        let Claim::Fresh(token) = store.claim(&newcomer, LEASE).await.expect("store answers")
        else {
            panic!("newcomer {n} not fresh");
        };
        store.entry_count(); // no pending work: a no-op read
        assert!(
            matches!(
                store.claim(&newcomer, LEASE).await.expect("store answers"),
                Claim::InFlight { .. }
            ),
            "newcomer {n} was dropped right after its claim"
        );
        assert!(
            store
                .complete(&newcomer, token, LEASE)
                .await
                .expect("store answers")
        );
        store.entry_count();
        assert_eq!(
            store.claim(&newcomer, LEASE).await.expect("store answers"),
            Claim::Done
        );
        assert!(store.entry_count() <= capacity);
    }
}
