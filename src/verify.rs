//! The framework-free verification core: [`Verifier`], [`Verified`],
//! [`VerifyError`], [`Tolerance`] and [`Clock`].
//!
//! Nothing here knows about tower or a runtime, and nothing here awaits: the
//! actix adapter and the fuzz targets call it bare. The one async hook,
//! [`Verifier::prepare`], only hands a future to the caller.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_webhook::{providers::GitHub, Secret, Verifier};
//!
//! let github = GitHub::new(Secret::text("It's a Secret to Everybody")?);
//! let req = http::Request::post("/hook")
//!     .header("x-hub-signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
//!     .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
//!     .body(())?;
//! let (parts, ()) = req.into_parts();
//! let verified = github.verify(&parts, b"Hello, World!", SystemTime::now())?;
//! assert_eq!(verified.event_id(), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::request::Parts;

/// One provider's signature scheme, holding its secrets.
///
/// Implementations are pure: no I/O, no clock of their own (the time comes in
/// as `now`, so tests and the "received-at" mode can choose it).
pub trait Verifier: Send + Sync + 'static {
    /// The provider's name as it appears in logs and metrics (`"stripe"`).
    fn provider(&self) -> &'static str;

    /// Checks the request head and the raw body bytes as received.
    ///
    /// # Errors
    /// A [`VerifyError`] saying which check failed.
    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError>;

    /// Like [`verify`](Self::verify), but a provider whose event type is a
    /// body field (Stripe, Standard Webhooks) may leave it unread: hand the
    /// body to the result with [`Verified::attach_body`] and
    /// [`Verified::event_type`] reads it on first use. Only what the
    /// idempotency claim needs (the event id) is parsed here. The layer
    /// calls this; [`verify`](Self::verify) always fills the type at once.
    ///
    /// The default calls [`verify`](Self::verify).
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    fn verify_deferred(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        self.verify(parts, body, now)
    }

    /// Media types (lower case, without parameters) this provider posts.
    /// A request whose `Content-Type` is present and not in the list is
    /// refused with 415. An empty list accepts any type.
    fn content_types(&self) -> &[&'static str] {
        &["application/json"]
    }

    /// Work to do before the body is read, for a verifier whose secrets
    /// depend on the request: [`Tenants`](crate::secrets::Tenants) looks up
    /// the tenant's secrets here (an I/O call, maybe). The caller awaits the
    /// future and adds the [`Extensions`](http::Extensions) it gives to
    /// `parts.extensions` before calling [`verify_deferred`](Self::verify_deferred)
    /// or [`verify`](Self::verify) with those parts. The layer and the actix
    /// adapter do this.
    ///
    /// The default, `None`, means nothing to do: it costs a verifier of
    /// fixed secrets nothing.
    ///
    /// # Errors
    /// The future fails with [`PrepareError`]: a refusal of the request
    /// (4xx), or secrets that could not be loaded (503).
    fn prepare<'a>(&'a self, parts: &'a Parts) -> Option<PrepareFuture<'a>> {
        let _ = parts;
        None
    }
}

/// The future [`Verifier::prepare`] returns: the extensions to add to the
/// request before it is verified.
pub type PrepareFuture<'a> =
    Pin<Box<dyn Future<Output = Result<http::Extensions, PrepareError>> + Send + 'a>>;

/// Why [`Verifier::prepare`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// The request is refused, as by verification (an unknown tenant).
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The secrets could not be loaded (their store failed or timed out):
    /// the sender should retry later (503 + `Retry-After`).
    #[error("secrets unavailable, retry after {retry_after:?}")]
    Unavailable {
        /// When to try again.
        retry_after: Duration,
    },
}

impl<V: Verifier + ?Sized> Verifier for Arc<V> {
    fn provider(&self) -> &'static str {
        (**self).provider()
    }
    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        (**self).verify(parts, body, now)
    }
    fn verify_deferred(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        (**self).verify_deferred(parts, body, now)
    }
    fn content_types(&self) -> &[&'static str] {
        (**self).content_types()
    }
    fn prepare<'a>(&'a self, parts: &'a Parts) -> Option<PrepareFuture<'a>> {
        (**self).prepare(parts)
    }
}

impl<V: Verifier + ?Sized> Verifier for Box<V> {
    fn provider(&self) -> &'static str {
        (**self).provider()
    }
    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        (**self).verify(parts, body, now)
    }
    fn verify_deferred(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        (**self).verify_deferred(parts, body, now)
    }
    fn content_types(&self) -> &[&'static str] {
        (**self).content_types()
    }
    fn prepare<'a>(&'a self, parts: &'a Parts) -> Option<PrepareFuture<'a>> {
        (**self).prepare(parts)
    }
}

/// What verification proved about a delivery. The layer puts it in the
/// request's extensions; the `Webhook<T>` extractor hands it to the handler.
#[derive(Clone, PartialEq, Eq)]
pub struct Verified {
    provider: &'static str,
    event_id: Option<String>,
    event_type: EventType,
    timestamp: Option<i64>,
    id_signed: bool,
    type_signed: bool,
    key_label: Option<Arc<str>>,
    key_retiring: bool,
    tenant: Option<Arc<str>>,
    content_digest: Option<[u8; 32]>,
}

/// The secret or key that matched: its label and whether it is retiring.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyTag {
    pub(crate) label: Option<Arc<str>>,
    pub(crate) retiring: bool,
}

/// The event type: unknown, known, or a body field still to be read.
#[derive(Clone, PartialEq, Eq)]
enum EventType {
    Unknown,
    Known(String),
    InBody(DeferredType),
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("None"),
            Self::Known(t) => write!(f, "Some({t:?})"),
            Self::InBody(d) => d.fmt(f),
        }
    }
}

/// An event type still to be read from a body field.
#[derive(Clone, PartialEq, Eq)]
struct DeferredType {
    path: &'static [&'static str],
    body: Option<bytes::Bytes>,
    read: OnceLock<Option<String>>,
}

impl fmt::Debug for DeferredType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the body itself.
        f.debug_struct("DeferredType")
            .field("path", &self.path)
            .field("body_attached", &self.body.is_some())
            .field("read", &self.read.get())
            .finish()
    }
}

impl Verified {
    /// A delivery from `provider`, with nothing else known yet.
    pub fn new(provider: &'static str) -> Self {
        Self {
            provider,
            event_id: None,
            event_type: EventType::Unknown,
            timestamp: None,
            id_signed: false,
            type_signed: false,
            key_label: None,
            key_retiring: false,
            tenant: None,
            content_digest: None,
        }
    }

    /// Sets the event id and whether the signature covers it.
    ///
    /// Only a signed id is claimed for de-duplication. When the id is not
    /// signed (GitHub's `X-GitHub-Delivery`), set a
    /// [`content_digest`](Self::with_content_digest): the layer claims that
    /// instead, so a replay under a fresh id is still a duplicate and a
    /// forged id can never take a genuine delivery's place.
    pub fn with_event_id(mut self, id: impl Into<String>, signed: bool) -> Self {
        self.set_event(Some((id.into(), signed)), None);
        self
    }

    /// Sets the event type (`"invoice.paid"`, `"push"`) and whether the
    /// signature covers it. An unsigned type (GitHub's `X-GitHub-Event`) can
    /// be changed by anyone replaying a captured delivery: it is shown to
    /// the handler as such ([`type_signed`](Self::type_signed)) and is never
    /// part of the de-duplication key.
    pub fn with_event_type(mut self, ty: impl Into<String>, signed: bool) -> Self {
        self.set_event(None, Some((ty.into(), signed)));
        self
    }

    /// Says that the event type is the body field at `path`, to be read on
    /// the first [`event_type`](Self::event_type) call once the body is
    /// [attached](Self::attach_body). See [`Verifier::verify_deferred`].
    /// A type already [set](Self::with_event_type) is kept. Use it only
    /// where the signature covers the body: the type counts as signed.
    pub fn with_event_type_in_body(mut self, path: &'static [&'static str]) -> Self {
        self.set_event_type_in_body(path);
        self
    }

    /// [`with_event_type_in_body`](Self::with_event_type_in_body), in place.
    pub(crate) fn set_event_type_in_body(&mut self, path: &'static [&'static str]) {
        if !matches!(self.event_type, EventType::Known(_)) {
            self.event_type = EventType::InBody(DeferredType {
                path,
                body: None,
                read: OnceLock::new(),
            });
            self.type_signed = true;
        }
    }

    /// Hands the verified body over, for an event type left to read from
    /// it (see [`Verifier::verify_deferred`]). A no-op otherwise. Cloning
    /// [`Bytes`](bytes::Bytes) is a reference count: the body is not copied.
    pub fn attach_body(&mut self, body: bytes::Bytes) {
        if let EventType::InBody(d) = &mut self.event_type
            && d.body.is_none()
        {
            d.body = Some(body);
        }
    }

    /// Sets the signed timestamp, in Unix seconds.
    pub fn with_timestamp(mut self, ts: i64) -> Self {
        self.timestamp = Some(ts);
        self
    }

    /// Sets the label of the secret that matched.
    pub fn with_key_label(mut self, label: Option<Arc<str>>) -> Self {
        self.key_label = label;
        self
    }

    /// Says that the secret that matched is marked
    /// [retiring](crate::Secret::retiring): the layer logs a warning.
    pub fn with_key_retiring(mut self, retiring: bool) -> Self {
        self.key_retiring = retiring;
        self
    }

    /// Sets the tenant the delivery was verified for (see
    /// [`Tenants`](crate::secrets::Tenants)). The layer keeps each tenant's
    /// event ids apart in the idempotency store.
    pub fn with_tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the event id and the event type, each with whether the
    /// signature covers it, where they were found.
    pub(crate) fn set_event(&mut self, id: Option<(String, bool)>, ty: Option<(String, bool)>) {
        if let Some((id, signed)) = id {
            self.event_id = Some(id);
            self.id_signed = signed;
        }
        if let Some((ty, signed)) = ty {
            self.event_type = EventType::Known(ty);
            self.type_signed = signed;
        }
    }

    /// Sets what is known of the matched key in one go.
    pub(crate) fn with_key(self, key: KeyTag) -> Self {
        self.with_key_label(key.label)
            .with_key_retiring(key.retiring)
    }

    /// Sets what identifies the signed content: 32 bytes that stand for the
    /// verified signature (its first 32, or a hash of it). The layer claims it
    /// when the event id is unsigned or absent. It must be the same for
    /// every copy of one signed delivery, whatever an attacker changes
    /// outside the signature. It is kept private:
    /// [`content_digest`](Self::content_digest) gives only a hash of it,
    /// and `Debug` never shows it, since a MAC is a signature.
    pub fn with_content_digest(mut self, digest: [u8; 32]) -> Self {
        self.content_digest = Some(digest);
        self
    }

    /// The provider's name (`"stripe"`).
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The event id the provider keeps stable across retries, if it sends one.
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }

    /// The event type, where the provider names one.
    ///
    /// After [`Verifier::verify_deferred`], a type in the body is read here,
    /// once, from the [attached](Self::attach_body) body (`None` until the
    /// body is attached).
    pub fn event_type(&self) -> Option<&str> {
        let d = match &self.event_type {
            EventType::Unknown => return None,
            EventType::Known(t) => return Some(t),
            EventType::InBody(d) => d,
        };
        let body = d.body.as_ref()?;
        d.read
            .get_or_init(|| {
                // A type named twice is not reported: parsers disagree on
                // which one counts.
                crate::providers::json::unique_fields(body, &[d.path])
                    .ok()
                    .and_then(|[ty]| ty)
            })
            .as_deref()
    }

    /// The signed timestamp (Unix seconds), where the scheme signs one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// Whether the event id is covered by the signature. An unsigned id
    /// (GitHub's `X-GitHub-Delivery`, Shopify's `X-Shopify-Webhook-Id`) is
    /// whatever the request says: anyone replaying a captured delivery can
    /// change it. Log it, but do not trust it.
    pub fn id_signed(&self) -> bool {
        self.id_signed
    }

    /// Whether the event type is covered by the signature. An unsigned type
    /// (GitHub's `X-GitHub-Event`, Shopify's `X-Shopify-Topic`) can be
    /// changed by anyone replaying a captured delivery: a handler that acts
    /// on it should read the type from the (signed) payload instead, where
    /// the payload names it.
    pub fn type_signed(&self) -> bool {
        self.type_signed
    }

    /// What the layer claims in the idempotency store: the event id when
    /// the signature covers it, else the content digest (a hash of the
    /// signature), else nothing (a scheme that signs nothing unique per
    /// delivery). Never an unsigned id or type.
    pub fn dedup_key(&self) -> Option<DedupKey<'_>> {
        match (&self.event_id, self.id_signed) {
            (Some(id), true) => Some(DedupKey::SignedId(id)),
            _ => self.content_digest().map(DedupKey::Digest),
        }
    }

    /// The label of the secret that verified the delivery, if it has one.
    pub fn key_label(&self) -> Option<&str> {
        self.key_label.as_deref()
    }

    /// Whether the secret that verified the delivery is marked
    /// [retiring](crate::Secret::retiring): its sender should move to
    /// another one before it is removed.
    pub fn key_retiring(&self) -> bool {
        self.key_retiring
    }

    /// The tenant whose secrets verified the delivery, when the verifier
    /// is [`Tenants`](crate::secrets::Tenants): the id as found in the
    /// request.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// A digest of the signed content (a hash of the MAC, never the MAC),
    /// where the scheme provides one. The layer claims it when the event id
    /// is unsigned or absent, so that a replay is still caught.
    pub fn content_digest(&self) -> Option<[u8; 32]> {
        use sha2::Digest as _;
        // Domain-separated hash: the value may be a signature, and this one
        // goes into store keys and logs.
        self.content_digest.map(|d| {
            sha2::Sha256::new_with_prefix(b"tower-webhook content digest\0")
                .chain_update(d)
                .finalize()
                .into()
        })
    }
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("provider", &self.provider)
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("timestamp", &self.timestamp)
            .field("id_signed", &self.id_signed)
            .field("type_signed", &self.type_signed)
            .field("key_label", &self.key_label)
            .field("key_retiring", &self.key_retiring)
            .field("tenant", &self.tenant)
            .field("content_digest", &self.content_digest.map(|_| "<set>"))
            .finish()
    }
}

/// What de-duplicates a delivery: see [`Verified::dedup_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupKey<'a> {
    /// An event id the signature covers.
    SignedId(&'a str),
    /// A hash of the verified signature: one per signed delivery, whatever
    /// else a replay changes.
    Digest([u8; 32]),
}

/// Why a delivery failed verification. The detail is for logs; the client
/// only sees the class (see [`WebhookError`](crate::WebhookError)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature header is absent.
    #[error("signature header `{0}` is missing")]
    MissingSignature(&'static str),
    /// Another required header (id, timestamp) is absent.
    #[error("required header `{0}` is missing")]
    MissingHeader(&'static str),
    /// A header is present but cannot be parsed, or is repeated.
    #[error("header `{0}` is malformed")]
    MalformedHeader(&'static str),
    /// No signature matched any active secret (this includes signatures of
    /// the wrong length or alphabet: they cannot match).
    #[error("no signature matches an active secret")]
    SignatureMismatch,
    /// The signed timestamp is older than the tolerance allows.
    #[error("timestamp is older than the tolerance")]
    StaleTimestamp,
    /// The signed timestamp is further in the future than the tolerance allows.
    #[error("timestamp is further in the future than the tolerance")]
    FutureTimestamp,
    /// The body lacks something the scheme needs (invalid UTF-8 where the
    /// scheme signs text, a signed field that is missing).
    #[error("body is malformed: {0}")]
    MalformedBody(&'static str),
    /// Every configured secret has expired.
    #[error("no secret is active")]
    NoActiveSecret,
    /// The client's address is outside the allowed networks.
    #[error("source address is not allowed")]
    SourceNotAllowed,
    /// The request names no tenant, or a tenant id that cannot be one (too
    /// long, not visible ASCII); see [`TenantFrom`](crate::secrets::TenantFrom).
    #[error("tenant id is missing or malformed")]
    InvalidTenant,
    /// The tenant named by the request has no secrets (the resolver does
    /// not know it).
    #[error("tenant is unknown")]
    UnknownTenant,
}

/// How far a signed timestamp may be from `now`.
///
/// A timestamp exactly at the bound is accepted, as every provider's library
/// does. The default is 300 s in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    past: Option<Duration>,
    future: Option<Duration>,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::symmetric(Duration::from_secs(300))
    }
}

impl Tolerance {
    /// Rejects timestamps more than `d` old or more than `d` ahead.
    pub const fn symmetric(d: Duration) -> Self {
        Self {
            past: Some(d),
            future: Some(d),
        }
    }

    /// Rejects timestamps more than `d` old; any future timestamp passes
    /// (Stripe's own libraries do this).
    pub const fn stale_only(d: Duration) -> Self {
        Self {
            past: Some(d),
            future: None,
        }
    }

    /// Separate bounds for the past and the future; `None` means unbounded.
    pub const fn new(past: Option<Duration>, future: Option<Duration>) -> Self {
        Self { past, future }
    }

    /// No timestamp check at all.
    pub const fn unchecked() -> Self {
        Self {
            past: None,
            future: None,
        }
    }

    /// Checks a timestamp in Unix seconds against `now` (whole seconds, as
    /// the providers' libraries compare).
    ///
    /// # Errors
    /// [`VerifyError::StaleTimestamp`] or [`VerifyError::FutureTimestamp`].
    pub fn check_secs(&self, ts: i64, now: SystemTime) -> Result<(), VerifyError> {
        self.check_millis(ts.saturating_mul(1000), unix_secs(now).saturating_mul(1000))
    }

    /// Checks a timestamp in Unix milliseconds against `now_ms`.
    ///
    /// # Errors
    /// [`VerifyError::StaleTimestamp`] or [`VerifyError::FutureTimestamp`].
    pub fn check_millis(&self, ts_ms: i64, now_ms: i64) -> Result<(), VerifyError> {
        let age = i128::from(now_ms) - i128::from(ts_ms);
        if let Some(past) = self.past
            && age > past.as_millis() as i128
        {
            return Err(VerifyError::StaleTimestamp);
        }
        if let Some(future) = self.future
            && -age > future.as_millis() as i128
        {
            return Err(VerifyError::FutureTimestamp);
        }
        Ok(())
    }
}

/// Unix seconds of `t` (negative before 1970).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Unix milliseconds of `t`.
pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |s| -s),
    }
}

/// Where the layer gets the time from; swap it in tests.
///
/// Any `Fn() -> SystemTime + Send + Sync` is a clock.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl<F> Clock for F
where
    F: Fn() -> SystemTime + Send + Sync + 'static,
{
    fn now(&self) -> SystemTime {
        self()
    }
}

/// A clock that always says the same time (for tests and replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl FixedClock {
    /// A clock stopped at `secs` Unix seconds.
    pub fn at_unix(secs: u64) -> Self {
        Self(UNIX_EPOCH + Duration::from_secs(secs))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_accepts_exact_bound_and_rejects_one_past() {
        let t = Tolerance::symmetric(Duration::from_secs(300));
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(t.check_secs(9_700, now), Ok(()));
        assert_eq!(t.check_secs(9_699, now), Err(VerifyError::StaleTimestamp));
        assert_eq!(t.check_secs(10_300, now), Ok(()));
        assert_eq!(t.check_secs(10_301, now), Err(VerifyError::FutureTimestamp));
    }

    #[test]
    fn stale_only_accepts_any_future() {
        let t = Tolerance::stale_only(Duration::from_secs(300));
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(t.check_secs(i64::MAX, now), Ok(()));
        assert_eq!(
            t.check_secs(i64::MIN, now),
            Err(VerifyError::StaleTimestamp)
        );
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let t = Tolerance::default();
        let now = SystemTime::now();
        assert_eq!(
            t.check_secs(i64::MAX, now),
            Err(VerifyError::FutureTimestamp)
        );
        assert_eq!(
            t.check_secs(i64::MIN, now),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(t.check_secs(0, now), Err(VerifyError::StaleTimestamp));
        assert_eq!(Tolerance::unchecked().check_secs(i64::MIN, now), Ok(()));
    }
}
