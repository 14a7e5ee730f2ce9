//! Secrets and signatures never appear in `Debug` output nor in the
//! `tracing` log of accepted and rejected deliveries.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::post;
use common::{now, post as send_post, serve};
use tower_webhook::providers::{GitHub, StandardWebhooks, Stripe};
use tower_webhook::{Secret, WebhookLayer, testing};

const GH: &str = "gh-super-secret-value-1234";
const STD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn debug_output_hides_secrets() {
    let gh = GitHub::new(Secret::text(GH).expect("secret"));
    let std = StandardWebhooks::new(Secret::standard_webhooks(STD).expect("secret"));
    let stripe = Stripe::new(Secret::text("whsec_stripe_hidden").expect("secret"));
    let layer = WebhookLayer::new(GitHub::new(Secret::text(GH).expect("secret")));
    let shown = format!("{gh:?} {std:?} {stripe:?} {layer:?} {:?}", Secret::text(GH));
    for needle in [GH, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "stripe_hidden"] {
        assert!(!shown.contains(needle), "{needle} leaked in {shown}");
    }
    assert!(shown.contains("***"));
}

#[tokio::test]
async fn logs_of_accepted_and_rejected_deliveries_hold_no_secret_or_signature() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = Router::new()
        .route("/gh", post(|| async { "ok" }))
        .route_layer(WebhookLayer::new(GitHub::new(
            Secret::text(GH).expect("secret"),
        )))
        .merge(
            Router::new()
                .route("/std", post(|| async { "ok" }))
                .route_layer(WebhookLayer::new(StandardWebhooks::new(
                    Secret::standard_webhooks(STD).expect("secret"),
                ))),
        );
    let addr = serve(app).await;

    let body = br#"{"type":"t"}"#;
    let good = testing::github(GH, "d-1", "push", body);
    let bad = testing::github("wrong", "d-2", "push", body);
    let std_good = testing::standard_webhooks(STD, "msg_1", now(), body);
    let mut signatures = Vec::new();
    for h in [&good, &bad, &std_good] {
        for name in ["x-hub-signature-256", "webhook-signature"] {
            if let Some(v) = h.get(name) {
                let v = v.to_str().expect("ascii");
                signatures.push(v.split_once(['=', ',']).map_or(v, |(_, s)| s).to_owned());
            }
        }
    }
    assert_eq!(send_post(addr, "/gh", good, &body[..]).await.status, 200);
    assert_eq!(send_post(addr, "/gh", bad, &body[..]).await.status, 401);
    assert_eq!(
        send_post(addr, "/std", std_good, &body[..]).await.status,
        200
    );

    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8 log");
    assert!(log.contains("accepted"), "the log records outcomes:\n{log}");
    assert!(
        log.contains("no signature matches"),
        "the log records the reason:\n{log}"
    );
    for needle in [GH, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        .into_iter()
        .chain(signatures.iter().map(String::as_str))
    {
        assert!(
            !log.contains(needle),
            "{needle} leaked into the log:\n{log}"
        );
    }
}
