//! Linear: `Linear-Signature: <hex>`, timestamp in the body.

use std::time::{Duration, SystemTime};

use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError, unix_millis};

const SIGNATURE: &str = "linear-signature";
const DELIVERY: &str = "linear-delivery";
const EVENT: &str = "linear-event";

/// [Linear](https://linear.app/developers/webhooks): lowercase hex
/// HMAC-SHA256 of the body with the webhook's secret, in `Linear-Signature`.
///
/// Freshness comes from the **body** field `webhookTimestamp` (Unix
/// milliseconds, covered by the signature): 60 s both ways, as Linear's SDK.
/// A body without it is refused. The legacy `Linear-Timestamp` header is
/// ignored.
///
/// Event id: `Linear-Delivery`; event type: `Linear-Event` (`Issue`), else
/// the body's `type`. **The two headers are not signed**: anyone holding a
/// captured delivery can change them. The layer de-duplicates on the
/// signature alone (a hash of it), so a replay under a fresh id or type is a
/// duplicate. [`Verified::id_signed`](crate::Verified::id_signed) is false;
/// [`Verified::type_signed`](crate::Verified::type_signed) is true only
/// when the type came from the body (the header absent).
pub struct Linear {
    keys: KeySet,
    tolerance: Tolerance,
}

hmac_provider!(Linear, Algorithm::Sha256, tolerance);

impl Linear {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::symmetric(Duration::from_secs(60)),
        }
    }
}

impl Verifier for Linear {
    fn provider(&self) -> &'static str {
        "linear"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, SIGNATURE)?;
        let candidates = Candidates::one(header.as_bytes(), Encoding::Hex);
        let m = self.keys.verify(now, &[body], &candidates)?;

        let [ts, ty] = json::unique_fields(body, &[&["webhookTimestamp"], &["type"]])?;
        let ts_ms = ts
            .as_deref()
            .and_then(|t| kit::parse_unix(t, "webhookTimestamp").ok())
            .ok_or(VerifyError::MalformedBody("webhookTimestamp"))?;
        self.tolerance.check_millis(ts_ms, unix_millis(now))?;

        let mut v = Verified::new("linear")
            .with_timestamp(ts_ms.div_euclid(1000))
            .with_key(m.key())
            .with_content_digest(m.mac.digest32());
        if let Some(id) = kit::header(parts, DELIVERY)?.filter(|s| !s.is_empty()) {
            v = v.with_event_id(id, false);
        }
        match kit::header(parts, EVENT)?.filter(|s| !s.is_empty()) {
            Some(ty) => v = v.with_event_type(ty, false),
            None => {
                if let Some(ty) = ty {
                    v = v.with_event_type(ty, true);
                }
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use crate::providers::attacks::{self, Case};

    const SECRET: &str = "lin_wh_secret";
    const TS_MS: u64 = 1_767_312_000_250;

    fn body(ts: &str) -> Vec<u8> {
        format!(r#"{{"action":"create","type":"Issue","webhookTimestamp":{ts}}}"#).into_bytes()
    }

    fn case_with(body: Vec<u8>, now_ms: u64) -> Case {
        let sig = attacks::mac(Algorithm::Sha256, SECRET, &[&body], Encoding::Hex);
        Case {
            headers: attacks::headers(&[(SIGNATURE, &sig), (DELIVERY, "del-1")]),
            body,
            now: SystemTime::UNIX_EPOCH + Duration::from_millis(now_ms),
        }
    }

    fn case() -> Case {
        case_with(body(&TS_MS.to_string()), TS_MS)
    }

    fn verifier() -> Linear {
        Linear::new(Secret::text(SECRET).unwrap())
    }

    #[test]
    fn reports_delivery_id_with_digest_and_body_type() {
        let v = case().run(&verifier()).unwrap();
        assert_eq!(v.event_id(), Some("del-1"));
        assert!(!v.id_signed());
        assert!(v.content_digest().is_some());
        assert_eq!(v.event_type(), Some("Issue"));
        assert_eq!(v.timestamp(), Some(1_767_312_000));
    }

    #[test]
    fn refuses_every_attack_shape() {
        attacks::assert_attack_shapes(&verifier(), &case(), &[SIGNATURE], true);
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            Linear::new,
            Linear::add_secret,
            Secret::text(SECRET).unwrap(),
            Secret::text("other").unwrap(),
        );
    }

    #[test]
    fn body_timestamp_is_checked_in_milliseconds_both_ways() {
        let b = || body(&TS_MS.to_string());
        let v = verifier();
        assert!(case_with(b(), TS_MS + 60_000).run(&v).is_ok());
        assert!(case_with(b(), TS_MS - 60_000).run(&v).is_ok());
        assert_eq!(
            case_with(b(), TS_MS + 60_001).run(&v).err(),
            Some(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            case_with(b(), TS_MS - 60_001).run(&v).err(),
            Some(VerifyError::FutureTimestamp)
        );
    }

    #[test]
    fn refuses_signed_bodies_without_a_usable_timestamp() {
        for ts in ["\"x\"", "-1", "1.5e12", "99999999999999999999", "null"] {
            let c = case_with(body(ts), TS_MS);
            assert!(c.run(&verifier()).is_err(), "{ts}");
        }
        let c = case_with(br#"{"type":"Issue"}"#.to_vec(), TS_MS);
        assert_eq!(
            c.run(&verifier()).err(),
            Some(VerifyError::MalformedBody("webhookTimestamp"))
        );
    }
}
