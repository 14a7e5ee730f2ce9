//! Secrets and signatures never appear in `Debug` output nor in the
//! `tracing` log of accepted and rejected deliveries.

use axum::routing::post;
use axum::{Extension, Router};
use tower_webhook::providers::{GitHub, StandardWebhooks, Stripe};
use tower_webhook::{Secret, Verified, WebhookLayer, testing};

use crate::common::{Captured, now, post as send_post, serve};

const GH: &str = "gh-super-secret-value-1234";
const STD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let guard = tracing::subscriber::set_default(captured.subscriber("trace"));
    (captured, guard)
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
    let (captured, _guard) = capture();

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

    let log = captured.text();
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

#[tokio::test]
async fn a_delivery_under_a_retiring_secret_logs_its_label_and_nothing_secret() {
    const OLD: &str = "gh-old-secret-being-retired";
    const NEW: &str = "gh-new-secret-in-service";
    let (captured, _guard) = capture();
    let verifier = GitHub::new(Secret::text(NEW).expect("secret").with_label("2026")).add_secret(
        Secret::text(OLD)
            .expect("secret")
            .with_label("2025")
            .retiring(),
    );
    let app = Router::new()
        .route(
            "/gh",
            post(|Extension(v): Extension<Verified>| async move {
                format!("{:?} {}", v.key_label(), v.key_retiring())
            }),
        )
        .route_layer(WebhookLayer::new(verifier));
    let addr = serve(app).await;
    let body = br#"{"zen":"x"}"#;
    let warnings = |log: &str| {
        log.lines()
            .filter(|l| l.contains("retiring secret"))
            .count()
    };

    let old = testing::github(OLD, "r-1", "push", body);
    let signature = old["x-hub-signature-256"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let r = send_post(addr, "/gh", old, &body[..]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"Some("2025") true"#);
    let log = captured.text();
    assert_eq!(warnings(&log), 1, "one warning:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("retiring secret"))
        .expect("the warning");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("provider=\"github\""), "{line}");
    assert!(line.contains("key=\"2025\""), "{line}");

    // Another event (the same body under another secret is the same event:
    // a duplicate, which the handler would not see).
    let body2 = br#"{"zen":"y"}"#;
    let r = send_post(
        addr,
        "/gh",
        testing::github(NEW, "r-2", "push", body2),
        &body2[..],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"Some("2026") false"#);
    let log = captured.text();
    assert_eq!(warnings(&log), 1, "no warning for the new secret:\n{log}");
    let sig_hex = signature.trim_start_matches("sha256=");
    for needle in [OLD, NEW, sig_hex] {
        assert!(
            !log.contains(needle),
            "{needle} leaked into the log:\n{log}"
        );
    }
}
