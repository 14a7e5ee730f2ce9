//! WooCommerce: `X-WC-Webhook-Signature: <base64>`.

use super::body_mac::{BodyMac, Field};
use super::kit::{Algorithm, Encoding};

const SIGNATURE: &str = "x-wc-webhook-signature";
const DELIVERY: &str = "x-wc-webhook-delivery-id";
const TOPIC: &str = "x-wc-webhook-topic";

const SCHEME: BodyMac = BodyMac {
    provider: "woocommerce",
    header: SIGNATURE,
    prefix: "",
    encoding: Encoding::Base64,
    id: Field::Header(DELIVERY),
    ty: Field::Header(TOPIC),
};

body_mac_provider!(
    /// [WooCommerce](https://developer.woocommerce.com/docs/apis/rest-api/v3/webhooks/):
    /// base64 HMAC-SHA256 of the body (the JSON exactly as sent, `/` escaped as
    /// `\/`) in `X-WC-Webhook-Signature`. No timestamp.
    ///
    /// The key is the webhook's secret **after HTML-entity decoding**: a secret
    /// shown as `a&amp;b` is the text `a&b`; pass that to
    /// [`Secret::text`](crate::Secret::text).
    ///
    /// Event id: `X-WC-Webhook-Delivery-ID`, which WooCommerce mints anew for
    /// every delivery; event type: `X-WC-Webhook-Topic` (`order.created`).
    /// **Neither is signed** (nor `X-WC-Webhook-Resource`, `-Event`,
    /// `-Source`): anyone holding a captured request can change them. The
    /// layer de-duplicates on the signature alone (a hash of it), so a
    /// replay under a new id or topic is a duplicate;
    /// [`Verified::id_signed`](crate::Verified::id_signed) and
    /// [`Verified::type_signed`](crate::Verified::type_signed) are false.
    /// WooCommerce does not retry. The unsigned set-up ping
    /// (`webhook_id=<n>`, form encoded) does not verify.
    WooCommerce,
    Algorithm::Sha256,
    SCHEME
);

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::Secret;
    use crate::providers::attacks::{self, Case};

    const SECRET: &str = "wc_secret";
    const BODY: &[u8] = br#"{"id":727,"permalink":"https:\/\/shop.example.com\/p\/1\/"}"#;

    fn case() -> Case {
        let sig = attacks::mac(Algorithm::Sha256, SECRET, &[BODY], Encoding::Base64);
        Case {
            headers: attacks::headers(&[
                (SIGNATURE, &sig),
                (DELIVERY, "d-1"),
                (TOPIC, "order.created"),
            ]),
            body: BODY.to_vec(),
            now: SystemTime::UNIX_EPOCH,
        }
    }

    fn verifier() -> WooCommerce {
        WooCommerce::new(Secret::text(SECRET).unwrap())
    }

    #[test]
    fn reports_unsigned_delivery_id_with_a_content_digest() {
        let v = case().run(&verifier()).unwrap();
        assert_eq!(v.event_id(), Some("d-1"));
        assert!(!v.id_signed());
        assert!(v.content_digest().is_some());
        assert_eq!(v.event_type(), Some("order.created"));
    }

    #[test]
    fn refuses_every_attack_shape() {
        attacks::assert_attack_shapes(&verifier(), &case(), &[SIGNATURE], true);
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            WooCommerce::new,
            WooCommerce::add_secret,
            Secret::text(SECRET).unwrap(),
            Secret::text("wc_other").unwrap(),
        );
    }

    #[test]
    fn refuses_a_prefixed_signature() {
        let mut c = case();
        let sig = c.headers[SIGNATURE].to_str().unwrap().to_owned();
        c.headers
            .insert(SIGNATURE, format!("sha256={sig}").parse().unwrap());
        assert!(c.run(&verifier()).is_err());
    }
}
