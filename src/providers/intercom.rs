//! Intercom: `X-Hub-Signature: sha1=<hex>`.

use super::body_mac::{BodyMac, Field};
use super::kit::{Algorithm, Encoding};

const SIGNATURE: &str = "x-hub-signature";

const SCHEME: BodyMac = BodyMac {
    provider: "intercom",
    header: SIGNATURE,
    prefix: "sha1=",
    encoding: Encoding::Hex,
    id: Field::Body(&["id"]),
    ty: Field::Body(&["topic"]),
};

body_mac_provider!(
    /// [Intercom](https://developers.intercom.com/docs/webhooks): HMAC-SHA1 of
    /// the body with the app's client secret, `sha1=` + lowercase hex in
    /// `X-Hub-Signature`. No timestamp: Intercom signs none (the body's
    /// `created_at` is informational).
    ///
    /// Event id: the body's `id` (`notif_…`), covered by the signature. Event
    /// type: the body's `topic` (`ping` when the endpoint is set up: answer it
    /// with 200 like any other).
    Intercom,
    Algorithm::Sha1,
    SCHEME
);

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::Secret;
    use crate::providers::attacks::{self, Case};
    use crate::verify::VerifyError;

    const SECRET: &str = "client-secret";
    const BODY: &[u8] = br#"{"type":"notification_event","id":"notif_1","topic":"ping"}"#;

    fn case() -> Case {
        let sig = attacks::mac(Algorithm::Sha1, SECRET, &[BODY], Encoding::Hex);
        Case {
            headers: attacks::headers(&[(SIGNATURE, &format!("sha1={sig}"))]),
            body: BODY.to_vec(),
            now: SystemTime::UNIX_EPOCH,
        }
    }

    fn verifier() -> Intercom {
        Intercom::new(Secret::text(SECRET).unwrap())
    }

    #[test]
    fn reports_signed_notification_id_and_topic() {
        let v = case().run(&verifier()).unwrap();
        assert_eq!(v.event_id(), Some("notif_1"));
        assert!(v.id_signed());
        assert_eq!(v.event_type(), Some("ping"));
    }

    #[test]
    fn refuses_every_attack_shape() {
        attacks::assert_attack_shapes(&verifier(), &case(), &[SIGNATURE], true);
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            Intercom::new,
            Intercom::add_secret,
            Secret::text(SECRET).unwrap(),
            Secret::text("other").unwrap(),
        );
    }

    #[test]
    fn refuses_a_sha256_signature_of_the_body() {
        let sig = attacks::mac(Algorithm::Sha256, SECRET, &[BODY], Encoding::Hex);
        let mut c = case();
        c.headers = attacks::headers(&[(SIGNATURE, &format!("sha256={sig}"))]);
        assert_eq!(
            c.run(&verifier()).err(),
            Some(VerifyError::SignatureMismatch)
        );
    }
}
