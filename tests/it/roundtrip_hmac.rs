//! Property: for every HMAC provider of this file, what `testing` signs the
//! verifier accepts, and any single changed byte of the body, the signature
//! or the timestamp is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use serde_json::json;
use tower_webhook::providers::{
    Adyen, GitLab, Intercom, LemonSqueezy, Linear, Mailgun, Paddle, Twitch, Typeform, WooCommerce,
    WpWebhooks, Zoom,
};
use tower_webhook::{Secret, Verifier, testing};

const TS: i64 = 1_767_330_000;
const TS_RFC3339: &str = "2026-01-02T05:00:00.123456789Z";
const KEY_HEX: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One signed delivery and where a change must be noticed.
struct Signed {
    verifier: Box<dyn Verifier>,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Headers carrying the signature or signed values (timestamp, id).
    signed_headers: &'static [&'static str],
    /// Whether every byte of the body is covered.
    body_signed: bool,
}

const PROVIDERS: usize = 13;

fn text(s: &str) -> Secret {
    Secret::text(s).expect("non-empty secret")
}

/// Provider `n`, signing a body built around `word` (a JSON-safe string).
fn signed(n: usize, word: &str, secret: &str) -> Signed {
    let body = json!({ "id": word, "type": "t", "data": { "x": word } })
        .to_string()
        .into_bytes();
    let s = |verifier: Box<dyn Verifier>, headers, body, signed_headers, body_signed| Signed {
        verifier,
        headers,
        body,
        signed_headers,
        body_signed,
    };
    match n {
        0 => s(
            Box::new(Intercom::new(text(secret))),
            testing::intercom(secret, &body),
            body,
            &["x-hub-signature"],
            true,
        ),
        1 => s(
            Box::new(WooCommerce::new(text(secret))),
            testing::woocommerce(secret, "d-1", "order.created", &body),
            body,
            &["x-wc-webhook-signature"],
            true,
        ),
        2 => s(
            Box::new(WpWebhooks::new(text(secret), "2026-01-02 03:04:05")),
            testing::wp_webhooks(secret, "2026-01-02 03:04:05", word, "url-name"),
            body,
            &[
                "x-wp-webhook-signature",
                "x-wp-webhook-name",
                "x-wp-webhook-url-name",
            ],
            false,
        ),
        3 => s(
            Box::new(Paddle::new(text(secret))),
            testing::paddle(secret, TS, &body),
            body,
            &["paddle-signature"],
            true,
        ),
        4 => {
            let body = json!({ "type": "Issue", "x": word, "webhookTimestamp": TS * 1000 + 250 })
                .to_string()
                .into_bytes();
            s(
                Box::new(Linear::new(text(secret))),
                testing::linear(secret, "del-1", &body),
                body,
                &["linear-signature"],
                true,
            )
        }
        5 => s(
            Box::new(Zoom::new(text(secret))),
            testing::zoom(secret, TS, &body),
            body,
            &["x-zm-signature", "x-zm-request-timestamp"],
            true,
        ),
        6 => s(
            Box::new(Twitch::new(text(secret))),
            testing::twitch(secret, word, TS_RFC3339, "notification", &body),
            body,
            &[
                "twitch-eventsub-message-signature",
                "twitch-eventsub-message-id",
                "twitch-eventsub-message-timestamp",
            ],
            true,
        ),
        7 => s(
            Box::new(GitLab::token(text(secret))),
            testing::gitlab_token(secret, "idem-1", "Push Hook"),
            body,
            &["x-gitlab-token"],
            false,
        ),
        8 => s(
            Box::new(GitLab::signing_token(
                Secret::standard_webhooks(WHSEC).expect("whsec secret"),
            )),
            testing::gitlab_signing(WHSEC, word, TS, &body),
            body,
            &["webhook-signature", "webhook-timestamp", "webhook-id"],
            true,
        ),
        9 => {
            // The form body carries only what Mailgun signs (and the
            // signature): every byte of it matters.
            let sig = testing::mailgun_signature(secret, TS, word);
            let body = format!("timestamp={TS}&token={word}&signature={sig}").into_bytes();
            let mut h = HeaderMap::new();
            h.insert(
                "content-type",
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            s(Box::new(Mailgun::new(text(secret))), h, body, &[], true)
        }
        10 => s(
            Box::new(Adyen::hmac_header(Secret::hex(KEY_HEX).expect("hex key"))),
            testing::adyen_hmac_header(KEY_HEX, &body),
            body,
            &["hmacsignature"],
            true,
        ),
        11 => s(
            Box::new(LemonSqueezy::new(text(secret))),
            testing::lemonsqueezy(secret, "order_created", &body),
            body,
            &["x-signature"],
            true,
        ),
        _ => s(
            Box::new(Typeform::new(text(secret))),
            testing::typeform(secret, &body),
            body,
            &["typeform-signature"],
            true,
        ),
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(TS as u64)
}

fn verifies(v: &dyn Verifier, headers: &HeaderMap, body: &[u8]) -> bool {
    v.verify(&testing::parts("/hook", headers.clone()), body, now())
        .is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn signer_output_verifies(n in 0..PROVIDERS, word in "[a-z0-9]{1,24}", secret in "[!-~]{1,40}") {
        let d = signed(n, &word, &secret);
        prop_assert!(verifies(&*d.verifier, &d.headers, &d.body), "provider {n}");
    }

    #[test]
    fn one_changed_body_byte_is_refused(
        n in 0..PROVIDERS,
        word in "[a-z0-9]{1,24}",
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let d = signed(n, &word, "the-secret");
        prop_assume!(d.body_signed);
        let mut body = d.body.clone();
        let i = at.index(body.len());
        body[i] ^= flip;
        prop_assert!(!verifies(&*d.verifier, &d.headers, &body), "provider {n}, byte {i}");
    }

    #[test]
    fn one_changed_signature_or_timestamp_byte_is_refused(
        n in 0..PROVIDERS,
        word in "[a-z0-9]{1,24}",
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let d = signed(n, &word, "the-secret");
        prop_assume!(!d.signed_headers.is_empty());
        let name = d.signed_headers[which.index(d.signed_headers.len())];
        let mut value = d.headers[name].as_bytes().to_vec();
        let i = at.index(value.len());
        value[i] ^= flip;
        let Ok(value) = HeaderValue::from_bytes(&value) else {
            // Not sendable over HTTP at all.
            return Ok(());
        };
        let mut headers = d.headers.clone();
        headers.insert(name, value);
        prop_assert!(!verifies(&*d.verifier, &headers, &d.body), "provider {n}, {name} byte {i}");
    }

    #[test]
    fn adyen_items_refuse_any_changed_signed_value(
        psp in "[0-9]{16}",
        reference in "[ -~]{0,30}",
        value in 0u32..1_000_000,
        at in any::<prop::sample::Index>(),
        flip in 1u8..=127,
    ) {
        let item = |psp: &str, reference: &str| json!({
            "amount": { "value": value, "currency": "EUR" },
            "pspReference": psp,
            "eventCode": "AUTHORISATION",
            "merchantAccountCode": "M",
            "merchantReference": reference,
            "success": "true",
        });
        let v = Adyen::new(Secret::hex(KEY_HEX).unwrap());
        let body = testing::adyen(KEY_HEX, vec![item(&psp, &reference)]);
        prop_assert!(verifies(&v, &HeaderMap::new(), &body));

        let mut changed = psp.clone().into_bytes();
        let i = at.index(changed.len());
        changed[i] ^= flip;
        let changed = String::from_utf8(changed).unwrap();
        let signed_body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let sig = signed_body["notificationItems"][0]["NotificationRequestItem"]["additionalData"]["hmacSignature"].clone();
        let mut forged = item(&changed, &reference);
        forged["additionalData"] = json!({ "hmacSignature": sig });
        let forged = json!({ "live": "false", "notificationItems": [{ "NotificationRequestItem": forged }] });
        prop_assert!(!verifies(&v, &HeaderMap::new(), forged.to_string().as_bytes()));
    }
}
