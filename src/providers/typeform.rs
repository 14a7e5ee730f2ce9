//! Typeform: `Typeform-Signature: sha256=<base64>`.

use std::time::SystemTime;

use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Encoding, KeySet};
use crate::verify::{Verified, Verifier, VerifyError};

const SIGNATURE: &str = "typeform-signature";

/// [Typeform](https://www.typeform.com/developers/webhooks/secure-your-webhooks/):
/// `sha256=` + base64 HMAC-SHA256 of the body with the webhook's secret, in
/// `Typeform-Signature` (sent only when a secret is set). No timestamp.
///
/// Event id: the body's `event_id`, covered by the signature. Event type:
/// the body's `event_type` (`form_response`).
pub struct Typeform {
    keys: KeySet,
}

hmac_provider!(Typeform, Algorithm::Sha256);

impl Typeform {
    fn from_keys(keys: KeySet) -> Self {
        Self { keys }
    }
}

impl Verifier for Typeform {
    fn provider(&self) -> &'static str {
        "typeform"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, SIGNATURE)?;
        let candidates = kit::prefixed(header, "sha256=", Encoding::Base64);
        let m = self.keys.verify(now, &[body], &candidates)?;

        let [id, ty] = json::fields(body, &[&["event_id"], &["event_type"]]);
        let mut v = Verified::new("typeform").with_key_label(m.label());
        if let Some(id) = id {
            v = v.with_event_id(id, true);
        }
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

    const SECRET: &str = "tf-secret";
    const BODY: &[u8] =
        "{\"event_id\":\"01H\",\"event_type\":\"form_response\",\"t\":\"\u{e9}\"}".as_bytes();

    fn case() -> Case {
        let sig = attacks::mac(Algorithm::Sha256, SECRET, &[BODY], Encoding::Base64);
        Case {
            headers: attacks::headers(&[(SIGNATURE, &format!("sha256={sig}"))]),
            body: BODY.to_vec(),
            now: SystemTime::UNIX_EPOCH,
        }
    }

    fn verifier() -> Typeform {
        Typeform::new(Secret::text(SECRET).unwrap())
    }

    #[test]
    fn reports_signed_event_id_and_type() {
        let v = case().run(&verifier()).unwrap();
        assert_eq!(v.event_id(), Some("01H"));
        assert!(v.id_signed());
        assert_eq!(v.event_type(), Some("form_response"));
    }

    #[test]
    fn refuses_every_attack_shape() {
        attacks::assert_attack_shapes(&verifier(), &case(), &[SIGNATURE], true);
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            Typeform::new,
            Typeform::add_secret,
            Secret::text(SECRET).unwrap(),
            Secret::text("tf-other").unwrap(),
        );
    }

    #[test]
    fn refuses_the_signature_without_its_prefix() {
        let mut c = case();
        let sig = c.headers[SIGNATURE].to_str().unwrap()["sha256=".len()..].to_owned();
        c.headers.insert(SIGNATURE, sig.parse().unwrap());
        assert_eq!(
            c.run(&verifier()).err(),
            Some(VerifyError::SignatureMismatch)
        );
    }
}
