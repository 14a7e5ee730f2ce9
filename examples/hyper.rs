//! The demo receiver on plain hyper 1.x + hyper-util, no axum: a
//! `tower::ServiceBuilder` stack with `WebhookLayer` per route. Same routes,
//! environment and `BIND` contract as `examples/receiver.rs`.
//!
//! ```text
//! cargo run --example hyper
//! ```
//!
//! The server is `demo/src/hyper_server.rs`.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    demo::init_tracing();
    let listener = tokio::net::TcpListener::bind(demo::bind()).await?;
    demo::hyper_server::run(listener).await
}
