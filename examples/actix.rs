//! The demo receiver on actix-web 4: `POST /webhooks/<provider>` for every
//! provider, each resource wrapped in `tower_webhook::actix::WebhookMiddleware`,
//! and `GET /events`. Same routes, environment and `BIND` contract as
//! `examples/receiver.rs`.
//!
//! ```text
//! cargo run --example actix --features actix
//! ```
//!
//! The server is `demo/src/actix_server.rs`.

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    demo::init_tracing();
    let listener = std::net::TcpListener::bind(demo::bind())?;
    actix_web::rt::System::new().block_on(demo::actix_server::run(listener))
}
