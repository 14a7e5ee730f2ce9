//! Lemon Squeezy: `X-Signature: <hex>`.

use std::time::SystemTime;

use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::verify::{Verified, Verifier, VerifyError};

const SIGNATURE: &str = "x-signature";
const EVENT: &str = "x-event-name";

/// [Lemon Squeezy](https://docs.lemonsqueezy.com/help/webhooks): lowercase
/// hex HMAC-SHA256 of the body with the signing secret, in `X-Signature`.
/// No timestamp.
///
/// Lemon Squeezy sends no event id. The whole body is signed and a retry
/// resends it unchanged, so the event id is derived from the signature (hex
/// of its first 16 bytes; [`Verified::id_signed`] is true). Event type:
/// `X-Event-Name`, else the body's `meta.event_name`.
pub struct LemonSqueezy {
    keys: KeySet,
}

hmac_provider!(LemonSqueezy, Algorithm::Sha256);

impl LemonSqueezy {
    fn from_keys(keys: KeySet) -> Self {
        Self { keys }
    }
}

impl Verifier for LemonSqueezy {
    fn provider(&self) -> &'static str {
        "lemonsqueezy"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, SIGNATURE)?;
        let candidates = Candidates::one(header.as_bytes(), Encoding::Hex);
        let m = self.keys.verify(now, &[body], &candidates)?;

        let mut v = Verified::new("lemonsqueezy")
            .with_key_label(m.label())
            .with_event_id(m.mac.id_hex(), true);
        let ty = match kit::header(parts, EVENT)?.filter(|s| !s.is_empty()) {
            Some(ty) => Some(ty.to_owned()),
            None => {
                let [ty] = json::fields(body, &[&["meta", "event_name"]]);
                ty
            }
        };
        if let Some(ty) = ty {
            v = v.with_event_type(ty);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use crate::providers::attacks::{self, Case};

    const SECRET: &str = "ls-secret";
    const BODY: &[u8] = br#"{"meta":{"event_name":"order_created"},"data":{"id":"1"}}"#;

    fn case() -> Case {
        let sig = attacks::mac(Algorithm::Sha256, SECRET, &[BODY], Encoding::Hex);
        Case {
            headers: attacks::headers(&[(SIGNATURE, &sig)]),
            body: BODY.to_vec(),
            now: SystemTime::UNIX_EPOCH,
        }
    }

    fn verifier() -> LemonSqueezy {
        LemonSqueezy::new(Secret::text(SECRET).unwrap())
    }

    #[test]
    fn derives_a_stable_id_from_the_signature_and_reads_the_body_event() {
        let a = case().run(&verifier()).unwrap();
        let b = case().run(&verifier()).unwrap();
        assert_eq!(a.event_id().map(str::len), Some(32));
        assert_eq!(a.event_id(), b.event_id());
        assert_eq!(a.event_type(), Some("order_created"));
        let mut c = case();
        c.headers.insert(EVENT, "x_header".parse().unwrap());
        assert_eq!(c.run(&verifier()).unwrap().event_type(), Some("x_header"));
    }

    #[test]
    fn refuses_every_attack_shape() {
        attacks::assert_attack_shapes(&verifier(), &case(), &[SIGNATURE], true);
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            LemonSqueezy::new,
            LemonSqueezy::add_secret,
            Secret::text(SECRET).unwrap(),
            Secret::text("ls-other").unwrap(),
        );
    }

    #[test]
    fn refuses_uppercase_hex() {
        let mut c = case();
        let sig = c.headers[SIGNATURE].to_str().unwrap().to_uppercase();
        c.headers.insert(SIGNATURE, sig.parse().unwrap());
        assert_eq!(
            c.run(&verifier()).err(),
            Some(VerifyError::SignatureMismatch)
        );
    }
}
