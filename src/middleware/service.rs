//! [`WebhookService`]: the Tower adapter over an [`Endpoint`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use tokio::sync::oneshot;
use tower_service::Service;
use tracing::Instrument;

use super::delivery::{Admission, Checked, Endpoint, Handled};
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
        let endpoint = Endpoint::new(Arc::clone(&self.config));
        let span = endpoint.span();
        // Refused from its head alone (a flood over the pre-authentication
        // limit, a wrong method): answered at once, without boxing a future
        // or cloning the inner service.
        #[allow(clippy::result_large_err)] // see `pre_check`
        let checked = match span.in_scope(|| endpoint.pre_check(&req)) {
            Ok(checked) => checked,
            Err(res) => return ResponseFuture::ready(res.map(ResponseBody::own)),
        };
        // We await before calling inner, so take the instance that was made
        // ready and leave a fresh clone (see tower's "Be careful when cloning
        // inner services").
        let fresh = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, fresh);
        let delivery = deliver(endpoint, inner, req, checked, span.clone());
        ResponseFuture::boxed(delivery.instrument(span))
    }
}

/// The delivery after its head's checks: admission (body, signature,
/// claim), the handler (or the fast-ack pool), then the claim completed or
/// released with the handler's answer.
async fn deliver<S, V, St, B, ResBody>(
    endpoint: Endpoint<V, St>,
    mut inner: S,
    req: Request<B>,
    checked: Checked,
    span: tracing::Span,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    V: Verifier,
    St: IdempotencyStore,
    B: Body + From<Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    let admitted = match endpoint.admit_checked(req, checked, span).await {
        Admission::Respond(res) => return Ok(res.map(ResponseBody::own)),
        Admission::Admitted(admitted) => admitted,
    };
    // The handler gets the verified body and `Verified` in the extensions.
    let mut parts = admitted.parts;
    parts.extensions.insert(admitted.verified);
    let req = Request::from_parts(parts, B::from(admitted.body));
    let ticket = admitted.ticket;
    if let Some(pool) = &endpoint.config().fast_ack {
        // Boxed: its state would otherwise enlarge every delivery's future.
        return Box::pin(fast_ack(pool, inner, req, ticket)).await;
    }
    // A panic in the handler or a dropped request drops the ticket, which
    // releases the claim: the provider's retry is handled.
    run_handler(&mut inner, req, ticket).await
}

/// Calls the handler, then completes the claim on a 2xx answer or releases
/// it on any other answer or an error.
async fn run_handler<S, V, St, B, ResBody>(
    inner: &mut S,
    req: Request<B>,
    ticket: super::Ticket<V, St>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    V: Verifier,
    St: IdempotencyStore,
{
    let mut answer = inner.call(req).await;
    let handled = match &mut answer {
        Ok(res) => {
            ticket.write_headers(res.headers_mut());
            Handled::Status(res.status())
        }
        Err(_) => Handled::Error,
    };
    ticket.settle(handled).await;
    answer.map(|res| res.map(ResponseBody::inner))
}

/// Fast-ack mode: the delivery waits in the pool's queue and its handler
/// runs there; the provider gets `202` at once (or the handler's own answer
/// when it comes within the pool's deadline). A full queue answers 503.
async fn fast_ack<S, V, St, B, ResBody>(
    pool: &FastAck,
    mut inner: S,
    req: Request<B>,
    ticket: super::Ticket<V, St>,
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
        let answer = run_handler(&mut inner, req, ticket).await;
        if let Some(tx) = tx {
            let _ = tx.send(answer);
        }
    };
    place.spawn(job.instrument(span), gauge);
    let (Some(deadline), Some(rx)) = (deadline, rx) else {
        return Ok(accepted.map(ResponseBody::own));
    };
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => {
            let mut res = Response::new(Bytes::from_static(br#"{"error":"handler_failed"}"#));
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok(res.map(ResponseBody::own))
        }
        Err(_) => Ok(accepted.map(ResponseBody::own)),
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;
    use tower_layer::Layer;

    use super::*;
    use crate::providers::Stripe;
    use crate::{Secret, WebhookLayer};

    /// Counts its clones; answers 200.
    #[derive(Default)]
    struct Counted(Arc<std::sync::atomic::AtomicUsize>);

    impl Clone for Counted {
        fn clone(&self) -> Self {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Self(Arc::clone(&self.0))
        }
    }

    impl Service<Request<Full<Bytes>>> for Counted {
        type Response = Response<Full<Bytes>>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<Full<Bytes>>) -> Self::Future {
            std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
        }
    }

    /// A refusal answered in `call` (here a flood over the pre-auth limit)
    /// leaves the inner service as it was: no clone (for axum's boxed
    /// route, an allocation), and the instance made ready stays for the
    /// next call. A delivery that goes on takes the ready instance and
    /// leaves one clone.
    #[tokio::test]
    async fn a_refusal_in_call_does_not_clone_the_inner_service() {
        use tower::ServiceExt;
        let secret = "whsec_clones";
        let layer = WebhookLayer::builder(Stripe::new(Secret::text(secret).expect("secret")))
            .pre_auth_limit(crate::rate_limit::RateLimit::per_minute(1).expect("limit"))
            .build();
        let inner = Counted::default();
        let clones = Arc::clone(&inner.0);
        let mut svc = layer.layer(inner);
        let send = |id: &str| {
            let body = format!(r#"{{"id":"{id}","type":"t"}}"#);
            let now = crate::testing::unix(std::time::SystemTime::now());
            let mut req = Request::post("/")
                .header("content-type", "application/json")
                .extension(crate::client::ClientAddr(
                    "192.0.2.7:1".parse().expect("addr"),
                ));
            for (k, v) in &crate::testing::stripe(secret, now, body.as_bytes()) {
                req = req.header(k, v);
            }
            req.body(Full::new(Bytes::from(body))).expect("request")
        };
        let count = || clones.load(std::sync::atomic::Ordering::SeqCst);
        let first = svc.ready().await.expect("ready").call(send("evt_1")).await;
        assert_eq!(first.expect("infallible").status(), StatusCode::OK);
        assert_eq!(count(), 1, "the delivery took the ready instance");
        let flood = svc.ready().await.expect("ready").call(send("evt_2")).await;
        assert_eq!(
            flood.expect("infallible").status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(count(), 1, "the refusal cloned nothing");
    }
}
