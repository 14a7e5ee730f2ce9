//! [`WebhookService`]: the path of one delivery.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use tokio::sync::oneshot;
use tower_service::Service;
use tracing::{Instrument, Span};

use super::endpoint::{Admission, Admitted, Early, Endpoint, Ticket};
use super::fast_ack::FastAck;
use super::layer::Config;
use super::{ResponseBody, ResponseFuture};
use crate::store::IdempotencyStore;
use crate::verify::Verifier;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
        let endpoint = Endpoint::new(Arc::clone(&self.config));
        let span = endpoint.span();
        // A refusal that needs no await (a flood over the pre-authentication
        // limit) is answered without building the delivery's future.
        #[allow(clippy::result_large_err)] // see `pre_check`
        let early = match span.in_scope(|| endpoint.pre_check(&req)) {
            Ok(early) => early,
            Err(res) => return ResponseFuture::ready(res.map(ResponseBody::own)),
        };
        ResponseFuture::new(deliver(endpoint, ready, req, early, span.clone()).instrument(span))
    }
}

async fn deliver<S, V, St, B, ResBody>(
    endpoint: Endpoint<V, St>,
    inner: S,
    req: Request<B>,
    early: Early,
    span: Span,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    V: Verifier,
    St: IdempotencyStore,
    B: Body + From<Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    let admitted = match endpoint.admit_checked(req, early, span).await {
        Admission::Respond(res) => return Ok(res.map(ResponseBody::own)),
        Admission::Admitted(a) => a,
    };
    let Admitted {
        mut parts,
        body,
        verified,
        ticket,
    } = admitted;
    parts.extensions.insert(verified);
    let req = Request::from_parts(parts, B::from(body));
    if let Some(pool) = &endpoint.config().fast_ack {
        return fast_ack(pool, inner, req, ticket).await;
    }
    // Released on drop unless finished: a panic in the handler or a dropped
    // request lets the provider's retry through.
    run_handler(inner, req, ticket).await
}

/// Calls the handler and finishes the ticket with its answer.
async fn run_handler<S, V, St, B, ResBody>(
    mut inner: S,
    req: Request<B>,
    ticket: Ticket<V, St>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    V: Verifier,
    St: IdempotencyStore,
{
    match inner.call(req).await {
        Ok(mut res) => {
            ticket.write_headers(res.headers_mut());
            let status = res.status().as_u16();
            if res.status().is_success() {
                ticket.complete(Some(status)).await;
            } else {
                tracing::info!(status, "handler did not succeed: claim released");
                ticket
                    .release("handler answered non-2xx", Some(status))
                    .await;
            }
            Ok(res.map(ResponseBody::inner))
        }
        Err(e) => {
            ticket.release("handler returned an error", None).await;
            Err(e)
        }
    }
}

/// Fast-ack mode: the handler runs in the pool; answer 202 now, or its own
/// response if it answers within the deadline.
async fn fast_ack<S, V, St, B, ResBody>(
    pool: &FastAck,
    inner: S,
    req: Request<B>,
    ticket: Ticket<V, St>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    V: Verifier,
    St: IdempotencyStore,
    B: Send + 'static,
    ResBody: Send + 'static,
{
    let place = match pool.reserve() {
        Ok(place) => place,
        Err(e) => return Ok(ticket.refuse(&e).await.map(ResponseBody::own)),
    };
    let mut accepted = Response::new(Bytes::from_static(br#"{"status":"accepted"}"#));
    *accepted.status_mut() = StatusCode::ACCEPTED;
    accepted.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    ticket.write_headers(accepted.headers_mut());
    let gauge = ticket.queued_gauge();
    let span = ticket.span().clone();
    let deadline = pool.answer_after_deadline();
    let (tx, rx) = match deadline {
        Some(_) => {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let job = async move {
        let answer = run_handler(inner, req, ticket).await;
        if let Some(tx) = tx {
            // The request may have been answered 202 already: then nobody
            // listens, and that is fine.
            let _ = tx.send(answer);
        }
    };
    place.spawn(job.instrument(span), gauge);
    let (Some(deadline), Some(rx)) = (deadline, rx) else {
        return Ok(accepted.map(ResponseBody::own));
    };
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(answer)) => answer,
        // The handler panicked: its claim was released.
        Ok(Err(_)) => {
            let mut res = Response::new(Bytes::from_static(br#"{"error":"handler_failed"}"#));
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok(res.map(ResponseBody::own))
        }
        Err(_) => Ok(accepted.map(ResponseBody::own)),
    }
}
