//! The demo receiver (axum): `POST /webhooks/<provider>` for every provider,
//! each behind `WebhookLayer` with default settings, `GET /events` listing
//! what was accepted, and `GET /metrics` (Prometheus text).
//!
//! ```text
//! cargo run --example receiver                 # listens on 127.0.0.1:3000
//! BIND=0.0.0.0:8080 cargo run --example receiver
//! ```
//!
//! Each provider's secret comes from its environment variable (the
//! README's provider table names them; `STRIPE_WEBHOOK_SECRET`,
//! `GITHUB_WEBHOOK_SECRET`, ...); an unset one gets a demo value, printed at
//! start with ready-to-run `curl` commands that send signed deliveries.
//! `REDIS_URL` (and `REDIS_KEY_PREFIX`) switch de-duplication to Redis;
//! `RATE_LIMIT_PER_SECOND` / `RATE_LIMIT_BURST` set the pre-authentication
//! limit; `TRUSTED_PROXIES` and `PUBLIC_BASE_URL` are for running behind a
//! proxy.

mod common;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{Events, Secrets};
use serde_json::{Value, json};
use tower_webhook::Webhook;

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

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    common::init_tracing();
    let listener = tokio::net::TcpListener::bind(common::bind()).await?;
    run(listener).await
}

/// Serves the demo on `listener` (the black-box suite, tests/blackbox.rs,
/// runs it in-process).
///
/// # Errors
/// The store (Redis) or the settings from the environment fail, or the
/// server stops on an I/O error.
pub async fn run(
    listener: tokio::net::TcpListener,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let store = common::store().await?;
    common::prometheus();
    let mut app = Router::new()
        .route("/events", get(list))
        .route("/metrics", get(|| async { common::metrics_text() }));
    let mut demos = Vec::new();
    for route in common::routes()? {
        if route.secret.demo {
            demos.push((
                route.path.clone(),
                route.secret.var,
                route.secret.value.clone(),
            ));
        }
        let path = route.path.clone();
        let layer = common::layer(route, &store)?;
        app = app.merge(Router::new().route(&path, post(accept)).route_layer(layer));
    }
    let app = app.with_state(Events::default());

    common::banner(
        "axum",
        listener.local_addr()?,
        &Secrets::from_env()?,
        &demos,
    );
    // axum::serve with a bound on the time to send a request head.
    tower_webhook::server::serve(listener, app).await?;
    Ok(())
}
