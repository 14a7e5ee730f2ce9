//! [`WebhookService`]: the path of one delivery.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::sync::oneshot;
use tower_service::Service;
use tracing::{Instrument, Span};

use super::endpoint::{Decision, Early, Endpoint, Ticket};
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
        // A refusal that needs no await (a flood over the pre-authentication
        // limit) is answered without building the delivery's future, and
        // without cloning the inner service: the instance made ready stays
        // ready for the next call.
        #[allow(clippy::result_large_err)] // see `pre_check`
        let early = match span.in_scope(|| endpoint.pre_check(&req)) {
            Ok(early) => early,
            Err(res) => return ResponseFuture::ready(res.map(ResponseBody::own)),
        };
        // We await before calling inner, so take the instance that was made
        // ready and leave a fresh clone (see tower's "Be careful when cloning
        // inner services").
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        ResponseFuture::new(|| deliver(endpoint, ready, req, early, span))
    }
}

/// The delivery after the synchronous checks: admission (body, signature,
/// claim), then the handler (or the fast-ack pool).
fn deliver<S, V, St, B, ResBody>(
    endpoint: Endpoint<V, St>,
    inner: S,
    req: Request<B>,
    early: Early,
    span: Span,
) -> impl Future<Output = Result<Response<ResponseBody<ResBody>>, S::Error>> + Send + 'static
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
    let pool = endpoint.config().fast_ack.clone();
    // The request the handler gets: `Verified` in its extensions.
    let rebuild = |mut parts: http::request::Parts, body, verified| {
        parts.extensions.insert(verified);
        Request::from_parts(parts, B::from(body))
    };
    Deliver {
        span,
        stage: Stage::Admit {
            fut: endpoint.admit_checked(req, early, rebuild),
        },
        inner: Some(inner),
        next: move |mut inner: S, req: Request<B>, ticket: Ticket<V, St>| {
            match pool.clone() {
                // Boxed: its state (a channel, a timer, the job) would
                // otherwise enlarge every delivery's future.
                Some(pool) => Next::Boxed(Box::pin(async move {
                    fast_ack(&pool, inner, req, ticket).await
                })),
                // Called now (`call` is synchronous); the ticket is
                // released on drop unless finished: a panic in the handler
                // or a dropped request lets the provider's retry through.
                None => Next::Call(inner.call(req), ticket),
            }
        },
        finish: finish::<V, St, ResBody, S::Error>,
    }
}

type BoxedFuture<R> = Pin<Box<dyn Future<Output = R> + Send>>;

pin_project! {
    /// The steps of [`Deliver`]; each keeps only what it needs.
    #[project = StageProj]
    enum Stage<A, F, Fin, R, T> {
        Admit { #[pin] fut: A },
        // The handler's future, and the claim to finish with its answer.
        Call { #[pin] fut: F, ticket: Option<T> },
        Finish { #[pin] fut: Fin },
        Boxed { fut: BoxedFuture<R> },
        Done,
    }
}

/// What becomes of an admitted delivery: the handler's future and the
/// ticket, or the fast-ack pool's future.
enum Next<F, T, R> {
    Call(F, T),
    Boxed(BoxedFuture<R>),
}

pin_project! {
    /// [`deliver`]'s future, written by hand. An async fn awaiting the
    /// admission and then the handler kept storage for both, and for its
    /// arguments; an async block awaiting the handler's future keeps it
    /// twice (as captured, and as awaited). Here each step holds only its
    /// own state, and the whole stays under 1 KiB (see the test below).
    ///
    /// It enters the delivery's span to poll and to drop its step (what
    /// `Instrumented` would do), and gives the ticket that span: the span
    /// is held once, here.
    struct Deliver<A, F, Fin, R, T, S, N, G> {
        span: Span,
        #[pin]
        stage: Stage<A, F, Fin, R, T>,
        inner: Option<S>,
        next: N,
        finish: G,
    }

    impl<A, F, Fin, R, T, S, N, G> PinnedDrop for Deliver<A, F, Fin, R, T, S, N, G> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // A delivery that answered has nothing left to drop: no need
            // to enter its span (an enter and an exit on every delivery).
            if matches!(this.stage.as_mut().project(), StageProj::Done) {
                return;
            }
            let _entered = this.span.enter();
            // A claim released on drop logs in the delivery's span.
            this.stage.set(Stage::Done);
        }
    }
}

impl<A, F, Fin, S, N, G, V, St, Tb, E, Q> Future
    for Deliver<A, F, Fin, Result<Response<ResponseBody<Tb>>, E>, Ticket<V, St>, S, N, G>
where
    A: Future<Output = Decision<Q, V, St>>,
    F: Future<Output = Result<Response<Tb>, E>>,
    Fin: Future<Output = Result<Response<ResponseBody<Tb>>, E>>,
    N: FnMut(S, Q, Ticket<V, St>) -> Next<F, Ticket<V, St>, Result<Response<ResponseBody<Tb>>, E>>,
    G: FnMut(Ticket<V, St>, Result<Response<Tb>, E>) -> Fin,
    V: Verifier,
    St: IdempotencyStore,
{
    type Output = Result<Response<ResponseBody<Tb>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        loop {
            match this.stage.as_mut().project() {
                StageProj::Admit { fut } => {
                    let (req, mut ticket) = match std::task::ready!(fut.poll(cx)) {
                        Decision::Admit(req, ticket) => (req, ticket),
                        Decision::Respond(res) => {
                            this.stage.set(Stage::Done);
                            return Poll::Ready(Ok(res.map(ResponseBody::own)));
                        }
                    };
                    ticket.set_span(this.span.clone());
                    let Some(inner) = this.inner.take() else {
                        // Only one admission per future: not reached.
                        this.stage.set(Stage::Done);
                        return Poll::Pending;
                    };
                    match (this.next)(inner, req, ticket) {
                        Next::Call(fut, ticket) => this.stage.set(Stage::Call {
                            fut,
                            ticket: Some(ticket),
                        }),
                        Next::Boxed(fut) => this.stage.set(Stage::Boxed { fut }),
                    }
                }
                StageProj::Call { fut, ticket } => {
                    let answer = std::task::ready!(fut.poll(cx));
                    let Some(ticket) = ticket.take() else {
                        // Only one answer per handler call: not reached.
                        this.stage.set(Stage::Done);
                        return Poll::Pending;
                    };
                    let fin = (this.finish)(ticket, answer);
                    this.stage.set(Stage::Finish { fut: fin });
                }
                StageProj::Finish { fut } => {
                    let out = std::task::ready!(fut.poll(cx));
                    this.stage.set(Stage::Done);
                    return Poll::Ready(out);
                }
                StageProj::Boxed { fut } => {
                    let out = std::task::ready!(fut.as_mut().poll(cx));
                    this.stage.set(Stage::Done);
                    return Poll::Ready(out);
                }
                // Polled after it answered.
                StageProj::Done => return Poll::Pending,
            }
        }
    }
}

/// Calls the handler and finishes the ticket with its answer. Runs in the
/// delivery's span (its caller instruments it).
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
    let answer = inner.call(req).await;
    finish(ticket, answer).await
}

/// Finishes the ticket with the handler's answer: a 2xx completes the
/// claim, anything else releases it. Runs in the delivery's span.
///
/// The answer is used in place (by reference across the store's await):
/// moved into a local, it would be kept twice.
async fn finish<V, St, T, E>(
    mut ticket: Ticket<V, St>,
    mut answer: Result<Response<T>, E>,
) -> Result<Response<ResponseBody<T>>, E>
where
    V: Verifier,
    St: IdempotencyStore,
{
    let status = match &mut answer {
        Ok(res) => {
            ticket.write_headers(res.headers_mut());
            Some(res.status())
        }
        Err(_) => None,
    };
    match status {
        Some(status) if status.is_success() => {
            ticket.complete_in_span(Some(status.as_u16())).await;
        }
        Some(status) => {
            let status = status.as_u16();
            tracing::info!(status, "handler did not succeed: claim released");
            ticket
                .release_in_span("handler answered non-2xx", Some(status))
                .await;
        }
        None => {
            ticket
                .release_in_span("handler returned an error", None)
                .await;
        }
    }
    answer.map(|res| res.map(ResponseBody::inner))
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
                .extension(crate::net::ClientAddr("192.0.2.7:1".parse().expect("addr")));
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

    /// The delivery's future is boxed on every request: it was 4.4 KiB as
    /// nested async fns, and 1.5 KiB as one. Under 1 KiB, glibc serves its
    /// box from the thread cache (requests up to 1032 bytes); above, each
    /// delivery's box went through `malloc_consolidate` (6 % of a delivery
    /// in the pipeline bench's profile). Checked for a `Full` body and a
    /// service function, and for axum's body and router.
    #[test]
    fn the_delivery_future_stays_under_1_kib() {
        const LIMIT: usize = 1024;
        fn size<S, B>(inner: S, body: B) -> usize
        where
            S: Service<Request<B>, Response = Response<axum::body::Body>> + Clone + Send + 'static,
            S::Future: Send,
            S::Error: Send,
            B: Body + From<Bytes> + Send + 'static,
            B::Data: Send,
            B::Error: Into<BoxError>,
        {
            let layer = WebhookLayer::new(Stripe::new(Secret::text("s").expect("secret")));
            let svc = layer.layer(inner);
            let endpoint = Endpoint::new(Arc::clone(&svc.config));
            let req = Request::post("/").body(body).expect("request");
            let early = endpoint.pre_check(&req).expect("passes the head checks");
            // What `call` boxes.
            let fut = deliver(endpoint, svc.inner, req, early, Span::none());
            std::mem::size_of_val(&fut)
        }
        let handler = tower::service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(axum::body::Body::empty()))
        });
        let full = size(handler, Full::new(Bytes::new()));
        assert!(full <= LIMIT, "the delivery future grew to {full} bytes");
        // A router's future is a `RouteFuture`, as a route's is (what
        // `route_layer` wraps).
        let router = axum::Router::new().route("/", axum::routing::post(|| async { "ok" }));
        let axum = size(router, axum::body::Body::empty());
        assert!(
            axum <= LIMIT,
            "with axum, the delivery future grew to {axum} bytes"
        );
    }
}
