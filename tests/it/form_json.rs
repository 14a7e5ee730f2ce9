//! JSON inside a form's `payload=` field, through a real server with the
//! `FormJson<T>` extractor: parsed on success, 400 for invalid JSON, 422
//! for a missing field or the wrong shape.

use axum::Router;
use axum::routing::post;
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use tower_webhook::extract::FormJson;
use tower_webhook::providers::{GitHub, Slack};
use tower_webhook::{Secret, WebhookLayer, testing};

use crate::common;

#[derive(Deserialize)]
struct Interaction {
    r#type: String,
    user: User,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

async fn handle(hook: FormJson<Interaction>) -> String {
    format!(
        "{} {} {}",
        hook.meta.provider(),
        hook.payload.r#type,
        hook.payload.user.id
    )
}

async fn slack_server() -> std::net::SocketAddr {
    let app = Router::new()
        .route("/slack", post(handle))
        .route_layer(WebhookLayer::new(Slack::new(
            Secret::text("sig").expect("secret"),
        )));
    common::serve(app).await
}

async fn send_form(addr: std::net::SocketAddr, body: &[u8]) -> common::Reply {
    let mut h = testing::slack("sig", common::now(), body);
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    common::post(addr, "/slack", h, body.to_vec()).await
}

#[tokio::test]
async fn slack_interactivity_payload_reaches_the_handler_parsed() {
    let addr = slack_server().await;
    let body =
        b"payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D";
    let r = send_form(addr, body).await;
    assert_eq!(
        (r.status, r.text()),
        (StatusCode::OK, "slack block_actions U1")
    );
}

#[tokio::test]
async fn bad_payload_fields_answer_400_or_422() {
    let addr = slack_server().await;
    let cases: [(&[u8], StatusCode); 4] = [
        (b"payload=%7B%22type%22", StatusCode::BAD_REQUEST),
        (
            b"payload=%7B%22type%22%3A1%7D",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            b"command=%2Fweather&text=x",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            b"payload=%7B%7D&payload=%7B%7D",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, want) in cases {
        let r = send_form(addr, body).await;
        assert_eq!(r.status, want, "{}", String::from_utf8_lossy(body));
    }
}

#[tokio::test]
async fn github_json_body_is_taken_as_is() {
    let app = Router::new()
        .route("/gh", post(handle))
        .route_layer(WebhookLayer::new(GitHub::new(
            Secret::text("gh").expect("secret"),
        )));
    let addr = common::serve(app).await;
    let body = br#"{"type":"push","user":{"id":"octocat"}}"#;
    let r = common::post(
        addr,
        "/gh",
        testing::github("gh", "d-1", "push", body),
        body.to_vec(),
    )
    .await;
    assert_eq!(
        (r.status, r.text()),
        (StatusCode::OK, "github push octocat")
    );
    // The same hook form-encoded, as GitHub sends it when so configured.
    let form =
        b"payload=%7B%22type%22%3A%22push%22%2C%22user%22%3A%7B%22id%22%3A%22octocat%22%7D%7D";
    let mut h = testing::github("gh", "d-2", "push", form);
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let r = common::post(addr, "/gh", h, form.to_vec()).await;
    assert_eq!(
        (r.status, r.text()),
        (StatusCode::OK, "github push octocat")
    );
}
