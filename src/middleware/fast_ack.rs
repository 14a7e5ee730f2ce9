//! [`FastAck`]: answer the provider before a slow handler finishes.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::error::WebhookError;

/// Fast-ack mode: a verified, claimed delivery is handed to a bounded pool
/// of workers (your handler, the inner service) and answered `202 Accepted`
/// at once, or only if the handler has not answered within
/// [`answer_after`](Self::answer_after) (GitHub gives up after 10 s; answer
/// after about 9 s).
///
/// - The claim is completed when the handler succeeds (2xx) and released
///   when it fails, panics or errs, so a redelivery is handled.
/// - At most `workers` handlers run at once and at most `queue` more wait;
///   beyond that a delivery is refused with 503 and `Retry-After` and its
///   claim is released at once: the provider retries, nothing is dropped.
///   (The claim is taken before the pool is asked for room; if the store
///   cannot release it, a retry meets 409 until the lease ends.)
/// - [`shutdown`](Self::shutdown) refuses new deliveries (503) and waits
///   for queued and running handlers up to a grace period.
///
/// # What a 202 costs
/// A 202 tells the provider the delivery arrived: providers do not retry a
/// 2xx. A handler that fails after it releases the claim, so a redelivery
/// (manual, or the provider's reconciliation) is handled, but the provider
/// will not send one by itself. If the process dies with handlers queued or
/// running, those deliveries are not handled here; their claims stay until
/// the [lease](super::WebhookLayerBuilder::lease) expires (with
/// [`MemoryStore`](crate::MemoryStore) they die with the process), and a
/// redelivery after that is handled. Set the lease longer than your slowest
/// handler. Where losing a delivery is not acceptable, keep the default
/// mode (answer when the handler has answered) or store the delivery
/// durably in the handler's first step.
///
/// ```
/// use std::time::Duration;
/// use tower_webhook::middleware::FastAck;
/// use tower_webhook::{providers::GitHub, Secret, WebhookLayer};
///
/// let pool = FastAck::new(8, 256).answer_after(Duration::from_secs(9));
/// let layer = WebhookLayer::builder(GitHub::new(Secret::text("s3cret")?))
///     .fast_ack(pool.clone())
///     .lease(Duration::from_secs(600))
///     .build();
/// # let _ = layer;
/// // on shutdown, after the server stopped accepting connections:
/// // let unfinished = pool.shutdown(Duration::from_secs(30)).await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct FastAck {
    inner: Arc<Pool>,
}

struct Pool {
    workers: usize,
    queue: usize,
    answer_after: Option<Duration>,
    retry_after: Duration,
    // Handlers allowed to run at once.
    running: Arc<Semaphore>,
    // Deliveries accepted and not finished: running + queued.
    slots: Arc<Semaphore>,
    closed: AtomicBool,
    pending: watch::Sender<usize>,
}

impl fmt::Debug for FastAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastAck")
            .field("workers", &self.inner.workers)
            .field("queue", &self.inner.queue)
            .field("answer_after", &self.inner.answer_after)
            .field("pending", &self.pending())
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl FastAck {
    /// A pool of `workers` concurrent handlers (at least 1) with room for
    /// `queue` more deliveries waiting; answers 202 at once.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let total = workers.saturating_add(queue).min(Semaphore::MAX_PERMITS);
        Self {
            inner: Arc::new(Pool {
                workers,
                queue,
                answer_after: None,
                retry_after: Duration::from_secs(5),
                running: Arc::new(Semaphore::new(workers.min(Semaphore::MAX_PERMITS))),
                slots: Arc::new(Semaphore::new(total)),
                closed: AtomicBool::new(false),
                pending: watch::Sender::new(0),
            }),
        }
    }

    fn with(self, f: impl FnOnce(&mut Pool)) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut pool) => {
                f(&mut pool);
                Self {
                    inner: Arc::new(pool),
                }
            }
            // Already shared: settings are fixed once the pool is cloned.
            Err(inner) => {
                tracing::warn!("FastAck settings changed after the pool was shared: ignored");
                Self { inner }
            }
        }
    }

    /// Waits up to `deadline` for the handler: if it answered by then, its
    /// own response is sent; else 202 (the handler goes on). Default: 202 at
    /// once. Set before cloning the pool.
    pub fn answer_after(self, deadline: Duration) -> Self {
        self.with(|p| p.answer_after = Some(deadline))
    }

    /// The `Retry-After` sent with the 503 when the queue is full (default
    /// 5 s). Set before cloning the pool.
    pub fn retry_after(self, after: Duration) -> Self {
        self.with(|p| p.retry_after = after)
    }

    /// Deliveries accepted whose handler has not finished (running or
    /// queued).
    pub fn pending(&self) -> usize {
        *self.inner.pending.borrow()
    }

    /// Stops accepting deliveries (503 + `Retry-After` from now on) and
    /// waits until every queued and running handler has finished, or
    /// `grace` has passed. Returns how many were still unfinished (0: all
    /// done); their claims expire with their lease.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.slots.close();
        let mut rx = self.inner.pending.subscribe();
        let drained = tokio::time::timeout(grace, rx.wait_for(|n| *n == 0)).await;
        match drained {
            Ok(_) => 0,
            Err(_) => {
                let left = self.pending();
                tracing::warn!(
                    unfinished = left,
                    "fast-ack shutdown: grace period over with handlers unfinished; their claims expire with the lease"
                );
                left
            }
        }
    }

    pub(crate) fn answer_after_deadline(&self) -> Option<Duration> {
        self.inner.answer_after
    }

    /// A place in the pool, or the 503 to answer.
    pub(crate) fn reserve(&self) -> Result<Reservation, WebhookError> {
        let overloaded = WebhookError::Overloaded {
            retry_after: self.inner.retry_after,
        };
        // Counted before the checks: a `shutdown` that starts meanwhile
        // sees this delivery pending and waits for it (or for its refusal).
        self.inner.pending.send_modify(|n| *n += 1);
        let give_back = || self.inner.pending.send_modify(|n| *n = n.saturating_sub(1));
        if self.inner.closed.load(Ordering::SeqCst) {
            give_back();
            return Err(overloaded);
        }
        match Arc::clone(&self.inner.slots).try_acquire_owned() {
            Ok(slot) => Ok(Reservation {
                slot,
                pool: Arc::clone(&self.inner),
            }),
            Err(_) => {
                give_back();
                Err(overloaded)
            }
        }
    }
}

/// A reserved place in the pool; [`spawn`](Self::spawn) the job into it.
/// Dropped unused, the place is given back.
pub(crate) struct Reservation {
    slot: OwnedSemaphorePermit,
    pool: Arc<Pool>,
}

impl Reservation {
    /// Runs `job` when a worker is free. The place is given back when the
    /// job ends, panics included.
    pub(crate) fn spawn(
        self,
        job: impl Future<Output = ()> + Send + 'static,
        gauge: Option<metrics::Gauge>,
    ) {
        if let Some(g) = &gauge {
            g.increment(1.0);
        }
        let running = Arc::clone(&self.pool.running);
        let done = Done {
            _reservation: self,
            gauge,
        };
        tokio::spawn(async move {
            let _done = done;
            // `running` is never closed: this waits for a free worker.
            let _worker = running.acquire_owned().await;
            job.await;
        });
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.pending.send_modify(|n| *n = n.saturating_sub(1));
        let _ = &self.slot;
    }
}

struct Done {
    _reservation: Reservation,
    gauge: Option<metrics::Gauge>,
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(g) = &self.gauge {
            g.decrement(1.0);
        }
    }
}
