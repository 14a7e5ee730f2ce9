//! [`within`]: a timeout that costs nothing when the future is ready at
//! once.
//!
//! `tokio::time::timeout` reads the clock and builds a timer entry before it
//! polls anything. The in-memory store answers on the first poll, and a
//! small body is often all there on the first poll: for them the timer is
//! pure overhead on every delivery (a clock read and a large `Sleep` in the
//! state of every future above it). Here the timer starts at the first
//! `Pending`, boxed so the future stays small: a store or body that makes
//! us wait gets the same bound, counted from the moment it first did.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

/// The future did not finish within its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

pin_project! {
    /// See [`within`].
    pub(crate) struct Within<F> {
        #[pin]
        future: F,
        limit: Duration,
        sleep: Option<Pin<Box<Sleep>>>,
    }
}

/// Runs `future` for at most `limit`, counted from its first `Pending`.
pub(crate) fn within<F: Future>(limit: Duration, future: F) -> Within<F> {
    Within {
        future,
        limit,
        sleep: None,
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let limit = *this.limit;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ready_future_needs_no_timer_and_a_stuck_one_times_out() {
        // ready at once: even a zero limit lets it through, no timer made
        let ready = within(Duration::ZERO, async { 7 });
        tokio::pin!(ready);
        assert_eq!(ready.as_mut().await, Ok(7));
        assert!(ready.sleep.is_none());

        let stuck = within(Duration::from_millis(50), std::future::pending::<()>());
        let start = std::time::Instant::now();
        assert_eq!(stuck.await, Err(Elapsed));
        assert!(start.elapsed() >= Duration::from_millis(50));

        let slow = within(Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            "done"
        });
        assert_eq!(slow.await, Ok("done"));
    }
}
