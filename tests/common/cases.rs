//! One table of providers for the end-to-end suites: how to build the
//! verifier, sign a delivery, and reach its signature and timestamp.
//! Adding a provider to every end-to-end suite is one entry here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use tower_webhook::client::PublicUrl;
use tower_webhook::providers::hmac::{Algorithm, Encoding, Hmac};
use tower_webhook::providers::{
    Adyen, Discord, GitHub, GitLab, Intercom, LemonSqueezy, Linear, Mailgun, Mandrill, Paddle,
    SendGrid, Shopify, Slack, Square, StandardWebhooks, Stripe, Svix, Twilio, Twitch, Typeform,
    Unsigned, WooCommerce, WpWebhooks, Zoom,
};
use tower_webhook::{PublicKey, Secret, Tolerance, Verifier, Webhook, WebhookLayer, testing};

/// Builds the body as sent: `(secret, ts, event)` (see [`Case::wrap`]).
pub type Wrap = fn(&str, i64, &[u8]) -> Vec<u8>;

/// One provider under test.
pub struct Case {
    /// Route path, also the case's name.
    pub path: &'static str,
    /// The verifier with `good` and `other` active.
    pub verifier: fn() -> Box<dyn Verifier>,
    /// `application/json`, or [`FORM`] for form-encoded schemes.
    pub content_type: &'static str,
    /// Builds the body as sent from the event body, for schemes that sign
    /// inside the body or read signed fields from it (Mailgun, Adyen,
    /// Linear's `webhookTimestamp`): `(secret, ts, event)`. A body that is
    /// not a JSON object is sent as it is. `None`: the event is the body.
    pub wrap: Option<Wrap>,
    /// Signs `body` at `ts` with `secret` (as the provider presents it); the
    /// delivery id is the body's `id` field.
    pub sign: fn(&str, i64, &[u8]) -> HeaderMap,
    pub good: &'static str,
    pub other: &'static str,
    pub wrong: &'static str,
    /// Where the signature (or token) travels.
    pub signature: SigAt,
    /// Where the signed timestamp sits, for schemes that have one.
    pub timestamp: Option<Ts>,
    /// Whether the timestamp sits inside the signature header (Stripe's
    /// `t=`, Paddle's `ts=`): garbling that header loses the timestamp
    /// (400), and spaces around it stay inside the header (400).
    pub ts_in_signature: bool,
    /// Whether the rows of `tests/it/http.rs` hold for it: a header signature
    /// over the whole JSON body, a Unix timestamp (if any) in a header
    /// checked within 300 s.
    pub http_suite: bool,
}

/// Where a case's signature travels.
pub enum SigAt {
    /// In this header.
    Header(&'static str),
    /// A token in this header, compared byte for byte (GitLab's secret
    /// token, `Unsigned`): any bytes a header carries are a (wrong) token.
    Token(&'static str),
    /// In the JSON body, at this JSON pointer (Mailgun, Adyen). A body that
    /// is not such JSON carries no signature: the verifier then answers
    /// `unsigned`.
    Body {
        pointer: &'static str,
        unsigned: StatusCode,
    },
}

/// A signed timestamp.
pub struct Ts {
    /// Where its text sits.
    pub at: TsAt,
    /// Whether a timestamp in the future is refused by default.
    pub future_refused: bool,
    /// Whether it is Unix seconds, so that `5` is a valid (if unsigned)
    /// text; Twitch's is RFC 3339.
    pub unix: bool,
}

/// Where a signed timestamp's text sits.
pub enum TsAt {
    /// Replaces the text in the signed headers.
    Header(fn(&mut HeaderMap, &str)),
    /// At this JSON pointer of the body, set as a string before the headers
    /// are signed (Linear's `webhookTimestamp`, Mailgun's
    /// `signature.timestamp`).
    Body(&'static str),
}

/// The form media type.
pub const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
/// The public origin the URL-signed schemes (Twilio, Mandrill, Square) sign.
const ORIGIN: &str = "https://hooks.example.com";
/// The `date_created` of the WP Webhooks case.
const WP_CREATED: &str = "2026-01-02 03:04:05";

impl Case {
    /// Whether the scheme is form-encoded.
    pub fn is_form(&self) -> bool {
        self.content_type == FORM
    }

    /// An event body with id `id`: JSON ([`body`]), or a form.
    pub fn event(&self, id: &str) -> String {
        if self.is_form() {
            format!("id={id}&type=demo.event")
        } else {
            body(id)
        }
    }

    /// A delivery of `event` signed with `secret` at `ts`: the headers (with
    /// the content type) and the body as sent.
    pub fn deliver(&self, secret: &str, ts: i64, event: &[u8]) -> (HeaderMap, Vec<u8>) {
        self.deliver_with(secret, ts, event, |_| {})
    }

    /// [`Case::deliver`], with `edit` applied to the body before the headers
    /// are signed.
    pub fn deliver_with(
        &self,
        secret: &str,
        ts: i64,
        event: &[u8],
        edit: impl FnOnce(&mut Vec<u8>),
    ) -> (HeaderMap, Vec<u8>) {
        let mut body = match self.wrap {
            Some(wrap) => wrap(secret, ts, event),
            None => event.to_vec(),
        };
        edit(&mut body);
        let mut h = (self.sign)(secret, ts, &body);
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        (h, body)
    }
}

/// Sets (`Some`) or removes (`None`) the string at JSON `pointer` of `body`.
pub fn set_json(body: &mut Vec<u8>, pointer: &str, value: Option<&str>) {
    let mut v: Value = serde_json::from_slice(body).expect("a JSON body");
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let parent = v
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("the parent is an object");
    match value {
        Some(text) => parent.insert(key.to_owned(), text.into()),
        None => parent.remove(key),
    };
    *body = serde_json::to_vec(&v).expect("JSON");
}

/// The string at JSON `pointer` of `body`.
pub fn get_json(body: &[u8], pointer: &str) -> String {
    let v: Value = serde_json::from_slice(body).expect("a JSON body");
    v.pointer(pointer)
        .and_then(Value::as_str)
        .expect("a string at the pointer")
        .to_owned()
}

/// The `acme` scheme of the generic [`Hmac`] case: `sha256=` + hex over
/// `{timestamp}.{body}`.
fn acme_sign(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
    use hmac::{KeyInit, Mac};
    let t = ts.to_string();
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    m.update(t.as_bytes());
    m.update(b".");
    m.update(body);
    let sig = hex::encode(m.finalize().into_bytes());
    let mut h = HeaderMap::new();
    h.insert(
        "x-acme-signature",
        HeaderValue::from_str(&format!("sha256={sig}")).expect("visible"),
    );
    h.insert(
        "x-acme-timestamp",
        HeaderValue::from_str(&t).expect("digits"),
    );
    h
}

/// A Mailgun JSON body: the event as `event-data`, signed at `ts` with the
/// event's id as token.
fn mailgun_wrap(key: &str, ts: i64, event: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(event) {
        Ok(v @ Value::Object(_)) => testing::mailgun(key, ts, &id_of(event), v),
        _ => event.to_vec(),
    }
}

/// An Adyen notification of one signed item for the event's id, the event
/// itself in the item's (unsigned) `additionalData`.
fn adyen_wrap(key: &str, _ts: i64, event: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(event) {
        Ok(v @ Value::Object(_)) => testing::adyen(
            key,
            vec![serde_json::json!({
                "pspReference": id_of(event),
                "merchantAccountCode": "DemoShop",
                "merchantReference": "order-1",
                "amount": { "value": 1000, "currency": "EUR" },
                "eventCode": "AUTHORISATION",
                "success": "true",
                "additionalData": { "event": v },
            })],
        ),
        _ => event.to_vec(),
    }
}

/// Linear's body: the event with `webhookTimestamp` (Unix ms) added.
fn linear_wrap(_: &str, ts: i64, event: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(event) {
        Ok(Value::Object(mut m)) => {
            m.insert("webhookTimestamp".into(), (ts * 1000).into());
            serde_json::to_vec(&m).expect("JSON")
        }
        _ => event.to_vec(),
    }
}

fn public_url() -> PublicUrl {
    PublicUrl::base(ORIGIN).expect("url")
}

const STD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ADYEN_GOOD: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const ADYEN_OTHER: &str = "ffeeddccbbaa99887766554433221100";
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
        "x-acme-timestamp" => |h, t| put(h, "x-acme-timestamp", t),
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
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(
                    StandardWebhooks::new(std_secret(STD_SECRET)).add_secret(std_secret(STD_OTHER)),
                )
            },
            sign: |s, ts, b| testing::standard_webhooks(s, &id_of(b), ts, b),
            good: STD_SECRET,
            other: STD_OTHER,
            wrong: "whsec_bm90IHRoZSBzZWNyZXQgYXQgYWxs",
            signature: SigAt::Header("webhook-signature"),
            timestamp: Some(Ts {
                at: TsAt::Header(set_header("webhook-timestamp")),
                future_refused: true,
                unix: true,
            }),
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/stripe",
            content_type: JSON,
            wrap: None,
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
            signature: SigAt::Header("stripe-signature"),
            timestamp: Some(Ts {
                at: TsAt::Header(|h, t| set_leading(h, "stripe-signature", "t", ',', t)),
                future_refused: false,
                unix: true,
            }),
            ts_in_signature: true,
            http_suite: true,
        },
        Case {
            path: "/github",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(GitHub::new(text("github primary")).add_secret(text("github rotated")))
            },
            sign: |s, _, b| testing::github(s, &id_of(b), "push", b),
            good: "github primary",
            other: "github rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-hub-signature-256"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/slack",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(Slack::new(text("slack primary")).add_secret(text("slack rotated")))
            },
            sign: testing::slack,
            good: "slack primary",
            other: "slack rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-slack-signature"),
            timestamp: Some(Ts {
                at: TsAt::Header(set_header("x-slack-request-timestamp")),
                future_refused: true,
                unix: true,
            }),
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/shopify",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(Shopify::new(text("shopify primary")).add_secret(text("shopify rotated")))
            },
            sign: |s, _, b| testing::shopify(s, &id_of(b), "orders/create", b),
            good: "shopify primary",
            other: "shopify rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-shopify-hmac-sha256"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/svix",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(Svix::new(std_secret(STD_SECRET)).add_secret(std_secret(STD_OTHER)))
            },
            sign: |s, ts, b| testing::svix(s, &id_of(b), ts, b),
            good: STD_SECRET,
            other: STD_OTHER,
            wrong: "whsec_bm90IHRoZSBzZWNyZXQgYXQgYWxs",
            signature: SigAt::Header("svix-signature"),
            timestamp: Some(Ts {
                at: TsAt::Header(set_header("svix-timestamp")),
                future_refused: true,
                unix: true,
            }),
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/gitlab-signing",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(
                    GitLab::signing_token(std_secret(STD_SECRET)).add_secret(std_secret(STD_OTHER)),
                )
            },
            sign: |s, ts, b| testing::gitlab_signing(s, &id_of(b), ts, b),
            good: STD_SECRET,
            other: STD_OTHER,
            wrong: "whsec_bm90IHRoZSBzZWNyZXQgYXQgYWxs",
            signature: SigAt::Header("webhook-signature"),
            timestamp: Some(Ts {
                at: TsAt::Header(set_header("webhook-timestamp")),
                future_refused: true,
                unix: true,
            }),
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/paddle",
            content_type: JSON,
            wrap: None,
            verifier: || Box::new(Paddle::new(text("pdl_primary")).add_secret(text("pdl_rotated"))),
            sign: testing::paddle,
            good: "pdl_primary",
            other: "pdl_rotated",
            wrong: "not the secret",
            signature: SigAt::Header("paddle-signature"),
            timestamp: Some(Ts {
                at: TsAt::Header(|h, t| set_leading(h, "paddle-signature", "ts", ';', t)),
                future_refused: true,
                unix: true,
            }),
            ts_in_signature: true,
            http_suite: true,
        },
        Case {
            path: "/zoom",
            content_type: JSON,
            wrap: None,
            verifier: || Box::new(Zoom::new(text("zoom primary")).add_secret(text("zoom rotated"))),
            sign: testing::zoom,
            good: "zoom primary",
            other: "zoom rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-zm-signature"),
            timestamp: Some(Ts {
                at: TsAt::Header(set_header("x-zm-request-timestamp")),
                future_refused: true,
                unix: true,
            }),
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/intercom",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(
                    Intercom::new(text("intercom primary")).add_secret(text("intercom rotated")),
                )
            },
            sign: |s, _, b| testing::intercom(s, b),
            good: "intercom primary",
            other: "intercom rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-hub-signature"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/woocommerce",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(WooCommerce::new(text("woo primary")).add_secret(text("woo rotated")))
            },
            sign: |s, _, b| testing::woocommerce(s, &id_of(b), "order.created", b),
            good: "woo primary",
            other: "woo rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-wc-webhook-signature"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/lemonsqueezy",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(LemonSqueezy::new(text("lemon primary")).add_secret(text("lemon rotated")))
            },
            sign: |s, _, b| testing::lemonsqueezy(s, "order_created", b),
            good: "lemon primary",
            other: "lemon rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-signature"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/typeform",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(
                    Typeform::new(text("typeform primary")).add_secret(text("typeform rotated")),
                )
            },
            sign: |s, _, b| testing::typeform(s, b),
            good: "typeform primary",
            other: "typeform rotated",
            wrong: "not the secret",
            signature: SigAt::Header("typeform-signature"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/discord",
            content_type: JSON,
            wrap: None,
            verifier: || {
                let key = |n| PublicKey::hex(&testing::discord_public_key(&seed(n))).expect("key");
                Box::new(Discord::new(key("good")).add_public_key(key("other")))
            },
            sign: |s, ts, b| testing::discord(&seed(s), ts, b),
            good: "good",
            other: "other",
            wrong: "wrong",
            signature: SigAt::Header("x-signature-ed25519"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/sendgrid",
            content_type: JSON,
            wrap: None,
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
            signature: SigAt::Header("x-twilio-email-event-webhook-signature"),
            // the timestamp is opaque signed text, checked after the
            // signature: an edited one is a mismatch (401), not a 400
            timestamp: None,
            ts_in_signature: false,
            http_suite: true,
        },
        Case {
            path: "/twilio",
            content_type: FORM,
            wrap: None,
            verifier: || {
                Box::new(
                    Twilio::new(text("twilio primary"))
                        .add_secret(text("twilio rotated"))
                        .public_url(public_url()),
                )
            },
            sign: |s, _, b| testing::twilio(s, &format!("{ORIGIN}/twilio"), b),
            good: "twilio primary",
            other: "twilio rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-twilio-signature"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/mandrill",
            content_type: FORM,
            wrap: None,
            verifier: || {
                Box::new(
                    Mandrill::new(text("mandrill primary"))
                        .add_secret(text("mandrill rotated"))
                        .public_url(public_url()),
                )
            },
            sign: |s, _, b| testing::mandrill(s, &format!("{ORIGIN}/mandrill"), b),
            good: "mandrill primary",
            other: "mandrill rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-mandrill-signature"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/square",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(
                    Square::new(text("square primary"))
                        .add_secret(text("square rotated"))
                        .public_url(public_url()),
                )
            },
            sign: |s, _, b| testing::square(s, &format!("{ORIGIN}/square"), b),
            good: "square primary",
            other: "square rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-square-hmacsha256-signature"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/linear",
            content_type: JSON,
            wrap: Some(linear_wrap),
            verifier: || {
                Box::new(Linear::new(text("linear primary")).add_secret(text("linear rotated")))
            },
            sign: |s, _, b| testing::linear(s, &id_of(b), b),
            good: "linear primary",
            other: "linear rotated",
            wrong: "not the secret",
            signature: SigAt::Header("linear-signature"),
            timestamp: Some(Ts {
                at: TsAt::Body("/webhookTimestamp"),
                future_refused: true,
                unix: true,
            }),
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/twitch",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(Twitch::new(text("twitch primary")).add_secret(text("twitch rotated")))
            },
            sign: |s, ts, b| {
                testing::twitch(s, &id_of(b), &testing::rfc3339(ts), "notification", b)
            },
            good: "twitch primary",
            other: "twitch rotated",
            wrong: "not the secret",
            signature: SigAt::Header("twitch-eventsub-message-signature"),
            timestamp: Some(Ts {
                at: TsAt::Header(|h, t| {
                    h.insert(
                        "twitch-eventsub-message-timestamp",
                        HeaderValue::from_str(t).expect("visible"),
                    );
                }),
                // stale only, 10 minutes, as Twitch's guide says
                future_refused: false,
                unix: false,
            }),
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/mailgun",
            content_type: JSON,
            wrap: Some(mailgun_wrap),
            verifier: || {
                Box::new(Mailgun::new(text("mailgun primary")).add_secret(text("mailgun rotated")))
            },
            sign: |_, _, _| HeaderMap::new(),
            good: "mailgun primary",
            other: "mailgun rotated",
            wrong: "not the secret",
            signature: SigAt::Body {
                pointer: "/signature/signature",
                unsigned: StatusCode::UNAUTHORIZED,
            },
            timestamp: Some(Ts {
                at: TsAt::Body("/signature/timestamp"),
                future_refused: true,
                unix: true,
            }),
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/adyen",
            content_type: JSON,
            wrap: Some(adyen_wrap),
            verifier: || {
                let key = |k| Secret::hex(k).expect("hex key");
                Box::new(Adyen::new(key(ADYEN_GOOD)).add_secret(key(ADYEN_OTHER)))
            },
            sign: |_, _, _| HeaderMap::new(),
            good: ADYEN_GOOD,
            other: ADYEN_OTHER,
            wrong: "00112233445566778899aabbccddeeff",
            signature: SigAt::Body {
                pointer: "/notificationItems/0/NotificationRequestItem/additionalData/hmacSignature",
                unsigned: StatusCode::BAD_REQUEST,
            },
            timestamp: None,
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/adyen-header",
            content_type: JSON,
            wrap: None,
            verifier: || {
                let key = |k| Secret::hex(k).expect("hex key");
                Box::new(Adyen::hmac_header(key(ADYEN_GOOD)).add_secret(key(ADYEN_OTHER)))
            },
            sign: |s, _, b| testing::adyen_hmac_header(s, b),
            good: ADYEN_GOOD,
            other: ADYEN_OTHER,
            wrong: "00112233445566778899aabbccddeeff",
            signature: SigAt::Header("hmacsignature"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/wp-webhooks",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(
                    WpWebhooks::new(text("wp primary"), WP_CREATED).add_secret(text("wp rotated")),
                )
            },
            // the body is not signed
            sign: |s, _, _| testing::wp_webhooks(s, WP_CREATED, "demo_hook", "demo-url"),
            good: "wp primary",
            other: "wp rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-wp-webhook-signature"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/gitlab-token",
            content_type: JSON,
            wrap: None,
            verifier: || {
                Box::new(GitLab::token(text("gitlab token")).add_secret(text("gitlab rotated")))
            },
            sign: |s, _, b| testing::gitlab_token(s, &id_of(b), "Push Hook"),
            good: "gitlab token",
            other: "gitlab rotated",
            wrong: "not the secret",
            signature: SigAt::Token("x-gitlab-token"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/unsigned",
            content_type: JSON,
            wrap: None,
            verifier: || {
                let v = Unsigned::zapier()
                    .token_header("x-zap-token", text("zap primary"))
                    .and_then(|b| b.token_header("x-zap-token", text("zap rotated")))
                    .and_then(|b| b.build())
                    .expect("a valid configuration");
                Box::new(v)
            },
            sign: |s, _, _| {
                let mut h = HeaderMap::new();
                h.insert("x-zap-token", HeaderValue::from_str(s).expect("visible"));
                h
            },
            good: "zap primary",
            other: "zap rotated",
            wrong: "not the secret",
            signature: SigAt::Token("x-zap-token"),
            timestamp: None,
            ts_in_signature: false,
            http_suite: false,
        },
        Case {
            path: "/hmac",
            content_type: JSON,
            wrap: None,
            verifier: || {
                let v = Hmac::builder("x-acme-signature")
                    .prefix("sha256=")
                    .encoding(Encoding::Hex)
                    .algorithm(Algorithm::Sha256)
                    .signed_timestamp("x-acme-timestamp", ".")
                    .tolerance(Tolerance::symmetric(Duration::from_secs(300)))
                    .add_secret(text("acme primary"))
                    .add_secret(text("acme rotated"))
                    .build()
                    .expect("a valid scheme");
                Box::new(v)
            },
            sign: acme_sign,
            good: "acme primary",
            other: "acme rotated",
            wrong: "not the secret",
            signature: SigAt::Header("x-acme-signature"),
            timestamp: Some(Ts {
                at: TsAt::Header(set_header("x-acme-timestamp")),
                future_refused: true,
                unix: true,
            }),
            ts_in_signature: false,
            http_suite: false,
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
