//! The delivery's `webhook` span: the ticket keeps it, the event id and the
//! outcome are recorded on it, and on nothing else when a subscriber
//! filters it out (the caller's own span, an HTTP request's say, is left
//! alone).

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tower_webhook::middleware::Admission;
use tower_webhook::providers::GitHub;
use tower_webhook::{Secret, WebhookLayer};

use crate::common;
use crate::common::Captured;

const SECRET: &str = "gh-span-secret";
const BODY: &[u8] = br#"{"ref":"main"}"#;

fn delivery(id: &str) -> Request<Full<Bytes>> {
    common::github_push("/hooks/github", SECRET, id, BODY)
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn the_ticket_keeps_the_webhook_span_with_the_event_id() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber("info"));
    let endpoint = WebhookLayer::new(GitHub::new(Secret::text(SECRET).expect("secret"))).endpoint();
    run(async {
        let Admission::Admitted(a) = endpoint.admit(delivery("d-span-1")).await else {
            panic!("refused")
        };
        let span = a.ticket.span().clone();
        assert_eq!(span.metadata().map(|m| m.name()), Some("webhook"));
        span.in_scope(|| tracing::info!("handler ran"));
        a.ticket.finish(true).await;
    });
    handler_ran_in_the_span(&captured.text(), "d-span-1");
}

/// The handler's line is logged in the `webhook` span, with the event id.
fn handler_ran_in_the_span(log: &str, id: &str) {
    let line = log
        .lines()
        .find(|l| l.contains("handler ran"))
        .unwrap_or_else(|| panic!("no handler line in {log}"));
    assert!(
        line.contains("webhook{") && line.contains(&format!("event_id=\"{id}\"")),
        "{line}"
    );
}

#[test]
fn with_the_webhook_span_filtered_out_the_callers_span_is_left_alone() {
    let captured = Captured::default();
    // Our info-level span and events are off; the caller's span is on.
    let _guard = tracing::subscriber::set_default(captured.subscriber("info,tower_webhook=warn"));
    let endpoint = WebhookLayer::new(GitHub::new(Secret::text(SECRET).expect("secret"))).endpoint();
    let request = tracing::info_span!(
        "request",
        event_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
        reason = tracing::field::Empty,
    );
    run(async {
        let _entered = request.enter();
        let Admission::Admitted(a) = endpoint.admit(delivery("d-span-2")).await else {
            panic!("refused")
        };
        assert!(
            a.ticket.span().is_disabled(),
            "the ticket holds the (filtered) webhook span, not the caller's: {:?}",
            a.ticket.span().metadata().map(|m| m.name())
        );
        a.ticket.finish(true).await;
        // A duplicate: its outcome is recorded on the webhook span only.
        let Admission::Respond(res) = endpoint.admit(delivery("d-span-2")).await else {
            panic!("a duplicate is answered")
        };
        assert_eq!(res.status(), 200);
        tracing::warn!("after the deliveries");
    });
    let log = captured.text();
    let line = log
        .lines()
        .find(|l| l.contains("after the deliveries"))
        .unwrap_or_else(|| panic!("no probe line in {log}"));
    assert!(
        !line.contains("d-span-2") && !line.contains("outcome") && !line.contains("reason"),
        "fields were recorded on the caller's span: {line}"
    );
}

#[test]
fn the_tower_service_runs_the_handler_in_the_webhook_span() {
    use tower::ServiceExt;
    use tower_layer::Layer;
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber("info"));
    let layer = WebhookLayer::new(GitHub::new(Secret::text(SECRET).expect("secret")));
    let svc = layer.layer(tower::service_fn(|_: Request<Full<Bytes>>| async {
        tracing::info!("handler ran");
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    }));
    let res = run(svc.oneshot(delivery("d-span-3"))).expect("infallible");
    assert_eq!(res.status(), 200);
    let log = captured.text();
    handler_ran_in_the_span(&log, "d-span-3");
    // The outcome line is logged in the span too, with the outcome
    // recorded on the span itself (by the ticket, which holds it).
    assert!(
        log.lines().any(|l| l.contains("webhook delivery")
            && l.contains(r#"event_id="d-span-3" outcome="accepted" reason="handled"}"#)),
        "{log}"
    );
}

/// A delivery dropped while its handler runs (the client went away)
/// releases its claim, and says so in the delivery's span.
#[test]
fn a_delivery_dropped_mid_handler_logs_its_release_in_the_webhook_span() {
    use tower::ServiceExt;
    use tower_layer::Layer;
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber("info"));
    let layer = WebhookLayer::new(GitHub::new(Secret::text(SECRET).expect("secret")));
    let svc = layer.layer(tower::service_fn(|_: Request<Full<Bytes>>| {
        std::future::pending::<Result<http::Response<Full<Bytes>>, std::convert::Infallible>>()
    }));
    run(async {
        let wait = std::time::Duration::from_millis(50);
        let gave_up = tokio::time::timeout(wait, svc.oneshot(delivery("d-span-4"))).await;
        assert!(gave_up.is_err(), "the handler never answers");
    });
    let log = captured.text();
    assert!(
        log.lines().any(|l| l.contains("releasing the claim")
            && l.contains(r#"webhook{provider="github""#)
            && l.contains(r#"event_id="d-span-4""#)),
        "{log}"
    );
}
