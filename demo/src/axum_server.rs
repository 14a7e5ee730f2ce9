//! The demo receiver on axum: a `Router` with one route per provider, each
//! behind its `WebhookLayer` (`route_layer`), and a handler taking
//! `Webhook<serde_json::Value>`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_webhook::Webhook;

use crate::{Events, Secrets};

async fn accept(State(events): State<Events>, hook: Webhook<Value>) -> Json<Value> {
    crate::record(&events, &hook.meta);
    Json(json!({ "ok": true }))
}

async fn list(State(events): State<Events>) -> ([(http::HeaderName, &'static str); 1], String) {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        crate::events_json(&events),
    )
}

/// Serves the demo on `listener`.
///
/// # Errors
/// The store (Redis) or the settings from the environment fail, or the
/// server stops on an I/O error.
pub async fn run(
    listener: tokio::net::TcpListener,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let store = crate::store().await?;
    crate::prometheus();
    let mut app = Router::new()
        .route("/events", get(list))
        .route("/metrics", get(|| async { crate::metrics_text() }));
    let mut demos = Vec::new();
    for route in crate::routes()? {
        if route.secret.demo {
            demos.push((
                route.path.clone(),
                route.secret.var,
                route.secret.value.clone(),
            ));
        }
        let path = route.path.clone();
        let layer = crate::layer(route, &store)?;
        app = app.merge(Router::new().route(&path, post(accept)).route_layer(layer));
    }
    let app = app.with_state(Events::default());

    crate::banner(
        "axum",
        listener.local_addr()?,
        &Secrets::from_env()?,
        &demos,
    );
    // axum::serve with a bound on the time to send a request head.
    tower_webhook::server::serve(listener, app).await?;
    Ok(())
}
