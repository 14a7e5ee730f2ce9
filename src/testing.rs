//! Signers for every provider (feature `test-util`): they produce the
//! headers a real sender would send, so you can test your own handlers
//! end to end. The crate's own tests use them too.
//!
//! Secrets are given as the provider presents them (`whsec_…` for
//! Standard Webhooks, the plain text for GitHub). An invalid secret panics:
//! these are test helpers.
//!
//! ```
//! use std::time::SystemTime;
//! use tower_webhook::{providers::Stripe, testing, Secret, Verifier};
//!
//! let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
//! let now = SystemTime::now();
//! let headers = testing::stripe("whsec_test", testing::unix(now), body);
//! let verified = Stripe::new(Secret::text("whsec_test")?)
//!     .verify(&testing::parts("/", headers), body, now)?;
//! assert_eq!(verified.event_id(), Some("evt_1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::providers::kit::{Encoding, KeySet};
use crate::providers::{Algorithm, sign_v1};
use crate::secret::Secret;

fn keys(alg: Algorithm, secret: Secret) -> KeySet {
    KeySet::new(alg, &secret)
}

fn text(secret: &str) -> Secret {
    Secret::text(secret).expect("testing: the secret must not be empty")
}

fn mac(alg: Algorithm, secret: Secret, parts: &[&[u8]], enc: Encoding) -> String {
    keys(alg, secret)
        .sign(SystemTime::UNIX_EPOCH, parts)
        .map(|s| s.encode(enc))
        .unwrap_or_default()
}

fn map<const N: usize>(pairs: [(&'static str, String); N]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        let v = HeaderValue::from_str(&v).expect("testing: header values are visible ASCII");
        h.append(HeaderName::from_static(k), v);
    }
    h
}

/// Unix seconds of `t`.
pub fn unix(t: SystemTime) -> i64 {
    crate::verify::unix_secs(t)
}

/// A POST request head to `uri` carrying `headers`, as a verifier takes it.
pub fn parts(uri: &str, headers: HeaderMap) -> http::request::Parts {
    let mut req = http::Request::post(uri)
        .body(())
        .expect("testing: the URI must be valid");
    *req.headers_mut() = headers;
    req.into_parts().0
}

/// Standard Webhooks v1: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
pub fn standard_webhooks(secret: &str, id: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let s = Secret::standard_webhooks(secret).expect("testing: expected a whsec_ secret");
    let sig = sign_v1(&keys(Algorithm::Sha256, s), id, ts, body);
    map([
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ])
}

/// Svix: `svix-id`, `svix-timestamp`, `svix-signature`.
pub fn svix(secret: &str, id: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let s = Secret::standard_webhooks(secret).expect("testing: expected a whsec_ secret");
    let sig = sign_v1(&keys(Algorithm::Sha256, s), id, ts, body);
    map([
        ("svix-id", id.to_owned()),
        ("svix-timestamp", ts.to_string()),
        ("svix-signature", sig),
    ])
}

/// Stripe: `Stripe-Signature: t=…,v1=…`. The event id is the body's `id`.
pub fn stripe(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let t = ts.to_string();
    let sig = mac(
        Algorithm::Sha256,
        text(secret),
        &[t.as_bytes(), b".", body],
        Encoding::Hex,
    );
    map([("stripe-signature", format!("t={t},v1={sig}"))])
}

/// GitHub: `X-Hub-Signature-256`, `X-GitHub-Delivery`, `X-GitHub-Event`.
pub fn github(secret: &str, delivery: &str, event: &str, body: &[u8]) -> HeaderMap {
    let sig = mac(Algorithm::Sha256, text(secret), &[body], Encoding::Hex);
    map([
        ("x-hub-signature-256", format!("sha256={sig}")),
        ("x-github-delivery", delivery.to_owned()),
        ("x-github-event", event.to_owned()),
    ])
}

/// Slack: `X-Slack-Signature`, `X-Slack-Request-Timestamp`. The event id
/// is the body's `event_id`.
pub fn slack(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let t = ts.to_string();
    let sig = mac(
        Algorithm::Sha256,
        text(secret),
        &[b"v0:", t.as_bytes(), b":", body],
        Encoding::Hex,
    );
    map([
        ("x-slack-signature", format!("v0={sig}")),
        ("x-slack-request-timestamp", t),
    ])
}

/// Shopify: `X-Shopify-Hmac-Sha256`, `X-Shopify-Webhook-Id`, `X-Shopify-Topic`.
pub fn shopify(secret: &str, webhook_id: &str, topic: &str, body: &[u8]) -> HeaderMap {
    let sig = mac(Algorithm::Sha256, text(secret), &[body], Encoding::Base64);
    map([
        ("x-shopify-hmac-sha256", sig),
        ("x-shopify-webhook-id", webhook_id.to_owned()),
        ("x-shopify-topic", topic.to_owned()),
    ])
}
