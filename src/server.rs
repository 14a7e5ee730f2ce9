//! Serving an axum app with the limits a public webhook endpoint needs
//! (feature `axum`).
//!
//! `axum::serve` sets no limit on the time a client may take to send its
//! request head: a client that sends one header byte every few seconds
//! holds its connection open for as long as it likes, and a few thousand
//! such clients exhaust the server's connections or file descriptors
//! before any delivery reaches [`WebhookLayer`](crate::WebhookLayer) (which
//! bounds the *body*: its limit and read timeout). [`serve`] is
//! `axum::serve` with that bound: the whole head must arrive within
//! [`HEAD_TIMEOUT`], or the connection is closed.
//!
//! ```no_run
//! use axum::{routing::post, Router};
//! use tower_webhook::{providers::GitHub, Secret, WebhookLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = WebhookLayer::new(GitHub::new(Secret::text("It's a Secret to Everybody")?));
//! let app = Router::new().route("/webhooks/github", post(|| async { "ok" }).layer(layer));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! tower_webhook::server::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Behind a reverse proxy that already bounds request heads (nginx's
//! `client_header_timeout`, say), `axum::serve` is fine too.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower_service::Service as _;

/// How long a client may take to send a whole request head (request line
/// and headers) by default: 5 s, as actix-web's `client_request_timeout`.
/// Webhook senders send theirs at once.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` over HTTP/1.1, each request head bounded by
/// [`HEAD_TIMEOUT`], with [`ConnectInfo<SocketAddr>`](ConnectInfo) in every
/// request (the pre-authentication rate limit keys on it).
///
/// Runs until its task is dropped. An error accepting a connection (too
/// many open files, say) is logged, and accepting resumes after a second.
///
/// # Errors
/// None today; the `Result` mirrors `axum::serve`.
pub async fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    serve_with(listener, app, HEAD_TIMEOUT).await
}

/// [`serve`] with another bound on the time to send a request head.
///
/// # Errors
/// As [`serve`].
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    head_timeout: Duration,
) -> std::io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let mut app = app.clone();
            async move { Ok::<_, Infallible>(app.call(req).await.unwrap_or_else(|e| match e {})) }
        });
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(head_timeout);
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
        });
    }
}
