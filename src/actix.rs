//! actix-web 4: the middleware [`WebhookMiddleware`] and the extractors
//! [`Webhook<T>`] and [`FormJson<T>`].
//!
//! The middleware runs the same [`Endpoint`] as the tower
//! [`WebhookService`](crate::WebhookService): the same limits, signature
//! checks, handshakes, rate limits, idempotency bookkeeping, statuses and
//! JSON error bodies. A 2xx from the handler completes the claim; anything
//! else (a non-2xx answer, an error, a payload the extractor refused, a
//! panic) releases it, so the provider's retry is handled.
//!
//! Wrap each webhook route's resource (not the whole app: one layer is one
//! endpoint, with its own verifier):
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer, Responder};
//! use serde::Deserialize;
//! use tower_webhook::actix::{Webhook, WebhookMiddleware};
//! use tower_webhook::{providers::Stripe, Secret, WebhookLayer};
//!
//! #[derive(Deserialize)]
//! struct Event { id: String }
//!
//! async fn handle(hook: Webhook<Event>) -> impl Responder {
//!     assert_eq!(hook.meta.event_id(), Some(hook.payload.id.as_str()));
//!     "ok"
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let secret = Secret::text("whsec_...").expect("a secret");
//!     let layer = WebhookLayer::new(Stripe::new(secret));
//!     HttpServer::new(move || {
//!         App::new().service(
//!             web::resource("/webhooks/stripe")
//!                 .wrap(WebhookMiddleware::new(&layer))
//!                 .route(web::post().to(handle)),
//!         )
//!     })
//!     .bind("127.0.0.1:3000")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! actix-web 4 speaks `http` 0.2: the middleware converts the request head
//! into `http` 1 [`Parts`](http::request::Parts) for the verifiers and puts
//! the peer address in as [`ClientAddr`]. It must run on actix's runtime
//! (tokio): a claim left by a dropped request is released from a tokio task.

use std::fmt;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header as ax_header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use bytes::Bytes;
use http_body::Frame;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::client::ClientAddr;
use crate::middleware::{Admission, Endpoint, Handled, WebhookLayer};
use crate::payload::{self, PayloadError};
use crate::store::IdempotencyStore;
use crate::verify::{Verified, Verifier};

/// The actix-web middleware of one webhook endpoint: see the
/// [module docs](self). Built from a [`WebhookLayer`]; clones share its
/// configuration, store and rate limiters.
pub struct WebhookMiddleware<V, St> {
    endpoint: Endpoint<V, St>,
}

impl<V, St> Clone for WebhookMiddleware<V, St> {
    fn clone(&self) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
        }
    }
}

impl<V: Verifier, St: fmt::Debug> fmt::Debug for WebhookMiddleware<V, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookMiddleware")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl<V, St> WebhookMiddleware<V, St> {
    /// The middleware applying `layer`'s settings.
    pub fn new(layer: &WebhookLayer<V, St>) -> Self {
        Self {
            endpoint: layer.endpoint(),
        }
    }
}

impl<V, St> From<Endpoint<V, St>> for WebhookMiddleware<V, St> {
    fn from(endpoint: Endpoint<V, St>) -> Self {
        Self { endpoint }
    }
}

impl<S, B, V, St> Transform<S, ServiceRequest> for WebhookMiddleware<V, St>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    V: Verifier,
    St: IdempotencyStore,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = WebhookMiddlewareService<S, V, St>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(WebhookMiddlewareService {
            service: Rc::new(service),
            endpoint: self.endpoint.clone(),
        }))
    }
}

/// The service [`WebhookMiddleware`] wraps a resource's service in.
pub struct WebhookMiddlewareService<S, V, St> {
    service: Rc<S>,
    endpoint: Endpoint<V, St>,
}

impl<S, V: Verifier, St: fmt::Debug> fmt::Debug for WebhookMiddlewareService<S, V, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookMiddlewareService")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B, V, St> Service<ServiceRequest> for WebhookMiddlewareService<S, V, St>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    V: Verifier,
    St: IdempotencyStore,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            let head = request_head(&req);
            let body = PayloadBody(req.take_payload());
            let admitted = match endpoint.admit(head.map(|()| body)).await {
                Admission::Respond(res) => {
                    return Ok(req.into_response(to_actix(res)).map_into_right_body());
                }
                Admission::Admitted(a) => a,
            };
            req.extensions_mut().insert(admitted.verified.clone());
            req.extensions_mut()
                .insert(VerifiedBody(admitted.body.clone()));
            req.set_payload(Payload::from(admitted.body));
            let ticket = admitted.ticket;
            // Dropped unfinished (panic, client gone): the ticket releases.
            let span = ticket.span().clone();
            match service.call(req).instrument(span).await {
                Ok(mut res) => {
                    copy_headers(&ticket.headers(), res.headers_mut());
                    let status = http::StatusCode::from_u16(res.status().as_u16())
                        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                    ticket.settle(Handled::Status(status)).await;
                    Ok(res.map_into_left_body())
                }
                Err(e) => {
                    ticket.settle(Handled::Error).await;
                    Err(e)
                }
            }
        })
    }
}

/// The verified body, kept for the extractors.
#[derive(Clone)]
struct VerifiedBody(Bytes);

/// The request head in `http` 1 types, with the peer address.
fn request_head(req: &ServiceRequest) -> http::Request<()> {
    let mut out = http::Request::new(());
    *out.method_mut() =
        http::Method::from_bytes(req.method().as_str().as_bytes()).unwrap_or(http::Method::GET);
    // An unparsable URI cannot come from actix's parser; the path alone
    // is the fallback.
    *out.uri_mut() = req
        .uri()
        .to_string()
        .parse()
        .or_else(|_| req.path().parse())
        .unwrap_or_default();
    *out.version_mut() = match req.version() {
        actix_web::http::Version::HTTP_09 => http::Version::HTTP_09,
        actix_web::http::Version::HTTP_10 => http::Version::HTTP_10,
        actix_web::http::Version::HTTP_2 => http::Version::HTTP_2,
        actix_web::http::Version::HTTP_3 => http::Version::HTTP_3,
        _ => http::Version::HTTP_11,
    };
    let headers = out.headers_mut();
    for (name, value) in req.headers() {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    if let Some(peer) = req.peer_addr() {
        out.extensions_mut().insert(ClientAddr(peer));
    }
    out
}

fn copy_headers(from: &http::HeaderMap, to: &mut ax_header::HeaderMap) {
    for (name, value) in from {
        if let (Ok(n), Ok(v)) = (
            ax_header::HeaderName::from_bytes(name.as_str().as_bytes()),
            ax_header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            to.append(n, v);
        }
    }
}

fn to_actix(res: http::Response<Bytes>) -> HttpResponse {
    let (parts, body) = res.into_parts();
    let status = actix_web::http::StatusCode::from_u16(parts.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::with_body(status, body);
    copy_headers(&parts.headers, out.headers_mut());
    // actix writes its own `Connection` header from the connection type.
    if parts
        .headers
        .get(http::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
    {
        out.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    out.map_into_boxed_body()
}

/// actix's request payload as an [`http_body::Body`], for [`Endpoint::admit`].
struct PayloadBody(Payload);

impl http_body::Body for PayloadBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let stream = Pin::new(&mut self.0);
        futures_core::Stream::poll_next(stream, cx).map(|item| {
            item.map(|chunk| {
                chunk
                    .map(Frame::data)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            })
        })
    }
}

/// A verified delivery, for a handler behind [`WebhookMiddleware`]: the
/// payload parsed into `T` plus what verification proved. The same rules
/// as the axum extractor: JSON bodies as JSON, form-encoded ones as form
/// data ([`payload::parse`]); a syntax error answers 400, the wrong shape
/// 422, and the claim is released.
#[derive(Debug, Clone)]
pub struct Webhook<T> {
    /// The body, parsed.
    pub payload: T,
    /// Provider, event id, event type, timestamp.
    pub meta: Verified,
}

/// Like [`Webhook<T>`], for JSON carried in a form's `payload=` field
/// (Slack interactivity, Papertrail, GitHub's form-encoded hooks): the rules
/// of [`payload::parse_form_json`].
#[derive(Debug, Clone)]
pub struct FormJson<T> {
    /// The JSON of the `payload` field (or of the body), parsed.
    pub payload: T,
    /// Provider, event id, event type, timestamp.
    pub meta: Verified,
}

/// Why [`Webhook<T>`] or [`FormJson<T>`] could not be extracted; answered
/// with the same statuses and JSON bodies as the axum extractor.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The resource has no [`WebhookMiddleware`]: a programming error,
    /// answered 500 and logged.
    MissingMiddleware,
    /// The body did not parse into `T`: 400 or 422.
    Payload(PayloadError),
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingMiddleware => f.write_str(
                r#"{"error":"misconfigured","detail":"Webhook<T> extractor used without WebhookMiddleware"}"#,
            ),
            Self::Payload(e) => write!(f, r#"{{"error":"{}"}}"#, e.code()),
        }
    }
}

impl std::error::Error for WebhookRejection {}

impl ResponseError for WebhookRejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        let status = match self {
            Self::MissingMiddleware => http::StatusCode::INTERNAL_SERVER_ERROR,
            Self::Payload(e) => e.status(),
        };
        actix_web::http::StatusCode::from_u16(status.as_u16())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("application/json")
            .body(self.to_string())
    }
}

fn extract<T>(
    req: &HttpRequest,
    parse: fn(Option<&str>, &[u8]) -> Result<T, PayloadError>,
) -> Result<(T, Verified), WebhookRejection> {
    let ext = req.extensions();
    let (Some(meta), Some(VerifiedBody(body))) = (ext.get::<Verified>(), ext.get::<VerifiedBody>())
    else {
        tracing::error!(
            "Webhook<T> used on a route without WebhookMiddleware: add `.wrap(WebhookMiddleware::new(&layer))`"
        );
        return Err(WebhookRejection::MissingMiddleware);
    };
    let content_type = req
        .headers()
        .get(ax_header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match parse(content_type, body) {
        Ok(payload) => Ok((payload, meta.clone())),
        Err(e) => {
            tracing::info!(error = %e, "webhook payload rejected");
            Err(WebhookRejection::Payload(e))
        }
    }
}

impl<T: DeserializeOwned> FromRequest for Webhook<T> {
    type Error = WebhookRejection;
    type Future = Ready<Result<Self, WebhookRejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(extract(req, payload::parse).map(|(payload, meta)| Self { payload, meta }))
    }
}

impl<T: DeserializeOwned> FromRequest for FormJson<T> {
    type Error = WebhookRejection;
    type Future = Ready<Result<Self, WebhookRejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(extract(req, payload::parse_form_json).map(|(payload, meta)| Self { payload, meta }))
    }
}
