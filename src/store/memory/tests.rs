use super::*;

const LEASE: Duration = Duration::from_secs(60);

/// Claims `key`, which must be new: its token.
async fn fresh(store: &MemoryStore, key: &EventKey) -> ClaimToken {
    match store.claim(key, LEASE).await.expect("claim") {
        Claim::Fresh(t) => t,
        other => panic!("new id {key} not fresh: {other:?}"),
    }
}

/// Keys `e:p:1`, `e:p:2`, ..., one per call.
fn numbered() -> impl FnMut() -> EventKey {
    let mut n = 0u32;
    move || {
        n += 1;
        EventKey::new("e", "p", &n.to_string())
    }
}

/// Claims and completes `count` new keys from `next`.
async fn fill(store: &MemoryStore, next: &mut impl FnMut() -> EventKey, count: usize) {
    for _ in 0..count {
        let k = next();
        let t = fresh(store, &k).await;
        assert!(store.complete(&k, t, LEASE).await.expect("complete"));
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// `f` of each shard, after checking its invariants: queue items in claim
/// order, exactly one item per held id (the one with its entry's claim
/// number), and as many held ids in all as the store counts.
fn shards(store: &MemoryStore, f: impl Fn(&Shard) -> usize) -> Vec<usize> {
    let mut held = 0;
    let out = store.inner.shards.iter().map(|s| {
        let shard = s.lock().expect("lock");
        let queue = &shard.queue;
        let ordered = queue
            .iter()
            .zip(queue.iter().skip(1))
            .all(|(a, b)| a.0 < b.0);
        assert!(ordered, "items in claim order");
        let own = queue
            .iter()
            .filter(|(seq, key)| shard.map.get(&**key).is_some_and(|e| e.seq == *seq))
            .count();
        assert_eq!(own, shard.map.len(), "one item per held id");
        held += shard.map.len();
        f(&shard)
    });
    let out = out.collect();
    assert_eq!(held, store.entry_count(), "ids counted");
    out
}

/// Ids `k<from>`, `k<from + 1>`, … in (`true`) or out of (`false`) the
/// shard of `key`.
fn ids_by_shard<'a>(
    store: &'a MemoryStore,
    key: &EventKey,
    within: bool,
    from: usize,
) -> impl Iterator<Item = EventKey> + 'a {
    let shard = store.shard_of(key.as_str());
    (from..)
        .map(|i| EventKey::new("e", "p", &format!("k{i}")))
        .filter(move |k| (store.shard_of(k.as_str()) == shard) == within)
}

#[test]
fn released_and_reclaimed_keys_do_not_grow_the_queue_without_bound() {
    run(async {
        let store = MemoryStore::with_capacity(100);
        let key = EventKey::new("e", "p", "churn");
        for _ in 0..10_000 {
            let Claim::Fresh(t) = store.claim(&key, LEASE).await.expect("claim") else {
                panic!("released key not fresh");
            };
            assert!(store.release(&key, t).await.expect("release"));
        }
        assert_eq!(store.entry_count(), 0);
        let longest = shards(&store, |s| s.queue.len()).into_iter().max();
        // Compaction runs when a claim leaves more than 2 × live + 16
        // items: after the last release, at most 18 are left.
        assert!(
            longest.is_some_and(|n| n <= 18),
            "queue grew to {longest:?}"
        );
    });
}

#[test]
fn eviction_takes_the_oldest_id_first() {
    run(async {
        let store = MemoryStore::with_capacity(SHARDS * 4);
        let keys: Vec<_> = (0..SHARDS * 8)
            .map(|i| EventKey::new("e", "p", &i.to_string()))
            .collect();
        for k in &keys {
            let t = fresh(&store, k).await;
            assert!(store.complete(k, t, LEASE).await.expect("complete"));
        }
        assert_eq!(store.entry_count(), SHARDS * 4);
        // The newest id is held.
        let last = keys.last().expect("keys");
        assert_eq!(store.claim(last, LEASE).await.expect("claim"), Claim::Done);
        // The very first id was the oldest of its shard: once the store
        // was full, the next id of that shard evicted it.
        let first = &keys[0];
        let first_shard = store.shard_of(first.as_str());
        let evicted_later = keys[SHARDS * 4..]
            .iter()
            .any(|k| store.shard_of(k.as_str()) == first_shard);
        if evicted_later {
            assert!(matches!(
                store.claim(first, LEASE).await.expect("claim"),
                Claim::Fresh(_)
            ));
        }
    });
}

#[test]
fn long_keys_are_deduplicated() {
    run(async {
        let store = MemoryStore::with_capacity(10);
        let long = "x".repeat(186);
        let key = EventKey::new("e", "p", &long);
        let near = EventKey::new("e", "p", &format!("{long}y"));
        let t = fresh(&store, &key).await;
        assert!(matches!(
            store.claim(&key, LEASE).await.expect("claim"),
            Claim::InFlight { .. }
        ));
        assert!(matches!(
            store.claim(&near, LEASE).await.expect("claim"),
            Claim::Fresh(_)
        ));
        assert!(store.complete(&key, t, LEASE).await.expect("complete"));
        assert_eq!(store.claim(&key, LEASE).await.expect("claim"), Claim::Done);
    });
}

#[test]
fn an_id_claimed_again_after_its_lease_moves_to_the_back_of_the_queue() {
    run(async {
        let store = MemoryStore::with_capacity(2);
        // Eviction is first in, first out within a shard: take three
        // ids of one shard.
        let first = EventKey::new("e", "p", "k0");
        let mut same: Vec<_> = ids_by_shard(&store, &first, true, 1).take(2).collect();
        let (c, b, a) = (same.pop().expect("c"), same.pop().expect("b"), first);
        store
            .claim(&a, Duration::from_millis(1))
            .await
            .expect("claim");
        store.claim(&b, LEASE).await.expect("claim");
        std::thread::sleep(Duration::from_millis(5));
        // `a`'s lease ran out: claimed again, it is now newer than `b`.
        let Claim::Fresh(ta) = store.claim(&a, LEASE).await.expect("claim") else {
            panic!("expired claim not fresh");
        };
        assert_eq!(store.entry_count(), 2);
        // A third id evicts the oldest live one, `b`, not `a` (whose
        // first item is stale).
        store.claim(&c, LEASE).await.expect("claim");
        assert_eq!(store.entry_count(), 2);
        assert!(store.complete(&a, ta, LEASE).await.expect("complete"));
        assert!(matches!(
            store.claim(&b, LEASE).await.expect("claim"),
            Claim::Fresh(_)
        ));
    });
}

#[test]
fn compacting_a_shard_keeps_every_held_claim() {
    run(async {
        let store = MemoryStore::with_capacity(1_000);
        let held: Vec<_> = (0..200)
            .map(|i| EventKey::new("e", "p", &format!("held-{i}")))
            .collect();
        let mut tokens = Vec::new();
        for k in &held {
            let t = fresh(&store, k).await;
            tokens.push(t);
        }
        // Churn on other keys leaves stale items behind in every shard
        // until compaction drops them.
        for i in 0..5_000 {
            let k = EventKey::new("e", "p", &format!("churn-{}", i % 64));
            let Claim::Fresh(t) = store.claim(&k, LEASE).await.expect("claim") else {
                panic!("released id not fresh");
            };
            assert!(store.release(&k, t).await.expect("release"));
        }
        let longest = shards(&store, |s| s.queue.len())
            .into_iter()
            .max()
            .unwrap_or_default();
        assert!(longest <= 2 * 200 + 16, "queue grew to {longest}");
        for (k, t) in held.iter().zip(tokens) {
            assert!(matches!(
                store.claim(k, LEASE).await.expect("claim"),
                Claim::InFlight { .. }
            ));
            assert!(store.complete(k, t, LEASE).await.expect("complete"), "{k}");
        }
        assert_eq!(store.entry_count(), 200);
    });
}

#[test]
fn a_newcomer_moved_by_compaction_is_not_evicted_for_itself() {
    run(async {
        let store = MemoryStore::with_capacity(2);
        let a = EventKey::new("e", "p", "k0");
        // Eighteen released claims leave stale items in `a`'s shard.
        for k in ids_by_shard(&store, &a, true, 1).take(18) {
            let t = fresh(&store, &k).await;
            assert!(store.release(&k, t).await.expect("release"));
        }
        let mut elsewhere = ids_by_shard(&store, &a, false, 1000);
        let (b, c) = (elsewhere.next().expect("b"), elsewhere.next().expect("c"));
        store.claim(&b, LEASE).await.expect("claim");
        let full = store.entry_count() >= 2;
        assert!(!full);
        // Another shard's claim fills the store...
        store.claim(&c, LEASE).await.expect("claim");
        // ... then appending `a`'s claim compacts its shard (its item
        // moves to the front), and it is over the capacity, so room is
        // made: not by evicting `a` itself.
        let Claim::Fresh(token) = store.claim(&a, LEASE).await.expect("claim") else {
            panic!("new id not fresh");
        };
        let lengths = shards(&store, |s| s.queue.len());
        assert_eq!(lengths[store.shard_of(a.as_str())], 1, "compacted");
        assert!(matches!(
            store.claim(&a, LEASE).await.expect("claim"),
            Claim::InFlight { .. }
        ));
        assert!(store.complete(&a, token, LEASE).await.expect("complete"));
        assert_eq!(store.entry_count(), 2);
    });
}

#[test]
fn a_full_stores_maps_keep_their_size_through_churn() {
    run(async {
        let capacity = 20_000;
        let store = MemoryStore::with_capacity(capacity);
        let room = |s: &MemoryStore| -> usize {
            let shards = s.inner.shards.iter();
            shards.map(|m| m.lock().expect("lock").map.capacity()).sum()
        };
        let (filled, turns) = (22_000, 200_000);
        let mut next = numbered();
        fill(&store, &mut next, filled).await;
        let settled = room(&store);
        // Ten turns of the store: every claim evicts an id.
        fill(&store, &mut next, turns).await;
        assert_eq!(store.entry_count(), capacity);
        let after = room(&store);
        assert!(
            after <= settled,
            "maps grew to room for {after} ids (settled at {settled}) for {capacity}"
        );
        // Every id of the last turn is still a duplicate.
        // `numbered` gave the keys 1 to `n`.
        let n = u32::try_from(filled + turns).expect("fits");
        let recent: Vec<_> = (n - 1_000..n)
            .map(|i| EventKey::new("e", "p", &(i + 1).to_string()))
            .collect();
        for k in &recent {
            assert_eq!(
                store.claim(k, LEASE).await.expect("claim"),
                Claim::Done,
                "{k}"
            );
        }
        shards(&store, |s| s.queue.len());
    });
}

#[test]
fn stale_items_at_the_front_are_dropped_by_the_next_new_id() {
    run(async {
        let store = MemoryStore::with_capacity(10);
        let a = EventKey::new("e", "p", "k0");
        let b = ids_by_shard(&store, &a, true, 1).next().expect("b");
        let t = fresh(&store, &a).await;
        assert!(store.release(&a, t).await.expect("release"));
        // `a`'s item is left behind, stale...
        assert_eq!(shards(&store, |s| s.queue.len()).iter().sum::<usize>(), 1);
        assert_eq!(store.entry_count(), 0);
        // ... until the next new id of its shard finds it at the front.
        fresh(&store, &b).await;
        assert_eq!(shards(&store, |s| s.queue.len()).iter().sum::<usize>(), 1);
        assert_eq!(store.entry_count(), 1);
        fresh(&store, &a).await;
        assert!(matches!(
            store.claim(&b, LEASE).await.expect("claim"),
            Claim::InFlight { .. }
        ));
    });
}

#[test]
fn expired_ids_at_the_front_are_freed_by_a_new_id() {
    run(async {
        let store = MemoryStore::with_capacity(1_000);
        let a = EventKey::new("e", "p", "k0");
        let short = Duration::from_millis(1);
        let t = fresh(&store, &a).await;
        assert!(store.complete(&a, t, short).await.expect("complete"));
        let mut same = ids_by_shard(&store, &a, true, 1);
        let b = same.next().expect("b");
        store.claim(&b, short).await.expect("claim");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(store.entry_count(), 2, "held until freed");
        fresh(&store, &same.next().expect("c")).await;
        assert_eq!(store.entry_count(), 1, "both expired ids freed");
        shards(&store, |s| s.queue.len());
    });
}

#[test]
fn dead_entries_are_compacted_whatever_the_store_evicted() {
    run(async {
        let store = MemoryStore::with_capacity(2_000);
        let mut next = numbered();
        // Full, then churned: evictions leave stale items behind.
        fill(&store, &mut next, 2_100).await;
        // Failed deliveries: each leaves a stale item. Throughout, at
        // most one stale item per live id, plus 16, as the docs say
        // (plus the newest claim's, released after its claim checked).
        let excess = |store: &MemoryStore| {
            shards(store, |shard| {
                let live = shard.map.len();
                shard.queue.len().saturating_sub(2 * live + 18)
            })
        };
        for round in 0..6_000 {
            let k = next();
            let t = fresh(&store, &k).await;
            assert!(store.release(&k, t).await.expect("release"));
            if round % 50 == 0 {
                let past = excess(&store);
                assert!(
                    past.iter().all(|&n| n == 0),
                    "stale items past the bound after {round} releases: {past:?}"
                );
            }
        }
    });
}

#[test]
fn releases_in_a_full_store_do_not_copy_the_queue_each_time() {
    run(async {
        let store = MemoryStore::with_capacity(1_000);
        let mut next = numbered();
        fill(&store, &mut next, 1_100).await;
        let capacities = |s: &MemoryStore| shards(s, |shard| shard.queue.capacity());
        let rounds = 2_000;
        let mut changes = 0;
        let mut before = capacities(&store);
        for _ in 0..rounds {
            // A failed delivery (released), then a handled one.
            let failed = next();
            let t = fresh(&store, &failed).await;
            assert!(store.release(&failed, t).await.expect("release"));
            let handled = next();
            let t = fresh(&store, &handled).await;
            assert!(store.complete(&handled, t, LEASE).await.expect("complete"));
            let now = capacities(&store);
            changes += before.iter().zip(&now).filter(|(a, b)| a != b).count();
            before = now;
        }
        assert!(
            changes < rounds / 4,
            "{changes} reallocations in {rounds} rounds"
        );
        assert_eq!(store.entry_count(), 1_000);
    });
}
