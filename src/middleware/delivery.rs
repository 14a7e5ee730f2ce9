//! The path of one delivery, in the order it is taken: [`Endpoint`].
//!
//! 1. The checks of the request head (`Endpoint::pre_check`): the
//!    pre-authentication rate limit, GET handshakes, the method, the media
//!    type and a declared length, all without reading the body.
//! 2. [`Endpoint::admit`]: secrets that depend on the request (a tenant's),
//!    the body under its limit and read timeout, the signature, signed
//!    handshakes, the post-authentication rate limit and the idempotency
//!    claim. Its result is a response to send, or a verified, claimed
//!    delivery with its [`Ticket`].
//! 3. The handler runs (the Tower service's inner service, the fast-ack
//!    pool, an actix handler, yours), then [`Ticket::finish`] completes the
//!    claim on success or releases it, so that the provider's retry is
//!    handled.
//!
//! The Tower [`WebhookService`](super::WebhookService) and the actix-web
//! adapter are thin wrappers around these steps; a server of your own can
//! be one too.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::time::timeout;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use super::layer::{Config, StorePolicy};
use crate::client::peer_addr;
use crate::error::WebhookError;
use crate::handshake::Answer;
use crate::observe::{Outcome, Reason, Report};
use crate::rate_limit::Tallies;
use crate::received::ReceivedAt;
use crate::store::{Claim, ClaimToken, EventKey, IdempotencyStore};
use crate::verify::{DedupKey, Verified, Verifier};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Header set on the 200 answer to a duplicate delivery.
pub const DUPLICATE_HEADER: &str = "webhook-duplicate";

/// One webhook endpoint's checks and bookkeeping, for any server: get it
/// from [`WebhookLayer::endpoint`](super::WebhookLayer::endpoint), call
/// [`admit`](Self::admit) with the request, and either send the ready
/// response or run your handler and [`finish`](Ticket::finish) the ticket.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, StatusCode};
/// use http_body_util::Full;
/// use tower_webhook::middleware::Admission;
/// use tower_webhook::{providers::GitHub, testing, Secret, WebhookLayer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let endpoint = WebhookLayer::new(GitHub::new(Secret::text("s3cret")?)).endpoint();
/// let body = br#"{"ref":"main"}"#;
/// let send = || -> Result<_, http::Error> {
///     let mut req = Request::post("/hooks/github").header("content-type", "application/json");
///     for (k, v) in &testing::github("s3cret", "d-1", "push", body) {
///         req = req.header(k, v);
///     }
///     req.body(Full::new(Bytes::from_static(body)))
/// };
///
/// match endpoint.admit(send()?).await {
///     Admission::Admitted(a) => {
///         assert_eq!(a.verified.event_type(), Some("push"));
///         assert_eq!(a.body, &body[..]);
///         // ... handle the event ...
///         a.ticket.finish(true).await; // handled: a retry is a duplicate
///     }
///     Admission::Respond(res) => panic!("refused: {}", res.status()),
/// }
/// let Admission::Respond(again) = endpoint.admit(send()?).await else { panic!() };
/// assert_eq!(again.status(), StatusCode::OK);
/// assert_eq!(again.headers()["webhook-duplicate"], "true");
/// # Ok(()) }
/// ```
pub struct Endpoint<V, St> {
    config: Arc<Config<V, St>>,
}

impl<V, St> Clone for Endpoint<V, St> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
        }
    }
}

impl<V: Verifier, St: fmt::Debug> fmt::Debug for Endpoint<V, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &self.config)
            .finish()
    }
}

/// What [`Endpoint::admit`] decided.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // the common case is the large one
pub enum Admission<V: Verifier, St: IdempotencyStore> {
    /// Send this response and do not call the handler: a rejection (4xx,
    /// 503, JSON body), a duplicate's 200 acknowledgement (with
    /// [`DUPLICATE_HEADER`]) or a handshake's answer. Rate-limit headers
    /// are already in it.
    Respond(Response<Bytes>),
    /// A verified delivery, claimed: call the handler.
    Admitted(Admitted<V, St>),
}

/// A verified, claimed delivery.
#[derive(Debug)]
pub struct Admitted<V: Verifier, St: IdempotencyStore> {
    /// The request head as received.
    pub parts: http::request::Parts,
    /// The whole body, as verified.
    pub body: Bytes,
    /// What verification proved.
    pub verified: Verified,
    /// The claim: [`finish`](Ticket::finish) it once the handler answered.
    pub ticket: Ticket<V, St>,
}

/// What the head's checks ([`Endpoint::pre_check`]) passed on to the rest
/// of the path: the rate-limit tallies (for the response's headers) and the
/// delivery's report (for metrics and the audit hook).
#[derive(Debug)]
pub(crate) struct Checked {
    tallies: Tallies,
    report: Report,
}

impl<V, St> Endpoint<V, St> {
    pub(crate) fn new(config: Arc<Config<V, St>>) -> Self {
        Self { config }
    }

    pub(crate) fn config(&self) -> &Config<V, St> {
        &self.config
    }
}

impl<V: Verifier, St: IdempotencyStore> Endpoint<V, St> {
    /// Runs every step before the handler, in the order of the
    /// [module docs](crate::middleware), in the delivery's span. Never
    /// fails: a refusal is a response.
    ///
    /// The body is read here (up to the layer's body limit: a larger
    /// `Content-Length` is refused before reading, a longer body while it
    /// is read; 413), within the read timeout (408).
    pub async fn admit<B>(&self, req: Request<B>) -> Admission<V, St>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let span = self.span();
        #[allow(clippy::result_large_err)] // see `pre_check`
        let checked = match span.in_scope(|| self.pre_check(&req)) {
            Ok(checked) => checked,
            Err(res) => return Admission::Respond(res),
        };
        self.admit_checked(req, checked, span.clone())
            .instrument(span)
            .await
    }

    /// The span a delivery is logged in (`webhook`, with the provider, the
    /// endpoint, and later the event id and the outcome), at the layer's
    /// span level. A span nothing can observe (no subscriber takes it, and
    /// no `log` logger would print it through tracing's `log` bridge) is
    /// [`Span::none`], which costs nothing to enter or record on.
    pub(crate) fn span(&self) -> Span {
        let level = self.config.span_level;
        let no_logger = log::max_level() < log_level(level);
        if no_logger && tracing::level_filters::LevelFilter::current() < level {
            return Span::none();
        }
        // tracing's span macros take their level as a constant.
        macro_rules! webhook_span {
            ($level:expr) => {
                tracing::span!(
                    $level,
                    "webhook",
                    provider = self.config.verifier.provider(),
                    endpoint = %self.config.endpoint,
                    event_id = Empty,
                    outcome = Empty,
                    reason = Empty
                )
            };
        }
        let span = match level {
            tracing::Level::ERROR => webhook_span!(tracing::Level::ERROR),
            tracing::Level::WARN => webhook_span!(tracing::Level::WARN),
            tracing::Level::INFO => webhook_span!(tracing::Level::INFO),
            tracing::Level::DEBUG => webhook_span!(tracing::Level::DEBUG),
            tracing::Level::TRACE => webhook_span!(tracing::Level::TRACE),
        };
        if span.is_disabled() && no_logger {
            Span::none()
        } else {
            span
        }
    }

    /// Steps 1 and 2 of the path, from the request head alone: the
    /// pre-authentication limit (first of all: a flood costs no body read
    /// and no hashing), GET handshakes (they carry no signature), the
    /// method, the media type and a declared `Content-Length` over the
    /// limit. Runs in the delivery's span.
    // A refusal is as large as what passes; boxing it would cost the
    // allocation this step exists to avoid.
    #[allow(clippy::result_large_err)]
    pub(crate) fn pre_check<B>(&self, req: &Request<B>) -> Result<Checked, Response<Bytes>> {
        let config = &self.config;
        let peer = peer_addr(req.extensions());
        let mut report = Report::start(&config.observers, || {
            peer.map(|p| config.proxies.client_ip(p.ip(), req.headers()))
        });
        let mut tallies = Tallies::default();
        let refusal = match config.rate.check_pre(req.headers(), peer, &mut tallies) {
            Err(e) => self.reject(&e, &mut report),
            Ok(()) => match self.check_head(req, &mut report) {
                Ok(()) => return Ok(Checked { tallies, report }),
                Err(res) => res,
            },
        };
        let mut res = refusal;
        self.respond(&mut res, &tallies, report);
        close_if_body_unread(&mut res, req.headers());
        Err(res)
    }

    #[allow(clippy::result_large_err)] // see `pre_check`
    fn check_head<B>(&self, req: &Request<B>, report: &mut Report) -> Result<(), Response<Bytes>> {
        let config = &self.config;
        if let Some(h) = &config.handshake {
            match h.before_verify(req.method(), req.uri(), config.clock.now()) {
                Answer::Pass => {}
                Answer::Respond(res) => {
                    record(report, Outcome::Handshake, "challenge answered", None);
                    return Err(res);
                }
                Answer::Refuse(e) => return Err(self.reject(&e, report)),
            }
        }
        let head = || {
            if !config.methods.contains(req.method()) {
                return Err(WebhookError::MethodNotAllowed);
            }
            check_media_type(req.headers(), config.verifier.content_types())?;
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > config.body_limit as u64) {
                return Err(WebhookError::PayloadTooLarge);
            }
            Ok(())
        };
        head().map_err(|e| self.reject(&e, report))
    }

    /// Steps 3 to 7 of the path, after [`pre_check`](Self::pre_check), in
    /// the delivery's span (`span`, which the ticket keeps).
    pub(crate) async fn admit_checked<B>(
        &self,
        req: Request<B>,
        checked: Checked,
        span: Span,
    ) -> Admission<V, St>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let config = &self.config;
        let (mut parts, body) = req.into_parts();
        let Checked {
            mut tallies,
            mut report,
        } = checked;
        // Every refusal below: the rate-limit headers, the outcome to the
        // observers, and no handler. One that leaves (some of) the body
        // unread also says the connection closes.
        macro_rules! refuse {
            ($res:expr) => {{
                let mut res = $res;
                self.respond(&mut res, &tallies, report);
                return Admission::Respond(res);
            }};
        }
        macro_rules! reject {
            ($e:expr) => {{
                let e: WebhookError = $e;
                refuse!(self.reject(&e, &mut report))
            }};
        }
        macro_rules! reject_unread {
            ($e:expr) => {{
                let e: WebhookError = $e;
                let mut res = self.reject(&e, &mut report);
                close_if_body_unread(&mut res, &parts.headers);
                refuse!(res)
            }};
        }

        // Secrets that depend on the request (a tenant's) are loaded
        // before the body is read: an unknown tenant costs no body read.
        let prepared = match config.verifier.prepare(&parts) {
            Some(prepare) => Some(prepare.await),
            None => None,
        };
        match prepared {
            Some(Ok(extensions)) => parts.extensions.extend(extensions),
            Some(Err(e)) => reject_unread!(e.into()),
            None => {}
        }
        let body = match timeout(config.read_timeout, read_body(body, config.body_limit)).await {
            Ok(Ok(bytes)) => bytes,
            Err(_) => reject_unread!(WebhookError::BodyTimeout),
            Ok(Err(e)) if e.is::<LengthLimitError>() => {
                reject_unread!(WebhookError::PayloadTooLarge)
            }
            Ok(Err(_)) => reject_unread!(WebhookError::BodyRead),
        };
        let verified = match verify(config, &parts, &body, &mut report) {
            Ok(verified) => verified,
            Err(e) => reject!(e),
        };
        report.verified(&verified);
        // Signed handshakes: after verification, before the claim.
        if let Some(h) = &config.handshake {
            match h.after_verify(&parts, &body, config.clock.now()) {
                Answer::Pass => {}
                Answer::Respond(res) => {
                    record(
                        &mut report,
                        Outcome::Handshake,
                        "challenge answered",
                        Some(&span),
                    );
                    refuse!(res);
                }
                Answer::Refuse(e) => reject!(e),
            }
        }
        if let Some(id) = verified.event_id() {
            span.record("event_id", id);
        }
        // Only verified deliveries count, and before the claim: a refused
        // delivery leaves no trace in the store.
        if let Err(e) = config.rate.check_post(&verified, &parts, &mut tallies) {
            reject!(e);
        }
        let claim = match self.claim(&verified).await {
            Ok(claim) => claim,
            Err(Refusal::Duplicate) => {
                record(
                    &mut report,
                    Outcome::Duplicate,
                    "already handled",
                    Some(&span),
                );
                let mut res = Response::new(Bytes::new());
                res.headers_mut()
                    .insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
                refuse!(res);
            }
            Err(Refusal::Error(e)) => reject!(e),
        };
        Admission::Admitted(Admitted {
            parts,
            body,
            verified,
            ticket: Ticket {
                config: Arc::clone(config),
                claim,
                tallies,
                span,
                report: Some(report),
            },
        })
    }

    /// Claims the delivery's key ([`Verified::dedup_key`]): `None` when
    /// there is nothing to claim (de-duplication off, a scheme that signs
    /// nothing unique, or a store down under [`StorePolicy::FailOpen`]).
    async fn claim(&self, verified: &Verified) -> Result<Option<(EventKey, ClaimToken)>, Refusal> {
        let config = &self.config;
        if !config.dedup {
            return Ok(None);
        }
        let Some(key) = key(&config.endpoint, verified) else {
            return Ok(None);
        };
        let failure = |what: &dyn fmt::Display| {
            tracing::error!(error = %what, "idempotency store failed");
            match config.store_policy {
                StorePolicy::FailClosed => Err(Refusal::Error(WebhookError::StoreUnavailable {
                    retry_after: config.store_timeout.max(std::time::Duration::from_secs(1)),
                })),
                StorePolicy::FailOpen => {
                    tracing::warn!("store unavailable: handling without a claim (fail open)");
                    Ok(None)
                }
            }
        };
        match timeout(config.store_timeout, config.store.claim(&key, config.lease)).await {
            Ok(Ok(Claim::Fresh(token))) => Ok(Some((key, token))),
            Ok(Ok(Claim::Done)) => Err(Refusal::Duplicate),
            Ok(Ok(Claim::InFlight { retry_after })) => {
                Err(Refusal::Error(WebhookError::InFlight { retry_after }))
            }
            Ok(Err(e)) => failure(&e),
            Err(_) => failure(&"no answer within the store timeout"),
        }
    }

    /// A refusal: its outcome in the report, a log line on the
    /// `tower_webhook::rejection` target (at debug: a flood of refusals must
    /// not become a flood of log lines; enable the target to see them), the
    /// reason on the delivery's span, and the response, shaped by the
    /// layer's rejection hook.
    fn reject(&self, e: &WebhookError, report: &mut Report) -> Response<Bytes> {
        report.set_outcome(Outcome::from(e), Reason::Error(e.clone()));
        tracing::debug!(
            target: "tower_webhook::rejection",
            provider = self.config.verifier.provider(),
            status = e.status().as_u16(),
            reason = %e,
            "webhook rejected"
        );
        let span = Span::current();
        if is_delivery_span(&span) {
            span.record("outcome", e.code());
            span.record("reason", tracing::field::display(e));
        }
        self.config.rejection.respond(e)
    }

    /// A refusal or acknowledgement is final: rate-limit headers, and the
    /// outcome to the observers.
    fn respond(&self, res: &mut Response<Bytes>, tallies: &Tallies, report: Report) {
        let config = &self.config;
        config.rate.write_headers(tallies, res.headers_mut());
        report.finish(
            &config.observers,
            config.verifier.provider(),
            &config.endpoint,
            Some(res.status().as_u16()),
        );
    }
}

/// The `log` crate's level for a tracing level.
fn log_level(level: tracing::Level) -> log::LevelFilter {
    match level {
        tracing::Level::ERROR => log::LevelFilter::Error,
        tracing::Level::WARN => log::LevelFilter::Warn,
        tracing::Level::INFO => log::LevelFilter::Info,
        tracing::Level::DEBUG => log::LevelFilter::Debug,
        tracing::Level::TRACE => log::LevelFilter::Trace,
    }
}

/// Whether `span` is a delivery's `webhook` span. Where a subscriber
/// filters that span out, the current span is the caller's own (an HTTP
/// request span, say): nothing of ours is recorded on it.
fn is_delivery_span(span: &Span) -> bool {
    span.metadata()
        .is_some_and(|m| m.name() == "webhook" && m.target() == module_path!())
}

enum Refusal {
    Duplicate,
    Error(WebhookError),
}

/// How the handler did, for [`Ticket`]: its status where it answered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Handled {
    /// It answered with this status (2xx: success).
    Status(StatusCode),
    /// It succeeded or failed without an HTTP status (a server of your
    /// own: [`Ticket::finish`]).
    Success(bool),
    /// It returned an error instead of a response.
    Error,
}

/// The idempotency claim of an admitted delivery. [`finish`](Self::finish)
/// it with whether the handler succeeded: success completes the claim (a
/// retry is then a duplicate), failure releases it (the retry is handled).
/// Dropped unfinished (a handler panic, a client gone), it is released from
/// a tokio task.
#[must_use = "finish the ticket, or the claim is released when dropped"]
pub struct Ticket<V: Verifier, St: IdempotencyStore> {
    config: Arc<Config<V, St>>,
    claim: Option<(EventKey, ClaimToken)>,
    tallies: Tallies,
    span: Span,
    // Taken when the outcome is reported; still here on drop: the handler
    // never answered.
    report: Option<Report>,
}

impl<V: Verifier, St: IdempotencyStore> fmt::Debug for Ticket<V, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("claimed", &self.claim.is_some())
            .finish_non_exhaustive()
    }
}

impl<V: Verifier, St: IdempotencyStore> Ticket<V, St> {
    /// The `RateLimit-Policy` / `RateLimit` fields for the handler's
    /// response, when [`rate_limit_headers`](super::WebhookLayerBuilder::rate_limit_headers)
    /// is on (else empty).
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        self.write_headers(&mut h);
        h
    }

    /// The delivery's `webhook` span (provider, endpoint, event id,
    /// outcome): run the handler in it to have its log lines carry them.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Completes the claim when `success` (the handler answered 2xx), else
    /// releases it so that the provider's retry is handled.
    pub async fn finish(self, success: bool) {
        self.settle(Handled::Success(success)).await;
    }

    /// Completes the claim if the handler succeeded, else releases it; then
    /// reports the delivery's outcome. In the delivery's span.
    pub(crate) async fn settle(mut self, handled: Handled) {
        let span = self.span.clone();
        async move {
            let (outcome, reason, status) = match handled {
                Handled::Status(s) if s.is_success() => (Outcome::Accepted, "handled", Some(s)),
                Handled::Success(true) => (Outcome::Accepted, "handled", None),
                Handled::Status(s) => (Outcome::HandlerError, "handler answered non-2xx", Some(s)),
                Handled::Success(false) => (Outcome::HandlerError, "handler did not succeed", None),
                Handled::Error => (Outcome::HandlerError, "handler returned an error", None),
            };
            if outcome == Outcome::Accepted {
                self.complete().await;
            } else {
                if let Some(status) = status {
                    tracing::info!(
                        status = status.as_u16(),
                        "handler did not succeed: claim released"
                    );
                }
                self.release().await;
            }
            if let Some(mut report) = self.report.take() {
                record(&mut report, outcome, reason, Some(&self.span));
                self.report_finish(report, status.map(|s| s.as_u16()));
            }
        }
        .instrument(span)
        .await;
    }

    /// Releases the claim without calling the handler: the delivery is
    /// refused with `e` (fast-ack queue full).
    pub(crate) async fn refuse(mut self, e: &WebhookError) -> Response<Bytes> {
        let span = self.span.clone();
        async move {
            self.release().await;
            let endpoint = Endpoint::new(Arc::clone(&self.config));
            let mut report = self.report.take().unwrap_or_default();
            let mut res = endpoint.reject(e, &mut report);
            self.write_headers(res.headers_mut());
            self.report_finish(report, Some(res.status().as_u16()));
            res
        }
        .instrument(span)
        .await
    }

    /// The gauge of deliveries waiting in fast-ack mode, if metrics are on.
    pub(crate) fn queued_gauge(&self) -> Option<metrics::Gauge> {
        let config = &self.config;
        config
            .observers
            .handles(config.verifier.provider(), &config.endpoint)
            .map(|h| h.queued.clone())
    }

    pub(crate) fn write_headers(&self, headers: &mut HeaderMap) {
        self.config.rate.write_headers(&self.tallies, headers);
    }

    async fn complete(&mut self) {
        let config = &self.config;
        let Some((key, token)) = self.claim.take() else {
            return;
        };
        let done = config.store.complete(&key, token, config.ttl);
        match timeout(config.store_timeout, done).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => tracing::warn!(
                "claim was lost before completion (lease too short?): a retry may be handled again"
            ),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not complete claim: a retry may be handled again")
            }
            Err(_) => {
                tracing::error!("completing the claim timed out: a retry may be handled again")
            }
        }
    }

    async fn release(&mut self) {
        if let Some((key, token)) = self.claim.take() {
            release(&self.config, &key, token).await;
        }
    }

    fn report_finish(&self, report: Report, status: Option<u16>) {
        let config = &self.config;
        report.finish(
            &config.observers,
            config.verifier.provider(),
            &config.endpoint,
            status,
        );
    }
}

impl<V: Verifier, St: IdempotencyStore> Drop for Ticket<V, St> {
    /// The handler panicked or the request was dropped: the outcome is
    /// reported, and the claim released on a spawned task so that the
    /// provider's retry is handled.
    fn drop(&mut self) {
        let _entered = self.span.clone().entered();
        if let Some(mut report) = self.report.take() {
            record(
                &mut report,
                Outcome::HandlerError,
                "handler never answered",
                Some(&self.span),
            );
            self.report_finish(report, None);
        }
        let Some((key, token)) = self.claim.take() else {
            return;
        };
        tracing::warn!("handler panicked or the request was dropped: releasing the claim");
        let config = Arc::clone(&self.config);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { release(&config, &key, token).await });
            }
            Err(_) => tracing::error!("no runtime to release the claim; it expires with its lease"),
        }
    }
}

async fn release<V, St: IdempotencyStore>(
    config: &Config<V, St>,
    key: &EventKey,
    token: ClaimToken,
) {
    match timeout(config.store_timeout, config.store.release(key, token)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "could not release claim; it expires with its lease")
        }
        Err(_) => tracing::error!("release timed out; the claim expires with its lease"),
    }
}

/// The signature, over the body as read (timed for the metrics when they
/// are on). The event type, if in the body, is read only when asked for.
fn verify<V: Verifier, St>(
    config: &Config<V, St>,
    parts: &http::request::Parts,
    body: &Bytes,
    report: &mut Report,
) -> Result<Verified, WebhookError> {
    // A delivery replayed from a queue is checked against its arrival.
    let now = match parts.extensions.get::<ReceivedAt>() {
        Some(ReceivedAt(at)) => *at,
        None => config.clock.now(),
    };
    let start = report.timed().then(crate::observe::now);
    let verified = config.verifier.verify_deferred(parts, body, now);
    if let Some(start) = start {
        report.set_verify_time(crate::observe::since(start));
    }
    let mut verified = verified?;
    verified.attach_body(body.clone());
    if verified.key_retiring() {
        tracing::warn!(
            provider = verified.provider(),
            key = verified.key_label().unwrap_or("<unlabelled>"),
            "delivery verified with a retiring secret: move the sender to a new one"
        );
    }
    Ok(verified)
}

/// Reads the whole body, up to `limit` bytes (http-body-util's `Limited`
/// and `collect`: a body of one frame is kept as it is, without a copy).
/// Trailers are ignored.
pub(crate) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, BoxError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    Ok(Limited::new(body, limit).collect().await?.to_bytes())
}

fn check_media_type(headers: &http::HeaderMap, allowed: &[&str]) -> Result<(), WebhookError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    // As bytes: the allowed types are ASCII, so a value with anything else
    // in its essence matches none of them.
    let essence = crate::payload::media_essence(value.as_bytes());
    if allowed
        .iter()
        .any(|a| a.as_bytes().eq_ignore_ascii_case(essence))
    {
        Ok(())
    } else {
        Err(WebhookError::UnsupportedMediaType)
    }
}

/// Adds `Connection: close` to a refusal sent before the request's body was
/// read to its end, when the request has one (a `Content-Length` above 0,
/// or a `Transfer-Encoding`): the rest of that body would otherwise be read
/// as the connection's next request, so the server closes it, and the
/// client is told so rather than finding out on its next write.
fn close_if_body_unread<B>(res: &mut Response<B>, headers: &HeaderMap) {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()));
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || matches!(declared, Some(n) if n != Some(0));
    if has_body {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

/// Sets the delivery's outcome: in its report, on its span (`span`, else
/// the current one if it is the delivery's), and in one log line.
fn record(report: &mut Report, outcome: Outcome, reason: &'static str, span: Option<&Span>) {
    report.set_outcome(outcome, Reason::Static(reason));
    let current;
    let span = match span {
        Some(span) => span,
        None => {
            current = Span::current();
            &current
        }
    };
    if is_delivery_span(span) {
        span.record("outcome", outcome.as_str());
        span.record("reason", reason);
    }
    tracing::info!(outcome = outcome.as_str(), reason, "webhook delivery");
}

/// The store key of a verified delivery: built from what the signature
/// covers alone ([`Verified::dedup_key`]): the signed event id, else the
/// digest of the signature. An unsigned id or type is never part of it, so
/// a captured delivery replayed under a fresh id or type finds its own key
/// (a duplicate), and can never claim the id of a genuine delivery.
fn key(endpoint: &str, v: &Verified) -> Option<EventKey> {
    let provider = v.provider();
    Some(match v.dedup_key()? {
        // Tenants sharing a route share no ids: their senders number events
        // independently. The tenant id comes length-prefixed, so that no
        // (tenant, id) pair can spell another's key.
        DedupKey::SignedId(id) => match v.tenant() {
            Some(t) => {
                let scoped = format!("{endpoint}#{}#{t}", t.len());
                EventKey::new(&scoped, provider, &bounded(id))
            }
            None => EventKey::new(endpoint, provider, &bounded(id)),
        },
        // A signature is one delivery whatever tenant the request names (a
        // tenant id may come from an unsigned header, and tenants may share
        // a secret): not scoped. Digests live in their own namespace
        // (`provider/sig`), which no id can reach.
        DedupKey::Digest(d) => {
            let hex = hex::encode(d.get(..16).unwrap_or_default());
            EventKey::new(endpoint, &format!("{provider}/sig"), &hex)
        }
    })
}

/// Ids and types can be long (an unsigned header, Adyen's joined item ids):
/// above 128 bytes, the key holds a hash of the value instead.
fn bounded(text: &str) -> std::borrow::Cow<'_, str> {
    use sha2::Digest as _;
    if text.len() <= 128 {
        return std::borrow::Cow::Borrowed(text);
    }
    let h = sha2::Sha256::digest(text.as_bytes());
    std::borrow::Cow::Owned(format!("sha256:{}", hex::encode(h)))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body::Frame;
    use http_body_util::StreamBody;

    use super::*;

    fn frames(parts: Vec<Frame<Bytes>>) -> impl Body<Data = Bytes, Error = Infallible> {
        StreamBody::new(futures_util::stream::iter(
            parts.into_iter().map(Ok::<_, Infallible>),
        ))
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn the_media_type_is_its_essence_compared_without_case() {
        let allowed = ["application/json", "application/x-www-form-urlencoded"];
        let check = |value: Option<&[u8]>| {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_bytes(v).expect("header value"),
                );
            }
            check_media_type(&headers, &allowed).is_ok()
        };
        for ok in [
            &b"application/json"[..],
            b"APPLICATION/Json",
            b"application/json; charset=utf-8",
            b"application/json;",
            b" application/json ;charset=utf-8",
            b"application/x-www-form-urlencoded",
        ] {
            assert!(check(Some(ok)), "{:?}", String::from_utf8_lossy(ok));
        }
        assert!(check(None), "no Content-Type: left to the verifier");
        for refused in [
            &b"text/plain"[..],
            b"application/jsonx",
            b"application/json-patch+json",
            b"",
            b"; application/json",
            b"application/j\xc3\xa9son",
            b"application/json\xff",
        ] {
            assert!(
                !check(Some(refused)),
                "{:?}",
                String::from_utf8_lossy(refused)
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        assert!(
            check_media_type(&headers, &[]).is_ok(),
            "no list: anything goes"
        );
    }

    #[test]
    fn one_frame_is_kept_without_a_copy() {
        let data = Bytes::from(vec![7u8; 1024]);
        let body = http_body_util::Full::new(data.clone());
        let read = run(read_body(body, 4096)).expect("read");
        assert_eq!(read, data);
        assert_eq!(read.as_ptr(), data.as_ptr(), "the same buffer, not a copy");
    }

    #[test]
    fn frames_are_joined_in_order_and_trailers_skipped() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-t", HeaderValue::from_static("1"));
        let body = frames(vec![
            Frame::data(Bytes::from_static(b"{\"id\":")),
            Frame::data(Bytes::new()),
            Frame::data(Bytes::from_static(b"\"evt_1\"")),
            Frame::data(Bytes::from_static(b"}")),
            Frame::trailers(trailers),
        ]);
        let read = run(read_body(body, 4096)).expect("read");
        assert_eq!(&read[..], b"{\"id\":\"evt_1\"}");
        let empty = run(read_body(frames(vec![]), 16)).expect("read");
        assert!(empty.is_empty());
    }

    #[test]
    fn a_body_over_the_limit_is_a_length_error() {
        let body = frames(vec![
            Frame::data(Bytes::from_static(b"0123456789")),
            Frame::data(Bytes::from_static(b"0123456789")),
        ]);
        let err = run(read_body(body, 15)).expect_err("over the limit");
        assert!(err.is::<LengthLimitError>(), "{err}");
        let exact = frames(vec![
            Frame::data(Bytes::from_static(b"01234567")),
            Frame::data(Bytes::from_static(b"89")),
        ]);
        assert_eq!(run(read_body(exact, 10)).expect("at the limit").len(), 10);
    }
}
