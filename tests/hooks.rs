//! The layer's hooks: how refusals are answered, where they are logged, and
//! the level of the delivery's span.

mod common;

use axum::Router;
use axum::routing::post;
use http::StatusCode;
use tower_webhook::error::RejectionResponse;
use tower_webhook::providers::GitHub;
use tower_webhook::{Secret, WebhookError, WebhookLayer, testing};

const SECRET: &str = "hooks-secret";
const BODY: &[u8] = br#"{"zen":"hooks"}"#;

async fn serve(layer: WebhookLayer<GitHub>) -> std::net::SocketAddr {
    common::serve(Router::new().route("/", post(|| async { "ok" }).layer(layer))).await
}

fn github() -> GitHub {
    GitHub::new(Secret::text(SECRET).expect("secret"))
}

// One test: a subscriber set for one thread while other tests of the
// process meet the same log macros without one can miss their events
// (tracing caches each call site's interest process-wide).
#[tokio::test(flavor = "current_thread")]
async fn the_layers_hooks() {
    refusals_can_be_problem_details().await;
    a_custom_rejection_gets_the_error().await;
    refusals_are_logged_at_debug_on_their_own_target_and_the_span_level_is_chosen().await;
}

async fn refusals_can_be_problem_details() {
    let layer = WebhookLayer::builder(github())
        .with_rejection(RejectionResponse::problem_json())
        .build();
    let addr = serve(layer).await;
    let forged = testing::github("wrong", "d-1", "push", BODY);
    let r = common::post(addr, "/", forged, BODY).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({
            "type": "urn:tower-webhook:invalid_signature",
            "title": "invalid_signature",
            "status": 401,
        })
    );
    // A genuine delivery is not shaped.
    let ok = common::post(
        addr,
        "/",
        testing::github(SECRET, "d-2", "push", BODY),
        BODY,
    )
    .await;
    assert_eq!((ok.status, ok.text()), (StatusCode::OK, "ok"));
}

async fn a_custom_rejection_gets_the_error() {
    let layer = WebhookLayer::builder(github())
        .with_rejection(RejectionResponse::custom(|e: &WebhookError| {
            let mut res = http::Response::new(bytes::Bytes::from(format!("no: {}", e.code())));
            *res.status_mut() = e.status();
            res
        }))
        .build();
    let addr = serve(layer).await;
    let mut h = testing::github(SECRET, "d-1", "push", BODY);
    h.insert("content-type", "text/plain".parse().expect("value"));
    let r = common::send(addr, http::Method::POST, "/", &h, BODY).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.text(), "no: unsupported_media_type");
}

async fn refusals_are_logged_at_debug_on_their_own_target_and_the_span_level_is_chosen() {
    let captured = common::Captured::default();
    let _guard = tracing::subscriber::set_default(
        captured.subscriber("tower_webhook::rejection=debug,tower_webhook=debug"),
    );
    // Other tests of this process may have met the log macros first, with
    // no subscriber: their cached interest is asked again.
    tracing::callsite::rebuild_interest_cache();
    let layer = WebhookLayer::builder(github())
        .span_level(tracing::Level::DEBUG)
        .build();
    let addr = serve(layer).await;
    let forged = testing::github("wrong", "d-1", "push", BODY);
    assert_eq!(
        common::post(addr, "/", forged, BODY).await.status,
        StatusCode::UNAUTHORIZED
    );
    let log = captured.text();
    let line = log
        .lines()
        .find(|l| l.contains("webhook rejected"))
        .unwrap_or_else(|| panic!("no rejection line in:\n{log}"));
    assert!(line.contains("DEBUG"), "{line}");
    assert!(line.contains("tower_webhook::rejection"), "{line}");
    assert!(line.contains("status=401"), "{line}");
    assert!(line.contains("webhook{"), "the DEBUG span is there: {line}");

    // At INFO, neither the refusal line nor the DEBUG span shows.
    let quiet = common::Captured::default();
    let _guard = tracing::subscriber::set_default(quiet.subscriber("info"));
    let forged = testing::github("wrong", "d-2", "push", BODY);
    common::post(addr, "/", forged, BODY).await;
    let log = quiet.text();
    assert!(!log.contains("webhook rejected"), "{log}");
    assert!(!log.contains("webhook{"), "{log}");
    // A genuine delivery logs its outcome at INFO: outside the DEBUG span,
    // which the INFO subscriber does not take (at the default INFO level,
    // the line would carry `webhook{…}`).
    let genuine = testing::github(SECRET, "d-3", "push", BODY);
    assert_eq!(
        common::post(addr, "/", genuine, BODY).await.status,
        StatusCode::OK
    );
    let log = quiet.text();
    let line = log
        .lines()
        .find(|l| l.contains("webhook delivery"))
        .unwrap_or_else(|| panic!("no outcome line in:\n{log}"));
    assert!(!line.contains("webhook{"), "{line}");

    // The same delivery path at the default span level: the line is in
    // the span.
    let default = common::Captured::default();
    let _guard = tracing::subscriber::set_default(default.subscriber("info"));
    let addr = serve(WebhookLayer::new(github())).await;
    let genuine = testing::github(SECRET, "d-4", "push", BODY);
    common::post(addr, "/", genuine, BODY).await;
    let log = default.text();
    let line = log
        .lines()
        .find(|l| l.contains("webhook delivery"))
        .unwrap_or_else(|| panic!("no outcome line in:\n{log}"));
    assert!(line.contains("webhook{"), "{line}");
}
