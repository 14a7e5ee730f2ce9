//! Property: what the `testing` signer signs, the verifier accepts; any
//! single changed byte of the body, the signature or the timestamp is
//! rejected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use tower_webhook::providers::{GitHub, Shopify, Slack, StandardWebhooks, Stripe};
use tower_webhook::{Secret, Verifier, testing};

const TS: i64 = 1_767_225_600;
const STD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Provider {
    verifier: Box<dyn Verifier>,
    sign: fn(&[u8]) -> HeaderMap,
    signature: &'static str,
    timestamp: Option<&'static str>,
}

fn providers() -> Vec<Provider> {
    let text = |s| Secret::text(s).expect("secret");
    vec![
        Provider {
            verifier: Box::new(StandardWebhooks::new(
                Secret::standard_webhooks(STD).expect("secret"),
            )),
            sign: |b| testing::standard_webhooks(STD, "msg_1", TS, b),
            signature: "webhook-signature",
            timestamp: Some("webhook-timestamp"),
        },
        Provider {
            verifier: Box::new(Stripe::new(text("whsec_k"))),
            sign: |b| testing::stripe("whsec_k", TS, b),
            signature: "stripe-signature",
            timestamp: None, // t= lives in the signature header, covered there
        },
        Provider {
            verifier: Box::new(GitHub::new(text("gh"))),
            sign: |b| testing::github("gh", "d-1", "push", b),
            signature: "x-hub-signature-256",
            timestamp: None,
        },
        Provider {
            verifier: Box::new(Slack::new(text("sl"))),
            sign: |b| testing::slack("sl", TS, b),
            signature: "x-slack-signature",
            timestamp: Some("x-slack-request-timestamp"),
        },
        Provider {
            verifier: Box::new(Shopify::new(text("sh"))),
            sign: |b| testing::shopify("sh", "w-1", "orders/create", b),
            signature: "x-shopify-hmac-sha256",
            timestamp: None,
        },
    ]
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(TS as u64 + 1)
}

/// Replaces byte `at` (modulo the length) of header `name` with another
/// visible ASCII byte.
fn change_header(h: &mut HeaderMap, name: &str, at: usize, delta: u8) {
    let mut v = h.get(name).expect("header signed").as_bytes().to_vec();
    let i = at % v.len();
    let visible = |b: u8| (b - b'!' + 1 + delta % 93) % 94 + b'!';
    let mut nb = visible(v[i]);
    if nb == v[i] {
        nb = if v[i] == b'!' { b'#' } else { b'!' };
    }
    v[i] = nb;
    h.insert(
        http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
        HeaderValue::from_bytes(&v).expect("visible ASCII"),
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn signed_deliveries_verify(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        for p in providers() {
            let parts = testing::parts("/", (p.sign)(&body));
            prop_assert!(p.verifier.verify(&parts, &body, now()).is_ok(), "{}", p.verifier.provider());
        }
    }

    #[test]
    fn one_changed_body_byte_is_rejected(
        body in proptest::collection::vec(any::<u8>(), 1..512),
        at in any::<usize>(),
        flip in 1u8..=255,
    ) {
        for p in providers() {
            let parts = testing::parts("/", (p.sign)(&body));
            let mut changed = body.clone();
            let i = at % changed.len();
            changed[i] ^= flip;
            prop_assert!(p.verifier.verify(&parts, &changed, now()).is_err(), "{}", p.verifier.provider());
        }
    }

    #[test]
    fn one_changed_signature_or_timestamp_byte_is_rejected(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        at in any::<usize>(),
        delta in 1u8..93,
    ) {
        for p in providers() {
            let mut h = (p.sign)(&body);
            change_header(&mut h, p.signature, at, delta);
            let parts = testing::parts("/", h);
            prop_assert!(p.verifier.verify(&parts, &body, now()).is_err(), "{} signature", p.verifier.provider());
            if let Some(ts) = p.timestamp {
                let mut h = (p.sign)(&body);
                change_header(&mut h, ts, at, delta);
                let parts = testing::parts("/", h);
                prop_assert!(p.verifier.verify(&parts, &body, now()).is_err(), "{} timestamp", p.verifier.provider());
            }
        }
    }
}
