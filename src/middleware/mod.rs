//! The Tower middleware: [`WebhookLayer`] and [`WebhookService`].
//!
//! For each request, in this order: the pre-authentication rate limit
//! (429, see [`crate::rate_limit`]), method and media type (405, 415), the
//! body up to a limit within a read timeout (413, 408), the provider's
//! signature and timestamp (400, 401), the post-authentication rate limit
//! (429), the idempotency claim (duplicate:
//! 200 ack; in flight: 409), then the inner service with the verified body
//! and [`Verified`](crate::Verified) in the request extensions. A 2xx from
//! the inner service completes the claim; anything else releases it, so the
//! provider's retry is processed.
//!
//! The same path without Tower, for other servers, is an [`Endpoint`]
//! (from [`WebhookLayer::endpoint`]); the actix-web adapter is built on it.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_webhook::{providers::GitHub, testing, Secret, Verified, WebhookLayer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let svc = ServiceBuilder::new()
//!     .layer(WebhookLayer::new(GitHub::new(Secret::text("s3cret")?)))
//!     .service(service_fn(|req: Request<Full<Bytes>>| async move {
//!         let v = req.extensions().get::<Verified>().cloned();
//!         assert_eq!(v.unwrap().event_type(), Some("push"));
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
//!     }));
//!
//! let body = br#"{"ref":"main"}"#;
//! let mut req = Request::post("/hooks/github").header("content-type", "application/json");
//! for (k, v) in &testing::github("s3cret", "d-1", "push", body) {
//!     req = req.header(k, v);
//! }
//! let res = svc.oneshot(req.body(Full::new(Bytes::from_static(body)))?).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! # Ok(()) }
//! ```

mod body;
mod delivery;
mod fast_ack;
mod future;
mod layer;
mod service;

pub use body::ResponseBody;
#[cfg(feature = "actix")]
pub(crate) use delivery::Handled;
#[cfg(feature = "axum")]
pub(crate) use delivery::read_body;
pub use delivery::{Admission, Admitted, DUPLICATE_HEADER, Endpoint, Ticket};
pub use fast_ack::FastAck;
pub use future::ResponseFuture;
pub use layer::{StorePolicy, WebhookLayer, WebhookLayerBuilder};
pub use service::WebhookService;
