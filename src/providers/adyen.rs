//! Adyen: HMAC per notification item, or over the body in `HmacSignature`.

use std::time::SystemTime;

use http::request::Parts;
use serde::Deserialize;
use sha2::Digest as _;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::verify::{KeyTag, Verified, Verifier, VerifyError};

const HEADER: &str = "hmacsignature";
const PROTOCOL: &str = "protocol";

/// [Adyen](https://docs.adyen.com/development-resources/webhooks/secure-webhooks/verify-hmac-signatures),
/// both schemes. The key is the HMAC key from the Customer Area, **hex**:
/// use [`Secret::hex`](crate::Secret::hex).
///
/// - [`Adyen::new`] (standard webhooks): each `NotificationRequestItem`
///   carries `additionalData.hmacSignature`, base64 HMAC-SHA256 of
///   `pspReference:originalReference:merchantAccountCode:merchantReference:amount.value:amount.currency:eventCode:success`
///   (missing fields empty, colons in values not escaped). **Every** item
///   must verify. Fields outside that string (`paymentMethod`, `eventDate`,
///   `additionalData`) are not protected by Adyen's scheme.
///   Event id: `pspReference:eventCode:success` (signed; items joined by
///   `,`). Event type: `eventCode`.
/// - [`Adyen::hmac_header`] (Balance Platform, Management API, ...): base64
///   HMAC-SHA256 of the body in `HmacSignature`; a `Protocol` header, when
///   present, must be `HmacSHA256`. These carry no event id, so it is
///   derived from the signature (a retry resends the same body). Event
///   type: the body's `type`.
///
/// No timestamp in either scheme.
pub struct Adyen {
    keys: KeySet,
    header: bool,
}

hmac_provider!(Adyen, Algorithm::Sha256);

impl Adyen {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            header: false,
        }
    }

    /// A verifier for header-signed webhooks (`HmacSignature`).
    pub fn hmac_header(secret: crate::Secret) -> Self {
        Self {
            header: true,
            ..Self::new(secret)
        }
    }
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "notificationItems")]
    items: Vec<Wrapped>,
}

#[derive(Deserialize)]
struct Wrapped {
    #[serde(rename = "NotificationRequestItem")]
    item: Item,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    additional_data: Option<AdditionalData>,
    amount: Option<Amount>,
    psp_reference: Option<Text>,
    original_reference: Option<Text>,
    merchant_account_code: Option<Text>,
    merchant_reference: Option<Text>,
    event_code: Option<Text>,
    success: Option<Text>,
}

#[derive(Deserialize)]
struct AdditionalData {
    #[serde(rename = "hmacSignature")]
    hmac_signature: Option<String>,
}

#[derive(Deserialize)]
struct Amount {
    value: Option<Text>,
    currency: Option<Text>,
}

/// A field as Adyen's libraries stringify it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
}

fn text(t: Option<&Text>) -> String {
    match t {
        Some(Text::Str(s)) => s.clone(),
        Some(Text::Num(n)) => n.to_string(),
        Some(Text::Bool(b)) => b.to_string(),
        None => String::new(),
    }
}

impl Item {
    fn signing_string(&self) -> String {
        let amount = self.amount.as_ref();
        [
            text(self.psp_reference.as_ref()),
            text(self.original_reference.as_ref()),
            text(self.merchant_account_code.as_ref()),
            text(self.merchant_reference.as_ref()),
            text(amount.and_then(|a| a.value.as_ref())),
            text(amount.and_then(|a| a.currency.as_ref())),
            text(self.event_code.as_ref()),
            text(self.success.as_ref()),
        ]
        .join(":")
    }
}

/// The most notification items one request may carry.
const MAX_ITEMS: usize = 16;

/// The string Adyen signs for one `NotificationRequestItem` (signers).
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn signing_string(item: &serde_json::Value) -> Option<String> {
    Item::deserialize(item).ok().map(|i| i.signing_string())
}

impl Adyen {
    fn verify_items(&self, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let n: Notification = serde_json::from_slice(body)
            .map_err(|_| VerifyError::MalformedBody("notificationItems"))?;
        // Adyen sends one item (historically up to six): a bound keeps a
        // replayed item repeated a thousand times from costing a thousand
        // HMACs and a huge event id.
        if n.items.is_empty() || n.items.len() > MAX_ITEMS {
            return Err(VerifyError::MalformedBody("notificationItems"));
        }
        let mut label = None;
        let mut ids = Vec::with_capacity(n.items.len());
        let mut digests = Vec::with_capacity(n.items.len());
        for Wrapped { item } in &n.items {
            let sig = item
                .additional_data
                .as_ref()
                .and_then(|a| a.hmac_signature.as_deref())
                .filter(|s| !s.is_empty())
                .ok_or(VerifyError::MissingSignature(
                    "additionalData.hmacSignature",
                ))?;
            let candidates = Candidates::one(sig.as_bytes(), Encoding::Base64);
            let m = self
                .keys
                .verify(now, &[item.signing_string().as_bytes()], &candidates)?;
            // The first item's key names the delivery; any item under a
            // retiring key makes it retiring.
            let key = m.key();
            let retiring = key.retiring || label.as_ref().is_some_and(|k: &KeyTag| k.retiring);
            label = Some(KeyTag {
                retiring,
                ..label.unwrap_or(key)
            });
            ids.push(format!(
                "{}:{}:{}",
                text(item.psp_reference.as_ref()),
                text(item.event_code.as_ref()),
                text(item.success.as_ref())
            ));
            digests.push(m.mac.digest32());
        }
        // Each item is signed on its own: neither their order nor their
        // number is. The key is the set of the items' signed strings (as
        // their MACs), so a reordered notification is the same delivery,
        // and one item sent twice is refused. The readable id is shown,
        // marked unsigned: a `:` inside a signed value could split the
        // signed string into other fields.
        digests.sort_unstable();
        if digests.windows(2).any(|w| w[0] == w[1]) {
            return Err(VerifyError::MalformedBody("notificationItems repeated"));
        }
        let set = digests
            .iter()
            .fold(sha2::Sha256::new_with_prefix(b"adyen items\0"), |set, d| {
                set.chain_update(d)
            });
        let mut v = Verified::new("adyen")
            .with_key(label.unwrap_or_default())
            .with_event_id(ids.join(","), false)
            .with_content_digest(set.finalize().into());
        if let Some(Wrapped { item }) = n.items.first() {
            // Unsigned too: a `:` inside another signed value could shift it.
            v = v.with_event_type(text(item.event_code.as_ref()), false);
        }
        Ok(v)
    }

    fn verify_header(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, HEADER)?;
        if kit::header(parts, PROTOCOL)?.is_some_and(|p| p != "HmacSHA256") {
            return Err(VerifyError::MalformedHeader(PROTOCOL));
        }
        let candidates = Candidates::one(header.as_bytes(), Encoding::Base64);
        let m = self.keys.verify(now, &[body], &candidates)?;
        let [ty] = json::unique_fields(body, &[&["type"]])?;
        let mut v = Verified::new("adyen")
            .with_key(m.key())
            .with_event_id(m.mac.id_hex(), true);
        if let Some(ty) = ty {
            v = v.with_event_type(ty, true);
        }
        Ok(v)
    }
}

impl Verifier for Adyen {
    fn provider(&self) -> &'static str {
        "adyen"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        if self.header {
            self.verify_header(parts, body, now)
        } else {
            self.verify_items(body, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use crate::providers::attacks::{self, Case};

    const KEY_HEX: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

    fn item_sig(s: &str) -> String {
        KeySet::new(Algorithm::Sha256, &Secret::hex(KEY_HEX).unwrap())
            .sign(SystemTime::UNIX_EPOCH, &[s.as_bytes()])
            .unwrap()
            .encode(Encoding::Base64)
    }

    fn item(psp: &str, value: &str, success: &str, sig: &str) -> String {
        format!(
            r#"{{"NotificationRequestItem":{{"additionalData":{{"hmacSignature":"{sig}"}},"amount":{{"value":{value},"currency":"EUR"}},"pspReference":"{psp}","eventCode":"AUTHORISATION","merchantAccountCode":"M","merchantReference":"r:1","success":"{success}"}}}}"#
        )
    }

    fn signed_item(psp: &str) -> String {
        let sig = item_sig(&format!("{psp}::M:r:1:1130:EUR:AUTHORISATION:true"));
        item(psp, "1130", "true", &sig)
    }

    fn body(items: &[String]) -> Vec<u8> {
        format!(
            r#"{{"live":"false","notificationItems":[{}]}}"#,
            items.join(",")
        )
        .into_bytes()
    }

    fn case(items: &[String]) -> Case {
        Case {
            headers: attacks::headers(&[]),
            body: body(items),
            now: SystemTime::UNIX_EPOCH,
        }
    }

    fn verifier() -> Adyen {
        Adyen::new(Secret::hex(KEY_HEX).unwrap())
    }

    #[test]
    fn verifies_every_item_and_reports_their_ids() {
        let c = case(&[signed_item("111"), signed_item("222")]);
        let v = c.run(&verifier()).unwrap();
        assert_eq!(
            v.event_id(),
            Some("111:AUTHORISATION:true,222:AUTHORISATION:true")
        );
        assert!(!v.id_signed(), "the joined id is shown, not claimed");
        assert_eq!(v.event_type(), Some("AUTHORISATION"));
        // The items in another order: the same delivery.
        let swapped = case(&[signed_item("222"), signed_item("111")]);
        assert_eq!(swapped.run(&verifier()).unwrap().dedup_key(), v.dedup_key());
        let one = case(&[signed_item("111")]).run(&verifier()).unwrap();
        assert!(one.dedup_key().is_some());
        assert_ne!(one.dedup_key(), v.dedup_key());
    }

    #[test]
    fn one_item_sent_twice_is_malformed() {
        assert_eq!(
            case(&[signed_item("111"), signed_item("111")])
                .run(&verifier())
                .err(),
            Some(VerifyError::MalformedBody("notificationItems repeated"))
        );
    }

    #[test]
    fn more_items_than_adyen_ever_sends_are_refused() {
        let many: Vec<String> = (0..=MAX_ITEMS)
            .map(|i| signed_item(&i.to_string()))
            .collect();
        assert_eq!(
            case(&many).run(&verifier()).err(),
            Some(VerifyError::MalformedBody("notificationItems"))
        );
        let enough: Vec<String> = (0..MAX_ITEMS)
            .map(|i| signed_item(&i.to_string()))
            .collect();
        assert!(case(&enough).run(&verifier()).is_ok());
    }

    #[test]
    fn one_bad_item_fails_the_whole_notification() {
        let forged = item("333", "1130", "true", &item_sig("something else"));
        assert_eq!(
            case(&[signed_item("111"), forged]).run(&verifier()).err(),
            Some(VerifyError::SignatureMismatch)
        );
        let unsigned = signed_item("444").replace("hmacSignature", "other");
        assert!(
            case(&[signed_item("111"), unsigned])
                .run(&verifier())
                .is_err()
        );
    }

    #[test]
    fn refuses_changed_signed_fields() {
        let sig = item_sig("111::M:r:1:1130:EUR:AUTHORISATION:true");
        assert!(
            case(&[item("111", "1130", "true", &sig)])
                .run(&verifier())
                .is_ok()
        );
        assert!(
            case(&[item("111", "1131", "true", &sig)])
                .run(&verifier())
                .is_err()
        );
        assert!(
            case(&[item("111", "1130", "false", &sig)])
                .run(&verifier())
                .is_err()
        );
        assert!(
            case(&[item("112", "1130", "true", &sig)])
                .run(&verifier())
                .is_err()
        );
        assert!(
            case(&[item("111", "1130", "true", &sig[..sig.len() - 2])])
                .run(&verifier())
                .is_err()
        );
        let extreme = item("111", "18446744073709551616", "true", &sig);
        assert!(case(&[extreme]).run(&verifier()).is_err());
    }

    #[test]
    fn refuses_malformed_notifications() {
        for b in [
            &b""[..],
            b"{}",
            b"[]",
            br#"{"notificationItems":[]}"#,
            br#"{"notificationItems":[{}]}"#,
            b"{\"notificationItems\":",
        ] {
            let c = Case {
                body: b.to_vec(),
                ..case(&[])
            };
            assert!(
                c.run(&verifier()).is_err(),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
    }

    #[test]
    fn refuses_wrong_key_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(&[signed_item("111")]),
            Adyen::new,
            Adyen::add_secret,
            Secret::hex(KEY_HEX).unwrap(),
            Secret::hex("00ff").unwrap(),
        );
    }

    fn header_case() -> Case {
        let body = br#"{"data":{"id":"BA1"},"type":"balancePlatform.balanceAccount.created"}"#;
        Case {
            headers: attacks::headers(&[
                (HEADER, &item_sig(std::str::from_utf8(body).unwrap())),
                (PROTOCOL, "HmacSHA256"),
            ]),
            body: body.to_vec(),
            now: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn header_scheme_refuses_every_attack_shape() {
        let v = Adyen::hmac_header(Secret::hex(KEY_HEX).unwrap());
        let got = header_case().run(&v).unwrap();
        assert_eq!(
            got.event_type(),
            Some("balancePlatform.balanceAccount.created")
        );
        assert_eq!(got.event_id().map(str::len), Some(32));
        attacks::assert_attack_shapes(&v, &header_case(), &[HEADER], true);
        let mut c = header_case();
        c.headers.insert(PROTOCOL, "HmacSHA1".parse().unwrap());
        assert!(c.run(&v).is_err());
        c.headers.remove(PROTOCOL);
        assert!(c.run(&v).is_ok());
    }

    #[test]
    fn header_scheme_needs_the_hex_decoded_key() {
        let as_text = Adyen::hmac_header(Secret::text(KEY_HEX).unwrap());
        assert!(header_case().run(&as_text).is_err());
    }
}
