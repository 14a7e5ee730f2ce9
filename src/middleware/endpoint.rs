//! [`Endpoint`]: the path of one delivery, without any framework.
//!
//! The tower [`WebhookService`](super::WebhookService) and the actix-web
//! adapter are thin wrappers around it; a server of your own can be one too.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tracing::field::Empty;
use tracing::{Instrument, Span};

use super::deadline::within;
use super::layer::{Config, StorePolicy};
use crate::error::WebhookError;
use crate::handshake::Answer;
use crate::net::peer_addr;
use crate::observe::{Outcome, Reason, Report};
use crate::rate_limit::Tallies;
use crate::store::{Claim, ClaimToken, EventKey, IdempotencyStore};
use crate::stored::ReceivedAt;
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

/// What [`Endpoint::pre_check`] let through, for the rest of the path.
#[derive(Debug)]
pub(crate) struct Early {
    tallies: Tallies,
    report: Report,
}

/// What [`Endpoint::admit_checked`] decided: [`Admission`], with the
/// admitted delivery in the shape its caller builds from the head, the body
/// and what verification proved (the Tower service rebuilds the request
/// there, with `Verified` in its extensions; `admit` keeps the three). Built
/// where they are, they are not moved through one more 700-byte value.
pub(crate) enum Decision<O, V: Verifier, St: IdempotencyStore> {
    Respond(Response<Bytes>),
    Admit(O, Ticket<V, St>),
}

/// What lives through the whole admission, in one place (see
/// [`Endpoint::admit_checked`]).
struct Held<V, St> {
    endpoint: Endpoint<V, St>,
    parts: http::request::Parts,
    tallies: Tallies,
    report: Report,
}

/// The current span if it is a delivery's `webhook` span (see
/// [`Endpoint::span`]), for recording its fields. Where a subscriber filters
/// the `webhook` span out, the current span is the caller's own (an HTTP
/// request span, say): nothing is recorded on it.
fn delivery_span() -> Option<Span> {
    let span = Span::current();
    let ours = span
        .metadata()
        .is_some_and(|m| m.name() == "webhook" && m.target() == module_path!());
    ours.then_some(span)
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

/// The idempotency claim of an admitted delivery. [`finish`](Self::finish)
/// it with whether the handler succeeded: success completes the claim (a
/// retry is then a duplicate), failure releases it (the retry is handled).
/// Dropped unfinished (a handler panic, a client gone), it is released from
/// a tokio task.
#[must_use = "finish the ticket, or the claim is released when dropped"]
pub struct Ticket<V: Verifier, St: IdempotencyStore> {
    guard: ClaimGuard<V, St>,
    tallies: Tallies,
    span: Span,
    // Taken when the outcome is reported; still here on drop: the handler
    // never answered.
    report: Option<Report>,
}

impl<V: Verifier, St: IdempotencyStore> fmt::Debug for Ticket<V, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("claims", &self.guard.claims.count())
            .finish_non_exhaustive()
    }
}

impl<V: Verifier, St: IdempotencyStore> Ticket<V, St> {
    /// The `RateLimit-Policy` / `RateLimit` fields for the handler's
    /// response, when [`rate_limit_headers`](super::WebhookLayerBuilder::rate_limit_headers)
    /// is on (else empty).
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        self.guard.config.rate.write_headers(&self.tallies, &mut h);
        h
    }

    /// The delivery's `webhook` span (provider, endpoint, event id,
    /// outcome): run the handler in it to have its log lines carry them.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Gives the ticket the delivery's span, which the caller of
    /// [`Endpoint::admit_checked`] holds.
    pub(crate) fn set_span(&mut self, span: Span) {
        self.span = span;
    }

    /// Completes the claim when `success` (the handler answered 2xx), else
    /// releases it so that the provider's retry is handled.
    pub async fn finish(self, success: bool) {
        if success {
            self.complete(None).await;
        } else {
            self.release("handler did not succeed", None).await;
        }
    }

    /// Completes the claim; the handler answered `status`.
    pub(crate) async fn complete(mut self, status: Option<u16>) {
        let span = self.span.clone();
        self.complete_in_span(status).instrument(span).await;
    }

    /// [`complete`](Self::complete), from a future that already runs in
    /// the delivery's span (the Tower service's).
    pub(crate) async fn complete_in_span(&mut self, status: Option<u16>) {
        self.guard.complete().await;
        self.report_outcome(Outcome::Accepted, "handled", status);
    }

    /// Releases the claim: the handler failed (answered `status`).
    pub(crate) async fn release(mut self, reason: &'static str, status: Option<u16>) {
        let span = self.span.clone();
        self.release_in_span(reason, status).instrument(span).await;
    }

    /// [`release`](Self::release), from a future that already runs in the
    /// delivery's span.
    pub(crate) async fn release_in_span(&mut self, reason: &'static str, status: Option<u16>) {
        self.guard.release().await;
        self.report_outcome(Outcome::HandlerError, reason, status);
    }

    /// Releases the claim without calling the handler: the delivery is
    /// refused with `e` (fast-ack queue full).
    pub(crate) async fn refuse(mut self, e: &WebhookError) -> Response<Bytes> {
        let span = self.span.clone();
        async move {
            self.guard.release().await;
            let mut report = self.report.take().unwrap_or_default();
            let mut res = reject(e, &mut report);
            self.write_headers(res.headers_mut());
            let config = &self.guard.config;
            report.finish(
                &config.observers,
                config.verifier.provider(),
                &config.endpoint,
                Some(res.status().as_u16()),
            );
            res
        }
        .instrument(span)
        .await
    }

    /// The gauge of deliveries waiting in fast-ack mode, if metrics are on.
    pub(crate) fn queued_gauge(&self) -> Option<metrics::Gauge> {
        let config = &self.guard.config;
        config
            .observers
            .handles(config.verifier.provider(), &config.endpoint)
            .map(|h| h.queued.clone())
    }

    fn report_outcome(&mut self, outcome: Outcome, reason: &'static str, status: Option<u16>) {
        let Some(mut report) = self.report.take() else {
            return;
        };
        // The ticket holds the delivery's span: no need to look for it.
        record_in(Some(&self.span), &mut report, outcome, reason);
        let config = &self.guard.config;
        report.finish(
            &config.observers,
            config.verifier.provider(),
            &config.endpoint,
            status,
        );
    }

    pub(crate) fn write_headers(&self, headers: &mut HeaderMap) {
        self.guard.config.rate.write_headers(&self.tallies, headers);
    }
}

impl<V: Verifier, St: IdempotencyStore> Drop for Ticket<V, St> {
    fn drop(&mut self) {
        if self.report.is_some() {
            let _entered = self.span.clone().entered();
            self.report_outcome(Outcome::HandlerError, "handler never answered", None);
        }
    }
}

impl<V, St> Endpoint<V, St> {
    pub(crate) fn new(config: Arc<Config<V, St>>) -> Self {
        Self { config }
    }
}

impl<V, St> Endpoint<V, St> {
    pub(crate) fn config(&self) -> &Config<V, St> {
        &self.config
    }
}

impl<V: Verifier, St: IdempotencyStore> Endpoint<V, St> {
    /// The span a delivery is logged in (`webhook`, with the provider, the
    /// endpoint, and later the event id and the outcome).
    ///
    /// A span nothing can observe is [`Span::none`]: one no subscriber
    /// takes, when no `log` logger takes INFO lines either (through its
    /// `log` feature, tracing prints a disabled span's lines to the `log`
    /// crate's logger, gated by the span's level). A disabled span still
    /// runs that bridge's checks, and looks its fields up by name, on
    /// every record, enter, exit and drop; `Span::none` skips them all.
    pub(crate) fn span(&self) -> Span {
        let no_logger = log::max_level() < log::LevelFilter::Info;
        // No subscriber takes INFO: the span would be disabled. Not built at
        // all then (its fields, and the bridge's record of them, cost more
        // than the rest of this check).
        if no_logger && tracing::level_filters::LevelFilter::current() < tracing::Level::INFO {
            return Span::none();
        }
        let span = tracing::info_span!(
            "webhook",
            provider = self.config.verifier.provider(),
            endpoint = %self.config.endpoint,
            event_id = Empty,
            outcome = Empty,
            reason = Empty,
        );
        if span.is_disabled() && no_logger {
            Span::none()
        } else {
            span
        }
    }

    /// Runs every step before the handler, in the order of the
    /// [module docs](crate::middleware): pre-authentication rate limit,
    /// GET handshakes, method, media type, body (limit, read timeout),
    /// signature, signed handshakes, post-authentication rate limit, and the
    /// idempotency claim. Never fails: a refusal is a response.
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
        self.admit_in(req, span.clone()).instrument(span).await
    }

    /// [`admit`](Self::admit) inside `span`, already entered.
    pub(crate) async fn admit_in<B>(&self, req: Request<B>, span: Span) -> Admission<V, St>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let early = match self.pre_check(&req) {
            Ok(early) => early,
            Err(res) => return Admission::Respond(res),
        };
        let keep = |parts, body, verified| (parts, body, verified);
        match self.clone().admit_checked(req, early, keep).await {
            Decision::Admit((parts, body, verified), mut ticket) => {
                ticket.set_span(span);
                Admission::Admitted(Admitted {
                    parts,
                    body,
                    verified,
                    ticket,
                })
            }
            Decision::Respond(res) => Admission::Respond(res),
        }
    }

    /// The steps that need no `.await`, run before any future is built:
    /// the pre-authentication limit, GET handshakes, the method, the media
    /// type and a declared `Content-Length` over the limit. A flood over
    /// its limit, or a request that is wrong at its head, is refused here
    /// at the cost of a few lookups (the Tower service answers it without
    /// boxing the delivery's future). Runs in the delivery's span.
    // Boxing the refusal would add an allocation to the path this exists to
    // make cheap; `Early` is as large.
    #[allow(clippy::result_large_err)]
    pub(crate) fn pre_check<B>(&self, req: &Request<B>) -> Result<Early, Response<Bytes>> {
        let config = &self.config;
        let peer = peer_addr(req.extensions());
        let mut report = Report::start(&config.observers, || {
            peer.map(|p| config.proxies.client_ip(p.ip(), req.headers()))
        });
        // The pre-authentication limit comes first of all: a flood costs no
        // body read and no hashing.
        let mut tallies = Tallies::default();
        let refusal = match config.rate.check_pre(req.headers(), peer, &mut tallies) {
            Err(e) => reject(&e, &mut report),
            Ok(()) => match self.check_head(req, &mut report) {
                Ok(()) => return Ok(Early { tallies, report }),
                Err(res) => res,
            },
        };
        let mut res = refusal;
        self.respond(&mut res, &tallies, report);
        close_if_body_unread(&mut res, req.headers());
        Err(res)
    }

    /// GET handshakes (answered before anything but the pre-authentication
    /// limit: they carry no signature), then the method, the media type and
    /// the declared length.
    #[allow(clippy::result_large_err)] // as `pre_check`, whose part it is
    fn check_head<B>(&self, req: &Request<B>, report: &mut Report) -> Result<(), Response<Bytes>> {
        let config = &self.config;
        if let Some(h) = &config.handshake {
            match h.before_verify(req.method(), req.uri(), config.clock.now()) {
                Answer::Pass => {}
                Answer::Respond(res) => {
                    record(report, Outcome::Handshake, "challenge answered");
                    return Err(res);
                }
                Answer::Refuse(e) => return Err(reject(&e, report)),
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
        head().map_err(|e| reject(&e, report))
    }

    /// Everything after [`pre_check`](Self::pre_check): secrets that depend
    /// on the request, the body, the signature, signed handshakes, the
    /// post-authentication limit and the claim.
    ///
    /// One future with its awaits on small futures (no nested steps), and
    /// what lives through all of it (the endpoint, the head, the tallies,
    /// the report) held once, in [`Held`], and used in place: moved into
    /// locals, an async block keeps both copies, as it keeps its arguments.
    /// The delivery's future stays under 1 KiB (see the test in
    /// `service.rs`), so that glibc serves its box from the thread cache;
    /// at 1.5 KiB each delivery's box went through `malloc_consolidate`
    /// (6 % of a delivery in the pipeline bench's profile).
    ///
    /// Owns its endpoint (an `Arc`), so that the Tower service's future
    /// holds this one directly.
    ///
    /// Runs in the delivery's span (both callers enter it), where it
    /// records the event id; it keeps no handle of its own (40 bytes): the
    /// caller, which holds the span, gives it to the ticket
    /// ([`Ticket::set_span`]).
    pub(crate) fn admit_checked<B, O, M>(
        self,
        req: Request<B>,
        early: Early,
        make: M,
    ) -> impl Future<Output = Decision<O, V, St>> + use<V, St, B, O, M>
    where
        B: Body,
        B::Error: Into<BoxError>,
        M: FnOnce(http::request::Parts, Bytes, Verified) -> O,
    {
        let (parts, body) = req.into_parts();
        let Early { tallies, report } = early;
        let mut held = Held {
            endpoint: self,
            parts,
            tallies,
            report,
        };
        async move {
            let config = &held.endpoint.config;
            // A refusal or acknowledgement: rate-limit headers, the outcome
            // to the observers, and no handler.
            macro_rules! refuse {
                ($res:expr) => {{
                    let mut res = $res;
                    held.endpoint.respond(&mut res, &held.tallies, held.report);
                    return Decision::Respond(res);
                }};
            }
            macro_rules! reject {
                ($e:expr) => {{
                    let e: WebhookError = $e;
                    refuse!(reject(&e, &mut held.report))
                }};
            }
            // A refusal that leaves (some of) the body unread: the
            // connection cannot serve another request, and says so.
            macro_rules! reject_unread {
                ($e:expr) => {{
                    let e: WebhookError = $e;
                    let mut res = reject(&e, &mut held.report);
                    close_if_body_unread(&mut res, &held.parts.headers);
                    refuse!(res)
                }};
            }

            // Secrets that depend on the request (a tenant's) are loaded
            // before the body is read: an unknown tenant costs no body read.
            let prepared = match config.verifier.prepare(&held.parts) {
                Some(prepare) => Some(prepare.await),
                None => None,
            };
            match prepared {
                Some(Ok(extensions)) => held.parts.extensions.extend(extensions),
                Some(Err(e)) => reject_unread!(e.into()),
                None => {}
            }
            let body = match within(config.read_timeout, read_body(body, config.body_limit)).await {
                Ok(Ok(bytes)) => bytes,
                Err(_) => reject_unread!(WebhookError::BodyTimeout),
                Ok(Err(e)) if e.is::<LengthLimitError>() => {
                    reject_unread!(WebhookError::PayloadTooLarge)
                }
                Ok(Err(_)) => reject_unread!(WebhookError::BodyRead),
            };
            let verified = match verify(config, &held.parts, &body, &mut held.report) {
                Ok(verified) => verified,
                Err(e) => reject!(e),
            };
            held.report.verified(&verified);
            // Signed handshakes: after verification, before the claim.
            if let Some(h) = &config.handshake {
                match h.after_verify(&held.parts, &body, config.clock.now()) {
                    Answer::Pass => {}
                    Answer::Respond(res) => {
                        record(&mut held.report, Outcome::Handshake, "challenge answered");
                        refuse!(res);
                    }
                    Answer::Refuse(e) => reject!(e),
                }
            }
            if let (Some(id), Some(span)) = (verified.event_id(), delivery_span()) {
                span.record("event_id", id);
            }
            // Only verified deliveries count, and before the claim: a
            // refused delivery leaves no trace in the store.
            if let Err(e) = config
                .rate
                .check_post(&verified, &held.parts, &mut held.tallies)
            {
                reject!(e);
            }

            // The guard exists before the first claim: if this future is
            // dropped between two claims (client gone), what was claimed is
            // still released.
            let mut guard = ClaimGuard {
                config: Arc::clone(config),
                claims: Claims::default(),
            };
            if let Err(refusal) = claim(&guard.config, &verified, &mut guard.claims).await {
                guard.release().await;
                match refusal {
                    Refusal::Duplicate => {
                        record(&mut held.report, Outcome::Duplicate, "already handled");
                        let mut res = Response::new(Bytes::new());
                        res.headers_mut()
                            .insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
                        refuse!(res);
                    }
                    Refusal::Error(e) => reject!(e),
                }
            }
            Decision::Admit(
                make(held.parts, body, verified),
                Ticket {
                    guard,
                    tallies: held.tallies,
                    // Given by the caller (`set_span`).
                    span: Span::none(),
                    report: Some(held.report),
                },
            )
        }
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
    let mut verified = if report.timed() {
        let start = crate::observe::now();
        let verified = config.verifier.verify_deferred(parts, body, now);
        report.set_verify_time(crate::observe::since(start));
        verified?
    } else {
        config.verifier.verify_deferred(parts, body, now)?
    };
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

/// Reads the whole body, up to `limit` bytes. A body that arrives in one
/// frame (the common case: hyper, axum's `Body` from bytes) is kept as it
/// is, without a copy or a buffer list; later frames are appended to one
/// buffer. Trailers are ignored.
pub(crate) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, BoxError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    use bytes::{Buf, BytesMut};
    let mut body = std::pin::pin!(Limited::new(body, limit));
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(mut data) = frame?.into_data() else {
            continue; // trailers
        };
        let chunk = data.copy_to_bytes(data.remaining());
        match (&mut more, &first) {
            (Some(buf), _) => buf.extend_from_slice(&chunk),
            (None, None) => first = Some(chunk),
            (None, Some(head)) => {
                let mut buf = BytesMut::with_capacity(head.len() + chunk.len());
                buf.extend_from_slice(head);
                buf.extend_from_slice(&chunk);
                first = None;
                more = Some(buf);
            }
        }
    }
    Ok(match more {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
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

fn reject(e: &WebhookError, report: &mut Report) -> Response<Bytes> {
    report.set_outcome(Outcome::from(e), Reason::Error(e.clone()));
    let level_warn = matches!(
        e,
        WebhookError::Verify(_)
            | WebhookError::StoreUnavailable { .. }
            | WebhookError::SecretsUnavailable { .. }
    );
    if matches!(e, WebhookError::RateLimited { .. }) {
        // a flood must not become a flood of log lines
        tracing::debug!(status = e.status().as_u16(), reason = %e, "webhook rejected");
    } else if level_warn {
        tracing::warn!(status = e.status().as_u16(), reason = %e, "webhook rejected");
    } else {
        tracing::info!(status = e.status().as_u16(), reason = %e, "webhook rejected");
    }
    if let Some(span) = delivery_span() {
        span.record("outcome", e.code());
        span.record("reason", tracing::field::display(e));
    }
    e.to_response()
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

fn record(report: &mut Report, outcome: Outcome, reason: &'static str) {
    record_in(delivery_span().as_ref(), report, outcome, reason);
}

/// [`record`], on the delivery's span `span` (a ticket's, which is ours or
/// none: `Span::current` and its check are a thread-local lookup and more
/// on every delivery).
fn record_in(span: Option<&Span>, report: &mut Report, outcome: Outcome, reason: &'static str) {
    report.set_outcome(outcome, Reason::Static(reason));
    if let Some(span) = span {
        span.record("outcome", outcome.as_str());
        span.record("reason", reason);
    }
    tracing::info!(outcome = outcome.as_str(), reason, "webhook delivery");
}

enum Refusal {
    Duplicate,
    Error(WebhookError),
}

/// The claim a delivery holds, if any. It is emptied once the key was
/// completed or released, so a future dropped halfway leaves the rest to
/// the guard.
#[derive(Default)]
pub(crate) struct Claims {
    held: Option<(EventKey, ClaimToken)>,
}

impl Claims {
    fn is_empty(&self) -> bool {
        self.held.is_none()
    }

    fn count(&self) -> usize {
        usize::from(self.held.is_some())
    }
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

async fn claim<V, St: IdempotencyStore>(
    config: &Config<V, St>,
    verified: &Verified,
    claims: &mut Claims,
) -> Result<(), Refusal> {
    if !config.dedup {
        return Ok(());
    }
    let Some(key) = key(&config.endpoint, verified) else {
        return Ok(());
    };
    let answer = within(config.store_timeout, config.store.claim(&key, config.lease)).await;
    let refusal = match answer {
        Ok(Ok(Claim::Fresh(token))) => {
            claims.held = Some((key, token));
            return Ok(());
        }
        Ok(Ok(Claim::Done)) => Refusal::Duplicate,
        Ok(Ok(Claim::InFlight { retry_after })) => {
            Refusal::Error(WebhookError::InFlight { retry_after })
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "idempotency store failed");
            match store_failure(config) {
                Some(e) => Refusal::Error(e),
                None => return Ok(()),
            }
        }
        Err(_) => {
            tracing::error!(timeout = ?config.store_timeout, "idempotency store did not answer");
            match store_failure(config) {
                Some(e) => Refusal::Error(e),
                None => return Ok(()),
            }
        }
    };
    Err(refusal)
}

fn store_failure<V, St>(config: &Config<V, St>) -> Option<WebhookError> {
    match config.store_policy {
        StorePolicy::FailClosed => Some(WebhookError::StoreUnavailable {
            retry_after: config.store_timeout.max(std::time::Duration::from_secs(1)),
        }),
        StorePolicy::FailOpen => {
            tracing::warn!("store unavailable: handling without a claim (fail open)");
            None
        }
    }
}

async fn release_all<V, St: IdempotencyStore>(config: &Config<V, St>, claims: &mut Claims) {
    if let Some((key, token)) = claims.held.as_ref() {
        match within(config.store_timeout, config.store.release(key, *token)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not release claim; it expires with its lease")
            }
            Err(_) => tracing::error!("release timed out; the claim expires with its lease"),
        }
        claims.held = None;
    }
}

struct ClaimGuard<V: Verifier, St: IdempotencyStore> {
    config: Arc<Config<V, St>>,
    claims: Claims,
}

impl<V: Verifier, St: IdempotencyStore> ClaimGuard<V, St> {
    async fn complete(&mut self) {
        let config = &self.config;
        if let Some((key, token)) = self.claims.held.as_ref() {
            let done = config.store.complete(key, *token, config.ttl);
            match within(config.store_timeout, done).await {
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
            self.claims.held = None;
        }
    }

    async fn release(&mut self) {
        release_all(&self.config, &mut self.claims).await;
    }
}

impl<V: Verifier, St: IdempotencyStore> Drop for ClaimGuard<V, St> {
    fn drop(&mut self) {
        if self.claims.is_empty() {
            return;
        }
        let mut claims = std::mem::take(&mut self.claims);
        tracing::warn!("handler panicked or the request was dropped: releasing the claim");
        let config = Arc::clone(&self.config);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { release_all(&config, &mut claims).await });
            }
            Err(_) => tracing::error!("no runtime to release the claim; it expires with its lease"),
        }
    }
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
