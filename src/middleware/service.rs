//! [`WebhookService`]: the path of one delivery.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower_service::Service;
use tracing::Instrument;
use tracing::field::Empty;

use super::layer::{Config, StorePolicy};
use super::{ResponseBody, ResponseFuture};
use crate::error::WebhookError;
use crate::handshake::Answer;
use crate::rate_limit::Tallies;
use crate::store::{Claim, ClaimToken, EventKey, IdempotencyStore};
use crate::verify::{Verified, Verifier};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Header set on the 200 answer to a duplicate delivery.
pub const DUPLICATE_HEADER: &str = "webhook-duplicate";

/// The middleware built by [`WebhookLayer`](super::WebhookLayer). See the
/// [module docs](crate::middleware).
pub struct WebhookService<S, V, St> {
    inner: S,
    config: Arc<Config<V, St>>,
}

impl<S: Clone, V, St> Clone for WebhookService<S, V, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: fmt::Debug, V: Verifier, St: fmt::Debug> fmt::Debug for WebhookService<S, V, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, V, St> WebhookService<S, V, St> {
    pub(crate) fn new(inner: S, config: Arc<Config<V, St>>) -> Self {
        Self { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, V, St, B, ResBody> Service<Request<B>> for WebhookService<S, V, St>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    V: Verifier,
    St: IdempotencyStore,
    B: Body + From<Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    // A rejection is a response, never an `Err`.
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // No back-pressure of our own: limits answer in `call`.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // We await before calling inner, so take the instance that was made
        // ready and leave a fresh clone (see tower's "Be careful when cloning
        // inner services").
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let config = Arc::clone(&self.config);
        let span = tracing::info_span!(
            "webhook",
            provider = config.verifier.provider(),
            endpoint = %config.endpoint,
            event_id = Empty,
            outcome = Empty,
            reason = Empty,
        );
        ResponseFuture::new(deliver(config, ready, req).instrument(span))
    }
}

/// What became of a delivery, for the log line and the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accepted,
    Duplicate,
    HandlerError,
    Handshake,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::HandlerError => "handler_error",
            Self::Handshake => "handshake",
        }
    }
}

async fn deliver<S, V, St, B, ResBody>(
    config: Arc<Config<V, St>>,
    inner: S,
    req: Request<B>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    V: Verifier,
    St: IdempotencyStore,
    B: Body + From<Bytes>,
    B::Error: Into<BoxError>,
{
    // The pre-authentication limit comes first of all: a flood costs no
    // body read and no hashing.
    let mut tallies = Tallies::default();
    let rate = &config.rate;
    let mut res = match rate.check_pre(req.headers(), req.extensions(), &mut tallies) {
        Ok(()) => handle(&config, inner, req, &mut tallies).await,
        Err(e) => Ok(reject(&e)),
    };
    if let Ok(res) = &mut res {
        rate.write_headers(&tallies, res.headers_mut());
    }
    res
}

async fn handle<S, V, St, B, ResBody>(
    config: &Arc<Config<V, St>>,
    mut inner: S,
    req: Request<B>,
    tallies: &mut Tallies,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    V: Verifier,
    St: IdempotencyStore,
    B: Body + From<Bytes>,
    B::Error: Into<BoxError>,
{
    let config = Arc::clone(config);

    // GET handshakes carry no signature: answered before anything but the
    // pre-authentication limit.
    if let Some(h) = &config.handshake {
        match h.before_verify(req.method(), req.uri(), config.clock.now()) {
            Answer::Pass => {}
            Answer::Respond(res) => {
                record(Outcome::Handshake, "challenge answered");
                return Ok(res.map(ResponseBody::own));
            }
            Answer::Refuse(e) => return Ok(reject(&e)),
        }
    }
    let (mut parts, bytes, verified) = match admit(&config, req).await {
        Ok(admitted) => admitted,
        Err(e) => return Ok(reject(&e)),
    };
    // Signed handshakes: after verification, before the claim.
    if let Some(h) = &config.handshake {
        match h.after_verify(&parts, &bytes, config.clock.now()) {
            Answer::Pass => {}
            Answer::Respond(res) => {
                record(Outcome::Handshake, "challenge answered");
                return Ok(res.map(ResponseBody::own));
            }
            Answer::Refuse(e) => return Ok(reject(&e)),
        }
    }
    let span = tracing::Span::current();
    if let Some(id) = verified.event_id() {
        span.record("event_id", id);
    }
    // Only verified deliveries count, and before the claim: a refused
    // delivery leaves no trace in the store.
    if let Err(e) = config.rate.check_post(&verified, &parts, tallies) {
        return Ok(reject(&e));
    }

    // The guard exists before the first claim: if this future is dropped
    // between two claims (client gone), what was claimed is still released.
    let mut guard = ClaimGuard {
        config: Arc::clone(&config),
        claims: Claims::default(),
    };
    if let Err(refusal) = claim(&config, &verified, &mut guard.claims).await {
        guard.release().await;
        return Ok(match refusal {
            Refusal::Duplicate => {
                record(Outcome::Duplicate, "already handled");
                let mut res = Response::new(ResponseBody::own(Bytes::new()));
                res.headers_mut()
                    .insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
                res
            }
            Refusal::Error(e) => reject(&e),
        });
    }

    parts.extensions.insert(verified);
    let req = Request::from_parts(parts, B::from(bytes));
    // Released on drop unless completed: a panic in the handler or a dropped
    // request lets the provider's retry through.
    match inner.call(req).await {
        Ok(res) => {
            let ok = res.status().is_success();
            if ok {
                guard.complete().await;
                record(Outcome::Accepted, "handled");
            } else {
                guard.release().await;
                tracing::info!(
                    status = res.status().as_u16(),
                    "handler did not succeed: claim released"
                );
                record(Outcome::HandlerError, "handler answered non-2xx");
            }
            Ok(res.map(ResponseBody::inner))
        }
        Err(e) => {
            guard.release().await;
            record(Outcome::HandlerError, "handler returned an error");
            Err(e)
        }
    }
}

/// Steps before the claim: method, media type, body, signature.
async fn admit<V, St, B>(
    config: &Config<V, St>,
    req: Request<B>,
) -> Result<(http::request::Parts, Bytes, Verified), WebhookError>
where
    V: Verifier,
    B: Body,
    B::Error: Into<BoxError>,
{
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

    let (parts, body) = req.into_parts();
    let collect = Limited::new(body, config.body_limit).collect();
    let bytes = match tokio::time::timeout(config.read_timeout, collect).await {
        Err(_) => return Err(WebhookError::BodyTimeout),
        Ok(Err(e)) if e.is::<LengthLimitError>() => return Err(WebhookError::PayloadTooLarge),
        Ok(Err(_)) => return Err(WebhookError::BodyRead),
        Ok(Ok(collected)) => collected.to_bytes(),
    };

    let now = config.clock.now();
    // The event type, if in the body, is read only when asked for.
    let mut verified = config.verifier.verify_deferred(&parts, &bytes, now)?;
    verified.attach_body(bytes.clone());
    Ok((parts, bytes, verified))
}

fn check_media_type(headers: &http::HeaderMap, allowed: &[&str]) -> Result<(), WebhookError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(essence)) {
        Ok(())
    } else {
        Err(WebhookError::UnsupportedMediaType)
    }
}

fn reject<ResBody>(e: &WebhookError) -> Response<ResponseBody<ResBody>> {
    let level_warn = matches!(
        e,
        WebhookError::Verify(_) | WebhookError::StoreUnavailable { .. }
    );
    if matches!(e, WebhookError::RateLimited { .. }) {
        // a flood must not become a flood of log lines
        tracing::debug!(status = e.status().as_u16(), reason = %e, "webhook rejected");
    } else if level_warn {
        tracing::warn!(status = e.status().as_u16(), reason = %e, "webhook rejected");
    } else {
        tracing::info!(status = e.status().as_u16(), reason = %e, "webhook rejected");
    }
    let span = tracing::Span::current();
    span.record("outcome", e.code());
    span.record("reason", tracing::field::display(e));
    e.to_response()
}

fn record(outcome: Outcome, reason: &'static str) {
    let span = tracing::Span::current();
    span.record("outcome", outcome.as_str());
    span.record("reason", reason);
    tracing::info!(outcome = outcome.as_str(), reason, "webhook delivery");
}

enum Refusal {
    Duplicate,
    Error(WebhookError),
}

/// At most two keys: the event id, and the signed content's digest where
/// the id is not signed. A slot is emptied only once its key was completed
/// or released, so a future dropped halfway leaves the rest to the guard.
#[derive(Default)]
pub(crate) struct Claims {
    held: [Option<(EventKey, ClaimToken)>; 2],
}

impl Claims {
    fn push(&mut self, key: EventKey, token: ClaimToken) {
        if let Some(slot) = self.held.iter_mut().find(|s| s.is_none()) {
            *slot = Some((key, token));
        }
    }

    fn is_empty(&self) -> bool {
        self.held.iter().all(Option::is_none)
    }
}

fn keys(endpoint: &str, v: &Verified) -> [Option<EventKey>; 2] {
    let provider = v.provider();
    let id = v.event_id().map(|id| EventKey::new(endpoint, provider, id));
    let digest = match (v.id_signed(), v.content_digest(), &id) {
        // The id is not signed: a replay under a fresh id must still be
        // caught, so the signed content is claimed too.
        // The digest is the signature itself: hash it, so that no signature
        // value lands in the store (nor in its logs, slowlog, MONITOR).
        (false, Some(d), Some(_)) => {
            use sha2::Digest;
            let hashed = sha2::Sha256::new_with_prefix(b"tower-webhook dedup\0")
                .chain_update(d)
                .finalize();
            let hex = hex::encode(hashed.get(..16).unwrap_or_default());
            Some(EventKey::new(endpoint, provider, &format!("sig:{hex}")))
        }
        _ => None,
    };
    [id, digest]
}

async fn claim<V, St: IdempotencyStore>(
    config: &Config<V, St>,
    verified: &Verified,
    claims: &mut Claims,
) -> Result<(), Refusal> {
    if !config.dedup {
        return Ok(());
    }
    for key in keys(&config.endpoint, verified).into_iter().flatten() {
        let answer =
            tokio::time::timeout(config.store_timeout, config.store.claim(&key, config.lease))
                .await;
        let refusal = match answer {
            Ok(Ok(Claim::Fresh(token))) => {
                claims.push(key, token);
                continue;
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
        // The caller releases what was claimed so far.
        return Err(refusal);
    }
    Ok(())
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
    for slot in &mut claims.held {
        let Some((key, token)) = slot.as_ref() else {
            continue;
        };
        match tokio::time::timeout(config.store_timeout, config.store.release(key, *token)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not release claim; it expires with its lease")
            }
            Err(_) => tracing::error!("release timed out; the claim expires with its lease"),
        }
        *slot = None;
    }
}

struct ClaimGuard<V: Verifier, St: IdempotencyStore> {
    config: Arc<Config<V, St>>,
    claims: Claims,
}

impl<V: Verifier, St: IdempotencyStore> ClaimGuard<V, St> {
    async fn complete(&mut self) {
        let config = &self.config;
        for slot in &mut self.claims.held {
            let Some((key, token)) = slot.as_ref() else {
                continue;
            };
            let done = config.store.complete(key, *token, config.ttl);
            match tokio::time::timeout(config.store_timeout, done).await {
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
            *slot = None;
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
