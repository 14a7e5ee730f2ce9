//! Fast-ack mode through a real HTTP server: 202 before a slow handler
//! finishes, a failed handler's claim released, a full queue refused with
//! 503, the handler's own answer within the deadline, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::any;
use bytes::Bytes;
use http::StatusCode;
use tokio::sync::Semaphore;
use tower_webhook::middleware::FastAck;
use tower_webhook::providers::GitHub;
use tower_webhook::{Secret, WebhookLayer, testing};

use crate::common;

const SECRET: &str = "fast-ack-secret";

/// The handler's script: it waits for a permit of `gate` (the test hands
/// them out), counts its calls, then answers `status(call)`.
struct Script {
    gate: Arc<Semaphore>,
    calls: AtomicUsize,
    finished: AtomicUsize,
    status: fn(usize) -> StatusCode,
}

impl Script {
    fn new(status: fn(usize) -> StatusCode) -> Arc<Self> {
        Arc::new(Self {
            gate: Arc::new(Semaphore::new(0)),
            calls: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            status,
        })
    }

    /// Lets `n` waiting (or future) handler calls go on.
    fn open(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

async fn serve(pool: FastAck, script: Arc<Script>) -> SocketAddr {
    let layer = WebhookLayer::builder(GitHub::new(Secret::text(SECRET).expect("secret")))
        .fast_ack(pool)
        .build();
    let handler = move |_body: Bytes| {
        let script = Arc::clone(&script);
        async move {
            let call = script.calls.fetch_add(1, Ordering::SeqCst);
            script.gate.acquire().await.expect("gate open").forget();
            let status = (script.status)(call);
            script.finished.fetch_add(1, Ordering::SeqCst);
            status
        }
    };
    common::serve(Router::new().route("/hook", any(handler).layer(layer))).await
}

async fn deliver(addr: SocketAddr, id: &str) -> common::Reply {
    let body = format!(r#"{{"id":"{id}"}}"#);
    let headers = testing::github(SECRET, id, "push", body.as_bytes());
    common::post(addr, "/hook", headers, body).await
}

/// Polls `cond` for up to 5 s.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ok(_: usize) -> StatusCode {
    StatusCode::OK
}

#[tokio::test]
async fn answers_202_before_a_slow_handler_finishes_and_completes_the_claim_after() {
    let script = Script::new(ok);
    let pool = FastAck::new(2, 4);
    let addr = serve(pool.clone(), Arc::clone(&script)).await;

    let reply = deliver(addr, "d-1").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    // the handler has started and is still blocked
    eventually("handler called", || {
        script.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(script.finished.load(Ordering::SeqCst), 0);
    assert_eq!(pool.pending(), 1);

    // while it runs, a copy is in flight
    assert_eq!(deliver(addr, "d-1").await.status, StatusCode::CONFLICT);

    script.open(1);
    eventually("pool drained", || pool.pending() == 0).await;
    assert_eq!(script.finished.load(Ordering::SeqCst), 1);
    // the claim was completed: a retry is a duplicate, the handler not called
    let again = deliver(addr, "d-1").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["webhook-duplicate"], "true");
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_handler_releases_the_claim_so_the_retry_is_handled() {
    fn fail_first(call: usize) -> StatusCode {
        if call == 0 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }
    let script = Script::new(fail_first);
    script.open(10);
    let pool = FastAck::new(1, 1);
    let addr = serve(pool.clone(), Arc::clone(&script)).await;

    assert_eq!(deliver(addr, "d-2").await.status, StatusCode::ACCEPTED);
    eventually("first call done", || {
        script.finished.load(Ordering::SeqCst) == 1
    })
    .await;
    eventually("pool drained", || pool.pending() == 0).await;
    // released: the retry reaches the handler again
    assert_eq!(deliver(addr, "d-2").await.status, StatusCode::ACCEPTED);
    eventually("second call done", || {
        script.finished.load(Ordering::SeqCst) == 2
    })
    .await;
    eventually("pool drained", || pool.pending() == 0).await;
    // and this time it succeeded: the next copy is a duplicate
    assert_eq!(deliver(addr, "d-2").await.status, StatusCode::OK);
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_claims_nothing() {
    let script = Script::new(ok);
    // one running, one waiting
    let pool = FastAck::new(1, 1).retry_after(Duration::from_secs(7));
    let addr = serve(pool.clone(), Arc::clone(&script)).await;

    assert_eq!(deliver(addr, "q-1").await.status, StatusCode::ACCEPTED);
    assert_eq!(deliver(addr, "q-2").await.status, StatusCode::ACCEPTED);
    let full = deliver(addr, "q-3").await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(full.headers["retry-after"], "7");
    assert_eq!(full.text(), r#"{"error":"overloaded"}"#);
    assert_eq!(pool.pending(), 2);

    script.open(2);
    eventually("pool drained", || pool.pending() == 0).await;
    // q-3 was not claimed: the provider's retry is handled
    assert_eq!(deliver(addr, "q-3").await.status, StatusCode::ACCEPTED);
    script.open(1);
    eventually("q-3 handled", || {
        script.finished.load(Ordering::SeqCst) == 3
    })
    .await;
}

#[tokio::test]
async fn within_the_deadline_the_handlers_own_answer_is_sent() {
    fn created(_: usize) -> StatusCode {
        StatusCode::CREATED
    }
    let script = Script::new(created);
    let pool = FastAck::new(2, 2).answer_after(Duration::from_millis(300));
    let addr = serve(pool.clone(), Arc::clone(&script)).await;

    // handler free to answer at once: its 201 comes back
    script.open(1);
    assert_eq!(deliver(addr, "w-1").await.status, StatusCode::CREATED);
    // handler blocked past the deadline: 202, and it goes on afterwards
    let start = Instant::now();
    let reply = deliver(addr, "w-2").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(script.finished.load(Ordering::SeqCst), 1);
    script.open(1);
    eventually("w-2 handled", || {
        script.finished.load(Ordering::SeqCst) == 2
    })
    .await;
    eventually("pool drained", || pool.pending() == 0).await;
    assert_eq!(deliver(addr, "w-2").await.status, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_waits_for_running_and_queued_handlers() {
    let script = Script::new(ok);
    let pool = FastAck::new(1, 4);
    let addr = serve(pool.clone(), Arc::clone(&script)).await;
    for id in ["s-1", "s-2", "s-3"] {
        assert_eq!(deliver(addr, id).await.status, StatusCode::ACCEPTED);
    }
    let opener = {
        let script = Arc::clone(&script);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            script.open(3);
        })
    };
    let start = Instant::now();
    let unfinished = pool.shutdown(Duration::from_secs(5)).await;
    assert_eq!(unfinished, 0);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(script.finished.load(Ordering::SeqCst), 3);
    opener.await.expect("opener");
    // closed: new deliveries are refused, not dropped
    let late = deliver(addr, "s-4").await;
    assert_eq!(late.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(late.headers.contains_key("retry-after"));
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn shutdown_gives_up_after_the_grace_period_and_says_how_many_are_left() {
    let script = Script::new(ok);
    let pool = FastAck::new(1, 4);
    let addr = serve(pool.clone(), Arc::clone(&script)).await;
    for id in ["g-1", "g-2"] {
        assert_eq!(deliver(addr, id).await.status, StatusCode::ACCEPTED);
    }
    let start = Instant::now();
    assert_eq!(pool.shutdown(Duration::from_millis(200)).await, 2);
    assert!(start.elapsed() >= Duration::from_millis(200));
    script.open(2);
    eventually("handlers end", || pool.pending() == 0).await;
}
