//! The in-memory store: the shared contract, then moka's own bounds.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use tower_webhook::MokaStore;
use tower_webhook::store::{Claim, EventKey, IdempotencyStore};

store_conformance!(async { Some(MokaStore::new()) });

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn capacity_holds_after_a_million_distinct_ids() {
    let capacity = 10_000;
    let store = MokaStore::with_capacity(capacity);
    let started = Instant::now();
    for i in 0..1_000_000u32 {
        let key = EventKey::new("bulk", "test", &i.to_string());
        let answer = store.claim(&key, LEASE).await.expect("moka answers");
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
    let capacity = 1_000;
    let store = MokaStore::with_capacity(capacity);
    // Fill the store and make every old id "popular": TinyLFU would now
    // refuse a newcomer, LRU must admit it.
    for round in 0..3 {
        for i in 0..capacity {
            let key = EventKey::new("full", "test", &i.to_string());
            let answer = store.claim(&key, LEASE).await.expect("moka answers");
            if round == 0 {
                let Claim::Fresh(token) = answer else {
                    panic!("{i} not fresh")
                };
                assert!(
                    store
                        .complete(&key, token, LEASE)
                        .await
                        .expect("moka answers")
                );
            }
        }
    }
    assert_eq!(store.entry_count(), capacity);
    for n in 0..50 {
        let newcomer = EventKey::new("full", "test", &format!("new-{n}"));
        let Claim::Fresh(token) = store.claim(&newcomer, LEASE).await.expect("moka answers") else {
            panic!("newcomer {n} not fresh");
        };
        store.entry_count(); // runs moka's pending evictions
        assert!(
            matches!(
                store.claim(&newcomer, LEASE).await.expect("moka answers"),
                Claim::InFlight { .. }
            ),
            "newcomer {n} was dropped right after its claim"
        );
        assert!(
            store
                .complete(&newcomer, token, LEASE)
                .await
                .expect("moka answers")
        );
        store.entry_count();
        assert_eq!(
            store.claim(&newcomer, LEASE).await.expect("moka answers"),
            Claim::Done
        );
        assert!(store.entry_count() <= capacity);
    }
}
