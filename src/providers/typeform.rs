//! Typeform: `Typeform-Signature: sha256=<base64>`.

use super::body_mac::{BodyMac, Field};
use super::kit::{Algorithm, Encoding};

const SIGNATURE: &str = "typeform-signature";

const SCHEME: BodyMac = BodyMac {
    provider: "typeform",
    header: SIGNATURE,
    prefix: "sha256=",
    encoding: Encoding::Base64,
    id: Field::Body(&["event_id"]),
    ty: Field::Body(&["event_type"]),
};

body_mac_provider!(
    /// [Typeform](https://www.typeform.com/developers/webhooks/secure-your-webhooks/):
    /// `sha256=` + base64 HMAC-SHA256 of the body with the webhook's secret, in
    /// `Typeform-Signature` (sent only when a secret is set). No timestamp.
    ///
    /// Event id: the body's `event_id`, covered by the signature. Event type:
    /// the body's `event_type` (`form_response`).
    Typeform,
    Algorithm::Sha256,
    SCHEME
);

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::Secret;
    use crate::providers::attacks::{self, Case};
    use crate::verify::VerifyError;

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
