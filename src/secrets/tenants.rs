//! [`Tenants`]: secrets that depend on the request, loaded by an async
//! [`Resolve`]r and cached.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderName;
use http::request::Parts;
use moka::future::Cache;

use crate::error::ConfigError;
use crate::verify::{PrepareError, PrepareFuture, Verified, Verifier, VerifyError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The longest tenant id accepted, in bytes.
pub const MAX_TENANT_LEN: usize = 128;

/// Loads the verifier (and so the secrets) of one tenant.
///
/// `Ok(None)` means the tenant is unknown (401, cached for the
/// [negative TTL](Tenants::negative_ttl)); `Err` means the backing store
/// failed (503 + `Retry-After`, not cached: the next request asks again).
///
/// Any `Fn(String) -> impl Future<Output = Result<Option<V>, E>>` is a
/// resolver, for `E: Into<Box<dyn Error + Send + Sync>>`:
///
/// ```
/// use std::convert::Infallible;
/// use tower_webhook::{providers::Stripe, secrets::Resolve, Secret};
///
/// fn check(_: impl Resolve) {}
/// check(|tenant: String| async move {
///     let secret = Secret::text(&format!("whsec_{tenant}")).ok();
///     Ok::<_, Infallible>(secret.map(Stripe::new))
/// });
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// The verifier of one tenant (a provider holding its secrets).
    type Verifier: Verifier;

    /// The verifier of `tenant`, `None` if there is no such tenant.
    ///
    /// # Errors
    /// When the secrets cannot be loaded now (a database down).
    fn resolve(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<Self::Verifier>, BoxError>> + Send;
}

impl<F, Fut, V, E> Resolve for F
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<V>, E>> + Send,
    V: Verifier,
    E: Into<BoxError>,
{
    type Verifier = V;

    fn resolve(&self, tenant: &str) -> impl Future<Output = Result<Option<V>, BoxError>> + Send {
        let fut = self(tenant.to_owned());
        async move { fut.await.map_err(Into::into) }
    }
}

/// Where the tenant id is in the request.
///
/// The id must be 1 to [`MAX_TENANT_LEN`] bytes of visible ASCII, taken as
/// is (a path segment is not percent-decoded); anything else, or no id, is
/// refused with 400 (`invalid_tenant`) before the resolver is asked.
#[derive(Clone)]
pub struct TenantFrom(Where);

type FindTenant = dyn Fn(&Parts) -> Option<String> + Send + Sync;

#[derive(Clone)]
enum Where {
    Header(HeaderName),
    PathSegment(usize),
    Custom(Arc<FindTenant>),
}

impl TenantFrom {
    /// The value of header `name`, sent once.
    ///
    /// # Errors
    /// [`ConfigError::InvalidHeaderName`] when `name` is not a header name.
    pub fn header(name: &str) -> Result<Self, ConfigError> {
        HeaderName::from_bytes(name.as_bytes())
            .map(|h| Self(Where::Header(h)))
            .map_err(|_| ConfigError::InvalidHeaderName(name.to_owned()))
    }

    /// The path segment at `index`, counted from 0 after the leading `/`:
    /// in `/hooks/acme/github`, segment 1 is `acme`. The path is the one the
    /// layer sees (under axum's `nest`, without the nesting prefix).
    pub fn path_segment(index: usize) -> Self {
        Self(Where::PathSegment(index))
    }

    /// Whatever `f` finds in the request head (a subdomain, a query
    /// parameter); `None` is refused with 400. The id is checked as the
    /// others are.
    pub fn custom<F>(f: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        Self(Where::Custom(Arc::new(f)))
    }

    /// The tenant id of `parts`.
    fn extract<'p>(&self, parts: &'p Parts) -> Result<Cow<'p, str>, VerifyError> {
        let id = match &self.0 {
            Where::Header(name) => {
                let mut all = parts.headers.get_all(name).iter();
                let (Some(value), None) = (all.next(), all.next()) else {
                    return Err(VerifyError::InvalidTenant);
                };
                Cow::Borrowed(value.to_str().map_err(|_| VerifyError::InvalidTenant)?)
            }
            Where::PathSegment(index) => {
                let path = parts.uri.path();
                let path = path.strip_prefix('/').unwrap_or(path);
                Cow::Borrowed(
                    path.split('/')
                        .nth(*index)
                        .ok_or(VerifyError::InvalidTenant)?,
                )
            }
            Where::Custom(f) => Cow::Owned(f(parts).ok_or(VerifyError::InvalidTenant)?),
        };
        if valid_id(&id) {
            Ok(id)
        } else {
            Err(VerifyError::InvalidTenant)
        }
    }
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_TENANT_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

impl fmt::Debug for TenantFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Where::Header(name) => f.debug_tuple("TenantFrom::header").field(name).finish(),
            Where::PathSegment(i) => f.debug_tuple("TenantFrom::path_segment").field(i).finish(),
            Where::Custom(_) => f.write_str("TenantFrom::custom(<fn>)"),
        }
    }
}

/// The tenant's verifier and id, in the request's extensions between
/// [`Verifier::prepare`] and [`Verifier::verify`]. A private type: nothing
/// but [`Tenants`] can put one there.
struct Resolved<V> {
    verifier: Arc<V>,
    tenant: Arc<str>,
}

impl<V> Clone for Resolved<V> {
    fn clone(&self) -> Self {
        Self {
            verifier: Arc::clone(&self.verifier),
            tenant: Arc::clone(&self.tenant),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    ttl: Duration,
    negative_ttl: Duration,
    max_capacity: u64,
    resolve_timeout: Duration,
    retry_after: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
            max_capacity: 10_000,
            resolve_timeout: Duration::from_secs(5),
            retry_after: Duration::from_secs(5),
        }
    }
}

/// Positive entries live `ttl`, negative ones (unknown tenants) `negative_ttl`.
struct TenantExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl<V> moka::Expiry<String, Option<Arc<V>>> for TenantExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Option<Arc<V>>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        })
    }
}

/// A verifier whose secrets depend on the request: the tenant id is taken
/// from the request ([`TenantFrom`]), its verifier is loaded by a
/// [`Resolve`]r and kept in a cache.
///
/// - Known tenants stay cached for the [TTL](Self::ttl) (default 5 min):
///   a changed secret is picked up at the latest that much later, or at
///   once after [`invalidate`](Self::invalidate).
/// - Unknown tenants (`Ok(None)`) are answered 401 and cached for the
///   [negative TTL](Self::negative_ttl) (default 30 s): a flood of
///   deliveries to a removed tenant asks the resolver once per TTL.
/// - Concurrent requests for a tenant not yet cached wait for one call to
///   the resolver (single flight).
/// - A failing resolver (`Err`, or no answer within the
///   [resolve timeout](Self::resolve_timeout), default 5 s) gives 503 +
///   `Retry-After` and is logged; nothing is cached, so the next request
///   asks again.
///
/// The lookup happens in [`Verifier::prepare`], before the body is read.
/// [`Verified::tenant`] names the tenant for the handler, and the layer
/// keeps each tenant's event ids apart in the idempotency store (two
/// tenants' senders may number their events alike).
///
/// ```
/// use std::collections::HashMap;
/// use std::convert::Infallible;
/// use std::sync::Arc;
/// use axum::{routing::post, Extension, Router};
/// use tower::ServiceExt;
/// use tower_webhook::providers::GitHub;
/// use tower_webhook::secrets::{TenantFrom, Tenants};
/// use tower_webhook::{testing, Secret, Verified, WebhookLayer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // each customer's GitHub secret, e.g. from a database
/// let secrets: Arc<HashMap<String, Secret>> = Arc::new(HashMap::from([
///     ("acme".to_owned(), Secret::text("acme-secret")?),
///     ("globex".to_owned(), Secret::text("globex-secret")?),
/// ]));
/// let tenants = Tenants::new("github", TenantFrom::path_segment(1), move |tenant: String| {
///     let secrets = Arc::clone(&secrets);
///     async move { Ok::<_, Infallible>(secrets.get(&tenant).cloned().map(GitHub::new)) }
/// });
///
/// let app = Router::new()
///     .route("/hooks/{tenant}", post(|Extension(v): Extension<Verified>| async move {
///         format!("hello {}", v.tenant().unwrap_or_default())
///     }))
///     .route_layer(WebhookLayer::new(tenants));
///
/// let body = br#"{"zen":"ok"}"#;
/// let send = |path: &str, secret: &str| {
///     let mut req = http::Request::post(path).header("content-type", "application/json");
///     for (k, v) in &testing::github(secret, &format!("{path}-1"), "push", body) {
///         req = req.header(k, v);
///     }
///     req.body(axum::body::Body::from(&body[..]))
/// };
/// let ok = app.clone().oneshot(send("/hooks/acme", "acme-secret")?).await?;
/// assert_eq!(ok.status(), 200);
/// let text = axum::body::to_bytes(ok.into_body(), 1024).await?;
/// assert_eq!(text, "hello acme");
/// // acme's secret does not sign for globex, and nobody signs for initech
/// let wrong = app.clone().oneshot(send("/hooks/globex", "acme-secret")?).await?;
/// assert_eq!(wrong.status(), 401);
/// let unknown = app.oneshot(send("/hooks/initech", "acme-secret")?).await?;
/// assert_eq!(unknown.status(), 401);
/// # Ok(()) }
/// ```
///
/// # Security
/// - One tenant's secret never verifies another's delivery: the verifier is
///   chosen by the id in the request, then checks the signature with that
///   tenant's secrets only.
/// - Unknown tenants are answered as a wrong signature is
///   (`invalid_signature`); the log says `tenant is unknown`. This does
///   not hide which tenants exist: a known tenant goes on to the
///   provider's own checks, whose answers differ (a missing header is a
///   400, a stalled body a 408). Limit probing with the
///   pre-authentication rate limit. A tenant id that cannot be
///   one (absent, over [`MAX_TENANT_LEN`] bytes, not visible ASCII) is
///   refused with 400 (`invalid_tenant`) without asking the resolver.
/// - Each new id costs a resolver call and a cache slot: ids are
///   attacker-chosen, so put the layer's pre-authentication rate limit in
///   front (it runs before this lookup). The cache's admission policy
///   (TinyLFU) keeps a burst of one-off ids from evicting the tenants that
///   deliver often.
///
/// # Errors
/// Calling [`verify`](Verifier::verify) without [`prepare`](Verifier::prepare)
/// (the layer and the actix adapter always prepare) refuses the delivery
/// with [`VerifyError::NoActiveSecret`] and logs an error; for a stored
/// delivery, use [`StoredDelivery::verify_prepared`](crate::received::StoredDelivery::verify_prepared).
pub struct Tenants<R: Resolve> {
    resolver: Arc<R>,
    from: TenantFrom,
    cache: Cache<String, Option<Arc<R::Verifier>>>,
    provider: &'static str,
    content_types: Arc<[&'static str]>,
    settings: Settings,
}

impl<R: Resolve> Clone for Tenants<R> {
    fn clone(&self) -> Self {
        Self {
            resolver: Arc::clone(&self.resolver),
            from: self.from.clone(),
            cache: self.cache.clone(),
            provider: self.provider,
            content_types: Arc::clone(&self.content_types),
            settings: self.settings,
        }
    }
}

impl<R: Resolve> fmt::Debug for Tenants<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenants")
            .field("provider", &self.provider)
            .field("from", &self.from)
            .field("settings", &self.settings)
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl<R: Resolve> Tenants<R> {
    /// Tenants of `provider` (the name logs use, as the tenants' verifiers
    /// report it: `"github"`), found with `from`, loaded by `resolver`.
    pub fn new(provider: &'static str, from: TenantFrom, resolver: R) -> Self {
        let settings = Settings::default();
        Self {
            resolver: Arc::new(resolver),
            from,
            cache: build_cache(&settings),
            provider,
            content_types: Arc::from(["application/json"].as_slice()),
            settings,
        }
    }

    /// The media types the provider posts (see
    /// [`Verifier::content_types`]); default `application/json`. Set the
    /// provider's own list for a provider that posts forms (Slack, Twilio):
    /// `.content_types(Slack::new(s).content_types())`.
    pub fn content_types(mut self, types: &[&'static str]) -> Self {
        self.content_types = Arc::from(types);
        self
    }

    /// How long a known tenant's verifier stays cached (default 5 min).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.ttl = ttl;
        self.cache = build_cache(&self.settings);
        self
    }

    /// How long an unknown tenant stays cached as unknown (default 30 s).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.settings.negative_ttl = ttl;
        self.cache = build_cache(&self.settings);
        self
    }

    /// How many tenants (known or not) the cache holds at most (default
    /// 10 000).
    pub fn max_capacity(mut self, n: u64) -> Self {
        self.settings.max_capacity = n;
        self.cache = build_cache(&self.settings);
        self
    }

    /// How long the resolver may take before the delivery is answered 503
    /// (default 5 s).
    pub fn resolve_timeout(mut self, d: Duration) -> Self {
        self.settings.resolve_timeout = d;
        self
    }

    /// The `Retry-After` sent when the resolver failed (default 5 s).
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.settings.retry_after = d;
        self
    }

    /// Forgets what is cached about `tenant`: its next delivery asks the
    /// resolver (after a secret changed).
    pub async fn invalidate(&self, tenant: &str) {
        self.cache.invalidate(tenant).await;
    }

    /// Forgets every cached tenant.
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    /// The verifier of `tenant`, from the cache or the resolver.
    async fn load(&self, tenant: &str) -> Result<Arc<R::Verifier>, PrepareError> {
        let provider = self.provider;
        let timeout = self.settings.resolve_timeout;
        let init = async {
            match tokio::time::timeout(timeout, self.resolver.resolve(tenant)).await {
                Ok(Ok(Some(v))) => {
                    if v.provider() != provider {
                        tracing::warn!(
                            provider,
                            resolved = v.provider(),
                            tenant,
                            "resolver gave a verifier of another provider"
                        );
                    }
                    Ok(Some(Arc::new(v)))
                }
                Ok(Ok(None)) => {
                    tracing::info!(provider, tenant, "unknown tenant");
                    Ok(None)
                }
                Ok(Err(e)) => {
                    tracing::error!(provider, tenant, error = %e, "tenant secrets could not be loaded");
                    Err(())
                }
                Err(_) => {
                    tracing::error!(
                        provider,
                        tenant,
                        ?timeout,
                        "tenant resolver did not answer in time"
                    );
                    Err(())
                }
            }
        };
        match self.cache.try_get_with_by_ref(tenant, init).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(VerifyError::UnknownTenant.into()),
            Err(_) => Err(PrepareError::Unavailable {
                retry_after: self.settings.retry_after,
            }),
        }
    }

    /// What [`prepare`](Verifier::prepare) put in `parts`.
    fn prepared<'p>(&self, parts: &'p Parts) -> Result<&'p Resolved<R::Verifier>, VerifyError> {
        parts.extensions.get::<Resolved<R::Verifier>>().ok_or_else(|| {
            tracing::error!(
                provider = self.provider,
                "Tenants::verify called without Verifier::prepare: the tenant's secrets are not loaded"
            );
            VerifyError::NoActiveSecret
        })
    }
}

fn build_cache<V: Send + Sync + 'static>(s: &Settings) -> Cache<String, Option<Arc<V>>> {
    Cache::builder()
        .max_capacity(s.max_capacity)
        .expire_after(TenantExpiry {
            ttl: s.ttl,
            negative_ttl: s.negative_ttl,
        })
        .build()
}

impl<R: Resolve> Verifier for Tenants<R> {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let r = self.prepared(parts)?;
        let verified = r.verifier.verify(parts, body, now)?;
        Ok(verified.with_tenant(Arc::clone(&r.tenant)))
    }

    fn verify_deferred(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        let r = self.prepared(parts)?;
        let verified = r.verifier.verify_deferred(parts, body, now)?;
        Ok(verified.with_tenant(Arc::clone(&r.tenant)))
    }

    fn content_types(&self) -> &[&'static str] {
        &self.content_types
    }

    fn prepare<'a>(&'a self, parts: &'a Parts) -> Option<PrepareFuture<'a>> {
        Some(Box::pin(async move {
            let tenant = self.from.extract(parts)?;
            let verifier = self.load(&tenant).await?;
            let mut ext = http::Extensions::new();
            ext.insert(Resolved {
                verifier,
                tenant: Arc::from(tenant),
            });
            Ok(ext)
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::Secret;
    use crate::providers::GitHub;

    fn parts(path: &str) -> Parts {
        http::Request::post(path).body(()).unwrap().into_parts().0
    }

    #[test]
    fn tenant_ids_are_bounded_visible_ascii() {
        let from = TenantFrom::path_segment(1);
        assert_eq!(from.extract(&parts("/hooks/acme")).unwrap(), "acme");
        assert_eq!(from.extract(&parts("/hooks/acme/x")).unwrap(), "acme");
        let long = "a".repeat(MAX_TENANT_LEN);
        let path = format!("/hooks/{long}");
        assert_eq!(from.extract(&parts(&path)).unwrap(), long);
        let too_long = format!("/hooks/{long}a");
        for bad in ["/hooks", "/hooks/", "/hooks//x", too_long.as_str()] {
            assert_eq!(
                from.extract(&parts(bad)),
                Err(VerifyError::InvalidTenant),
                "{bad}"
            );
        }

        let from = TenantFrom::header("x-tenant").unwrap();
        let mut p = parts("/");
        assert_eq!(from.extract(&p), Err(VerifyError::InvalidTenant));
        p.headers.insert("x-tenant", "acme".parse().unwrap());
        assert_eq!(from.extract(&p).unwrap(), "acme");
        p.headers.append("x-tenant", "globex".parse().unwrap());
        assert_eq!(from.extract(&p), Err(VerifyError::InvalidTenant));
        p.headers.insert("x-tenant", "a b".parse().unwrap());
        assert_eq!(from.extract(&p), Err(VerifyError::InvalidTenant));
        p.headers.insert(
            "x-tenant",
            http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        assert_eq!(from.extract(&p), Err(VerifyError::InvalidTenant));
        assert!(TenantFrom::header("bad header").is_err());

        let from = TenantFrom::custom(|p| p.uri.query().map(str::to_owned));
        assert_eq!(from.extract(&parts("/?t1")).unwrap(), "t1");
        assert_eq!(from.extract(&parts("/")), Err(VerifyError::InvalidTenant));
    }

    #[tokio::test]
    async fn a_known_tenant_is_loaded_again_after_its_ttl_and_a_new_secret_is_used() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let secret = Arc::new(std::sync::Mutex::new("first"));
        let current = Arc::clone(&secret);
        let tenants = Tenants::new(
            "github",
            TenantFrom::path_segment(0),
            move |_tenant: String| {
                counter.fetch_add(1, Ordering::SeqCst);
                let s = *current.lock().unwrap();
                async move { Ok::<_, BoxError>(Some(GitHub::new(Secret::text(s)?))) }
            },
        )
        .ttl(Duration::from_millis(300));

        let body = b"{}";
        let verify_with = |secret: &str| {
            let t = tenants.clone();
            let mut p =
                crate::testing::parts("/acme", crate::testing::github(secret, "d", "push", body));
            async move {
                let ext = t.prepare(&p).expect("tenants prepare").await?;
                p.extensions.extend(ext);
                let v = t.verify(&p, body, SystemTime::now())?;
                assert_eq!(v.tenant(), Some("acme"));
                Ok::<_, PrepareError>(v)
            }
        };
        assert!(verify_with("first").await.is_ok());
        assert!(verify_with("first").await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "cached within the TTL");

        *secret.lock().unwrap() = "second";
        // Still the cached verifier: the new secret is not known yet.
        assert_eq!(
            verify_with("second").await.unwrap_err(),
            PrepareError::Verify(VerifyError::SignatureMismatch)
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(verify_with("second").await.is_ok());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "loaded again after the TTL"
        );
        assert_eq!(
            verify_with("first").await.unwrap_err(),
            PrepareError::Verify(VerifyError::SignatureMismatch)
        );

        // invalidate: picked up at once
        *secret.lock().unwrap() = "third";
        tenants.invalidate("acme").await;
        assert!(verify_with("third").await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn verify_without_prepare_refuses() {
        let tenants = Tenants::new("github", TenantFrom::path_segment(0), |_: String| async {
            Ok::<_, BoxError>(Some(GitHub::new(Secret::text("s")?)))
        });
        let body = b"{}";
        let p = crate::testing::parts("/acme", crate::testing::github("s", "d", "push", body));
        assert_eq!(
            tenants.verify(&p, body, SystemTime::now()),
            Err(VerifyError::NoActiveSecret)
        );
    }
}
