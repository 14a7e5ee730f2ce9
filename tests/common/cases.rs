//! One table of providers for the end-to-end suites: how to build the
//! verifier, sign a delivery, and reach its signature and timestamp.
//! Adding a provider to every end-to-end suite is one entry here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use http::{HeaderMap, HeaderValue};
use tower_webhook::providers::{GitHub, Shopify, Slack, StandardWebhooks, Stripe};
use tower_webhook::{Secret, Verifier, Webhook, WebhookLayer, testing};

/// One provider under test.
pub struct Case {
    /// Route path, also the case's name.
    pub path: &'static str,
    /// The verifier with `good` and `other` active.
    pub verifier: fn() -> Box<dyn Verifier>,
    /// Signs `body` at `ts` with `secret` (as the provider presents it); the
    /// delivery id is the body's `id` field.
    pub sign: fn(&str, i64, &[u8]) -> HeaderMap,
    pub good: &'static str,
    pub other: &'static str,
    pub wrong: &'static str,
    pub signature_header: &'static str,
    /// Replaces the signed timestamp's text, for schemes that have one.
    pub set_timestamp: Option<fn(&mut HeaderMap, &str)>,
    /// Whether a timestamp in the future is refused by default.
    pub future_refused: bool,
}

const STD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STD_OTHER: &str = "whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24=";

/// The delivery id a sender would put in its header: the body's `id`.
pub fn id_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("len-{}", body.len()))
}

/// A JSON body whose id fields (`id`, `event_id`) are `id`.
pub fn body(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"demo.event","event_id":"{id}","event":{{"type":"demo.event"}},"data":{{"n":1}}}}"#
    )
}

fn text(s: &str) -> Secret {
    Secret::text(s).expect("secret")
}

fn std_secret(s: &str) -> Secret {
    Secret::standard_webhooks(s).expect("secret")
}

fn set_header(name: &'static str) -> fn(&mut HeaderMap, &str) {
    match name {
        "webhook-timestamp" => |h, t| {
            h.insert(
                "webhook-timestamp",
                HeaderValue::from_str(t).expect("visible"),
            );
        },
        _ => |h, t| {
            h.insert(
                "x-slack-request-timestamp",
                HeaderValue::from_str(t).expect("visible"),
            );
        },
    }
}

/// Every provider of the end-to-end suites.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            path: "/standard",
            verifier: || {
                Box::new(
                    StandardWebhooks::new(std_secret(STD_SECRET)).add_secret(std_secret(STD_OTHER)),
                )
            },
            sign: |s, ts, b| testing::standard_webhooks(s, &id_of(b), ts, b),
            good: STD_SECRET,
            other: STD_OTHER,
            wrong: "whsec_bm90IHRoZSBzZWNyZXQgYXQgYWxs",
            signature_header: "webhook-signature",
            set_timestamp: Some(set_header("webhook-timestamp")),
            future_refused: true,
        },
        Case {
            path: "/stripe",
            verifier: || {
                Box::new(
                    Stripe::new(text("whsec_stripe_primary"))
                        .add_secret(text("whsec_stripe_rotated")),
                )
            },
            sign: testing::stripe,
            good: "whsec_stripe_primary",
            other: "whsec_stripe_rotated",
            wrong: "not the secret",
            signature_header: "stripe-signature",
            set_timestamp: Some(|h, t| {
                let old = h["stripe-signature"].to_str().expect("ascii").to_owned();
                let rest = old.split_once(',').map_or("", |(_, r)| r);
                h.insert(
                    "stripe-signature",
                    HeaderValue::from_str(&format!("t={t},{rest}")).expect("visible"),
                );
            }),
            future_refused: false,
        },
        Case {
            path: "/github",
            verifier: || {
                Box::new(GitHub::new(text("github primary")).add_secret(text("github rotated")))
            },
            sign: |s, _, b| testing::github(s, &id_of(b), "push", b),
            good: "github primary",
            other: "github rotated",
            wrong: "not the secret",
            signature_header: "x-hub-signature-256",
            set_timestamp: None,
            future_refused: false,
        },
        Case {
            path: "/slack",
            verifier: || {
                Box::new(Slack::new(text("slack primary")).add_secret(text("slack rotated")))
            },
            sign: testing::slack,
            good: "slack primary",
            other: "slack rotated",
            wrong: "not the secret",
            signature_header: "x-slack-signature",
            set_timestamp: Some(set_header("x-slack-request-timestamp")),
            future_refused: true,
        },
        Case {
            path: "/shopify",
            verifier: || {
                Box::new(Shopify::new(text("shopify primary")).add_secret(text("shopify rotated")))
            },
            sign: |s, _, b| testing::shopify(s, &id_of(b), "orders/create", b),
            good: "shopify primary",
            other: "shopify rotated",
            wrong: "not the secret",
            signature_header: "x-shopify-hmac-sha256",
            set_timestamp: None,
            future_refused: false,
        },
    ]
}

/// Serves every case on its path behind a `WebhookLayer` with `body_limit`
/// and `read_timeout`, accepting any method (so that the layer, not the
/// router, answers 405). The handler counts its calls and answers
/// `handled`.
pub async fn serve_cases(
    cases: &[Case],
    body_limit: usize,
    read_timeout: Duration,
    calls: Arc<AtomicUsize>,
) -> SocketAddr {
    let mut app = Router::new();
    for c in cases {
        let calls = Arc::clone(&calls);
        let handler = move |_: Webhook<serde_json::Value>| {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                "handled"
            }
        };
        let layer = WebhookLayer::builder((c.verifier)())
            .body_limit(body_limit)
            .read_timeout(read_timeout)
            .build();
        app = app.merge(Router::new().route(c.path, any(handler)).route_layer(layer));
    }
    super::serve(app).await
}
