//! The demo receiver: one route per provider, each behind `WebhookLayer`
//! with default settings, and `GET /events` listing what was accepted.
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

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_webhook::providers::{GitHub, Shopify, Slack, StandardWebhooks, Stripe};
use tower_webhook::{Secret, Verifier, Webhook, WebhookLayer, testing};

type Events = Arc<Mutex<Vec<Value>>>;

/// A secret from `var`, or the demo one (and a note that it is a demo).
fn secret_text(var: &str, demo: &str) -> (String, bool) {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => (v, false),
        _ => (demo.to_owned(), true),
    }
}

async fn accept(State(events): State<Events>, hook: Webhook<Value>) -> Json<Value> {
    let entry = json!({
        "provider": hook.meta.provider(),
        "id": hook.meta.event_id(),
        "type": hook.meta.event_type(),
    });
    tracing::info!(%entry, "accepted");
    events
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(entry);
    Json(json!({ "ok": true }))
}

async fn list(State(events): State<Events>) -> Json<Value> {
    let events = events
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Json(Value::Array(events.clone()))
}

fn route<V: Verifier>(verifier: V) -> Router<Events> {
    Router::new()
        .route("/", post(accept))
        .route_layer(WebhookLayer::new(verifier))
}

fn curl(addr: SocketAddr, path: &str, headers: &http::HeaderMap, body: &str) -> String {
    let mut cmd = format!("curl -i http://{addr}{path} -H 'content-type: application/json'");
    for (k, v) in headers {
        cmd.push_str(&format!(" -H '{}: {}'", k, v.to_str().unwrap_or_default()));
    }
    cmd.push_str(&format!(" -d '{body}'"));
    cmd
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_webhook=info".into()),
        )
        .init();

    let (standard, standard_demo) = secret_text(
        "STANDARD_WEBHOOK_SECRET",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    );
    let (stripe, stripe_demo) = secret_text("STRIPE_WEBHOOK_SECRET", "whsec_demo_stripe_secret");
    let (github, github_demo) = secret_text("GITHUB_WEBHOOK_SECRET", "demo-github-secret");
    let (slack, slack_demo) = secret_text("SLACK_SIGNING_SECRET", "demo-slack-signing-secret");
    let (shopify, shopify_demo) = secret_text("SHOPIFY_WEBHOOK_SECRET", "demo-shopify-secret");

    let events: Events = Arc::default();
    let app = Router::new()
        .nest(
            "/webhooks/standard",
            route(StandardWebhooks::new(Secret::standard_webhooks(&standard)?)),
        )
        .nest(
            "/webhooks/stripe",
            route(Stripe::new(Secret::text(&stripe)?)),
        )
        .nest(
            "/webhooks/github",
            route(GitHub::new(Secret::text(&github)?)),
        )
        .nest("/webhooks/slack", route(Slack::new(Secret::text(&slack)?)))
        .nest(
            "/webhooks/shopify",
            route(Shopify::new(Secret::text(&shopify)?)),
        )
        .route("/events", get(list))
        .with_state(events);

    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    println!("tower-webhook demo receiver listening on http://{addr}");

    let demos = [
        ("STANDARD_WEBHOOK_SECRET", standard_demo, &standard),
        ("STRIPE_WEBHOOK_SECRET", stripe_demo, &stripe),
        ("GITHUB_WEBHOOK_SECRET", github_demo, &github),
        ("SLACK_SIGNING_SECRET", slack_demo, &slack),
        ("SHOPIFY_WEBHOOK_SECRET", shopify_demo, &shopify),
    ];
    for (var, demo, value) in demos {
        if demo {
            println!("  {var} not set: using the demo secret {value:?}");
        }
    }
    if standard_demo {
        let body = r#"{"type":"demo.ping","data":{"hello":"world"}}"#;
        let ts = testing::unix(SystemTime::now());
        let headers = testing::standard_webhooks(&standard, "msg_demo_1", ts, body.as_bytes());
        println!("\nSend a signed Standard Webhooks delivery (valid for 5 minutes):");
        println!("  {}", curl(addr, "/webhooks/standard", &headers, body));
    }
    if github_demo {
        let body = r#"{"zen":"Keep it logically awesome."}"#;
        let headers = testing::github(&github, "demo-delivery-1", "ping", body.as_bytes());
        println!("\nSend a signed GitHub delivery:");
        println!("  {}", curl(addr, "/webhooks/github", &headers, body));
    }
    println!("\nThen: curl http://{addr}/events\n");

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
