//! The in-memory store: sharded maps, each with a queue in claim order.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

// Fast, and seeded per store and per shard: senders choose the ids.
use foldhash::fast::RandomState;

use super::{Claim, ClaimToken, EventKey, IdempotencyStore, StoreError};
use crate::observe::{self, Instant};

/// Independent locks: concurrent deliveries of different ids rarely meet.
const SHARDS: usize = 32;

/// A held id: in flight while it has a token, done once completed.
struct Entry {
    token: Option<ClaimToken>,
    /// The end of its lease, or of its TTL once done.
    until: Instant,
    /// The number of the claim that put the id where it is in the queue.
    seq: u64,
}

/// What a claim found in its shard.
enum Claimed {
    /// A live entry: the answer for the caller.
    Held(Claim),
    /// An expired entry, claimed again (it moved to the back of the queue).
    Again,
    /// A new id, at the back of the queue with claim number `seq`.
    New { seq: u64 },
}

#[derive(Default)]
struct Shard {
    map: HashMap<Arc<str>, Entry, RandomState>,
    /// The shard's ids in claim order, oldest first, each with the number
    /// of its claim. An item whose number is not its entry's is stale (the
    /// id was released, or claimed again later): it is skipped, and
    /// dropped once the stale items outnumber the live ones by 16.
    queue: VecDeque<(u64, Arc<str>)>,
    next: u64,
}

impl Shard {
    /// Claims `key` with `fresh` (given its claim number here) unless a
    /// live entry holds it.
    fn claim(&mut self, key: &EventKey, mut fresh: Entry, now: Instant) -> Claimed {
        let seq = self.next;
        self.next += 1;
        fresh.seq = seq;
        let claimed = match self.map.get_mut(key.as_str()) {
            Some(held) if held.until > now => {
                return Claimed::Held(match held.token {
                    Some(_) => Claim::InFlight {
                        retry_after: held.until.saturating_duration_since(now),
                    },
                    None => Claim::Done,
                });
            }
            Some(expired) => {
                *expired = fresh;
                Claimed::Again
            }
            None => {
                // Removed ids leave tombstones that use a map's room up, and
                // hashbrown then doubles it: rebuilt with a sixteenth to
                // spare, a full store's map keeps its size through churn.
                if self.map.len() == self.map.capacity() {
                    let room = self.map.len() * 17 / 16 + 16;
                    let mut map = HashMap::with_capacity_and_hasher(room, RandomState::default());
                    map.extend(self.map.drain());
                    self.map = map;
                }
                self.map.insert(key.to_shared(), fresh);
                Claimed::New { seq }
            }
        };
        self.queue.push_back((seq, key.to_shared()));
        if self.queue.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.queue
                .retain(|(seq, key)| map.get(&**key).is_some_and(|e| e.seq == *seq));
        }
        claimed
    }

    /// Removes ids from the front of the queue: each one expired at `now`,
    /// and, if `evict`, the oldest live one; never the id claimed with
    /// number `spare`. Returns how many it removed.
    fn trim(&mut self, now: Instant, mut evict: bool, spare: Option<u64>) -> usize {
        let mut removed = 0;
        while let Some((seq, key)) = self.queue.front() {
            if let Some(entry) = self.map.get(&**key).filter(|e| e.seq == *seq) {
                if Some(*seq) == spare || !(entry.until <= now || evict) {
                    break;
                }
                evict = false;
                self.map.remove(&**key);
                removed += 1;
            }
            self.queue.pop_front();
        }
        removed
    }
}

/// `now + d`, saturating at a century: a caller may pass `Duration::MAX` to
/// mean "forever", and an `Instant` counts nanoseconds in a `u64`.
fn deadline(now: Instant, d: Duration) -> Instant {
    const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(d.min(FOREVER)).unwrap_or(now)
}

struct Inner {
    shards: [Mutex<Shard>; SHARDS],
    hasher: RandomState,
    capacity: usize,
    /// The ids held in all shards.
    len: AtomicUsize,
}

/// The default store: in memory, bounded, zero set-up. Right for one
/// instance; with several behind a load balancer, use `RedisStore`.
///
/// - At most [`capacity`](Self::with_capacity) ids (default 100 000). The
///   ids are split into 32 shards, each a `HashMap` behind its own `Mutex`
///   with a queue of its ids in claim order. When full, a new id evicts the
///   oldest claimed id of its shard (first in, first out: with one TTL for
///   all ids, the oldest is also the first to expire), or of another shard
///   when its own holds no other. A new id is always admitted, so its
///   duplicate is caught.
/// - Completed ids are kept for the TTL the layer passes (default 72 h).
/// - Claims expire after their lease (default 60 s); an id claimed again
///   moves to the back of the queue. An expired id counts as absent at
///   once; it is freed when a new id of its shard finds it at the front of
///   the queue, or by eviction.
///
/// Memory: per id, the [`EventKey`]'s text (shared, not copied), a 56-byte
/// map entry and a 24-byte queue item: with 43-byte keys, about 170 heap
/// bytes per id (17 MB at the default capacity; `cargo bench --bench
/// allocations` measures it).
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
        Self {
            inner: Arc::new(Inner {
                shards: std::array::from_fn(|_| Mutex::default()),
                hasher: RandomState::default(),
                capacity: capacity.max(1),
                len: AtomicUsize::new(0),
            }),
        }
    }

    /// How many ids are held, expired ones included until they are freed.
    pub fn entry_count(&self) -> usize {
        self.inner.len.load(Ordering::Relaxed)
    }

    fn shard_of(&self, key: &str) -> usize {
        // Truncation is intended: any bits of the hash pick a shard.
        #[allow(clippy::cast_possible_truncation)]
        let h = self.inner.hasher.hash_one(key) as usize;
        h % SHARDS
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard> {
        // Nothing panics while a shard is locked; if something did, the
        // shard is still consistent, so go on.
        let shard = &self.inner.shards[index % SHARDS];
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Evicts one id from the shards after `first`, in turn, while the
    /// store is over its capacity. Locks one shard at a time.
    fn make_room(&self, first: usize) {
        let inner = &self.inner;
        for i in 1..SHARDS {
            if inner.len.load(Ordering::Relaxed) <= inner.capacity {
                return;
            }
            let removed = self.lock(first + i).trim(observe::now(), true, None);
            inner.len.fetch_sub(removed, Ordering::Relaxed);
        }
    }
}

impl IdempotencyStore for MemoryStore {
    async fn claim(&self, key: &EventKey, lease: Duration) -> Result<Claim, StoreError> {
        let index = self.shard_of(key.as_str());
        let token = ClaimToken::random();
        let mut shard = self.lock(index);
        // Read under the lock: a live claim was stamped no later, so the
        // time left on it is at most its lease.
        let now = observe::now();
        let fresh = Entry {
            token: Some(token),
            until: deadline(now, lease),
            seq: 0,
        };
        let seq = match shard.claim(key, fresh, now) {
            Claimed::Held(answer) => return Ok(answer),
            Claimed::Again => return Ok(Claim::Fresh(token)),
            Claimed::New { seq } => seq,
        };
        let inner = &self.inner;
        let over = inner.len.fetch_add(1, Ordering::Relaxed) >= inner.capacity;
        let removed = shard.trim(now, over, Some(seq));
        inner.len.fetch_sub(removed, Ordering::Relaxed);
        drop(shard);
        if over && removed == 0 {
            // Nothing older in this shard: another one gives an id up.
            self.make_room(index);
        }
        Ok(Claim::Fresh(token))
    }

    async fn complete(
        &self,
        key: &EventKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut shard = self.lock(self.shard_of(key.as_str()));
        let now = observe::now();
        Ok(match shard.map.get_mut(key.as_str()) {
            Some(e) if e.token == Some(token) && e.until > now => {
                e.token = None;
                e.until = deadline(now, ttl);
                true
            }
            _ => false,
        })
    }

    async fn release(&self, key: &EventKey, token: ClaimToken) -> Result<bool, StoreError> {
        let mut shard = self.lock(self.shard_of(key.as_str()));
        let now = observe::now();
        match shard.map.get(key.as_str()) {
            Some(e) if e.token == Some(token) && e.until > now => {}
            _ => return Ok(false),
        }
        shard.map.remove(key.as_str());
        self.inner.len.fetch_sub(1, Ordering::Relaxed);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
