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
//!
//! The server is `demo/src/axum_server.rs`; what the three demo servers
//! share (routes, secrets, store, `/events`), `demo/src/lib.rs`.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    demo::init_tracing();
    let listener = tokio::net::TcpListener::bind(demo::bind()).await?;
    demo::axum_server::run(listener).await
}
