//! [`WebhookService`]: the path of one delivery.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;
use tracing::{Instrument, Span};

use super::endpoint::{Admission, Admitted, Endpoint};
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
        ResponseFuture::new(deliver(endpoint, ready, req, span.clone()).instrument(span))
    }
}

async fn deliver<S, V, St, B, ResBody>(
    endpoint: Endpoint<V, St>,
    mut inner: S,
    req: Request<B>,
    span: Span,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    V: Verifier,
    St: IdempotencyStore,
    B: Body + From<Bytes>,
    B::Error: Into<BoxError>,
{
    let admitted = match endpoint.admit_in(req, span).await {
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
    // Released on drop unless finished: a panic in the handler or a dropped
    // request lets the provider's retry through.
    match inner.call(req).await {
        Ok(mut res) => {
            ticket.write_headers(res.headers_mut());
            if res.status().is_success() {
                ticket.complete().await;
            } else {
                tracing::info!(
                    status = res.status().as_u16(),
                    "handler did not succeed: claim released"
                );
                ticket.release("handler answered non-2xx").await;
            }
            Ok(res.map(ResponseBody::inner))
        }
        Err(e) => {
            ticket.release("handler returned an error").await;
            Err(e)
        }
    }
}
