//! The demo receiver (axum): one route per provider, each behind
//! `WebhookLayer` with default settings, and `GET /events` listing what was
//! accepted.
//!
//! ```text
//! cargo run --example receiver                 # listens on 127.0.0.1:3000
//! BIND=0.0.0.0:8080 cargo run --example receiver
//! ```
//!
//! Secrets come from `STANDARD_WEBHOOK_SECRET` (`whsec_` + base64),
//! `STRIPE_WEBHOOK_SECRET`, `GITHUB_WEBHOOK_SECRET`, `SLACK_SIGNING_SECRET`
//! and `SHOPIFY_WEBHOOK_SECRET`; an unset one gets a demo secret, printed
//! at start with a ready-to-run `curl` that sends a signed delivery.

mod common;

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{Events, Secrets};
use serde_json::{Value, json};
use tower_webhook::providers::{GitHub, Shopify, Slack, StandardWebhooks, Stripe};
use tower_webhook::{Secret, Verifier, Webhook, WebhookLayer};

async fn accept(State(events): State<Events>, hook: Webhook<Value>) -> Json<Value> {
    common::record(&events, &hook.meta);
    Json(json!({ "ok": true }))
}

async fn list(State(events): State<Events>) -> ([(http::HeaderName, &'static str); 1], String) {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        common::events_json(&events),
    )
}

fn route<V: Verifier>(verifier: V) -> Router<Events> {
    Router::new()
        .route("/", post(accept))
        .route_layer(WebhookLayer::new(verifier))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let s = Secrets::from_env();
    let events = Events::default();
    let app = Router::new()
        .nest(
            "/webhooks/standard",
            route(StandardWebhooks::new(Secret::standard_webhooks(
                &s.standard.value,
            )?)),
        )
        .nest(
            "/webhooks/stripe",
            route(Stripe::new(Secret::text(&s.stripe.value)?)),
        )
        .nest(
            "/webhooks/github",
            route(GitHub::new(Secret::text(&s.github.value)?)),
        )
        .nest(
            "/webhooks/slack",
            route(Slack::new(Secret::text(&s.slack.value)?)),
        )
        .nest(
            "/webhooks/shopify",
            route(Shopify::new(Secret::text(&s.shopify.value)?)),
        )
        .route("/events", get(list))
        .with_state(events);

    let listener = tokio::net::TcpListener::bind(common::bind()).await?;
    common::banner("axum", listener.local_addr()?, &s);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
