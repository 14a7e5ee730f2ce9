//! [`RequestBody`]: a request body type for servers that are not axum.
//!
//! [`WebhookService`](crate::WebhookService) hands the inner service the
//! verified bytes in the same body type it received, so that type must be
//! buildable from [`Bytes`]. axum's body is; hyper's `Incoming` is not: map
//! it into this one first.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::BodyExt;
//! use tower_webhook::body::RequestBody;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let body = RequestBody::new(http_body_util::Full::new(Bytes::from_static(b"hello")));
//! assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
//! assert_eq!(RequestBody::from(Bytes::from_static(b"x")).collect().await.unwrap().to_bytes(), "x");
//! # }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

/// The error of a [`RequestBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Any body with `Bytes` chunks, boxed; buildable from [`Bytes`].
#[derive(Debug)]
pub struct RequestBody(UnsyncBoxBody<Bytes, BoxError>);

/// Former name of [`RequestBody`].
#[deprecated(since = "0.1.0", note = "renamed `RequestBody`")]
pub type Body = RequestBody;

impl RequestBody {
    /// Boxes `body`.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self(body.map_err(Into::into).boxed_unsync())
    }
}

impl From<Bytes> for RequestBody {
    fn from(bytes: Bytes) -> Self {
        Self::new(http_body_util::Full::new(bytes))
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}
