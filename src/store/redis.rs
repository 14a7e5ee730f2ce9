//! The shared store on Redis (feature `redis`).

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Claim, ClaimToken, EventKey, IdempotencyStore, StoreError};

/// What a completed key holds. A claim holds its token: 32 hex digits, so
/// the two never collide.
const DONE: &str = "done";

/// `SET NX PX` and, when the key is taken, what holds it, in one round trip.
/// Replies `{0}` (claimed), `{1, pttl}` (in flight) or `{2}` (done).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0}
end
if redis.call('GET', KEYS[1]) == ARGV[3] then
  return {2}
end
return {1, redis.call('PTTL', KEYS[1])}
",
    )
});

/// Compare-and-set: only the claim's holder marks the key done.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
",
    )
});

/// Compare-and-delete: only the claim's holder gives it up.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// The store for several instances behind a load balancer: every instance
/// that shares one Redis (and one prefix) handles each event once.
///
/// Each operation is one round trip running one script on one key, so the
/// store works against Redis Cluster too:
///
/// | operation | in Redis |
/// |---|---|
/// | claim | `SET key token NX PX lease`; when taken, `GET` + `PTTL` in the same script (done vs in flight, and for how long) |
/// | complete | if the value is still our token, `SET key done PX ttl` |
/// | release | if the value is still our token, `DEL key` |
///
/// The token makes a late worker harmless: once its lease ran out and
/// another delivery claimed the key, its `complete` or `release` changes
/// nothing.
///
/// # Deployment
///
/// [`connect`](Self::connect) configures the connection so that a dead
/// Redis gives an error within about a second (1 s to connect, 1 s per
/// answer, two quick reconnection attempts) instead of hanging; the layer
/// adds its own `store_timeout` (default 2 s) on top and then answers 503
/// with `Retry-After` (or handles the delivery anyway under
/// [`StorePolicy::FailOpen`](crate::StorePolicy::FailOpen)). The connection
/// re-establishes itself once Redis is back.
///
/// Keys are `prefix` + `endpoint:provider:id`. Give services that share a
/// Redis distinct prefixes, and let completed ids expire (the layer's TTL)
/// rather than using Redis eviction policies that may drop keys early.
///
/// ```no_run
/// use tower_webhook::{providers::Stripe, store::RedisStore, Secret, WebhookLayer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379", "webhooks:").await?;
/// let layer = WebhookLayer::builder(Stripe::new(Secret::text("whsec_...")?))
///     .with_store(store)
///     .build();
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection's Debug would show the URL, which may hold a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store over an existing connection manager, with keys starting with
    /// `prefix` (say `"webhooks:"`).
    ///
    /// Configure the manager's connection and response timeouts yourself:
    /// without them a dead Redis is only noticed through the layer's
    /// `store_timeout`.
    pub fn new(manager: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn: manager,
            prefix: Arc::from(prefix.into()),
        }
    }

    /// Connects to the Redis at `url` (`redis://[:password@]host:port[/db]`,
    /// or `rediss://` where TLS is enabled in `redis`) with timeouts suited
    /// to a request path (see [Deployment](Self#deployment)).
    ///
    /// # Errors
    ///
    /// When the URL does not parse or Redis does not answer.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self::new(manager, prefix))
    }

    /// The prefix of every key this store writes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &EventKey) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.as_str().len());
        k.push_str(&self.prefix);
        k.push_str(key.as_str());
        k
    }
}

fn token_text(token: ClaimToken) -> String {
    format!("{:032x}", token.as_u128())
}

/// Milliseconds for `PX`: at least 1 (Redis refuses 0), at most a thousand
/// years (Redis refuses what overflows its clock).
fn millis(d: Duration) -> u64 {
    const FOREVER_MS: u64 = 1000 * 365 * 24 * 3600 * 1000;
    u64::try_from(d.as_millis())
        .unwrap_or(FOREVER_MS)
        .clamp(1, FOREVER_MS)
}

impl IdempotencyStore for RedisStore {
    async fn claim(&self, key: &EventKey, lease: Duration) -> Result<Claim, StoreError> {
        let token = ClaimToken::random();
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = CLAIM
            .key(self.key(key))
            .arg(token_text(token))
            .arg(millis(lease))
            .arg(DONE)
            .invoke_async(&mut conn)
            .await?;
        match reply.as_slice() {
            [0] => Ok(Claim::Fresh(token)),
            [1, pttl] => Ok(Claim::InFlight {
                // -1 (no expiry) cannot come from this store; say "now".
                retry_after: Duration::from_millis(u64::try_from(*pttl).unwrap_or(0)),
            }),
            [2] => Ok(Claim::Done),
            _ => Err(StoreError::new("redis: unexpected reply to claim")),
        }
    }

    async fn complete(
        &self,
        key: &EventKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let done: i64 = COMPLETE
            .key(self.key(key))
            .arg(token_text(token))
            .arg(DONE)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }

    async fn release(&self, key: &EventKey, token: ClaimToken) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let removed: i64 = RELEASE
            .key(self.key(key))
            .arg(token_text(token))
            .invoke_async(&mut conn)
            .await?;
        Ok(removed == 1)
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        // Redis errors name the failing step and the server's message, never
        // the connection URL.
        StoreError::with_source(format!("redis: {e}"), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_in_millis_is_never_zero_nor_unbounded() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(60)), 60_000);
        assert_eq!(millis(Duration::MAX), 1000 * 365 * 24 * 3600 * 1000);
    }

    #[test]
    fn token_text_is_32_hex_digits_and_never_the_done_marker() {
        let t = token_text(ClaimToken::from_u128(0xab));
        assert_eq!(t.len(), 32);
        assert_eq!(t, "000000000000000000000000000000ab");
        assert_ne!(token_text(ClaimToken::from_u128(0)), DONE);
    }
}
