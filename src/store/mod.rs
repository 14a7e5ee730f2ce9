//! Exactly-once bookkeeping: the [`IdempotencyStore`] trait and its
//! backends, [`MemoryStore`] (in memory, the default) and `RedisStore`
//! (feature `redis`, for several instances).
//!
//! The layer claims an event's key only after its signature verified, so a
//! forged request can never plant an id. Then:
//!
//! | claim says | the layer |
//! |---|---|
//! | [`Claim::Fresh`] | calls the handler; 2xx → [`complete`](IdempotencyStore::complete), anything else (error, panic, dropped request) → [`release`](IdempotencyStore::release) |
//! | [`Claim::InFlight`] | answers 409 with `Retry-After`; the handler is not called |
//! | [`Claim::Done`] | answers 200 with an empty body and `webhook-duplicate: true`; the handler is not called |
//!
//! A store is a small thing to write. This one keeps everything in a
//! `Mutex<HashMap>` (no expiry of completed ids, no capacity bound: use
//! [`MemoryStore`] for real):
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::{Duration, Instant};
//! use tower_webhook::store::{Claim, ClaimToken, EventKey, IdempotencyStore, StoreError};
//!
//! #[derive(Debug, Default)]
//! struct MapStore(Mutex<HashMap<String, Option<(ClaimToken, Instant)>>>);
//!
//! impl IdempotencyStore for MapStore {
//!     async fn claim(&self, key: &EventKey, lease: Duration) -> Result<Claim, StoreError> {
//!         let mut map = self.0.lock().unwrap();
//!         let now = Instant::now();
//!         match map.get(key.as_str()) {
//!             Some(None) => return Ok(Claim::Done),
//!             Some(Some((_, until))) if *until > now => {
//!                 return Ok(Claim::InFlight { retry_after: *until - now })
//!             }
//!             _ => {}
//!         }
//!         let token = ClaimToken::random();
//!         map.insert(key.as_str().to_owned(), Some((token, now + lease)));
//!         Ok(Claim::Fresh(token))
//!     }
//!     async fn complete(&self, key: &EventKey, token: ClaimToken, _ttl: Duration) -> Result<bool, StoreError> {
//!         let mut map = self.0.lock().unwrap();
//!         match map.get_mut(key.as_str()) {
//!             Some(slot @ Some(_)) if slot.as_ref().map(|s| s.0) == Some(token) => { *slot = None; Ok(true) }
//!             _ => Ok(false),
//!         }
//!     }
//!     async fn release(&self, key: &EventKey, token: ClaimToken) -> Result<bool, StoreError> {
//!         let mut map = self.0.lock().unwrap();
//!         if matches!(map.get(key.as_str()), Some(Some((t, _))) if *t == token) {
//!             map.remove(key.as_str());
//!             return Ok(true);
//!         }
//!         Ok(false)
//!     }
//! }
//!
//! # tokio_test_block_on(async {
//! let store = MapStore::default();
//! let key = EventKey::new("billing", "stripe", "evt_1");
//! let Claim::Fresh(token) = store.claim(&key, Duration::from_secs(60)).await? else { panic!() };
//! assert!(matches!(store.claim(&key, Duration::from_secs(60)).await?, Claim::InFlight { .. }));
//! assert!(store.complete(&key, token, Duration::from_secs(3600)).await?);
//! assert_eq!(store.claim(&key, Duration::from_secs(60)).await?, Claim::Done);
//! # Ok::<(), StoreError>(()) }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

mod memory;
pub use self::memory::MemoryStore;

/// Another name for [`MemoryStore`], which replaced the `moka`-based store
/// of this name.
#[deprecated(note = "use `MemoryStore`, the one in-memory store")]
pub type MokaStore = MemoryStore;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisStore;

/// The key an event is claimed under: `endpoint:provider:id`.
///
/// The endpoint name keeps two routes that receive the same provider apart
/// (two Stripe accounts, say).
///
/// The text is shared: cloning a key, or keeping it in a store with
/// [`to_shared`](Self::to_shared), copies nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventKey(Arc<str>);

impl EventKey {
    /// The key of event `id` from `provider` on `endpoint`.
    ///
    /// ```
    /// use tower_webhook::store::EventKey;
    ///
    /// let key = EventKey::new("billing", "stripe", "evt_1");
    /// assert_eq!(key.as_str(), "billing:stripe:evt_1");
    /// ```
    pub fn new(endpoint: &str, provider: &str, id: &str) -> Self {
        let parts = [endpoint, ":", provider, ":", id];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        // Joined on the stack, then copied once into the shared string.
        let mut buf = [0u8; 256];
        if let Some(out) = buf.get_mut(..len) {
            let mut at = 0;
            for p in parts {
                if let Some(dst) = out.get_mut(at..at + p.len()) {
                    dst.copy_from_slice(p.as_bytes());
                }
                at += p.len();
            }
            if let Ok(joined) = std::str::from_utf8(out) {
                return Self(Arc::from(joined));
            }
        }
        Self(Arc::from(parts.concat()))
    }

    /// The key as one string, e.g. `"billing:stripe:evt_1"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as a shared string: a store that keeps it takes this, at
    /// the cost of a reference count instead of a copy.
    pub fn to_shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Proof of a claim: only its holder can complete or release it, so a late
/// worker whose lease ran out cannot touch the next worker's claim.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken([u64; 2]);

impl fmt::Debug for ClaimToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimToken({:#034x})", self.as_u128())
    }
}

impl ClaimToken {
    /// A fresh token, unique among all tokens of all processes: a random
    /// 128-bit seed per process (from the OS, once) combined with a counter.
    /// Tokens need to be unique, not secret, and this keeps a system call
    /// off every claim.
    pub fn random() -> Self {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEED: OnceLock<u128> = OnceLock::new();
        static N: AtomicU64 = AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| {
            let mut b = [0u8; 16];
            if getrandom::fill(&mut b).is_ok() {
                return u128::from_le_bytes(b);
            }
            // Without an OS random source, fall back to the time and the
            // process id.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            t ^ (u128::from(std::process::id()) << 96)
        });
        let n = N.fetch_add(1, Ordering::Relaxed);
        // XOR with the seed is a bijection: distinct counters give distinct
        // tokens within the process; distinct seeds keep processes apart.
        Self::from_u128(seed ^ u128::from(n))
    }

    /// The token as a number (for stores that persist it).
    pub fn as_u128(self) -> u128 {
        let [hi, lo] = self.0;
        (u128::from(hi) << 64) | u128::from(lo)
    }

    /// A token read back from a store.
    pub fn from_u128(v: u128) -> Self {
        // Truncation intended: the low and the high word.
        #[allow(clippy::cast_possible_truncation)]
        Self([(v >> 64) as u64, v as u64])
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody had it: the caller holds it now and must complete or release it.
    Fresh(ClaimToken),
    /// Another delivery of the event is being handled; its lease ends in at
    /// most `retry_after`.
    InFlight {
        /// Time left on the other claim's lease.
        retry_after: Duration,
    },
    /// The event was handled successfully before.
    Done,
}

/// The store could not answer (connection lost, timeout).
#[derive(Debug, thiserror::Error)]
#[error("idempotency store: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error with a message (no secrets, please).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Remembers which events were handled, so that each is handled once.
///
/// Contract, which every backend passes (`tests/common/mod.rs`):
/// - of concurrent `claim`s of one key, exactly one sees [`Claim::Fresh`];
/// - an unfinished claim expires after `lease`, and the key can be claimed
///   again (a crashed worker does not block the event forever);
/// - `complete` marks the key done for `ttl`, `release` forgets it; both
///   only act when the token is the current claim's, and say whether they did.
pub trait IdempotencyStore: fmt::Debug + Send + Sync + 'static {
    /// Claims `key` for `lease`; of concurrent callers exactly one sees
    /// [`Claim::Fresh`].
    fn claim(
        &self,
        key: &EventKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks the claimed key as done for `ttl`. Returns `false` when `token`
    /// no longer holds the claim.
    fn complete(
        &self,
        key: &EventKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the claim up so that a retry is processed. Returns `false` when
    /// `token` no longer holds the claim.
    fn release(
        &self,
        key: &EventKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<S: IdempotencyStore> IdempotencyStore for Arc<S> {
    fn claim(
        &self,
        key: &EventKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim(key, lease)
    }
    fn complete(
        &self,
        key: &EventKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).complete(key, token, ttl)
    }
    fn release(
        &self,
        key: &EventKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).release(key, token)
    }
}

/// No de-duplication at all: every verified delivery reaches the handler.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

impl IdempotencyStore for NoStore {
    async fn claim(&self, _: &EventKey, _: Duration) -> Result<Claim, StoreError> {
        Ok(Claim::Fresh(ClaimToken([0; 2])))
    }
    async fn complete(&self, _: &EventKey, _: ClaimToken, _: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn release(&self, _: &EventKey, _: ClaimToken) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// Either of two stores, chosen at run time (say Redis when `REDIS_URL` is
/// set, else memory) without boxing.
#[derive(Debug, Clone)]
pub enum EitherStore<A, B> {
    /// The first store.
    Left(A),
    /// The second store.
    Right(B),
}

impl<A: IdempotencyStore, B: IdempotencyStore> IdempotencyStore for EitherStore<A, B> {
    async fn claim(&self, key: &EventKey, lease: Duration) -> Result<Claim, StoreError> {
        match self {
            Self::Left(s) => s.claim(key, lease).await,
            Self::Right(s) => s.claim(key, lease).await,
        }
    }
    async fn complete(
        &self,
        key: &EventKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Left(s) => s.complete(key, token, ttl).await,
            Self::Right(s) => s.complete(key, token, ttl).await,
        }
    }
    async fn release(&self, key: &EventKey, token: ClaimToken) -> Result<bool, StoreError> {
        match self {
            Self::Left(s) => s.release(key, token).await,
            Self::Right(s) => s.release(key, token).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn tokens_are_unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..25_000)
                        .map(|_| ClaimToken::random())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for t in threads {
            for token in t.join().expect("thread") {
                assert!(seen.insert(token), "token {token:?} handed out twice");
            }
        }
        assert_eq!(seen.len(), 100_000);
    }

    #[test]
    fn event_key_joins_endpoint_provider_and_id() {
        let k = EventKey::new("billing", "stripe", "evt_1");
        assert_eq!(k.as_str(), "billing:stripe:evt_1");
        assert_eq!(k.to_string(), "billing:stripe:evt_1");
    }
}
