//! Rate limits before and after authentication, on `governor`.
//!
//! Two stages, each optional, each a keyed GCRA limiter:
//!
//! - **Pre-authentication** ([`PreAuthLimiter`], set with
//!   [`pre_auth_limit`](crate::middleware::WebhookLayerBuilder::pre_auth_limit)),
//!   keyed by the client's address. It runs first, before the method check,
//!   before the body is read and before any signature is computed, so a
//!   flood costs one hash-map lookup per request: no body read, no HMAC.
//! - **Post-authentication** ([`PostAuthLimiter`], set with
//!   [`post_auth_limit`](crate::middleware::WebhookLayerBuilder::post_auth_limit)),
//!   keyed by what verification proved (by default the endpoint and the
//!   provider; any key you compute from [`Verified`] and the request head).
//!   It runs after verification and before the idempotency claim, so only
//!   genuine deliveries count against it.
//!
//! A refused request gets `429 Too Many Requests` with `Retry-After` in
//! whole seconds, rounded up from the earliest time the limiter would
//! accept. With
//! [`rate_limit_headers`](crate::middleware::WebhookLayerBuilder::rate_limit_headers)
//! the responses also carry the `RateLimit-Policy` and `RateLimit` fields of
//! the IETF draft (`draft-ietf-httpapi-ratelimit-headers`).
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_webhook::client::ClientAddr;
//! use tower_webhook::rate_limit::RateLimit;
//! use tower_webhook::{providers::GitHub, Secret, WebhookLayer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = WebhookLayer::builder(GitHub::new(Secret::text("s3cret")?))
//!     .pre_auth_limit(RateLimit::per_minute(1)?)
//!     .build();
//! let svc = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|_req: Request<Full<Bytes>>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
//!     }));
//!
//! let from = |addr: &str| -> Result<Request<Full<Bytes>>, Box<dyn std::error::Error>> {
//!     let mut req = Request::post("/hooks/github").body(Full::new(Bytes::from_static(b"{}")))?;
//!     req.extensions_mut().insert(ClientAddr(addr.parse::<SocketAddr>()?));
//!     Ok(req)
//! };
//! // Unsigned: the first gets as far as verification (401), the second
//! // is refused before its body is read.
//! let first = svc.clone().oneshot(from("192.0.2.1:5000")?).await?;
//! assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
//! let second = svc.clone().oneshot(from("192.0.2.1:5001")?).await?;
//! assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(second.headers()["retry-after"], "60");
//! // Another client has its own budget.
//! let other = svc.oneshot(from("198.51.100.7:5000")?).await?;
//! assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```
//!
//! # Deployment
//! The client is the peer address ([`ClientAddr`](crate::client::ClientAddr)
//! or axum's `ConnectInfo`); behind a reverse proxy, list the proxy in
//! [`trusted_proxies`](crate::middleware::WebhookLayerBuilder::trusted_proxies)
//! so that its `Forwarded` / `X-Forwarded-For` is believed (see
//! [`crate::client`]). IPv6 clients are keyed by their `/64` network: one host
//! usually holds a whole `/64`, and per-address keys would let it mint
//! fresh budgets at will.
//!
//! When no peer address is known (the server did not provide one), all such
//! requests share one bucket: the limit still holds as a whole, it is never
//! silently off. A warning is logged once.
//!
//! # Memory
//! Every client seen takes an entry. The layer shrinks its limiters
//! periodically (every 60 s by default,
//! [`rate_limit_housekeeping`](crate::middleware::WebhookLayerBuilder::rate_limit_housekeeping)):
//! an entry whose bucket is full again is dropped, so memory follows the
//! clients seen in the last window, not all clients ever seen. The task is
//! started lazily on first use inside a tokio runtime, holds only a weak
//! reference, and ends when the layer is dropped.

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock as _, FakeRelativeClock, QuantaClock, QuantaInstant, Reference as _};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{NotUntil, Quota};
use http::request::Parts;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue};

use crate::client::{TrustedProxies, peer_addr};
use crate::error::{ConfigError, WebhookError};
use crate::verify::Verified;

/// The `RateLimit` response field (IETF draft): what is left.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The `RateLimit-Policy` response field (IETF draft): the quotas.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// How often the layer shrinks its limiters unless told otherwise.
pub(crate) const DEFAULT_HOUSEKEEPING: Duration = Duration::from_secs(60);

/// A quota: a sustained rate and a burst size.
///
/// `RateLimit::per_second(10)` lets a client send 10 requests at once, then
/// one every 100 ms; [`burst`](Self::burst) changes how many may come at
/// once without changing the sustained rate.
///
/// ```
/// use std::time::Duration;
/// use tower_webhook::rate_limit::RateLimit;
///
/// let limit = RateLimit::per_minute(120)?.burst(20)?;
/// assert_eq!(limit.replenish_interval(), Duration::from_millis(500));
/// assert_eq!(limit.burst_size(), 20);
/// assert!(RateLimit::per_second(0).is_err());
/// # Ok::<(), tower_webhook::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    quota: Quota,
}

impl RateLimit {
    /// `count` requests per second, in a burst of `count`.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] if `count` is 0 or above 10⁹.
    pub fn per_second(count: u32) -> Result<Self, ConfigError> {
        Self::per(count, Duration::from_secs(1))
    }

    /// `count` requests per minute, in a burst of `count`.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] if `count` is 0.
    pub fn per_minute(count: u32) -> Result<Self, ConfigError> {
        Self::per(count, Duration::from_secs(60))
    }

    /// `count` requests per hour, in a burst of `count`.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] if `count` is 0.
    pub fn per_hour(count: u32) -> Result<Self, ConfigError> {
        Self::per(count, Duration::from_secs(3600))
    }

    /// `count` requests per `period`, in a burst of `count`.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] if `count` is 0 or the interval between
    /// two requests (`period / count`) is under one nanosecond.
    pub fn per(count: u32, period: Duration) -> Result<Self, ConfigError> {
        let burst = NonZeroU32::new(count).ok_or(ConfigError::OutOfRange("rate limit count"))?;
        let interval = period / count;
        let quota = Quota::with_period(interval)
            .ok_or(ConfigError::OutOfRange("rate limit interval"))?
            .allow_burst(burst);
        Ok(Self { quota })
    }

    /// How many requests may come at once (default: the count per period).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] if `size` is 0.
    pub fn burst(self, size: u32) -> Result<Self, ConfigError> {
        let burst = NonZeroU32::new(size).ok_or(ConfigError::OutOfRange("rate limit burst"))?;
        Ok(Self {
            quota: self.quota.allow_burst(burst),
        })
    }

    /// The time it takes to earn one request back.
    pub fn replenish_interval(&self) -> Duration {
        self.quota.replenish_interval()
    }

    /// How many requests may come at once.
    pub fn burst_size(&self) -> u32 {
        self.quota.burst_size().get()
    }

    /// The time after which an exhausted burst is whole again.
    pub fn window(&self) -> Duration {
        self.quota.burst_size_replenished_in()
    }
}

/// A clock for the rate limiters that only moves when told to, for tests.
/// Clones share one time.
///
/// ```
/// use std::time::Duration;
/// use tower_webhook::client::TrustedProxies;
/// use tower_webhook::rate_limit::{ManualClock, PreAuthLimiter, RateLimit};
///
/// let clock = ManualClock::new();
/// let limiter = PreAuthLimiter::with_clock(RateLimit::per_second(1)?, TrustedProxies::none(), &clock);
/// let (h, e) = (http::HeaderMap::new(), http::Extensions::new());
/// assert!(limiter.check(&h, &e).is_ok());
/// assert!(limiter.check(&h, &e).is_err());
/// clock.advance(Duration::from_secs(1));
/// assert!(limiter.check(&h, &e).is_ok());
/// # Ok::<(), tower_webhook::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(FakeRelativeClock);

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward (it cannot go past about 584 years).
    pub fn advance(&self, by: Duration) {
        self.0.advance(by);
    }
}

/// The limiters' time source: monotonic (quanta) or manual.
#[derive(Debug, Clone)]
enum Ticker {
    Real {
        clock: QuantaClock,
        origin: QuantaInstant,
    },
    Manual(FakeRelativeClock),
}

impl Ticker {
    fn new(manual: Option<&ManualClock>) -> Self {
        match manual {
            Some(m) => Self::Manual(m.0.clone()),
            None => {
                let clock = QuantaClock::default();
                let origin = clock.now();
                Self::Real { clock, origin }
            }
        }
    }
}

impl governor::clock::Clock for Ticker {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match self {
            Self::Real { clock, origin } => clock.now().duration_since(*origin),
            Self::Manual(c) => c.now(),
        }
    }
}

type Governor<K> =
    governor::RateLimiter<K, DashMapStateStore<K>, Ticker, StateInformationMiddleware>;

/// The outcome of one check, for the response fields: what they show, in
/// their units (whole seconds, rounded up). Kept compact (24 bytes): two
/// of these live in every delivery's future.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally {
    burst: NonZeroU32,
    remaining: u32,
    window_secs: u64,
    reset_secs: u64,
}

/// One keyed limiter with its quota and its housekeeping flag.
struct Keyed<K: Hash + Eq + Clone> {
    governor: Governor<K>,
    limit: RateLimit,
    /// The quota's window in whole seconds, for every tally.
    window_secs: u64,
    housekeeping_started: AtomicBool,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(limit: RateLimit, ticker: Ticker) -> Self {
        Self {
            governor: governor::RateLimiter::dashmap_with_clock(limit.quota, ticker)
                .with_middleware::<StateInformationMiddleware>(),
            limit,
            window_secs: whole_secs(limit.window()),
            housekeeping_started: AtomicBool::new(false),
        }
    }

    fn tally(&self, remaining: u32, reset: Duration) -> Tally {
        Tally {
            burst: self.limit.quota.burst_size(),
            remaining,
            window_secs: self.window_secs,
            reset_secs: whole_secs(reset),
        }
    }

    fn check(&self, key: &K) -> Result<Tally, (Tally, WebhookError)> {
        let interval = self.limit.replenish_interval();
        match self.governor.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.limit.burst_size().saturating_sub(remaining);
                Ok(self.tally(remaining, interval.saturating_mul(used)))
            }
            Err(not_until) => {
                let retry_after = self.wait(&not_until);
                let rest = self.limit.burst_size().saturating_sub(1);
                let tally =
                    self.tally(0, retry_after.saturating_add(interval.saturating_mul(rest)));
                Err((tally, WebhookError::RateLimited { retry_after }))
            }
        }
    }

    fn wait(&self, not_until: &NotUntil<Nanos>) -> Duration {
        not_until.wait_time_from(self.governor.clock().now())
    }

    fn shrink(&self) {
        self.governor.retain_recent();
        self.governor.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.governor.len()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Keyed<K> {
    /// Starts the periodic shrink the first time a runtime is at hand.
    fn ensure_housekeeping(self: &Arc<Self>, every: Duration) {
        if self.housekeeping_started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.housekeeping_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let restart = Restart(Weak::clone(&weak));
        handle.spawn(async move {
            // dropped with the task: if its runtime shuts down while the
            // layer lives on, the next check in another runtime starts anew
            let _restart = restart;
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate
            loop {
                ticks.tick().await;
                // A weak reference: the task ends once the layer is gone.
                let Some(keyed) = weak.upgrade() else { break };
                keyed.shrink();
            }
        });
    }
}

/// Clears the "started" flag when the housekeeping task is dropped.
struct Restart<K: Hash + Eq + Clone>(Weak<Keyed<K>>);

impl<K: Hash + Eq + Clone> Drop for Restart<K> {
    fn drop(&mut self) {
        if let Some(keyed) = self.0.upgrade() {
            keyed.housekeeping_started.store(false, Ordering::Release);
        }
    }
}

/// The pre-authentication key: the client's address (IPv6 by `/64`), or
/// `None` for "no peer address known", one shared bucket.
type ClientKey = Option<IpAddr>;

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// The pre-authentication limiter, keyed by client address. The layer
/// builds one from
/// [`pre_auth_limit`](crate::middleware::WebhookLayerBuilder::pre_auth_limit);
/// build your own to use it outside the layer or to inspect it in tests.
/// Clones share one state.
#[derive(Clone)]
pub struct PreAuthLimiter {
    keyed: Arc<Keyed<ClientKey>>,
    proxies: TrustedProxies,
    warned: Arc<AtomicBool>,
}

impl fmt::Debug for PreAuthLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreAuthLimiter")
            .field("limit", &self.keyed.limit)
            .field("proxies", &self.proxies)
            .field("keys", &self.keyed.len())
            .finish()
    }
}

impl PreAuthLimiter {
    /// A limiter on the monotonic clock.
    pub fn new(limit: RateLimit, proxies: TrustedProxies) -> Self {
        Self::build(limit, proxies, None)
    }

    /// A limiter on a [`ManualClock`], for tests.
    pub fn with_clock(limit: RateLimit, proxies: TrustedProxies, clock: &ManualClock) -> Self {
        Self::build(limit, proxies, Some(clock))
    }

    fn build(limit: RateLimit, proxies: TrustedProxies, clock: Option<&ManualClock>) -> Self {
        Self {
            keyed: Arc::new(Keyed::new(limit, Ticker::new(clock))),
            proxies,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Counts one request from the client that `headers` and `extensions`
    /// name (see [`TrustedProxies::client_ip`]).
    ///
    /// # Errors
    /// [`WebhookError::RateLimited`] when the client is over its rate, with
    /// the time until a request would be accepted.
    pub fn check(&self, headers: &HeaderMap, extensions: &Extensions) -> Result<(), WebhookError> {
        self.tally(headers, peer_addr(extensions))
            .map(drop)
            .map_err(|(_, e)| e)
    }

    /// Counts one request from `peer` (or the client it forwards for).
    pub(crate) fn tally(
        &self,
        headers: &HeaderMap,
        peer: Option<std::net::SocketAddr>,
    ) -> Result<Tally, (Tally, WebhookError)> {
        let key = match peer {
            Some(peer) => Some(client_key(self.proxies.client_ip(peer.ip(), headers))),
            None => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "no peer address on the request (ConnectInfo or ClientAddr): \
                         all such requests share one rate-limit bucket"
                    );
                }
                None
            }
        };
        self.keyed.check(&key)
    }

    /// The quota.
    pub fn limit(&self) -> RateLimit {
        self.keyed.limit
    }

    /// How many clients the limiter holds state for.
    pub fn len(&self) -> usize {
        self.keyed.len()
    }

    /// Whether the limiter holds no state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the state of every client whose bucket is full again and
    /// releases the memory. The layer does this periodically on its own.
    pub fn shrink(&self) {
        self.keyed.shrink();
    }

    pub(crate) fn ensure_housekeeping(&self, every: Duration) {
        self.keyed.ensure_housekeeping(every);
    }
}

/// The key a [`PostAuthLimiter`] counts a delivery under.
type KeyFn = Arc<dyn Fn(&Verified, &Parts) -> String + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DeliveryKey {
    /// The default: endpoint and provider.
    Endpoint(Arc<str>, &'static str),
    /// From the user's key function.
    Custom(String),
}

/// The post-authentication limiter, keyed by what verification proved.
/// The layer builds one from
/// [`post_auth_limit`](crate::middleware::WebhookLayerBuilder::post_auth_limit).
/// Clones share one state.
#[derive(Clone)]
pub struct PostAuthLimiter {
    keyed: Arc<Keyed<DeliveryKey>>,
    endpoint: Arc<str>,
    key: Option<KeyFn>,
}

impl fmt::Debug for PostAuthLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostAuthLimiter")
            .field("limit", &self.keyed.limit)
            .field("endpoint", &self.endpoint)
            .field(
                "key",
                &self.key.as_ref().map_or("endpoint+provider", |_| "<fn>"),
            )
            .field("keys", &self.keyed.len())
            .finish()
    }
}

impl PostAuthLimiter {
    /// A limiter on the monotonic clock, keyed by `endpoint` and the
    /// verified provider.
    pub fn new(limit: RateLimit, endpoint: &str) -> Self {
        Self::build(limit, Arc::from(endpoint), None, None)
    }

    /// A limiter on a [`ManualClock`], for tests.
    pub fn with_clock(limit: RateLimit, endpoint: &str, clock: &ManualClock) -> Self {
        Self::build(limit, Arc::from(endpoint), None, Some(clock))
    }

    pub(crate) fn build(
        limit: RateLimit,
        endpoint: Arc<str>,
        key: Option<KeyFn>,
        clock: Option<&ManualClock>,
    ) -> Self {
        Self {
            keyed: Arc::new(Keyed::new(limit, Ticker::new(clock))),
            endpoint,
            key,
        }
    }

    /// Counts deliveries under the key `f` returns instead (a tenant, the
    /// secret that matched, the event type, ...).
    pub fn key_by<F>(mut self, f: F) -> Self
    where
        F: Fn(&Verified, &Parts) -> String + Send + Sync + 'static,
    {
        self.key = Some(Arc::new(f));
        self
    }

    /// Counts one verified delivery.
    ///
    /// # Errors
    /// [`WebhookError::RateLimited`] when its key is over the rate.
    pub fn check(&self, verified: &Verified, parts: &Parts) -> Result<(), WebhookError> {
        self.tally(verified, parts).map(drop).map_err(|(_, e)| e)
    }

    pub(crate) fn tally(
        &self,
        verified: &Verified,
        parts: &Parts,
    ) -> Result<Tally, (Tally, WebhookError)> {
        let key = match &self.key {
            None => DeliveryKey::Endpoint(Arc::clone(&self.endpoint), verified.provider()),
            Some(f) => DeliveryKey::Custom(f(verified, parts)),
        };
        self.keyed.check(&key)
    }

    /// The quota.
    pub fn limit(&self) -> RateLimit {
        self.keyed.limit
    }

    /// How many keys the limiter holds state for.
    pub fn len(&self) -> usize {
        self.keyed.len()
    }

    /// Whether the limiter holds no state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the state of every key whose bucket is full again.
    pub fn shrink(&self) {
        self.keyed.shrink();
    }

    pub(crate) fn ensure_housekeeping(&self, every: Duration) {
        self.keyed.ensure_housekeeping(every);
    }
}

/// The rate-limit settings of a layer, and its limiters once built.
pub(crate) struct Stages {
    pre_limit: Option<RateLimit>,
    post_limit: Option<RateLimit>,
    post_key: Option<KeyFn>,
    clock: Option<ManualClock>,
    pub(crate) headers: bool,
    housekeeping: Duration,
    pre: Option<PreAuthLimiter>,
    post: Option<PostAuthLimiter>,
}

impl Default for Stages {
    fn default() -> Self {
        Self {
            pre_limit: None,
            post_limit: None,
            post_key: None,
            clock: None,
            headers: false,
            housekeeping: DEFAULT_HOUSEKEEPING,
            pre: None,
            post: None,
        }
    }
}

impl fmt::Debug for Stages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimits")
            .field("pre_auth", &self.pre_limit)
            .field("post_auth", &self.post_limit)
            .field("post_auth_key", &self.post_key.as_ref().map(|_| "<fn>"))
            .field("headers", &self.headers)
            .field("housekeeping", &self.housekeeping)
            .finish()
    }
}

/// What each stage said about an admitted request, for the response fields.
#[derive(Debug, Default)]
pub(crate) struct Tallies {
    pre: Option<Tally>,
    post: Option<Tally>,
}

impl Stages {
    pub(crate) fn set_pre(&mut self, limit: RateLimit) {
        self.pre_limit = Some(limit);
    }

    pub(crate) fn set_post(&mut self, limit: RateLimit) {
        self.post_limit = Some(limit);
    }

    pub(crate) fn set_post_key(&mut self, key: KeyFn) {
        self.post_key = Some(key);
    }

    pub(crate) fn set_clock(&mut self, clock: ManualClock) {
        self.clock = Some(clock);
    }

    pub(crate) fn set_housekeeping(&mut self, every: Duration) {
        // tokio's interval refuses a zero period
        self.housekeeping = every.max(Duration::from_millis(1));
    }

    /// Makes the limiters from the settings; called by `build()`, when the
    /// endpoint name and the proxies are final.
    pub(crate) fn finish(&mut self, endpoint: &Arc<str>, proxies: &TrustedProxies) {
        let clock = self.clock.as_ref();
        self.pre = self
            .pre_limit
            .map(|l| PreAuthLimiter::build(l, proxies.clone(), clock));
        self.post = self
            .post_limit
            .map(|l| PostAuthLimiter::build(l, Arc::clone(endpoint), self.post_key.clone(), clock));
    }

    pub(crate) fn pre(&self) -> Option<&PreAuthLimiter> {
        self.pre.as_ref()
    }

    pub(crate) fn post(&self) -> Option<&PostAuthLimiter> {
        self.post.as_ref()
    }

    /// The pre-authentication check.
    pub(crate) fn check_pre(
        &self,
        headers: &HeaderMap,
        peer: Option<std::net::SocketAddr>,
        tallies: &mut Tallies,
    ) -> Result<(), WebhookError> {
        let Some(pre) = &self.pre else { return Ok(()) };
        pre.ensure_housekeeping(self.housekeeping);
        match pre.tally(headers, peer) {
            Ok(t) => {
                tallies.pre = Some(t);
                Ok(())
            }
            Err((t, e)) => {
                tallies.pre = Some(t);
                Err(e)
            }
        }
    }

    /// The post-authentication check.
    pub(crate) fn check_post(
        &self,
        verified: &Verified,
        parts: &Parts,
        tallies: &mut Tallies,
    ) -> Result<(), WebhookError> {
        let Some(post) = &self.post else {
            return Ok(());
        };
        post.ensure_housekeeping(self.housekeeping);
        match post.tally(verified, parts) {
            Ok(t) => {
                tallies.post = Some(t);
                Ok(())
            }
            Err((t, e)) => {
                tallies.post = Some(t);
                Err(e)
            }
        }
    }

    /// Adds `RateLimit-Policy` and `RateLimit` when the switch is on.
    pub(crate) fn write_headers(&self, tallies: &Tallies, headers: &mut HeaderMap) {
        if !self.headers {
            return;
        }
        use std::fmt::Write as _;
        let items = [("pre-auth", &tallies.pre), ("post-auth", &tallies.post)];
        // One buffer each, written in place: no allocation per item.
        let mut policy = String::new();
        let mut state = String::new();
        for (name, tally) in items {
            let Some(t) = tally else { continue };
            if policy.is_empty() {
                policy.reserve(64);
                state.reserve(64);
            } else {
                policy.push_str(", ");
                state.push_str(", ");
            }
            let _ = write!(policy, "\"{name}\";q={};w={}", t.burst, t.window_secs);
            let _ = write!(state, "\"{name}\";r={};t={}", t.remaining, t.reset_secs);
        }
        if policy.is_empty() {
            return;
        }
        // Only digits, quotes, letters and punctuation: always valid values.
        // From the `String`s themselves: no copy.
        if let (Ok(p), Ok(s)) = (HeaderValue::try_from(policy), HeaderValue::try_from(state)) {
            headers.insert(RATELIMIT_POLICY, p);
            headers.insert(RATELIMIT, s);
        }
    }
}

/// Whole seconds, rounded up.
fn whole_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::client::ClientAddr;

    fn ext(addr: &str) -> Extensions {
        let mut e = Extensions::new();
        e.insert(ClientAddr(addr.parse::<SocketAddr>().unwrap()));
        e
    }

    #[test]
    fn limiters_are_send_and_sync() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<PreAuthLimiter>();
        send_sync::<PostAuthLimiter>();
        send_sync::<RateLimit>();
        send_sync::<ManualClock>();
        send_sync::<Stages>();
    }

    #[test]
    fn zero_counts_and_sub_nanosecond_intervals_are_config_errors() {
        assert_eq!(
            RateLimit::per_second(0),
            Err(ConfigError::OutOfRange("rate limit count"))
        );
        assert_eq!(
            RateLimit::per_second(1).unwrap().burst(0),
            Err(ConfigError::OutOfRange("rate limit burst"))
        );
        assert_eq!(
            RateLimit::per_second(2_000_000_000),
            Err(ConfigError::OutOfRange("rate limit interval"))
        );
        assert_eq!(
            RateLimit::per(5, Duration::ZERO),
            Err(ConfigError::OutOfRange("rate limit interval"))
        );
        assert!(RateLimit::per_second(1_000_000_000).is_ok());
    }

    #[test]
    fn quota_units_give_the_expected_interval_and_window() {
        let l = RateLimit::per_hour(4).unwrap();
        assert_eq!(l.replenish_interval(), Duration::from_secs(900));
        assert_eq!(l.burst_size(), 4);
        assert_eq!(l.window(), Duration::from_secs(3600));
        let l = RateLimit::per_second(10).unwrap().burst(3).unwrap();
        assert_eq!(l.replenish_interval(), Duration::from_millis(100));
        assert_eq!(l.window(), Duration::from_millis(300));
    }

    #[test]
    fn retry_after_is_the_time_until_the_next_cell() {
        let clock = ManualClock::new();
        let l = PreAuthLimiter::with_clock(
            RateLimit::per_minute(2).unwrap(),
            TrustedProxies::none(),
            &clock,
        );
        let (h, e) = (HeaderMap::new(), ext("192.0.2.1:1"));
        assert!(l.check(&h, &e).is_ok());
        assert!(l.check(&h, &e).is_ok());
        assert_eq!(
            l.check(&h, &e),
            Err(WebhookError::RateLimited {
                retry_after: Duration::from_secs(30)
            })
        );
        clock.advance(Duration::from_millis(29_500));
        let err = l.check(&h, &e).unwrap_err();
        assert_eq!(
            err,
            WebhookError::RateLimited {
                retry_after: Duration::from_millis(500)
            }
        );
        assert_eq!(err.retry_after(), Some(1), "rounded up, never 0");
        clock.advance(Duration::from_millis(500));
        assert!(l.check(&h, &e).is_ok());
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let clock = ManualClock::new();
        let l = PreAuthLimiter::with_clock(
            RateLimit::per_hour(1).unwrap(),
            TrustedProxies::none(),
            &clock,
        );
        let h = HeaderMap::new();
        assert!(l.check(&h, &ext("[2001:db8:1:2::1]:1")).is_ok());
        assert!(l.check(&h, &ext("[2001:db8:1:2:ffff::9]:1")).is_err());
        assert!(l.check(&h, &ext("[2001:db8:1:3::1]:1")).is_ok());
        // a mapped IPv4 address is that IPv4 client
        assert!(l.check(&h, &ext("192.0.2.8:1")).is_ok());
        assert!(l.check(&h, &ext("[::ffff:192.0.2.8]:1")).is_err());
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn requests_without_a_peer_share_one_bucket() {
        let clock = ManualClock::new();
        let l = PreAuthLimiter::with_clock(
            RateLimit::per_hour(2).unwrap(),
            TrustedProxies::none(),
            &clock,
        );
        let (h, e) = (HeaderMap::new(), Extensions::new());
        assert!(l.check(&h, &e).is_ok());
        assert!(l.check(&h, &e).is_ok());
        assert!(l.check(&h, &e).is_err());
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn post_auth_default_key_is_endpoint_and_provider_and_custom_keys_split() {
        let clock = ManualClock::new();
        let parts = http::Request::post("/").body(()).unwrap().into_parts().0;
        let l = PostAuthLimiter::with_clock(RateLimit::per_hour(1).unwrap(), "hooks", &clock);
        assert!(l.check(&Verified::new("github"), &parts).is_ok());
        assert!(l.check(&Verified::new("github"), &parts).is_err());
        assert!(l.check(&Verified::new("stripe"), &parts).is_ok());

        let l = PostAuthLimiter::with_clock(RateLimit::per_hour(1).unwrap(), "hooks", &clock)
            .key_by(|v, _| v.event_type().unwrap_or_default().to_owned());
        let push = Verified::new("github").with_event_type("push", false);
        let issue = Verified::new("github").with_event_type("issues", false);
        assert!(l.check(&push, &parts).is_ok());
        assert!(l.check(&push, &parts).is_err());
        assert!(l.check(&issue, &parts).is_ok());
    }

    #[test]
    fn shrink_drops_only_clients_whose_bucket_is_full_again() {
        let clock = ManualClock::new();
        let l = PreAuthLimiter::with_clock(
            RateLimit::per_second(10).unwrap(),
            TrustedProxies::none(),
            &clock,
        );
        let h = HeaderMap::new();
        for i in 0..100u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            l.check(&h, &ext(&format!("{ip}:1"))).unwrap();
        }
        assert_eq!(l.len(), 100);
        l.shrink();
        assert_eq!(l.len(), 100, "nothing is stale yet");
        clock.advance(Duration::from_millis(200));
        l.check(&h, &ext("192.0.2.1:1")).unwrap();
        l.shrink();
        assert_eq!(l.len(), 1, "only the recent client is kept");
    }

    #[test]
    fn response_fields_follow_the_draft_syntax() {
        let clock = ManualClock::new();
        let mut stages = Stages {
            headers: true,
            ..Stages::default()
        };
        stages.set_pre(RateLimit::per_minute(3).unwrap());
        stages.set_clock(clock.clone());
        stages.finish(&Arc::from("ep"), &TrustedProxies::none());
        let (h, e) = (HeaderMap::new(), ext("192.0.2.1:1"));
        let mut tallies = Tallies::default();
        stages.check_pre(&h, peer_addr(&e), &mut tallies).unwrap();
        let mut out = HeaderMap::new();
        stages.write_headers(&tallies, &mut out);
        assert_eq!(out[RATELIMIT_POLICY], "\"pre-auth\";q=3;w=60");
        assert_eq!(out[RATELIMIT], "\"pre-auth\";r=2;t=20");
    }
}
