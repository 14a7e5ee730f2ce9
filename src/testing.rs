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
use crate::providers::{hmac::Algorithm, sign_v1};
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
    v0(
        secret,
        ts,
        body,
        ["x-slack-signature", "x-slack-request-timestamp"],
    )
}

/// The `v0` scheme Slack and Zoom share: `v0=` + hex HMAC-SHA256 of
/// `v0:{ts}:{body}`, under their own header names.
fn v0(secret: &str, ts: i64, body: &[u8], [sig_header, ts_header]: [&'static str; 2]) -> HeaderMap {
    let t = ts.to_string();
    let sig = mac(
        Algorithm::Sha256,
        text(secret),
        &[b"v0:", t.as_bytes(), b":", body],
        Encoding::Hex,
    );
    map([(sig_header, format!("v0={sig}")), (ts_header, t)])
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

/// The Standard Webhooks public key (`whpk_` + base64) of the Ed25519 key
/// pair derived from `seed` (the 32-byte private seed).
pub fn ed25519_public_key(seed: &[u8; 32]) -> String {
    use base64::Engine as _;
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    let b64 = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
    format!("whpk_{b64}")
}

fn ed25519_sign(seed: &[u8; 32], parts: &[&[u8]]) -> [u8; 64] {
    use ed25519_dalek::Signer as _;
    let msg = parts.concat();
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(&msg)
        .to_bytes()
}

/// Standard Webhooks `v1a` (Ed25519) with the key pair derived from `seed`:
/// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1a,<b64>`.
pub fn standard_webhooks_v1a(seed: &[u8; 32], id: &str, ts: i64, body: &[u8]) -> HeaderMap {
    use base64::Engine as _;
    let t = ts.to_string();
    let sig = ed25519_sign(seed, &[id.as_bytes(), b".", t.as_bytes(), b".", body]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig);
    map([
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", t),
        ("webhook-signature", format!("v1a,{b64}")),
    ])
}

/// Discord's public key (64 hex digits) of the key pair derived from `seed`.
pub fn discord_public_key(seed: &[u8; 32]) -> String {
    hex::encode(
        ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .to_bytes(),
    )
}

/// Discord: `X-Signature-Ed25519` (hex) over `{timestamp}{body}`,
/// `X-Signature-Timestamp`.
pub fn discord(seed: &[u8; 32], ts: i64, body: &[u8]) -> HeaderMap {
    let t = ts.to_string();
    let sig = ed25519_sign(seed, &[t.as_bytes(), body]);
    map([
        ("x-signature-ed25519", hex::encode(sig)),
        ("x-signature-timestamp", t),
    ])
}

fn p256_key(seed: &[u8; 32]) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(seed)
        .expect("testing: the seed must be a valid P-256 scalar (non-zero, below the order)")
}

/// SendGrid's verification key (base64 SPKI DER) of the P-256 key derived
/// from `seed`.
pub fn sendgrid_public_key(seed: &[u8; 32]) -> String {
    use base64::Engine as _;
    use p256::pkcs8::EncodePublicKey as _;
    let der = p256_key(seed)
        .verifying_key()
        .to_public_key_der()
        .expect("testing: a P-256 key encodes");
    base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
}

/// SendGrid Event Webhook: ECDSA P-256 / SHA-256 over `{timestamp}{body}`,
/// DER, base64 (`X-Twilio-Email-Event-Webhook-Signature` and `-Timestamp`).
pub fn sendgrid(seed: &[u8; 32], ts: i64, body: &[u8]) -> HeaderMap {
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    let t = ts.to_string();
    let msg = [t.as_bytes(), body].concat();
    let sig: p256::ecdsa::DerSignature = p256_key(seed).sign(&msg);
    map([
        (
            "x-twilio-email-event-webhook-signature",
            base64::engine::general_purpose::STANDARD.encode(sig.as_bytes()),
        ),
        ("x-twilio-email-event-webhook-timestamp", t),
    ])
}

/// Twilio with an Auth Token (HMAC-SHA1): `X-Twilio-Signature` over `url`
/// (the full public URL) and the sorted form fields of `body`; when `url`
/// carries `bodySHA256`, over the URL alone.
pub fn twilio(auth_token: &str, url: &str, body: &[u8]) -> HeaderMap {
    let sig = crate::providers::sign_twilio(Algorithm::Sha1, &text(auth_token), url, body);
    map([("x-twilio-signature", sig)])
}

/// Twilio with a SharedKey (HMAC-SHA256) and the settings header.
pub fn twilio_shared_key(secret: &str, url: &str, body: &[u8]) -> HeaderMap {
    let sig = crate::providers::sign_twilio(Algorithm::Sha256, &text(secret), url, body);
    map([
        ("x-twilio-signature", sig),
        (
            "x-twilio-webhooks-signature-settings",
            "key=webhooks_sharedkey_test,algorithm=HMAC_SHA256".to_owned(),
        ),
    ])
}

/// Mandrill: `X-Mandrill-Signature` over `url` and the sorted form fields.
pub fn mandrill(key: &str, url: &str, body: &[u8]) -> HeaderMap {
    map([(
        "x-mandrill-signature",
        crate::providers::sign_mandrill(&text(key), url, body),
    )])
}

/// Square: `x-square-hmacsha256-signature` over `url` ‖ body.
pub fn square(key: &str, url: &str, body: &[u8]) -> HeaderMap {
    map([(
        "x-square-hmacsha256-signature",
        crate::providers::sign_square(&text(key), url, body),
    )])
}

/// Intercom: `X-Hub-Signature: sha1=…`.
pub fn intercom(secret: &str, body: &[u8]) -> HeaderMap {
    let sig = mac(Algorithm::Sha1, text(secret), &[body], Encoding::Hex);
    map([("x-hub-signature", format!("sha1={sig}"))])
}

/// WooCommerce: `X-WC-Webhook-Signature`, `X-WC-Webhook-Delivery-ID`,
/// `X-WC-Webhook-Topic`. `secret` is the HTML-entity-decoded secret.
pub fn woocommerce(secret: &str, delivery_id: &str, topic: &str, body: &[u8]) -> HeaderMap {
    let sig = mac(Algorithm::Sha256, text(secret), &[body], Encoding::Base64);
    map([
        ("x-wc-webhook-signature", sig),
        ("x-wc-webhook-delivery-id", delivery_id.to_owned()),
        ("x-wc-webhook-topic", topic.to_owned()),
    ])
}

/// WP Webhooks: `X-WP-Webhook-Signature`, `X-WP-Webhook-Name`,
/// `X-WP-Webhook-URL-Name`. The body is not signed, so it is not an input.
pub fn wp_webhooks(secret: &str, date_created: &str, name: &str, url_name: &str) -> HeaderMap {
    let message = crate::providers::wp_webhooks_message(date_created, name, url_name);
    let sig = mac(
        Algorithm::Sha256,
        text(secret),
        &[message.as_bytes()],
        Encoding::Base64,
    );
    map([
        ("x-wp-webhook-signature", sig),
        ("x-wp-webhook-name", name.to_owned()),
        ("x-wp-webhook-url-name", url_name.to_owned()),
    ])
}

/// Paddle Billing: `Paddle-Signature: ts=…;h1=…`.
pub fn paddle(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let t = ts.to_string();
    let sig = mac(
        Algorithm::Sha256,
        text(secret),
        &[t.as_bytes(), b":", body],
        Encoding::Hex,
    );
    map([("paddle-signature", format!("ts={t};h1={sig}"))])
}

/// Linear: `Linear-Signature`, `Linear-Delivery`. The timestamp is the
/// body's `webhookTimestamp` (Unix ms): put it there.
pub fn linear(secret: &str, delivery: &str, body: &[u8]) -> HeaderMap {
    let sig = mac(Algorithm::Sha256, text(secret), &[body], Encoding::Hex);
    map([
        ("linear-signature", sig),
        ("linear-delivery", delivery.to_owned()),
    ])
}

/// Zoom: `x-zm-signature: v0=…`, `x-zm-request-timestamp`.
pub fn zoom(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
    v0(
        secret,
        ts,
        body,
        ["x-zm-signature", "x-zm-request-timestamp"],
    )
}

/// Unix seconds `ts` as RFC 3339 in UTC (`2026-01-02T05:00:00Z`), the
/// timestamp form Twitch sends; out of range, the Unix epoch.
///
/// ```
/// assert_eq!(tower_webhook::testing::rfc3339(1_767_330_000), "2026-01-02T05:00:00Z");
/// ```
pub fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Twitch EventSub: `Twitch-Eventsub-Message-{Signature,Id,Timestamp,Type}`.
/// `timestamp` is RFC 3339 (`2026-01-02T05:00:00.123456789Z`);
/// `message_type` is `notification`, `webhook_callback_verification` or
/// `revocation`.
pub fn twitch(
    secret: &str,
    message_id: &str,
    timestamp: &str,
    message_type: &str,
    body: &[u8],
) -> HeaderMap {
    let sig = mac(
        Algorithm::Sha256,
        text(secret),
        &[message_id.as_bytes(), timestamp.as_bytes(), body],
        Encoding::Hex,
    );
    map([
        ("twitch-eventsub-message-signature", format!("sha256={sig}")),
        ("twitch-eventsub-message-id", message_id.to_owned()),
        ("twitch-eventsub-message-timestamp", timestamp.to_owned()),
        ("twitch-eventsub-message-type", message_type.to_owned()),
    ])
}

/// GitLab secret token: `X-Gitlab-Token`, `Idempotency-Key`, `X-Gitlab-Event`.
pub fn gitlab_token(token: &str, idempotency_key: &str, event: &str) -> HeaderMap {
    map([
        ("x-gitlab-token", token.to_owned()),
        ("idempotency-key", idempotency_key.to_owned()),
        ("x-gitlab-event", event.to_owned()),
    ])
}

/// GitLab signing token: Standard Webhooks v1 headers with `webhook-id` =
/// `Idempotency-Key`, plus `X-Gitlab-Event`.
pub fn gitlab_signing(secret: &str, idempotency_key: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let mut h = standard_webhooks(secret, idempotency_key, ts, body);
    h.extend(map([
        ("idempotency-key", idempotency_key.to_owned()),
        ("x-gitlab-event", "Push Hook".to_owned()),
    ]));
    h
}

/// Mailgun: the hex signature of `{ts}{token}` (it travels in the body).
pub fn mailgun_signature(key: &str, ts: i64, token: &str) -> String {
    let t = ts.to_string();
    mac(
        Algorithm::Sha256,
        text(key),
        &[t.as_bytes(), token.as_bytes()],
        Encoding::Hex,
    )
}

/// Mailgun: a JSON webhook body, `{"signature":{…},"event-data":<event_data>}`.
pub fn mailgun(key: &str, ts: i64, token: &str, event_data: serde_json::Value) -> Vec<u8> {
    serde_json::json!({
        "signature": {
            "timestamp": ts.to_string(),
            "token": token,
            "signature": mailgun_signature(key, ts, token),
        },
        "event-data": event_data,
    })
    .to_string()
    .into_bytes()
}

/// Adyen standard webhook: signs each `NotificationRequestItem` (setting
/// `additionalData.hmacSignature`) with the hex HMAC key and wraps them in
/// a notification body.
pub fn adyen(hex_key: &str, items: Vec<serde_json::Value>) -> Vec<u8> {
    let key = Secret::hex(hex_key).expect("testing: expected a hex HMAC key");
    let items: Vec<_> = items
        .into_iter()
        .map(|mut item| {
            let s = crate::providers::adyen_signing_string(&item)
                .expect("testing: a NotificationRequestItem object");
            let sig = mac(
                Algorithm::Sha256,
                key.clone(),
                &[s.as_bytes()],
                Encoding::Base64,
            );
            item["additionalData"]["hmacSignature"] = sig.into();
            serde_json::json!({ "NotificationRequestItem": item })
        })
        .collect();
    serde_json::json!({ "live": "false", "notificationItems": items })
        .to_string()
        .into_bytes()
}

/// Adyen header-signed webhook: `HmacSignature`, `Protocol: HmacSHA256`.
pub fn adyen_hmac_header(hex_key: &str, body: &[u8]) -> HeaderMap {
    let key = Secret::hex(hex_key).expect("testing: expected a hex HMAC key");
    let sig = mac(Algorithm::Sha256, key, &[body], Encoding::Base64);
    map([
        ("hmacsignature", sig),
        ("protocol", "HmacSHA256".to_owned()),
    ])
}

/// Lemon Squeezy: `X-Signature`, `X-Event-Name`.
pub fn lemonsqueezy(secret: &str, event_name: &str, body: &[u8]) -> HeaderMap {
    let sig = mac(Algorithm::Sha256, text(secret), &[body], Encoding::Hex);
    map([
        ("x-signature", sig),
        ("x-event-name", event_name.to_owned()),
    ])
}

/// Typeform: `Typeform-Signature: sha256=<base64>`.
pub fn typeform(secret: &str, body: &[u8]) -> HeaderMap {
    let sig = mac(Algorithm::Sha256, text(secret), &[body], Encoding::Base64);
    map([("typeform-signature", format!("sha256={sig}"))])
}
