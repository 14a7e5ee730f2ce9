//! Paddle Billing: `Paddle-Signature: ts=<ts>;h1=<hex>[;h1=<hex>]`.

use std::time::{Duration, SystemTime};

use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

const SIGNATURE: &str = "paddle-signature";

/// [Paddle Billing](https://developer.paddle.com/webhooks/signature-verification):
/// HMAC-SHA256 over `{ts}:{body}`, lowercase hex, `;`-separated
/// `ts=…;h1=…` pairs in `Paddle-Signature`; several `h1=` may appear (any
/// match passes), other keys are skipped.
///
/// The key is the destination's endpoint secret (`pdl_ntfset_…`) as text.
/// Tolerance 5 s both ways, as Paddle's SDK: keep the clock in sync, or
/// widen it with [`Paddle::tolerance`].
///
/// Event id: the body's `event_id` (`evt_…`), covered by the signature.
/// Event type: the body's `event_type`.
pub struct Paddle {
    keys: KeySet,
    tolerance: Tolerance,
}

hmac_provider!(Paddle, Algorithm::Sha256, tolerance);

impl Paddle {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::symmetric(Duration::from_secs(5)),
        }
    }
}

impl Verifier for Paddle {
    fn provider(&self) -> &'static str {
        "paddle"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, SIGNATURE)?;
        let mut ts: Option<&str> = None;
        let mut candidates = Candidates::new();
        for pair in kit::pairs(header, b';') {
            match pair {
                ("ts", _) if ts.is_some() => return Err(VerifyError::MalformedHeader(SIGNATURE)),
                ("ts", t) => ts = Some(t),
                ("h1", sig) => candidates.push_encoded(sig.as_bytes(), Encoding::Hex),
                _ => {}
            }
        }
        let ts_text = ts.ok_or(VerifyError::MalformedHeader(SIGNATURE))?;
        let ts = kit::parse_unix(ts_text, SIGNATURE)?;
        let m = self
            .keys
            .verify(now, &[ts_text.as_bytes(), b":", body], &candidates)?;
        self.tolerance.check_secs(ts, now)?;

        let [id, ty] = json::unique_fields(body, &[&["event_id"], &["event_type"]])?;
        let mut v = Verified::new("paddle")
            .with_timestamp(ts)
            .with_key(m.key())
            .with_content_digest(m.mac.digest32());
        v.set_event(id.map(|id| (id, true)), ty.map(|ty| (ty, true)));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use crate::providers::attacks::{self, Case};

    const SECRET: &str = "pdl_ntfset_test";
    const BODY: &[u8] = br#"{"event_id":"evt_1","event_type":"subscription.activated"}"#;
    const TS: u64 = 1_767_308_400;

    fn sig(ts: &str, body: &[u8]) -> String {
        attacks::mac(
            Algorithm::Sha256,
            SECRET,
            &[ts.as_bytes(), b":", body],
            Encoding::Hex,
        )
    }

    fn case_with(header: &str, now: u64) -> Case {
        Case {
            headers: attacks::headers(&[(SIGNATURE, header)]),
            body: BODY.to_vec(),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(now),
        }
    }

    fn case() -> Case {
        case_with(&format!("ts={TS};h1={}", sig(&TS.to_string(), BODY)), TS)
    }

    fn verifier() -> Paddle {
        Paddle::new(Secret::text(SECRET).unwrap())
    }

    #[test]
    fn reports_signed_event_id_type_and_timestamp() {
        let v = case().run(&verifier()).unwrap();
        assert_eq!(v.event_id(), Some("evt_1"));
        assert!(v.id_signed());
        assert_eq!(v.event_type(), Some("subscription.activated"));
        assert_eq!(v.timestamp(), Some(TS as i64));
    }

    #[test]
    fn refuses_every_attack_shape() {
        attacks::assert_attack_shapes(&verifier(), &case(), &[SIGNATURE], true);
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            Paddle::new,
            Paddle::add_secret,
            Secret::text(SECRET).unwrap(),
            Secret::text("pdl_other").unwrap(),
        );
    }

    #[test]
    fn five_seconds_both_ways_by_default() {
        let h = format!("ts={TS};h1={}", sig(&TS.to_string(), BODY));
        let v = verifier();
        assert!(case_with(&h, TS + 5).run(&v).is_ok());
        assert!(case_with(&h, TS - 5).run(&v).is_ok());
        assert_eq!(
            case_with(&h, TS + 6).run(&v).err(),
            Some(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            case_with(&h, TS - 6).run(&v).err(),
            Some(VerifyError::FutureTimestamp)
        );
    }

    #[test]
    fn accepts_any_of_several_h1_and_skips_unknown_keys() {
        let good = sig(&TS.to_string(), BODY);
        let h = format!("ts={TS};h1={};x=1;h1={good}", "0".repeat(64));
        assert!(case_with(&h, TS).run(&verifier()).is_ok());
    }

    #[test]
    fn refuses_repeated_or_extreme_timestamps() {
        let good = sig(&TS.to_string(), BODY);
        let twice = format!("ts={TS};ts={TS};h1={good}");
        assert!(case_with(&twice, TS).run(&verifier()).is_err());
        for ts in ["99999999999999999999", "-1", "", "1e9"] {
            let h = format!("ts={ts};h1={}", sig(ts, BODY));
            assert!(case_with(&h, TS).run(&verifier()).is_err(), "{ts}");
        }
        let max = "999999999999999999";
        let h = format!("ts={max};h1={}", sig(max, BODY));
        assert_eq!(
            case_with(&h, TS).run(&verifier()).err(),
            Some(VerifyError::FutureTimestamp)
        );
    }
}
