//! [`WebhookLayer`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tower_layer::Layer;

use super::{Endpoint, FastAck, WebhookService};
use crate::client::TrustedProxies;
use crate::error::RejectionResponse;
use crate::handshake::Handshake;
use crate::observe::{AuditHook, Observers};
use crate::rate_limit::{ManualClock, PostAuthLimiter, PreAuthLimiter, RateLimit, Stages};
use crate::store::{IdempotencyStore, MemoryStore, NoStore};
use crate::verify::{Clock, SystemClock, Verified, Verifier};

/// What to do when the idempotency store does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StorePolicy {
    /// Answer 503 with `Retry-After`: the provider retries later, nothing is
    /// lost, nothing is handled twice. The default.
    #[default]
    FailClosed,
    /// Handle the delivery without a claim: nothing is delayed, but a
    /// duplicate arriving meanwhile may be handled twice.
    FailOpen,
}

/// Everything a [`WebhookService`] needs, shared by one `Arc`.
pub(crate) struct Config<V, St> {
    pub(crate) verifier: V,
    pub(crate) store: St,
    pub(crate) dedup: bool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) endpoint: Arc<str>,
    pub(crate) methods: Vec<Method>,
    pub(crate) body_limit: usize,
    pub(crate) read_timeout: Duration,
    pub(crate) lease: Duration,
    pub(crate) ttl: Duration,
    pub(crate) store_timeout: Duration,
    pub(crate) store_policy: StorePolicy,
    pub(crate) handshake: Option<Handshake>,
    pub(crate) proxies: TrustedProxies,
    pub(crate) rate: Stages,
    pub(crate) observers: Observers,
    pub(crate) fast_ack: Option<FastAck>,
    pub(crate) rejection: RejectionResponse,
    pub(crate) span_level: tracing::Level,
}

impl<V: Verifier, St: fmt::Debug> fmt::Debug for Config<V, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("provider", &self.verifier.provider())
            .field("endpoint", &self.endpoint)
            .field("store", &self.store)
            .field("dedup", &self.dedup)
            .field("methods", &self.methods)
            .field("body_limit", &self.body_limit)
            .field("read_timeout", &self.read_timeout)
            .field("lease", &self.lease)
            .field("ttl", &self.ttl)
            .field("store_timeout", &self.store_timeout)
            .field("store_policy", &self.store_policy)
            .field("handshake", &self.handshake)
            .field("proxies", &self.proxies)
            .field("rate_limits", &self.rate)
            .field("observers", &self.observers)
            .field("fast_ack", &self.fast_ack)
            .field("rejection", &self.rejection)
            .field("span_level", &self.span_level)
            .finish_non_exhaustive()
    }
}

/// Layer that applies [`WebhookService`]: verification, de-duplication and
/// bookkeeping for one webhook endpoint. See the [module docs](crate::middleware).
///
/// Cloning is a reference count: every connection shares one configuration
/// and one store.
#[must_use]
pub struct WebhookLayer<V, St = MemoryStore> {
    config: Arc<Config<V, St>>,
}

// Clone by hand: a derive would demand `V: Clone, St: Clone`.
impl<V, St> Clone for WebhookLayer<V, St> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
        }
    }
}

impl<V: Verifier, St: fmt::Debug> fmt::Debug for WebhookLayer<V, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl<V: Verifier> WebhookLayer<V> {
    /// A layer with default settings: POST only, 1 MiB body limit, 10 s read
    /// timeout, de-duplication in memory ([`MemoryStore`]).
    pub fn new(verifier: V) -> Self {
        Self::builder(verifier).build()
    }

    /// Starts a layer with non-default settings.
    pub fn builder(verifier: V) -> WebhookLayerBuilder<V> {
        let endpoint = Arc::from(verifier.provider());
        WebhookLayerBuilder {
            config: Config {
                verifier,
                store: MemoryStore::default(),
                dedup: true,
                clock: Arc::new(SystemClock),
                endpoint,
                methods: vec![Method::POST],
                body_limit: 1024 * 1024,
                read_timeout: Duration::from_secs(10),
                lease: Duration::from_secs(60),
                ttl: Duration::from_secs(72 * 3600),
                store_timeout: Duration::from_secs(2),
                store_policy: StorePolicy::FailClosed,
                handshake: None,
                proxies: TrustedProxies::none(),
                rate: Stages::default(),
                observers: Observers::new(),
                fast_ack: None,
                rejection: RejectionResponse::json(),
                span_level: tracing::Level::INFO,
            },
        }
    }
}

impl<V, St> WebhookLayer<V, St> {
    /// The pre-authentication limiter, if one is set: to watch or
    /// [`shrink`](PreAuthLimiter::shrink) its state.
    pub fn pre_auth_limiter(&self) -> Option<&PreAuthLimiter> {
        self.config.rate.pre()
    }

    /// The post-authentication limiter, if one is set.
    pub fn post_auth_limiter(&self) -> Option<&PostAuthLimiter> {
        self.config.rate.post()
    }

    /// The fast-ack pool, if [`fast_ack`](WebhookLayerBuilder::fast_ack)
    /// set one: to [`shutdown`](FastAck::shutdown) it.
    pub fn fast_ack_pool(&self) -> Option<&FastAck> {
        self.config.fast_ack.as_ref()
    }

    /// The checks and bookkeeping of this layer without Tower, for other
    /// servers (the actix-web adapter uses it): see [`Endpoint`]. It shares
    /// this layer's configuration, store and rate limiters.
    pub fn endpoint(&self) -> Endpoint<V, St> {
        Endpoint::new(Arc::clone(&self.config))
    }
}

impl<S, V, St> Layer<S> for WebhookLayer<V, St> {
    type Service = WebhookService<S, V, St>;

    fn layer(&self, inner: S) -> Self::Service {
        WebhookService::new(inner, Arc::clone(&self.config))
    }
}

/// Builds a [`WebhookLayer`]; see [`WebhookLayer::builder`].
#[must_use]
pub struct WebhookLayerBuilder<V, St = MemoryStore> {
    config: Config<V, St>,
}

impl<V: Verifier, St: fmt::Debug> fmt::Debug for WebhookLayerBuilder<V, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookLayerBuilder")
            .field("config", &self.config)
            .finish()
    }
}

impl<V: Verifier, St: IdempotencyStore> WebhookLayerBuilder<V, St> {
    /// The largest body accepted, in bytes (default 1 MiB). A larger
    /// `Content-Length` is refused before reading; a chunked body is counted
    /// while read. Either way: 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.config.body_limit = bytes;
        self
    }

    /// How long the whole body may take to arrive (default 10 s); slower: 408.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// The methods accepted (default `POST` only); others: 405.
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.config.methods = methods.into_iter().collect();
        self
    }

    /// The endpoint's name in idempotency keys, metrics and logs
    /// (default: the provider's name). Give two routes of the same provider
    /// different names.
    pub fn endpoint_name(mut self, name: &str) -> Self {
        self.config.endpoint = Arc::from(name);
        self
    }

    /// Former name of [`endpoint_name`](Self::endpoint_name).
    #[deprecated(since = "0.1.0", note = "renamed `endpoint_name`")]
    pub fn endpoint(self, name: &str) -> Self {
        self.endpoint_name(name)
    }

    /// The clock timestamps are checked against (default: the system's).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.config.clock = Arc::new(clock);
        self
    }

    /// How long a claim holds while the handler runs (default 60 s). If the
    /// process dies, the event can be handled again after this.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How long a handled event id is remembered (default 72 h: Stripe and
    /// Standard Webhooks senders retry for about three days).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// How long to wait for the store (default 2 s).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.config.store_timeout = timeout;
        self
    }

    /// What to do when the store does not answer (default: fail closed, 503).
    pub fn store_policy(mut self, policy: StorePolicy) -> Self {
        self.config.store_policy = policy;
        self
    }

    /// Uses another idempotency store (Redis, your own).
    pub fn with_store<S2: IdempotencyStore>(self, store: S2) -> WebhookLayerBuilder<V, S2> {
        let c = self.config;
        WebhookLayerBuilder {
            config: Config {
                verifier: c.verifier,
                store,
                dedup: true,
                clock: c.clock,
                endpoint: c.endpoint,
                methods: c.methods,
                body_limit: c.body_limit,
                read_timeout: c.read_timeout,
                lease: c.lease,
                ttl: c.ttl,
                store_timeout: c.store_timeout,
                store_policy: c.store_policy,
                handshake: c.handshake,
                proxies: c.proxies,
                rate: c.rate,
                observers: c.observers,
                fast_ack: c.fast_ack,
                rejection: c.rejection,
                span_level: c.span_level,
            },
        }
    }

    /// Turns de-duplication off: every verified delivery reaches the handler.
    pub fn without_dedup(self) -> WebhookLayerBuilder<V, NoStore> {
        let mut b = self.with_store(NoStore);
        b.config.dedup = false;
        b
    }

    /// Answers the provider's set-up challenge on this route (Slack
    /// `url_verification`, Zoom `endpoint.url_validation`, Meta
    /// `hub.challenge`, ...): see [`Handshake`]. The answer comes from the
    /// layer; the handler and the idempotency store never see it. A GET
    /// handshake (Meta, Twitter CRC) is accepted even though the methods
    /// default to POST.
    pub fn handshake(mut self, handshake: Handshake) -> Self {
        self.config.handshake = Some(handshake);
        self
    }

    /// Limits each client (by address) before anything else is done: no
    /// body read, no signature check for a client over its rate (429 with
    /// `Retry-After`). Off by default. See [`crate::rate_limit`].
    pub fn pre_auth_limit(mut self, limit: RateLimit) -> Self {
        self.config.rate.set_pre(limit);
        self
    }

    /// Limits verified deliveries, after verification and before the
    /// idempotency claim (429 with `Retry-After`). Keyed by the endpoint
    /// and the provider unless [`post_auth_key`](Self::post_auth_key) says
    /// otherwise. Off by default.
    pub fn post_auth_limit(mut self, limit: RateLimit) -> Self {
        self.config.rate.set_post(limit);
        self
    }

    /// The key the post-authentication limit counts a delivery under,
    /// computed from what verification proved and the request head (a
    /// tenant from the path, the secret that matched, ...).
    pub fn post_auth_key<F>(mut self, key: F) -> Self
    where
        F: Fn(&Verified, &http::request::Parts) -> String + Send + Sync + 'static,
    {
        self.config.rate.set_post_key(Arc::new(key));
        self
    }

    /// The reverse proxies whose `Forwarded` / `X-Forwarded-For` name the
    /// client (default: none, the peer address is the client). See
    /// [`crate::client`].
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.config.proxies = proxies;
        self
    }

    /// Adds the `RateLimit-Policy` and `RateLimit` fields (IETF draft) to
    /// the responses of rate-limited endpoints (default: off).
    pub fn rate_limit_headers(mut self, on: bool) -> Self {
        self.config.rate.headers = on;
        self
    }

    /// How often the limiters drop the state of clients whose bucket is
    /// full again (default 60 s). Runs on the tokio runtime, started on
    /// first use.
    pub fn rate_limit_housekeeping(mut self, every: Duration) -> Self {
        self.config.rate.set_housekeeping(every);
        self
    }

    /// Drives the rate limiters from a [`ManualClock`], for tests.
    pub fn rate_limit_clock(mut self, clock: ManualClock) -> Self {
        self.config.rate.set_clock(clock);
        self
    }

    /// Reports through the [`metrics`] facade (default: on): see
    /// [`crate::observe`] for the names. With no recorder installed, a
    /// delivery costs a few atomic operations more; `false` saves even
    /// those (and the clock reads for the histograms).
    pub fn metrics(mut self, on: bool) -> Self {
        self.config.observers.metrics = on;
        self
    }

    /// Calls `hook` once per delivery, on a spawned task, with an
    /// [`AuditRecord`](crate::observe::AuditRecord): provider, event id,
    /// outcome, reason, timings, secret label and client address (never
    /// the secret or the signature). See [`crate::observe`].
    pub fn audit(mut self, hook: impl AuditHook) -> Self {
        self.config.observers.audit = Some(Arc::new(hook));
        self
    }

    /// Fast-ack mode: hands verified, claimed deliveries to `pool` and
    /// answers 202 without waiting for the handler (or after a deadline).
    /// Tower only; the actix-web adapter and [`Endpoint`] always wait for
    /// the handler. Read [`FastAck`] on what a 202 costs.
    pub fn fast_ack(mut self, pool: FastAck) -> Self {
        self.config.fast_ack = Some(pool);
        self
    }

    /// How refusals are answered (default [`RejectionResponse::json`]:
    /// `{"error":"<code>"}`); [`RejectionResponse::problem_json`] answers RFC 9457
    /// problem details. Refusals are logged at debug on the
    /// `tower_webhook::rejection` target, whatever their shape.
    pub fn with_rejection(mut self, rejection: RejectionResponse) -> Self {
        self.config.rejection = rejection;
        self
    }

    /// The level of the `webhook` span each delivery is logged in (default
    /// INFO): a subscriber that filters it out costs the delivery nothing.
    pub fn span_level(mut self, level: tracing::Level) -> Self {
        self.config.span_level = level;
        self
    }

    /// Finishes the layer.
    pub fn build(mut self) -> WebhookLayer<V, St> {
        let c = &mut self.config;
        c.rate.finish(&c.endpoint, &c.proxies);
        WebhookLayer {
            config: Arc::new(self.config),
        }
    }
}
