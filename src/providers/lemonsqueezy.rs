//! Lemon Squeezy: `X-Signature: <hex>`.

use super::body_mac::{BodyMac, Field};
use super::kit::{Algorithm, Encoding};

const SIGNATURE: &str = "x-signature";
const EVENT: &str = "x-event-name";

const SCHEME: BodyMac = BodyMac {
    provider: "lemonsqueezy",
    header: SIGNATURE,
    prefix: "",
    encoding: Encoding::Hex,
    id: Field::Mac,
    ty: Field::HeaderOrBody(EVENT, &["meta", "event_name"]),
};

body_mac_provider!(
    /// [Lemon Squeezy](https://docs.lemonsqueezy.com/help/webhooks): lowercase
    /// hex HMAC-SHA256 of the body with the signing secret, in `X-Signature`.
    /// No timestamp.
    ///
    /// Lemon Squeezy sends no event id. The whole body is signed and a retry
    /// resends it unchanged, so the event id is derived from the signature (hex
    /// of a hash of it; [`Verified::id_signed`](crate::Verified::id_signed) is true). Event type:
    /// `X-Event-Name`, else the body's `meta.event_name`.
    LemonSqueezy,
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
