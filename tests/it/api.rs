//! Properties of the public API: thread-safety of the services and futures,
//! and a clear error when the extractor is used without the layer.

use std::convert::Infallible;

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower_webhook::middleware::ResponseFuture;
use tower_webhook::providers::GitHub;
use tower_webhook::{Webhook, WebhookLayer, WebhookService};

use crate::common::{post as send_post, serve};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn services_layers_and_futures_are_thread_safe() {
    type Inner = tower::util::ServiceFn<
        fn(Request<Full<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
    >;
    assert_send_sync::<WebhookLayer<GitHub>>();
    assert_send_sync::<WebhookService<Inner, GitHub, tower_webhook::MemoryStore>>();
    assert_send::<ResponseFuture<Full<Bytes>, Infallible>>();
}

#[tokio::test]
async fn extractor_without_the_layer_is_a_clear_500_not_a_panic() {
    let app = Router::new().route(
        "/",
        post(|_: Webhook<serde_json::Value>| async { "unreachable" }),
    );
    let addr = serve(app).await;
    let r = send_post(addr, "/", http::HeaderMap::new(), "{}").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().contains("without WebhookLayer"), "{}", r.text());
}
