//! The in-memory store on `moka`.

use std::fmt;
use std::time::{Duration, Instant};

use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::{Claim, ClaimToken, EventKey, IdempotencyStore, StoreError};

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

/// `now + d`, saturating: `Instant + Duration::MAX` would panic, and a
/// caller may well pass a huge TTL to mean "forever". Moka caps expiry
/// times on its own, far below this bound.
fn deadline(now: Instant, d: Duration) -> Instant {
    const FOREVER: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);
    now.checked_add(d.min(FOREVER))
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

/// Each entry lives until its own deadline: a lease for claims, the TTL for
/// completed ids.
struct PerEntry;

impl moka::Expiry<String, State> for PerEntry {
    fn expire_after_create(&self, _: &String, v: &State, now: Instant) -> Option<Duration> {
        Some(v.until().saturating_duration_since(now))
    }
    fn expire_after_update(
        &self,
        _: &String,
        v: &State,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.until().saturating_duration_since(now))
    }
}

/// The default store: in memory, bounded, zero set-up. Right for one
/// instance; with several behind a load balancer, use `RedisStore`.
///
/// - At most [`capacity`](Self::with_capacity) ids (default 100 000); when
///   full, the least recently used id is evicted. A new id is always
///   admitted (moka's default TinyLFU policy may refuse a brand-new key,
///   which would let its duplicate through).
/// - Completed ids are kept for the TTL the layer passes (default 72 h).
/// - Claims expire after their lease (default 60 s).
///
/// Choose the capacity above the number of events you receive within the
/// TTL: an id evicted early can be handled twice if it is redelivered.
#[derive(Clone)]
pub struct MokaStore {
    cache: Cache<String, State>,
    capacity: u64,
}

impl fmt::Debug for MokaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MokaStore")
            .field("capacity", &self.capacity)
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for MokaStore {
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

impl MokaStore {
    /// A store with the default capacity (100 000 ids).
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding at most `capacity` ids.
    pub fn with_capacity(capacity: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(PerEntry)
            .build();
        Self { cache, capacity }
    }

    /// How many ids are held (after pending evictions run).
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

impl IdempotencyStore for MokaStore {
    async fn claim(&self, key: &EventKey, lease: Duration) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let token = ClaimToken::random();
        let result = self
            .cache
            .entry_by_ref(key.as_str())
            .and_compute_with(|entry| match entry.map(|e| e.into_value()) {
                Some(state) if state.until() > now => Op::Nop,
                _ => Op::Put(State::InFlight {
                    token,
                    until: deadline(now, lease),
                }),
            });
        Ok(match result {
            CompResult::Inserted(_) | CompResult::ReplacedWith(_) => Claim::Fresh(token),
            CompResult::Unchanged(e) => match e.into_value() {
                State::Done { .. } => Claim::Done,
                // Measured from a fresh `now`: the holder may have stamped
                // its deadline after this call read the clock, and
                // `retry_after` must never exceed a lease.
                State::InFlight { until, .. } => Claim::InFlight {
                    retry_after: until.saturating_duration_since(Instant::now()),
                },
            },
            CompResult::StillNone(_) | CompResult::Removed(_) => {
                return Err(StoreError::new("moka: claim was not recorded"));
            }
        })
    }

    async fn complete(
        &self,
        key: &EventKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let result = self
            .cache
            .entry_by_ref(key.as_str())
            .and_compute_with(|entry| match entry.map(|e| e.into_value()) {
                Some(State::InFlight { token: t, .. }) if t == token => Op::Put(State::Done {
                    until: deadline(now, ttl),
                }),
                _ => Op::Nop,
            });
        Ok(matches!(result, CompResult::ReplacedWith(_)))
    }

    async fn release(&self, key: &EventKey, token: ClaimToken) -> Result<bool, StoreError> {
        let result = self
            .cache
            .entry_by_ref(key.as_str())
            .and_compute_with(|entry| match entry.map(|e| e.into_value()) {
                Some(State::InFlight { token: t, .. }) if t == token => Op::Remove,
                _ => Op::Nop,
            });
        Ok(matches!(result, CompResult::Removed(_)))
    }
}
