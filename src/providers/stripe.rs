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
        // The whole body is read for the claimed `id` (a second `id` key is
        // refused), so the type comes from the same pass.
        let [id, ty] = json::unique_fields(body, &[&["id"], &["type"]])?;
        v.set_event(id.map(|id| (id, true)), ty.map(|ty| (ty, true)));
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
    fn verification_reads_the_id_and_the_type_as_signed() {
        let stripe = Stripe::new(Secret::text("whsec_t").expect("secret"));
        let (parts, now) = signed();
        let v = stripe.verify(&parts, BODY, now).expect("verifies");
        assert_eq!(v.event_type(), Some("invoice.paid"));
        assert_eq!(v.event_id(), Some("evt_1"));
        assert!(v.id_signed() && v.type_signed());
        assert_eq!(
            v.dedup_key(),
            Some(crate::verify::DedupKey::SignedId("evt_1"))
        );
        let deferred = stripe.verify_deferred(&parts, BODY, now).expect("verifies");
        assert_eq!(deferred, v, "the layer's entry point reads the same");
    }

    #[test]
    fn a_signed_body_with_two_ids_or_two_types_is_malformed() {
        let stripe = Stripe::new(Secret::text("whsec_t").expect("secret"));
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        for body in [
            &br#"{"id":"evt_1","object":"event","id":"evt_2","type":"invoice.paid"}"#[..],
            br#"{"id":"evt_1","type":"invoice.paid","data":{},"type":"charge.failed"}"#,
            br#"{"id":{"nested":1},"id":"evt_2"}"#,
        ] {
            let headers = crate::testing::stripe("whsec_t", 1_700_000_000, body);
            let parts = crate::testing::parts("/", headers);
            assert_eq!(
                stripe.verify(&parts, body, now),
                Err(VerifyError::MalformedBody("a signed field occurs twice")),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Nested ids (data.object.id) are other fields: not a repetition.
        let body = br#"{"id":"evt_1","data":{"object":{"id":"in_1"}},"type":"invoice.paid"}"#;
        let headers = crate::testing::stripe("whsec_t", 1_700_000_000, body);
        let parts = crate::testing::parts("/", headers);
        let v = stripe.verify(&parts, body, now).expect("verifies");
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
