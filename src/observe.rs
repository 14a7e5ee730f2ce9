//! What became of each delivery: [`Outcome`], metrics, and the
//! [`AuditHook`].
//!
//! # Metrics
//! The layer reports through the [`metrics`] facade; no exporter is forced
//! on you. Install a recorder (e.g. `metrics-exporter-prometheus`) before
//! the first delivery: the layer looks its handles up once, on its first
//! delivery. Switch them off with
//! [`WebhookLayerBuilder::metrics`](crate::middleware::WebhookLayerBuilder::metrics).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `webhook_deliveries_total` | counter | `provider`, `endpoint`, `outcome` |
//! | `webhook_verify_duration_seconds` | histogram | `provider`, `endpoint` |
//! | `webhook_handling_duration_seconds` | histogram | `provider`, `endpoint` |
//! | `webhook_fast_ack_queued` | gauge | `provider`, `endpoint` |
//!
//! `outcome` is one of [`Outcome::as_str`]. The verify histogram covers the
//! signature and timestamp check of deliveries whose body was read; the
//! handling histogram runs from the request's arrival at the layer until
//! its outcome is known (for admitted deliveries, until the handler
//! answered). [`describe`] registers help texts and units.
//!
//! # Audit
//! [`WebhookLayerBuilder::audit`](crate::middleware::WebhookLayerBuilder::audit)
//! takes an async callback called once per delivery with an
//! [`AuditRecord`]: provider, event id, outcome, reason, timings, the label
//! of the secret that matched and the client address. Never the secret,
//! never the signature. It runs on a spawned task, so a slow database does
//! not slow the answer to the provider.
//!
//! ```
//! use std::time::Duration;
//! use tower_webhook::observe::{AuditRecord, Outcome};
//! use tower_webhook::{providers::GitHub, Secret, WebhookLayer};
//!
//! let layer = WebhookLayer::builder(GitHub::new(Secret::text("s3cret")?))
//!     .audit(|record: AuditRecord| async move {
//!         // e.g. INSERT INTO deliveries ... in your own database
//!         if record.outcome != Outcome::Accepted {
//!             eprintln!("{} {:?}: {} ({})", record.provider, record.event_id, record.outcome, record.reason);
//!         }
//!     })
//!     .build();
//! # let _ = layer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

// Timings read the TSC-based clock governor already calibrates: a read costs
// about half of `std::time::Instant::now` on a virtual machine, and a
// delivery takes six (its report, its verification's timing, the store's
// claim and completion).
pub(crate) use quanta::Instant;

/// Now, by the clock every timing reads ([`Instant`]'s): quanta's clock,
/// held here (`Instant::now` would first look in a thread-local for a
/// mocked clock, which this crate never sets).
pub(crate) fn now() -> Instant {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new).now()
}

/// The time since `start`, by [`now`].
pub(crate) fn since(start: Instant) -> Duration {
    now().saturating_duration_since(start)
}

use metrics::{Counter, Gauge, Histogram};

use crate::error::WebhookError;
use crate::verify::{Verified, VerifyError};

/// Counter of deliveries, by `provider`, `endpoint` and `outcome`.
pub const DELIVERIES_TOTAL: &str = "webhook_deliveries_total";
/// Histogram of the signature check, in seconds.
pub const VERIFY_DURATION: &str = "webhook_verify_duration_seconds";
/// Histogram of the whole handling of a delivery, in seconds.
pub const HANDLING_DURATION: &str = "webhook_handling_duration_seconds";
/// Gauge of deliveries accepted in fast-ack mode whose handler has not
/// finished yet (queued or running).
pub const FAST_ACK_QUEUED: &str = "webhook_fast_ack_queued";

/// Registers the help texts and units of the layer's metrics with the
/// installed recorder. Optional; call it once after installing one.
pub fn describe() {
    metrics::describe_counter!(
        DELIVERIES_TOTAL,
        metrics::Unit::Count,
        "Webhook deliveries by provider, endpoint and outcome"
    );
    metrics::describe_histogram!(
        VERIFY_DURATION,
        metrics::Unit::Seconds,
        "Time to check a delivery's signature and timestamp"
    );
    metrics::describe_histogram!(
        HANDLING_DURATION,
        metrics::Unit::Seconds,
        "Time from a delivery's arrival until its outcome is known"
    );
    metrics::describe_gauge!(
        FAST_ACK_QUEUED,
        metrics::Unit::Count,
        "Deliveries acknowledged in fast-ack mode whose handler has not finished"
    );
}

/// What became of a delivery: the `outcome` label of
/// [`DELIVERIES_TOTAL`] and [`AuditRecord::outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Verified, claimed, and the handler succeeded.
    Accepted,
    /// Already handled: acknowledged with 200 and `webhook-duplicate`.
    Duplicate,
    /// The same event is being handled right now (409).
    InFlight,
    /// Missing or wrong signature, no active secret, unknown tenant, or a
    /// source that is not allowed (401 / 403).
    InvalidSignature,
    /// Timestamp outside the tolerance, in the past or the future (401).
    Stale,
    /// Wrong method, media type, header or body, an invalid tenant id; a
    /// body that could not be read or did not arrive in time (400, 405,
    /// 408, 415).
    Malformed,
    /// Body over the limit (413).
    TooLarge,
    /// Over a rate limit (429).
    RateLimited,
    /// The handler failed, panicked or was dropped: the claim was released.
    HandlerError,
    /// The idempotency store or a tenant's secret source did not answer
    /// (503).
    StoreUnavailable,
    /// The fast-ack queue was full (503).
    Overloaded,
    /// A provider's set-up challenge, answered by the layer.
    Handshake,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 12] = [
        Outcome::Accepted,
        Outcome::Duplicate,
        Outcome::InFlight,
        Outcome::InvalidSignature,
        Outcome::Stale,
        Outcome::Malformed,
        Outcome::TooLarge,
        Outcome::RateLimited,
        Outcome::HandlerError,
        Outcome::StoreUnavailable,
        Outcome::Overloaded,
        Outcome::Handshake,
    ];

    /// The label value: `accepted`, `duplicate`, `in_flight`,
    /// `invalid_signature`, `stale`, `malformed`, `too_large`,
    /// `rate_limited`, `handler_error`, `store_unavailable`, `overloaded`,
    /// `handshake`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::InFlight => "in_flight",
            Self::InvalidSignature => "invalid_signature",
            Self::Stale => "stale",
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::HandlerError => "handler_error",
            Self::StoreUnavailable => "store_unavailable",
            Self::Overloaded => "overloaded",
            Self::Handshake => "handshake",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&WebhookError> for Outcome {
    fn from(e: &WebhookError) -> Self {
        match e {
            WebhookError::Verify(v) => match v {
                VerifyError::MissingSignature(_)
                | VerifyError::SignatureMismatch
                | VerifyError::NoActiveSecret
                | VerifyError::UnknownTenant
                | VerifyError::SourceNotAllowed => Self::InvalidSignature,
                VerifyError::StaleTimestamp | VerifyError::FutureTimestamp => Self::Stale,
                VerifyError::MissingHeader(_)
                | VerifyError::MalformedHeader(_)
                | VerifyError::MalformedBody(_)
                | VerifyError::InvalidTenant => Self::Malformed,
            },
            WebhookError::MethodNotAllowed
            | WebhookError::UnsupportedMediaType
            | WebhookError::BodyTimeout
            | WebhookError::BodyRead => Self::Malformed,
            WebhookError::PayloadTooLarge => Self::TooLarge,
            WebhookError::RateLimited { .. } => Self::RateLimited,
            WebhookError::InFlight { .. } => Self::InFlight,
            WebhookError::StoreUnavailable { .. } | WebhookError::SecretsUnavailable { .. } => {
                Self::StoreUnavailable
            }
            WebhookError::Overloaded { .. } => Self::Overloaded,
        }
    }
}

/// One delivery, as the [`AuditHook`] sees it. No secret and no signature
/// is ever in it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuditRecord {
    /// The provider's name (`github`, `stripe`, ...).
    pub provider: &'static str,
    /// The endpoint's name (see
    /// [`WebhookLayerBuilder::endpoint`](crate::middleware::WebhookLayerBuilder::endpoint)).
    pub endpoint: Arc<str>,
    /// What became of it.
    pub outcome: Outcome,
    /// The status answered, when the layer or the handler answered one.
    pub status: Option<u16>,
    /// Why, in words (the rejection's reason, or what happened).
    pub reason: String,
    /// The event id, once the delivery was verified.
    pub event_id: Option<String>,
    /// The event type, once the delivery was verified.
    pub event_type: Option<String>,
    /// The label of the secret that matched (see [`crate::Secret::with_label`]).
    pub key_label: Option<Arc<str>>,
    /// The client's address (the peer, or the right-most untrusted hop of
    /// a trusted proxy's forwarding header), when the server gave one.
    pub client: Option<IpAddr>,
    /// When the request reached the layer.
    pub received_at: SystemTime,
    /// How long the signature check took, when it ran.
    pub verify_time: Option<Duration>,
    /// From arrival until the outcome was known.
    pub total_time: Duration,
}

/// An async callback that receives an [`AuditRecord`] per delivery. Any
/// `Fn(AuditRecord) -> impl Future<Output = ()>` is one.
pub trait AuditHook: Send + Sync + 'static {
    /// Handles one record. Runs on a spawned task.
    fn record(&self, record: AuditRecord) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl<F, Fut> AuditHook for F
where
    F: Fn(AuditRecord) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn record(&self, record: AuditRecord) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self(record))
    }
}

/// The metric handles of one layer, looked up once.
pub(crate) struct Handles {
    deliveries: [Counter; Outcome::ALL.len()],
    verify: Histogram,
    handling: Histogram,
    pub(crate) queued: Gauge,
}

impl Handles {
    fn new(provider: &'static str, endpoint: &str) -> Self {
        let endpoint = endpoint.to_owned();
        let deliveries = Outcome::ALL.map(|o| {
            metrics::counter!(
                DELIVERIES_TOTAL,
                "provider" => provider,
                "endpoint" => endpoint.clone(),
                "outcome" => o.as_str()
            )
        });
        Self {
            deliveries,
            verify: metrics::histogram!(VERIFY_DURATION, "provider" => provider, "endpoint" => endpoint.clone()),
            handling: metrics::histogram!(HANDLING_DURATION, "provider" => provider, "endpoint" => endpoint.clone()),
            queued: metrics::gauge!(FAST_ACK_QUEUED, "provider" => provider, "endpoint" => endpoint),
        }
    }
}

/// Audit records in flight at most: a hook slower than the deliveries (or
/// a flood of refusals) drops records instead of piling up tasks.
pub const AUDIT_IN_FLIGHT: usize = 1024;

/// The layer's observers: metrics (on by default) and the audit hook.
#[derive(Clone)]
pub(crate) struct Observers {
    pub(crate) metrics: bool,
    handles: Arc<OnceLock<Handles>>,
    pub(crate) audit: Option<Arc<dyn AuditHook>>,
    audit_slots: Arc<tokio::sync::Semaphore>,
}

impl Default for Observers {
    fn default() -> Self {
        Self {
            metrics: false,
            handles: Arc::default(),
            audit: None,
            audit_slots: Arc::new(tokio::sync::Semaphore::new(AUDIT_IN_FLIGHT)),
        }
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observers")
            .field("metrics", &self.metrics)
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

impl Observers {
    pub(crate) fn new() -> Self {
        Self {
            metrics: true,
            ..Self::default()
        }
    }

    fn timed(&self) -> bool {
        self.metrics || self.audit.is_some()
    }

    pub(crate) fn handles(&self, provider: &'static str, endpoint: &str) -> Option<&Handles> {
        self.metrics.then(|| {
            self.handles
                .get_or_init(|| Handles::new(provider, endpoint))
        })
    }
}

/// Why, for the log and the audit record.
#[derive(Debug, Clone)]
pub(crate) enum Reason {
    Static(&'static str),
    Error(WebhookError),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(s) => f.write_str(s),
            Self::Error(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// One delivery's observations, from arrival to outcome. Costs nothing
/// but a few words when metrics and audit are both off.
#[derive(Debug, Default)]
pub(crate) struct Report {
    start: Option<Instant>,
    // Nanoseconds, 0 when not measured.
    verify_nanos: u64,
    audit: Option<Box<Draft>>,
    outcome: Option<(Outcome, Reason)>,
}

#[derive(Debug)]
struct Draft {
    received_at: SystemTime,
    client: Option<IpAddr>,
    verified: Option<Verified>,
}

impl Report {
    /// Starts the report of a delivery that arrived now from `client`.
    pub(crate) fn start(observers: &Observers, client: impl FnOnce() -> Option<IpAddr>) -> Self {
        if !observers.timed() {
            return Self::default();
        }
        Self {
            start: Some(now()),
            verify_nanos: 0,
            audit: observers.audit.as_ref().map(|_| {
                Box::new(Draft {
                    received_at: SystemTime::now(),
                    client: client(),
                    verified: None,
                })
            }),
            outcome: None,
        }
    }

    /// Whether a timing is wanted at all.
    pub(crate) fn timed(&self) -> bool {
        self.start.is_some()
    }

    pub(crate) fn set_verify_time(&mut self, d: Duration) {
        // At least 1: 0 means "not measured".
        self.verify_nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
    }

    fn verify_time(&self) -> Option<Duration> {
        (self.verify_nanos > 0).then(|| Duration::from_nanos(self.verify_nanos))
    }

    /// Keeps what verification proved, for the audit record.
    pub(crate) fn verified(&mut self, v: &Verified) {
        if let Some(draft) = &mut self.audit {
            draft.verified = Some(v.clone());
        }
    }

    pub(crate) fn set_outcome(&mut self, outcome: Outcome, reason: Reason) {
        self.outcome = Some((outcome, reason));
    }

    /// Reports the outcome set last (or `fallback`) to the metrics and the
    /// audit hook.
    pub(crate) fn finish(
        self,
        observers: &Observers,
        provider: &'static str,
        endpoint: &Arc<str>,
        status: Option<u16>,
    ) {
        let Some(start) = self.start else {
            return;
        };
        let total = since(start);
        let verify_time = self.verify_time();
        let (outcome, reason) = self
            .outcome
            .unwrap_or((Outcome::HandlerError, Reason::Static("no outcome recorded")));
        if let Some(h) = observers.handles(provider, endpoint) {
            h.deliveries[outcome.index()].increment(1);
            if let Some(v) = verify_time {
                h.verify.record(v.as_secs_f64());
            }
            h.handling.record(total.as_secs_f64());
        }
        let (Some(hook), Some(draft)) = (&observers.audit, self.audit) else {
            return;
        };
        let verified = draft.verified;
        let record = AuditRecord {
            provider,
            endpoint: Arc::clone(endpoint),
            outcome,
            status,
            reason: reason.to_string(),
            event_id: verified
                .as_ref()
                .and_then(|v| v.event_id().map(str::to_owned)),
            event_type: verified
                .as_ref()
                .and_then(|v| v.event_type().map(str::to_owned)),
            key_label: verified.as_ref().and_then(|v| v.key_label().map(Arc::from)),
            client: draft.client,
            received_at: draft.received_at,
            verify_time,
            total_time: total,
        };
        let Ok(slot) = Arc::clone(&observers.audit_slots).try_acquire_owned() else {
            tracing::warn!(limit = AUDIT_IN_FLIGHT, "audit hook behind: record dropped");
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let done = hook.record(record);
                rt.spawn(async move {
                    done.await;
                    drop(slot);
                });
            }
            Err(_) => tracing::warn!("no tokio runtime: audit record dropped"),
        }
    }
}
