//! The in-memory store: sharded `Mutex<HashMap>`s with a deadline per entry.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;

// A seeded, fast hasher: keys are ids of verified deliveries (a sender
// chooses them), so the seed is random per store; SipHash cost more than
// the rest of a claim.
use foldhash::fast::RandomState;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Claim, ClaimToken, EventKey, IdempotencyStore, StoreError};

/// Independent locks: concurrent deliveries of different ids rarely meet.
const SHARDS: usize = 32;

#[derive(Debug, Clone, Copy)]
enum State {
    InFlight { token: ClaimToken, until: Instant },
    Done { until: Instant },
}

impl State {
    fn until(&self) -> Instant {
        match self {
            Self::InFlight { until, .. } | Self::Done { until } => *until,
        }
    }
}

/// One entry: its state and the sequence number of its place in the
/// eviction queue (an older place of the same key is stale and skipped).
struct Slot {
    state: State,
    seq: u64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Arc<str>, Slot, RandomState>,
    /// Keys in the order they were (re)claimed, oldest first.
    order: VecDeque<(Arc<str>, u64)>,
    next_seq: u64,
}

impl Shard {
    /// Records `key` as claimed now and returns its place in the queue.
    fn put(&mut self, key: Arc<str>, state: State) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.order.push_back((Arc::clone(&key), seq));
        self.map.insert(key, Slot { state, seq });
        // Released and re-claimed keys leave stale places behind: drop them
        // before they outnumber the live ones.
        if self.order.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(&**k).is_some_and(|slot| slot.seq == *s));
        }
        seq
    }

    /// Evicts the oldest live entry other than `(spare, spare_seq)`; says
    /// whether it did.
    fn evict_oldest(&mut self, spare: &str, spare_seq: u64) -> bool {
        while let Some((k, seq)) = self.order.pop_front() {
            let live = self.map.get(&*k).is_some_and(|slot| slot.seq == seq);
            if !live {
                continue;
            }
            if seq == spare_seq && &*k == spare {
                // The newcomer itself: always admitted.
                self.order.push_front((k, seq));
                return false;
            }
            self.map.remove(&*k);
            return true;
        }
        false
    }
}

/// `now + d`, saturating: `Instant + Duration::MAX` would panic, and a
/// caller may well pass a huge TTL to mean "forever".
fn deadline(now: Instant, d: Duration) -> Instant {
    const FOREVER: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);
    now.checked_add(d.min(FOREVER))
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    capacity: usize,
    len: AtomicUsize,
}

/// The default store: in memory, bounded, zero set-up, and cheap (a claim
/// plus a completion cost about as much as verifying a 1 KiB delivery,
/// several times less than [`MokaStore`](super::MokaStore)). Right for one
/// instance; with several behind a load balancer, use `RedisStore`.
///
/// - At most [`capacity`](Self::with_capacity) ids (default 100 000). When
///   full, the oldest claimed id of the new id's shard is evicted (first in,
///   first out: with one TTL for all ids, the oldest is also the first to
///   expire). A new id is always admitted, so its duplicate is caught.
/// - Completed ids are kept for the TTL the layer passes (default 72 h).
/// - Claims expire after their lease (default 60 s). An expired entry
///   counts as absent at once; its memory is reused by eviction.
///
/// The map is split into 32 shards, each behind its own `Mutex`, keyed with
/// std's randomly seeded SipHash.
///
/// Choose the capacity above the number of events you receive within the
/// TTL: an id evicted early can be handled twice if it is redelivered.
///
/// ```
/// use std::time::Duration;
/// use tower_webhook::store::{Claim, EventKey, IdempotencyStore, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::with_capacity(10_000);
/// let key = EventKey::new("billing", "stripe", "evt_1");
/// let Claim::Fresh(token) = store.claim(&key, Duration::from_secs(60)).await? else {
///     unreachable!("a new id is fresh")
/// };
/// assert!(store.complete(&key, token, Duration::from_secs(3600)).await?);
/// assert_eq!(store.claim(&key, Duration::from_secs(60)).await?, Claim::Done);
/// assert_eq!(store.entry_count(), 1);
/// # Ok::<(), tower_webhook::store::StoreError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.inner.capacity)
            .field("entries", &self.entry_count())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

impl MemoryStore {
    /// A store with the default capacity (100 000 ids).
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding at most `capacity` ids (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::default()).collect();
        Self {
            inner: Arc::new(Inner {
                shards,
                hasher: RandomState::default(),
                capacity: capacity.max(1),
                len: AtomicUsize::new(0),
            }),
        }
    }

    /// How many ids are held (expired ones included until they are evicted
    /// or claimed again).
    pub fn entry_count(&self) -> usize {
        self.inner.len.load(Ordering::Relaxed)
    }

    fn shard_index(&self, key: &str) -> usize {
        // Truncation is intended: only the low bits pick the shard.
        #[allow(clippy::cast_possible_truncation)]
        let h = self.inner.hasher.hash_one(key) as usize;
        h % SHARDS
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard> {
        // Nothing panics while a shard is locked; if something did, the map
        // is still consistent, so go on.
        self.inner
            .shards
            .get(index % SHARDS)
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
            .unwrap_or_else(|| unreachable!("index is reduced modulo SHARDS"))
    }

    /// Brings the count back to the capacity after `newcomer` was added,
    /// starting with its own shard. Locks one shard at a time.
    fn make_room(&self, first: usize, newcomer: &str, seq: u64) {
        let inner = &self.inner;
        for i in 0..SHARDS {
            if inner.len.load(Ordering::Relaxed) <= inner.capacity {
                return;
            }
            let index = (first + i) % SHARDS;
            let spare_seq = if i == 0 { seq } else { u64::MAX };
            if self.lock(index).evict_oldest(newcomer, spare_seq) {
                inner.len.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

impl IdempotencyStore for MemoryStore {
    async fn claim(&self, event: &EventKey, lease: Duration) -> Result<Claim, StoreError> {
        let key = event.as_str();
        let now = Instant::now();
        let index = self.shard_index(key);
        let mut shard = self.lock(index);
        let owned = match shard.map.get(key) {
            Some(slot) if slot.state.until() > now => {
                return Ok(match slot.state {
                    State::Done { .. } => Claim::Done,
                    State::InFlight { until, .. } => Claim::InFlight {
                        retry_after: until.saturating_duration_since(now),
                    },
                });
            }
            // Expired: claimed again as if new, at the back of the queue.
            Some(_) => shard.map.remove_entry(key).map(|(k, _)| k),
            None => None,
        };
        let added = owned.is_none();
        let token = ClaimToken::random();
        let state = State::InFlight {
            token,
            until: deadline(now, lease),
        };
        let seq = shard.put(owned.unwrap_or_else(|| event.to_shared()), state);
        drop(shard);
        if added && self.inner.len.fetch_add(1, Ordering::Relaxed) >= self.inner.capacity {
            self.make_room(index, key, seq);
        }
        Ok(Claim::Fresh(token))
    }

    async fn complete(
        &self,
        key: &EventKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = key.as_str();
        let now = Instant::now();
        let mut shard = self.lock(self.shard_index(key));
        Ok(match shard.map.get_mut(key) {
            Some(slot) if holds(slot, token, now) => {
                slot.state = State::Done {
                    until: deadline(now, ttl),
                };
                true
            }
            _ => false,
        })
    }

    async fn release(&self, key: &EventKey, token: ClaimToken) -> Result<bool, StoreError> {
        let key = key.as_str();
        let now = Instant::now();
        let mut shard = self.lock(self.shard_index(key));
        let held = shard.map.get(key).is_some_and(|s| holds(s, token, now));
        if held {
            shard.map.remove(key);
            drop(shard);
            self.inner.len.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(held)
    }
}

/// Whether `token` holds the live claim in `slot`.
fn holds(slot: &Slot, token: ClaimToken, now: Instant) -> bool {
    matches!(slot.state, State::InFlight { token: t, until } if t == token && until > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(60);

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
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
            let longest = store
                .inner
                .shards
                .iter()
                .map(|s| s.lock().expect("lock").order.len())
                .max();
            assert!(
                longest.is_some_and(|n| n <= 16),
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
                let Claim::Fresh(t) = store.claim(k, LEASE).await.expect("claim") else {
                    panic!("new id not fresh");
                };
                assert!(store.complete(k, t, LEASE).await.expect("complete"));
            }
            assert_eq!(store.entry_count(), SHARDS * 4);
            // The newest id is held.
            let last = keys.last().expect("keys");
            assert_eq!(store.claim(last, LEASE).await.expect("claim"), Claim::Done);
            // The very first id was the oldest of its shard: once the store
            // was full, the next id of that shard evicted it.
            let first = &keys[0];
            let first_shard = store.shard_index(first.as_str());
            let evicted_later = keys[SHARDS * 4..]
                .iter()
                .any(|k| store.shard_index(k.as_str()) == first_shard);
            if evicted_later {
                assert!(matches!(
                    store.claim(first, LEASE).await.expect("claim"),
                    Claim::Fresh(_)
                ));
            }
        });
    }
}
