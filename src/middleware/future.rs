//! [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::ResponseBody;

type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

pin_project! {
    /// The future of [`WebhookService`](super::WebhookService). A named type
    /// so that its states can change without a breaking change: an answer
    /// known at once (a flood refused by the pre-authentication limit) is
    /// ready without any allocation; a delivery is a boxed state machine.
    pub struct ResponseFuture<B, E> {
        #[pin]
        inner: Inner<B, E>,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<B, E> {
        Ready { response: Option<Response<ResponseBody<B>>> },
        Boxed { future: Boxed<B, E> },
    }
}

impl<B, E> ResponseFuture<B, E> {
    /// A delivery's future, boxed.
    pub(crate) fn boxed<F>(future: F) -> Self
    where
        F: Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static,
    {
        Self {
            inner: Inner::Boxed {
                future: Box::pin(future),
            },
        }
    }

    pub(crate) fn ready(response: Response<ResponseBody<B>>) -> Self {
        Self {
            inner: Inner::Ready {
                response: Some(response),
            },
        }
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            InnerProj::Ready { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                // Polled after completion: a contract violation by the
                // caller; never answer twice.
                None => Poll::Pending,
            },
            InnerProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

impl<B, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
