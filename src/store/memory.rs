//! The in-memory store: sharded tables behind `Mutex`es. Each shard keeps
//! its ids in a ring, oldest first, and a small hash table from a short
//! hash of each key to its place in the ring.
//!
//! The layout follows where a delivery's time went. At 100 000 ids, a
//! table of entries (key, state, hash) is megabytes; every new id missed
//! the cache on its bucket, and again, with the evicted key's bucket and
//! string, at eviction: in the pipeline bench that cost 0.65 × the HMAC of
//! the delivery more than the same store at 1 000 ids. Here the table
//! holds only 8-byte slots (about 1 MiB in all, mostly cached); in a full
//! shard, eviction takes the ring's front and the new id, appended, takes
//! the place just freed (the ring is kept exactly full while nothing but
//! new ids arrive). Eviction reads only a ring of liveness flags beside the
//! entries: it leaves the evicted id's slot in the table, stale, until the
//! table runs out of room and is rebuilt at its size without them, so that
//! a new id's claim touches one table slot, not two, and the table never
//! doubles (hashbrown's answer to tombstones: past a 2 MiB L2 at 100 000
//! ids).

use std::collections::VecDeque;
use std::fmt;
use std::hash::BuildHasher;

// A seeded, fast hasher: keys are ids of verified deliveries (a sender
// chooses them), so the seed is random per store; SipHash cost more than
// the rest of a claim.
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Found;
// The clock the delivery's timings read (see `observe`): a claim and a
// completion read it once each.
use crate::observe::Instant;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{Claim, ClaimToken, EventKey, IdempotencyStore, StoreError};

/// Independent locks: concurrent deliveries of different ids rarely meet.
const SHARDS: usize = 32;

/// Ring positions are `u32`s (wrapping): a shard's ring, at most twice its
/// live ids plus a few, stays well under 2³¹, and a stale slot's place
/// (behind the front) is told from a live one's by how far behind it is,
/// so stale slots are dropped before the front has moved [`SWEEP`] places
/// past them.
const MAX_CAPACITY: usize = 1 << 30;

/// How far a shard's front may move before its stale slots are dropped,
/// whatever room its table has left (see [`MAX_CAPACITY`]).
const SWEEP: u32 = 1 << 30;

#[derive(Debug, Clone, Copy)]
enum State {
    InFlight {
        token: ClaimToken,
        until: Instant,
    },
    Done {
        until: Instant,
    },
    /// Released, or claimed again at a later place: skipped by eviction.
    Dead,
}

/// Keys up to this long (most: `endpoint:provider:id`) are kept in the
/// entry itself.
const INLINE: usize = 62;

/// A key as an entry keeps it: inline when short, so that neither claiming
/// nor evicting it touches memory outside the ring (an `Arc`'s count is one
/// more cache miss, and its atomic update waits for the table's writes).
enum Key {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Key {
    /// A key to be [`set`](Self::set).
    const EMPTY: Self = Self::Inline {
        len: 0,
        bytes: [0; INLINE],
    };

    /// Makes this `key`, in place.
    fn set(&mut self, key: &EventKey) {
        let text = key.as_str().as_bytes();
        if let Self::Inline { len, bytes } = self
            && let (Some(to), Ok(n)) = (bytes.get_mut(..text.len()), u8::try_from(text.len()))
        {
            to.copy_from_slice(text);
            *len = n;
            return;
        }
        *self = Self::Shared(key.to_shared());
    }

    fn is(&self, key: &str) -> bool {
        match self {
            Self::Inline { len, bytes } => bytes.get(..usize::from(*len)) == Some(key.as_bytes()),
            Self::Shared(k) => &**k == key,
        }
    }
}

/// One claimed id, in claim order. At 128 bytes, aligned, an entry is one
/// pair of cache lines, which the hardware fetches together (104 bytes
/// unaligned straddled up to three lines: the pipeline bench's steady
/// state ran 0.05 to 0.14 × its HMAC slower).
#[repr(C, align(128))]
struct Entry {
    state: State,
    key: Key,
}

/// The table's view of an entry: its short hash (so that the table never
/// reads the ring to grow) and its place in the ring.
#[derive(Clone, Copy)]
struct Slot {
    short: u32,
    pos: u32,
}

/// The table's hash of a short hash: spread over all 64 bits, since the
/// table takes its tags from the top ones.
fn spread(short: u32) -> u64 {
    u64::from(short).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The room to rebuild a table with for `live` ids: all the room of the
/// size that holds them with 64 more (hashbrown fills 7/8 of a power of two
/// of buckets), if that leaves a sixteenth spare; else an eighth more, in
/// a larger table. A shard a little above the average stays at the
/// average's size (at 100 000 ids, 3 125 in 4 096 buckets), and rebuilds
/// come no more often than once per 56 claims of a shard (the room left
/// is at least 64, and a rebuild comes when less than 8 is).
fn table_room(live: usize) -> usize {
    let buckets = ((live + 64) * 8 / 7).next_power_of_two();
    let within = buckets / 8 * 7;
    if within - live >= live / 16 + 64 {
        within
    } else {
        live + live / 8 + 64
    }
}

/// What a claim found.
enum Claimed {
    /// A live entry: the answer for the caller.
    Held(Claim),
    /// Added (`true`) or re-claimed after expiry (`false`), having evicted
    /// the shard's oldest entry or not.
    Fresh { added: bool, evicted: bool },
}

#[derive(Default)]
struct Shard {
    /// One slot per live entry, and one per entry evicted since the table
    /// was last rebuilt (stale: its place is behind `head`).
    slots: HashTable<Slot>,
    ring: VecDeque<Entry>,
    /// Whether each entry of `ring`, at the same index, is live (not
    /// `Dead`). Eviction reads this, 64 to a cache line, and neither the
    /// oldest entry (a cache miss: it was written 100 000 claims ago) nor
    /// its slot (another).
    live: VecDeque<bool>,
    /// Slots left behind by eviction since the table was last rebuilt.
    stale: usize,
    /// The place of `ring[0]`.
    head: u32,
    /// Whether this shard has evicted: its ring has reached its steady
    /// length, and grows by a little, not by doubling.
    settled: bool,
    /// `head` when the stale slots were last dropped.
    swept: u32,
}

/// The ring index of place `pos` when the ring's front is at place `head`.
fn offset(head: u32, pos: u32) -> usize {
    pos.wrapping_sub(head) as usize
}

impl Shard {
    /// The place the next entry will take.
    fn tail(&self) -> u32 {
        // Truncation is intended: places wrap (see `MAX_CAPACITY`).
        #[allow(clippy::cast_possible_truncation)]
        let len = self.ring.len() as u32;
        self.head.wrapping_add(len)
    }

    /// The live entry of `key` (short hash `short`), if any, for changing.
    fn find_mut(&mut self, short: u32, key: &str) -> Option<&mut Entry> {
        let (ring, head) = (&self.ring, self.head);
        let slot = self
            .slots
            .find(spread(short), |s| same(ring, head, s, short, key))?;
        self.ring.get_mut(offset(head, slot.pos))
    }

    /// Claims `key` with `state` unless a live entry holds it. A new id
    /// first evicts this shard's oldest when `full`.
    fn claim(
        &mut self,
        short: u32,
        key: &EventKey,
        state: State,
        now: Instant,
        full: bool,
    ) -> Claimed {
        if full {
            self.touch_next_victim();
        }
        if self.slots.capacity() - self.slots.len() < 8
            || self.head.wrapping_sub(self.swept) >= SWEEP
        {
            self.rebuild_table();
        }
        let tail = self.tail();
        let (ring, head) = (&self.ring, self.head);
        let name = key.as_str();
        // One probe finds the id or the place to put it; a new id reads
        // nothing but the table.
        let added = match self.slots.entry(
            spread(short),
            |s| same(ring, head, s, short, name),
            |s| spread(s.short),
        ) {
            Found::Occupied(mut held) => {
                let slot = held.get_mut();
                let at = offset(head, slot.pos);
                if let Some(entry) = self.ring.get_mut(at) {
                    match entry.state {
                        State::Done { until } if until > now => {
                            return Claimed::Held(Claim::Done);
                        }
                        State::InFlight { until, .. } if until > now => {
                            return Claimed::Held(Claim::InFlight {
                                retry_after: until.saturating_duration_since(now),
                            });
                        }
                        // Expired: claimed again as if new, at the back.
                        _ => {
                            entry.state = State::Dead;
                            if let Some(live) = self.live.get_mut(at) {
                                *live = false;
                            }
                        }
                    }
                }
                slot.pos = tail;
                false
            }
            Found::Vacant(place) => {
                place.insert(Slot { short, pos: tail });
                true
            }
        };
        // Evicting before appending (places are absolute: the new one's is
        // unchanged) lets a ring that is exactly full put the new entry
        // where the evicted one was. A ring with more than `slack` spare
        // places (it grew by doubling, or dead entries left it) is trimmed
        // to its length: one copy of the ring. A settled ring that is full
        // and must grow (a new id after a release, a re-claim) grows by
        // `slack`, so that trims stay one in many releases, not one per
        // release.
        let evicted = added && full && self.evict_oldest(None);
        let slack = 8 + self.ring.len() / 32;
        if self.settled && self.ring.len() == self.ring.capacity() {
            self.ring.reserve_exact(slack);
            self.live.reserve_exact(slack);
        }
        // The key is written where the entry lies, not built beside it and
        // copied: a key built on the stack was read back in wider pieces
        // than its copy wrote it, which waited for every store before it to
        // reach the cache, this claim's cache-missing table write among
        // them.
        self.ring.push_back(Entry {
            state,
            key: Key::EMPTY,
        });
        if let Some(entry) = self.ring.back_mut() {
            entry.key.set(key);
        }
        self.live.push_back(true);
        if evicted && self.ring.capacity() - self.ring.len() > slack {
            self.ring.shrink_to_fit();
            self.live.shrink_to_fit();
        }
        if self.ring.len() > 2 * (self.slots.len() - self.stale) + 16 {
            self.compact();
        }
        Claimed::Fresh { added, evicted }
    }

    /// Reads the entry the shard's next eviction will take (the one after
    /// the front), so that it is in the cache when that claim comes.
    ///
    /// A new id in a full shard writes its entry where the evicted one was,
    /// a line untouched since 100 000 claims ago; the shard's unlock (an x86
    /// locked instruction) then waits for that write to reach the cache.
    /// Read here, the next one's line comes in while this claim waits for
    /// its own (the two misses overlap), and stays cached until the shard's
    /// next claim, some 32 deliveries later: the pipeline bench was 0.03 to
    /// 0.08 × the HMAC dearer without it. A prefetch instruction would not
    /// hold up even this claim, but needs `unsafe`.
    fn touch_next_victim(&self) {
        std::hint::black_box(self.ring.get(1).map(|e| matches!(e.state, State::Dead)));
    }

    /// Rebuilds the table without its stale slots, with the room
    /// [`table_room`] gives its live ids, once it has no room left for a
    /// new id.
    ///
    /// In a full shard each new id's slot replaces an evicted one's: the
    /// evicted slot is left behind, stale (see
    /// [`evict_oldest`](Self::evict_oldest)), and would use the table's
    /// room up. Erased, it would mostly leave a tombstone, which uses room
    /// up too; left to itself, hashbrown's table then doubles (it rehashes
    /// in place only while at most half full): at 100 000 ids, 2.25 MiB of
    /// slots and control bytes instead of 1.1 MiB, past a 2 MiB L2 cache,
    /// and a new id's slot more often a cache miss (the pipeline bench was
    /// 0.08 to 0.21 × the HMAC dearer). Rebuilt at its size, it drops its
    /// stale slots and tombstones: in a full store of the default size,
    /// about once per 450 claims of a shard, ≈ 3 100 slots moved in
    /// ≈ 20 µs (≈ 45 ns a claim on average).
    fn rebuild_table(&mut self) {
        let (head, len) = (self.head, self.ring.len());
        let live = self.slots.len() - self.stale;
        let mut fresh = HashTable::with_capacity(table_room(live));
        for slot in self.slots.drain() {
            if offset(head, slot.pos) < len {
                fresh.insert_unique(spread(slot.short), slot, |s| spread(s.short));
            }
        }
        self.slots = fresh;
        self.stale = 0;
        self.swept = head;
    }

    /// Drops the dead entries (released or re-claimed ids) once they
    /// outnumber the live ones by more than 16, and moves the live ones'
    /// places; stale slots go too.
    fn compact(&mut self) {
        let head = self.head;
        let mut moved = Vec::with_capacity(self.ring.len());
        let mut live = 0u32;
        for &is_live in &self.live {
            moved.push(head.wrapping_add(live));
            live += u32::from(is_live);
        }
        self.slots
            .retain(|slot| match moved.get(offset(head, slot.pos)) {
                Some(&to) => {
                    slot.pos = to;
                    true
                }
                None => false,
            });
        self.stale = 0;
        self.swept = head;
        let mut flags = self.live.iter();
        self.ring.retain(|_| flags.next().is_some_and(|&l| l));
        self.live.retain(|&l| l);
    }

    /// Evicts the oldest live entry unless it is the claim of token
    /// `spare`; says whether it did. The entry's slot is left behind,
    /// stale, for the next [`rebuild_table`](Self::rebuild_table): finding
    /// it would read the table where nothing else does (a cache miss on
    /// every new id of a full store: the pipeline bench was 0.03 to 0.14 ×
    /// the HMAC dearer).
    fn evict_oldest(&mut self, spare: Option<ClaimToken>) -> bool {
        while let Some(&live) = self.live.front() {
            let newcomer = |e: &Entry| matches!(e.state, State::InFlight { token, .. } if Some(token) == spare);
            // Only `make_room` spares a claim; a claim's own eviction does
            // not read the oldest entry.
            if spare.is_some() && self.ring.front().is_some_and(newcomer) {
                // The newcomer itself: always admitted. (Its token names it
                // for sure; its place can change, when a compaction moves
                // it before the caller gets here.)
                return false;
            }
            self.ring.pop_front();
            self.live.pop_front();
            self.head = self.head.wrapping_add(1);
            if live {
                self.stale += 1;
                self.settled = true;
                return true;
            }
        }
        false
    }

    /// Removes the entry of `key` if `token` holds its live claim.
    fn release(&mut self, short: u32, key: &str, token: ClaimToken, now: Instant) -> bool {
        let (ring, head) = (&self.ring, self.head);
        let Ok(slot) = self
            .slots
            .find_entry(spread(short), |s| same(ring, head, s, short, key))
        else {
            return false;
        };
        let at = offset(head, slot.get().pos);
        match self.ring.get_mut(at) {
            Some(entry) if holds(entry, token, now) => {
                entry.state = State::Dead;
                if let Some(live) = self.live.get_mut(at) {
                    *live = false;
                }
                slot.remove();
                true
            }
            _ => false,
        }
    }
}

/// Whether `slot` is the slot of `key`.
fn same(ring: &VecDeque<Entry>, head: u32, slot: &Slot, short: u32, key: &str) -> bool {
    slot.short == short
        && ring
            .get(offset(head, slot.pos))
            .is_some_and(|e| e.key.is(key))
}

/// `now + d`, saturating at a century: a caller may well pass a huge TTL
/// (`Duration::MAX`) to mean "forever", and an `Instant` counts
/// nanoseconds in a `u64` (584 years from the clock's start).
fn deadline(now: Instant, d: Duration) -> Instant {
    const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(d.min(FOREVER)).unwrap_or(now)
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    capacity: usize,
    len: AtomicUsize,
}

/// The default store: in memory, bounded, zero set-up, and cheap (a claim
/// plus a completion of a new id in a full store of 100 000 cost less than
/// half of verifying a 1 KiB delivery, many times less than
/// [`MokaStore`](super::MokaStore)).
/// Right for one instance; with several behind a load balancer, use
/// `RedisStore`.
///
/// - At most [`capacity`](Self::with_capacity) ids (default 100 000). When
///   full, the oldest claimed id of the new id's shard is evicted (first in,
///   first out: with one TTL for all ids, the oldest is also the first to
///   expire). A new id is always admitted, so its duplicate is caught.
/// - Completed ids are kept for the TTL the layer passes (default 72 h).
/// - Claims expire after their lease (default 60 s). An expired entry
///   counts as absent at once; its memory is reused by eviction.
///
/// The ids are split into 32 shards, each behind its own `Mutex`, by a
/// randomly seeded foldhash of the key; each key is hashed once per
/// operation.
///
/// Memory: a 128-byte entry per id, which holds keys of up to 62 bytes,
/// a liveness flag and a table slot of 8 bytes; longer keys are kept
/// beside it. Released ids leave an entry behind until it is evicted or
/// compacted (at most one per live id, plus 16, per shard). The process
/// grew by 151 bytes per id when 300 000 new 43-byte keys went through a
/// store of the default capacity: some 15 MB, all of it in use once the
/// store is full.
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

    /// A store holding at most `capacity` ids (at least one, at most 2³⁰).
    pub fn with_capacity(capacity: usize) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::default()).collect();
        Self {
            inner: Arc::new(Inner {
                shards,
                hasher: RandomState::default(),
                capacity: capacity.clamp(1, MAX_CAPACITY),
                len: AtomicUsize::new(0),
            }),
        }
    }

    /// How many ids are held (expired ones included until they are evicted
    /// or claimed again).
    pub fn entry_count(&self) -> usize {
        self.inner.len.load(Ordering::Relaxed)
    }

    /// The key's shard and its short hash, from one hash.
    fn locate(&self, key: &str) -> (usize, u32) {
        let h = self.inner.hasher.hash_one(key);
        // Truncation is intended: the low half is the short hash, the high
        // half picks the shard.
        #[allow(clippy::cast_possible_truncation)]
        let (short, high) = (h as u32, (h >> 32) as usize);
        (high % SHARDS, short)
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

    /// Brings the count back to the capacity after the newcomer holding
    /// `token` was added to shard `first`, starting with that shard. Locks
    /// one shard at a time.
    fn make_room(&self, first: usize, token: ClaimToken) {
        let inner = &self.inner;
        for i in 0..SHARDS {
            if inner.len.load(Ordering::Relaxed) <= inner.capacity {
                return;
            }
            let index = (first + i) % SHARDS;
            let spare = (i == 0).then_some(token);
            if self.lock(index).evict_oldest(spare) {
                inner.len.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
    }

    /// Counts what a claim in shard `index` did, and makes room when a new
    /// id took the store over its capacity.
    fn settle(&self, index: usize, claimed: Claimed, token: ClaimToken) -> Claim {
        match claimed {
            Claimed::Held(answer) => return answer,
            Claimed::Fresh {
                added: true,
                evicted: false,
            } => {
                if self.inner.len.fetch_add(1, Ordering::Relaxed) >= self.inner.capacity {
                    self.make_room(index, token);
                }
            }
            // Re-claimed, or one in and one out: the count is unchanged.
            Claimed::Fresh { .. } => {}
        }
        Claim::Fresh(token)
    }
}

impl IdempotencyStore for MemoryStore {
    async fn claim(&self, event: &EventKey, lease: Duration) -> Result<Claim, StoreError> {
        let (index, short) = self.locate(event.as_str());
        let now = crate::observe::now();
        let token = ClaimToken::random();
        let state = State::InFlight {
            token,
            until: deadline(now, lease),
        };
        // A hint: when another shard's release races it, a new id evicts
        // one id early, never one too few (the count is exact).
        let full = self.inner.len.load(Ordering::Relaxed) >= self.inner.capacity;
        let claimed = self.lock(index).claim(short, event, state, now, full);
        Ok(self.settle(index, claimed, token))
    }

    async fn complete(
        &self,
        key: &EventKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = key.as_str();
        let (index, short) = self.locate(key);
        let now = crate::observe::now();
        let mut shard = self.lock(index);
        Ok(match shard.find_mut(short, key) {
            Some(entry) if holds(entry, token, now) => {
                entry.state = State::Done {
                    until: deadline(now, ttl),
                };
                true
            }
            _ => false,
        })
    }

    async fn release(&self, key: &EventKey, token: ClaimToken) -> Result<bool, StoreError> {
        let key = key.as_str();
        let (index, short) = self.locate(key);
        let now = crate::observe::now();
        let held = self.lock(index).release(short, key, token, now);
        if held {
            self.inner.len.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(held)
    }
}

/// Whether `token` holds the live claim in `entry`.
fn holds(entry: &Entry, token: ClaimToken, now: Instant) -> bool {
    matches!(entry.state, State::InFlight { token: t, until } if t == token && until > now)
}

#[cfg(test)]
mod tests {
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

    /// `f` of each shard's ring, after checking the shard's invariants:
    /// one liveness flag per entry, saying whether it is `Dead`; one slot
    /// per live entry, at its place, with its key's short hash; and as
    /// many other slots as `stale` counts, all behind the ring's front.
    fn rings(store: &MemoryStore, f: impl Fn(&VecDeque<Entry>) -> usize) -> Vec<usize> {
        let shards = store.inner.shards.iter();
        shards
            .map(|s| {
                let shard = s.lock().expect("lock");
                assert_eq!(shard.live.len(), shard.ring.len(), "one flag per entry");
                for (e, &live) in shard.ring.iter().zip(&shard.live) {
                    assert_eq!(live, !matches!(e.state, State::Dead), "flag and state");
                }
                let mut pointed = vec![0u32; shard.ring.len()];
                let mut stale = 0;
                for slot in shard.slots.iter() {
                    let at = offset(shard.head, slot.pos);
                    match (shard.ring.get(at), pointed.get_mut(at)) {
                        (Some(entry), Some(count)) => {
                            *count += 1;
                            let key = match &entry.key {
                                Key::Inline { len, bytes } => {
                                    std::str::from_utf8(&bytes[..usize::from(*len)])
                                        .expect("utf-8")
                                        .to_owned()
                                }
                                Key::Shared(k) => k.to_string(),
                            };
                            assert_eq!(store.locate(&key).1, slot.short, "a slot's short hash");
                        }
                        _ => {
                            assert!(at >= 1 << 31, "a stale slot's place is behind the front");
                            stale += 1;
                        }
                    }
                }
                assert_eq!(stale, shard.stale, "stale slots counted");
                for (&live, &count) in shard.live.iter().zip(&pointed) {
                    assert_eq!(count, u32::from(live), "one slot per live entry");
                }
                f(&shard.ring)
            })
            .collect()
    }

    /// Ids `k<from>`, `k<from + 1>`, … in (`true`) or out of (`false`) the
    /// shard of `key`.
    fn ids_by_shard<'a>(
        store: &'a MemoryStore,
        key: &EventKey,
        within: bool,
        from: usize,
    ) -> impl Iterator<Item = EventKey> + 'a {
        let shard = store.locate(key.as_str()).0;
        (from..)
            .map(|i| EventKey::new("e", "p", &format!("k{i}")))
            .filter(move |k| (store.locate(k.as_str()).0 == shard) == within)
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
            let longest = rings(&store, VecDeque::len).into_iter().max();
            // Compaction runs when a claim finds more than 2 × live + 16
            // places: after the last release, at most 18 are left.
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
            let first_shard = store.locate(first.as_str()).0;
            let evicted_later = keys[SHARDS * 4..]
                .iter()
                .any(|k| store.locate(k.as_str()).0 == first_shard);
            if evicted_later {
                assert!(matches!(
                    store.claim(first, LEASE).await.expect("claim"),
                    Claim::Fresh(_)
                ));
            }
        });
    }

    #[test]
    fn long_keys_are_kept_outside_the_entry_and_still_deduplicated() {
        run(async {
            let store = MemoryStore::with_capacity(10);
            let long = "x".repeat(3 * INLINE);
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
            // first place is stale).
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
            // Churn on other keys leaves dead places behind in every shard
            // until compaction drops them and moves the live ones.
            for i in 0..5_000 {
                let k = EventKey::new("e", "p", &format!("churn-{}", i % 64));
                let Claim::Fresh(t) = store.claim(&k, LEASE).await.expect("claim") else {
                    panic!("released id not fresh");
                };
                assert!(store.release(&k, t).await.expect("release"));
            }
            let longest = rings(&store, VecDeque::len)
                .into_iter()
                .max()
                .unwrap_or_default();
            assert!(longest <= 2 * 200 + 16, "ring grew to {longest}");
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
            // Nineteen released claims leave dead places in `a`'s shard.
            for k in ids_by_shard(&store, &a, true, 1).take(19) {
                let t = fresh(&store, &k).await;
                assert!(store.release(&k, t).await.expect("release"));
            }
            let mut elsewhere = ids_by_shard(&store, &a, false, 1000);
            let (b, c) = (elsewhere.next().expect("b"), elsewhere.next().expect("c"));
            store.claim(&b, LEASE).await.expect("claim");
            // `a`'s claim reads "not full" (1 of 2)...
            let full = store.inner.len.load(Ordering::Relaxed) >= store.inner.capacity;
            assert!(!full);
            // ... then another shard's claim fills the store...
            store.claim(&c, LEASE).await.expect("claim");
            // ... then `a`'s claim goes on, as `claim` does: appending it
            // compacts its shard (its place changes), and it is over the
            // capacity, so room is made: not by evicting `a` itself.
            let (index, short) = store.locate(a.as_str());
            let now = crate::observe::now();
            let token = ClaimToken::random();
            let state = State::InFlight {
                token,
                until: deadline(now, LEASE),
            };
            let claimed = store.lock(index).claim(short, &a, state, now, full);
            assert_eq!(store.settle(index, claimed, token), Claim::Fresh(token));
            assert!(matches!(
                store.claim(&a, LEASE).await.expect("claim"),
                Claim::InFlight { .. }
            ));
            assert!(store.complete(&a, token, LEASE).await.expect("complete"));
            assert_eq!(store.entry_count(), 2);
        });
    }

    #[test]
    fn a_full_stores_tables_keep_their_size_through_churn() {
        run(async {
            let capacity = 20_000;
            let store = MemoryStore::with_capacity(capacity);
            let room = |s: &MemoryStore| -> usize {
                let shards = s.inner.shards.iter();
                shards
                    .map(|m| m.lock().expect("lock").slots.capacity())
                    .sum()
            };
            let (filled, turns) = (22_000, 200_000);
            let mut next = numbered();
            fill(&store, &mut next, filled).await;
            let settled = room(&store);
            // Ten turns of the store: every claim evicts an id and leaves
            // its slot behind, stale, in its shard's table.
            fill(&store, &mut next, turns).await;
            assert_eq!(store.entry_count(), capacity);
            let after = room(&store);
            // Doubled tables (hashbrown's own answer to tombstones) would
            // have room for twice the ids; rebuilt ones keep the room they
            // had when the store filled (less what stale slots and
            // tombstones take).
            assert!(
                after <= settled,
                "tables grew to room for {after} ids (settled at {settled}) for {capacity}"
            );
            // Every id of the last turn is still a duplicate: rebuilding
            // lost none.
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
            rings(&store, VecDeque::len);
        });
    }

    #[test]
    fn stale_slots_are_dropped_before_the_front_moves_too_far_past_them() {
        let store = MemoryStore::with_capacity(1);
        let now = crate::observe::now();
        let claim = |shard: &mut Shard, key: &EventKey, full: bool| {
            let state = State::InFlight {
                token: ClaimToken::random(),
                until: deadline(now, LEASE),
            };
            shard.claim(store.locate(key.as_str()).1, key, state, now, full)
        };
        let mut shard = Shard::default();
        let (a, b, c) = (
            EventKey::new("e", "p", "a"),
            EventKey::new("e", "p", "b"),
            EventKey::new("e", "p", "c"),
        );
        claim(&mut shard, &a, false);
        // `b` evicts `a`, then `b` goes too: two stale slots, an empty ring.
        claim(&mut shard, &b, true);
        assert!(shard.evict_oldest(None));
        assert_eq!(
            (shard.stale, shard.slots.len(), shard.ring.len()),
            (2, 2, 0)
        );
        // Much later (its table never ran out of room: releases and
        // re-claims, say), the front has moved on by `SWEEP` places.
        shard.head = shard.head.wrapping_add(SWEEP);
        claim(&mut shard, &c, false);
        assert_eq!(
            (shard.stale, shard.slots.len()),
            (0, 1),
            "the stale slots were dropped before they could look live"
        );
    }

    #[test]
    fn dead_entries_are_compacted_whatever_stale_slots_the_table_holds() {
        run(async {
            let store = MemoryStore::with_capacity(2_000);
            let mut next = numbered();
            // Full, then churned: evictions leave stale slots behind.
            fill(&store, &mut next, 2_100).await;
            // Failed deliveries: each leaves a dead entry. Throughout, at
            // most one dead entry per live id, plus 16, as the docs say
            // (plus the newest claim's, released after its claim checked).
            let excess = |store: &MemoryStore| {
                rings(store, |ring| {
                    let live = ring.iter().filter(|e| !matches!(e.state, State::Dead));
                    ring.len().saturating_sub(2 * live.count() + 18)
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
                        "dead entries past the bound after {round} releases: {past:?}"
                    );
                }
            }
        });
    }

    #[test]
    fn releases_in_a_full_store_do_not_copy_the_ring_each_time() {
        run(async {
            let store = MemoryStore::with_capacity(1_000);
            let mut next = numbered();
            fill(&store, &mut next, 1_100).await;
            let capacities = |s: &MemoryStore| rings(s, VecDeque::capacity);
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
            // Doubling a full ring on each release and trimming it at the
            // next eviction changed a capacity about twice a round.
            assert!(
                changes < rounds / 4,
                "{changes} reallocations in {rounds} rounds"
            );
            assert_eq!(store.entry_count(), 1_000);
        });
    }
}
