//! Stripe: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>]`.

use std::time::{Duration, SystemTime};

use http::HeaderName;
use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

static SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");

/// [Stripe](https://docs.stripe.com/webhooks/signature): HMAC-SHA256 over
/// `{t}.{body}`, lowercase hex, one `v1=` per active secret; `v0=` and other
/// schemes are ignored (no downgrade).
///
/// The key is the whole `whsec_…` string as text (Stripe does **not**
/// base64-decode it): use [`Secret::text`](crate::Secret::text).
/// Tolerance 300 s for age only, as Stripe's libraries (future timestamps
/// pass); set [`Tolerance::symmetric`] to bound them too.
///
/// Event id: the body's `id` (`evt_…`), covered by the signature. Event type:
/// the body's `type`.
pub struct Stripe {
    keys: KeySet,
    tolerance: Tolerance,
}

hmac_provider!(Stripe, Algorithm::Sha256, tolerance);

impl Stripe {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::stale_only(Duration::from_secs(300)),
        }
    }
}

impl Verifier for Stripe {
    fn provider(&self) -> &'static str {
        "stripe"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        self.check(parts, body, now, false)
    }

    fn verify_deferred(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        self.check(parts, body, now, true)
    }
}

impl Stripe {
    /// Verifies; with `defer`, the event type (usually the body's last
    /// field) is left for [`Verified::event_type`] to read.
    fn check(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
        defer: bool,
    ) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, &SIGNATURE)?;
        let mut ts = None;
        let mut candidates = Candidates::new();
        for pair in kit::pairs(header, b',') {
            match pair {
                ("t", t) if ts.is_none() => ts = Some(kit::parse_unix(t, SIGNATURE.as_str())?),
                ("v1", sig) => candidates.push_encoded(sig.as_bytes(), Encoding::Hex),
                _ => {}
            }
        }
        let ts = ts.ok_or(VerifyError::MalformedHeader(SIGNATURE.as_str()))?;
        // Stripe's libraries sign the re-formatted integer; so do we.
        let mut buf = itoa::Buffer::new();
        let t = buf.format(ts);
        let m = self
            .keys
            .verify(now, &[t.as_bytes(), b".", body], &candidates)?;
        self.tolerance.check_secs(ts, now)?;

        let mut v = Verified::new("stripe")
            .with_timestamp(ts)
            .with_key(m.key())
            .with_content_digest(m.mac.digest32());
        let (id, ty) = if defer {
            v.set_event_type_in_body(&["type"]);
            let [id] = json::fields(body, &[&["id"]]);
            (id, None)
        } else {
            let [id, ty] = json::fields(body, &[&["id"], &["type"]]);
            (id, ty)
        };
        v.set_event(id, true, ty);
        Ok(v)
    }
}

#[cfg(test)]
mod deferred_tests {
    use super::*;
    use crate::Secret;

    const BODY: &[u8] =
        br#"{"id":"evt_1","object":"event","data":{"object":{}},"type":"invoice.paid"}"#;

    fn signed() -> (Parts, SystemTime) {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let headers = crate::testing::stripe("whsec_t", 1_700_000_000, BODY);
        (crate::testing::parts("/", headers), now)
    }

    #[test]
    fn deferred_verification_reads_the_type_from_the_attached_body_only() {
        let stripe = Stripe::new(Secret::text("whsec_t").expect("secret"));
        let (parts, now) = signed();
        let mut v = stripe.verify_deferred(&parts, BODY, now).expect("verifies");
        assert_eq!(v.event_id(), Some("evt_1"), "the id is read at once");
        assert_eq!(v.event_type(), None, "no body attached yet");
        v.attach_body(bytes::Bytes::from_static(BODY));
        assert_eq!(v.event_type(), Some("invoice.paid"));
        assert_eq!(v.clone().event_type(), Some("invoice.paid"));
        assert!(
            !format!("{v:?}").contains("evt_1\",\"object"),
            "Debug never prints the body"
        );
    }

    #[test]
    fn plain_verification_still_reads_the_type_at_once() {
        let stripe = Stripe::new(Secret::text("whsec_t").expect("secret"));
        let (parts, now) = signed();
        let v = stripe.verify(&parts, BODY, now).expect("verifies");
        assert_eq!(v.event_type(), Some("invoice.paid"));
        assert_eq!(v.event_id(), Some("evt_1"));
    }

    #[test]
    fn deferred_and_plain_verification_refuse_the_same_forgery() {
        let stripe = Stripe::new(Secret::text("whsec_t").expect("secret"));
        let (parts, now) = signed();
        let forged =
            br#"{"id":"evt_2","object":"event","data":{"object":{}},"type":"invoice.paid"}"#;
        assert!(stripe.verify_deferred(&parts, forged, now).is_err());
        assert!(stripe.verify(&parts, forged, now).is_err());
    }
}
