//! The framework-agnostic core, [`Endpoint`]: what a ticket does to the
//! idempotency claim when finished or dropped.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower_webhook::middleware::{Admission, Endpoint};
use tower_webhook::providers::GitHub;
use tower_webhook::store::MemoryStore;
use tower_webhook::{Secret, WebhookLayer};

use crate::common;

const SECRET: &str = "core-secret";

fn endpoint() -> Endpoint<GitHub, MemoryStore> {
    WebhookLayer::new(GitHub::new(Secret::text(SECRET).expect("secret"))).endpoint()
}

fn delivery(id: &str) -> Request<Full<Bytes>> {
    common::github_push("/hook", SECRET, id, br#"{"ref":"main"}"#)
}

#[tokio::test]
async fn finishing_without_success_releases_the_claim() {
    let ep = endpoint();
    let Admission::Admitted(a) = ep.admit(delivery("e-1")).await else {
        panic!("first delivery refused")
    };
    assert_eq!(a.verified.event_id(), Some("e-1"));
    a.ticket.finish(false).await;
    let Admission::Admitted(a) = ep.admit(delivery("e-1")).await else {
        panic!("the retry after a failure must be admitted")
    };
    a.ticket.finish(true).await;
    let Admission::Respond(res) = ep.admit(delivery("e-1")).await else {
        panic!("the retry after success must be answered by the core")
    };
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["webhook-duplicate"], "true");
}

#[tokio::test]
async fn an_unfinished_ticket_holds_the_claim_and_releases_it_when_dropped() {
    let ep = endpoint();
    let Admission::Admitted(a) = ep.admit(delivery("e-2")).await else {
        panic!("first delivery refused")
    };
    let Admission::Respond(res) = ep.admit(delivery("e-2")).await else {
        panic!("a concurrent delivery must wait")
    };
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.headers().contains_key("retry-after"));

    drop(a);
    // the release runs on a spawned task
    for _ in 0..100 {
        match ep.admit(delivery("e-2")).await {
            Admission::Admitted(a) => {
                a.ticket.finish(true).await;
                return;
            }
            Admission::Respond(res) => assert_eq!(res.status(), StatusCode::CONFLICT),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the dropped ticket's claim was never released");
}

#[tokio::test]
async fn refusals_are_ready_responses_with_json_bodies() {
    let ep = endpoint();
    let mut req = delivery("e-3");
    *req.body_mut() = Full::new(Bytes::from_static(br#"{"ref":"evil"}"#));
    let Admission::Respond(res) = ep.admit(req).await else {
        panic!("a tampered body must be refused")
    };
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.body(),
        &Bytes::from_static(br#"{"error":"invalid_signature"}"#)
    );
}
