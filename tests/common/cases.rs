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
use tower_webhook::providers::{
    Discord, GitHub, GitLab, Intercom, LemonSqueezy, Paddle, SendGrid, Shopify, Slack,
    StandardWebhooks, Stripe, Svix, Typeform, WooCommerce, Zoom,
};
use tower_webhook::{PublicKey, Secret, Tolerance, Verifier, Webhook, WebhookLayer, testing};

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
    /// Whether the timestamp sits inside the signature header (Stripe's
    /// `t=`, Paddle's `ts=`): garbling that header loses the timestamp
    /// (400), and spaces around it stay inside the header (400).
    pub ts_in_signature: bool,
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
    fn put(h: &mut HeaderMap, name: &'static str, t: &str) {
        h.insert(name, HeaderValue::from_str(t).expect("visible"));
    }
    match name {
        "webhook-timestamp" => |h, t| put(h, "webhook-timestamp", t),
        "svix-timestamp" => |h, t| put(h, "svix-timestamp", t),
        "x-zm-request-timestamp" => |h, t| put(h, "x-zm-request-timestamp", t),
        _ => |h, t| put(h, "x-slack-request-timestamp", t),
    }
}

/// Replaces `key=<ts>` at the start of a signature header (`t=`, `ts=`).
fn set_leading(h: &mut HeaderMap, header: &'static str, key: &str, sep: char, t: &str) {
    let old = h[header].to_str().expect("ascii").to_owned();
    let rest = old.split_once(sep).map_or("", |(_, r)| r);
    let new = format!("{key}={t}{sep}{rest}");
    h.insert(header, HeaderValue::from_str(&new).expect("visible"));
}

/// The seeds of the Ed25519 / ECDSA keys named `good`, `other`, `wrong`.
fn seed(name: &str) -> [u8; 32] {
    match name {
        "good" => [1; 32],
        "other" => [2; 32],
        _ => [3; 32],
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
            ts_in_signature: false,
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
            set_timestamp: Some(|h, t| set_leading(h, "stripe-signature", "t", ',', t)),
            future_refused: false,
            ts_in_signature: true,
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
            ts_in_signature: false,
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
            ts_in_signature: false,
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
            ts_in_signature: false,
        },
        Case {
            path: "/svix",
            verifier: || {
                Box::new(Svix::new(std_secret(STD_SECRET)).add_secret(std_secret(STD_OTHER)))
            },
            sign: |s, ts, b| testing::svix(s, &id_of(b), ts, b),
            good: STD_SECRET,
            other: STD_OTHER,
            wrong: "whsec_bm90IHRoZSBzZWNyZXQgYXQgYWxs",
            signature_header: "svix-signature",
            set_timestamp: Some(set_header("svix-timestamp")),
            future_refused: true,
            ts_in_signature: false,
        },
        Case {
            path: "/gitlab-signing",
            verifier: || {
                Box::new(
                    GitLab::signing_token(std_secret(STD_SECRET)).add_secret(std_secret(STD_OTHER)),
                )
            },
            sign: |s, ts, b| testing::gitlab_signing(s, &id_of(b), ts, b),
            good: STD_SECRET,
            other: STD_OTHER,
            wrong: "whsec_bm90IHRoZSBzZWNyZXQgYXQgYWxs",
            signature_header: "webhook-signature",
            set_timestamp: Some(set_header("webhook-timestamp")),
            future_refused: true,
            ts_in_signature: false,
        },
        Case {
            path: "/paddle",
            verifier: || Box::new(Paddle::new(text("pdl_primary")).add_secret(text("pdl_rotated"))),
            sign: testing::paddle,
            good: "pdl_primary",
            other: "pdl_rotated",
            wrong: "not the secret",
            signature_header: "paddle-signature",
            set_timestamp: Some(|h, t| set_leading(h, "paddle-signature", "ts", ';', t)),
            future_refused: true,
            ts_in_signature: true,
        },
        Case {
            path: "/zoom",
            verifier: || Box::new(Zoom::new(text("zoom primary")).add_secret(text("zoom rotated"))),
            sign: testing::zoom,
            good: "zoom primary",
            other: "zoom rotated",
            wrong: "not the secret",
            signature_header: "x-zm-signature",
            set_timestamp: Some(set_header("x-zm-request-timestamp")),
            future_refused: true,
            ts_in_signature: false,
        },
        Case {
            path: "/intercom",
            verifier: || {
                Box::new(
                    Intercom::new(text("intercom primary")).add_secret(text("intercom rotated")),
                )
            },
            sign: |s, _, b| testing::intercom(s, b),
            good: "intercom primary",
            other: "intercom rotated",
            wrong: "not the secret",
            signature_header: "x-hub-signature",
            set_timestamp: None,
            future_refused: false,
            ts_in_signature: false,
        },
        Case {
            path: "/woocommerce",
            verifier: || {
                Box::new(WooCommerce::new(text("woo primary")).add_secret(text("woo rotated")))
            },
            sign: |s, _, b| testing::woocommerce(s, &id_of(b), "order.created", b),
            good: "woo primary",
            other: "woo rotated",
            wrong: "not the secret",
            signature_header: "x-wc-webhook-signature",
            set_timestamp: None,
            future_refused: false,
            ts_in_signature: false,
        },
        Case {
            path: "/lemonsqueezy",
            verifier: || {
                Box::new(LemonSqueezy::new(text("lemon primary")).add_secret(text("lemon rotated")))
            },
            sign: |s, _, b| testing::lemonsqueezy(s, "order_created", b),
            good: "lemon primary",
            other: "lemon rotated",
            wrong: "not the secret",
            signature_header: "x-signature",
            set_timestamp: None,
            future_refused: false,
            ts_in_signature: false,
        },
        Case {
            path: "/typeform",
            verifier: || {
                Box::new(
                    Typeform::new(text("typeform primary")).add_secret(text("typeform rotated")),
                )
            },
            sign: |s, _, b| testing::typeform(s, b),
            good: "typeform primary",
            other: "typeform rotated",
            wrong: "not the secret",
            signature_header: "typeform-signature",
            set_timestamp: None,
            future_refused: false,
            ts_in_signature: false,
        },
        Case {
            path: "/discord",
            verifier: || {
                let key = |n| PublicKey::hex(&testing::discord_public_key(&seed(n))).expect("key");
                Box::new(Discord::new(key("good")).add_public_key(key("other")))
            },
            sign: |s, ts, b| testing::discord(&seed(s), ts, b),
            good: "good",
            other: "other",
            wrong: "wrong",
            signature_header: "x-signature-ed25519",
            set_timestamp: None,
            future_refused: false,
            ts_in_signature: false,
        },
        Case {
            path: "/sendgrid",
            verifier: || {
                let key = |n| testing::sendgrid_public_key(&seed(n));
                let v = SendGrid::new(&key("good")).expect("key");
                Box::new(
                    v.add_key(&key("other"), "rotated")
                        .expect("key")
                        .tolerance(Tolerance::symmetric(Duration::from_secs(300))),
                )
            },
            sign: |s, ts, b| testing::sendgrid(&seed(s), ts, b),
            good: "good",
            other: "other",
            wrong: "wrong",
            signature_header: "x-twilio-email-event-webhook-signature",
            // the timestamp is opaque signed text, checked after the
            // signature: an edited one is a mismatch (401), not a 400
            set_timestamp: None,
            future_refused: false,
            ts_in_signature: false,
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
