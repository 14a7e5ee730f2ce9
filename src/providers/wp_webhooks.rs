//! WP Webhooks (the WordPress plugin by Ironikus): `X-WP-Webhook-Signature`.

use std::fmt::Write as _;
use std::time::SystemTime;

use http::request::Parts;

use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::secret::Secret;
use crate::verify::{Verified, Verifier, VerifyError};

const SIGNATURE: &str = "x-wp-webhook-signature";
const NAME: &str = "x-wp-webhook-name";
const URL_NAME: &str = "x-wp-webhook-url-name";

/// [WP Webhooks](https://github.com/Ironikus/wp-webhooks) 3.0.1 and later:
/// base64 HMAC-SHA256, with the webhook's secret as text, of PHP's
/// `json_encode` of `{"date_created":…,"webhook_name":…,"webhook_url_name":…}`.
/// The two names come from `X-WP-Webhook-Name` and `X-WP-Webhook-URL-Name`;
/// `date_created` is not sent, so it is configured here.
///
/// # Security
/// **The body is not signed.** The signature is the same for every delivery
/// of a webhook: it authenticates the sender only as well as a static token
/// does, and anyone who sees one request can send any body with it. There
/// is no timestamp and no event id (deliveries are fire-and-forget, never
/// retried), so nothing is de-duplicated. Use HTTPS, and treat the body as
/// untrusted input.
pub struct WpWebhooks {
    keys: KeySet,
    date_created: String,
}

impl WpWebhooks {
    /// A verifier for the webhook created at `date_created` (as the plugin
    /// stores it, e.g. `2026-01-02 03:04:05`).
    pub fn new(secret: Secret, date_created: &str) -> Self {
        Self {
            keys: KeySet::new(Algorithm::Sha256, &secret),
            date_created: date_created.to_owned(),
        }
    }

    /// Accepts signatures made with `secret` too (rotation).
    pub fn add_secret(mut self, secret: Secret) -> Self {
        self.keys.add(&secret);
        self
    }
}

impl std::fmt::Debug for WpWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WpWebhooks")
            .field("date_created", &self.date_created)
            .field("secrets", &"***")
            .finish()
    }
}

/// Appends `s` as PHP's `json_encode` writes a string by default: `/`
/// escaped, everything outside ASCII as `\uXXXX` (UTF-16, lowercase hex).
fn php_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The message WP Webhooks signs: PHP's `json_encode` of the three fields.
pub(crate) fn signed_message(date_created: &str, name: &str, url_name: &str) -> String {
    let mut m = String::with_capacity(64 + date_created.len() + name.len() + url_name.len());
    m.push_str("{\"date_created\":");
    php_json_string(&mut m, date_created);
    m.push_str(",\"webhook_name\":");
    php_json_string(&mut m, name);
    m.push_str(",\"webhook_url_name\":");
    php_json_string(&mut m, url_name);
    m.push('}');
    m
}

impl Verifier for WpWebhooks {
    fn provider(&self) -> &'static str {
        "wp-webhooks"
    }

    fn content_types(&self) -> &[&'static str] {
        // JSON, form, multipart or XML, per the webhook's setting.
        &[]
    }

    fn verify(
        &self,
        parts: &Parts,
        _body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, SIGNATURE)?;
        let name = kit::required_utf8(parts, NAME)?;
        let url_name = kit::required_utf8(parts, URL_NAME)?;
        let candidates = Candidates::one(header.as_bytes(), Encoding::Base64);
        let message = signed_message(&self.date_created, name, url_name);
        let m = self.keys.verify(now, &[message.as_bytes()], &candidates)?;
        Ok(Verified::new("wp-webhooks")
            .with_key(m.key())
            .with_event_type(name, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::attacks::{self, Case};

    const SECRET: &str = "wpwh_secret";
    const DATE: &str = "2026-01-02 03:04:05";

    fn case() -> Case {
        let m = r#"{"date_created":"2026-01-02 03:04:05","webhook_name":"post_create","webhook_url_name":"crm-sync"}"#;
        let sig = attacks::mac(Algorithm::Sha256, SECRET, &[m.as_bytes()], Encoding::Base64);
        Case {
            headers: attacks::headers(&[
                (SIGNATURE, &sig),
                (NAME, "post_create"),
                (URL_NAME, "crm-sync"),
            ]),
            body: br#"{"post_id":42}"#.to_vec(),
            now: SystemTime::UNIX_EPOCH,
        }
    }

    fn verifier() -> WpWebhooks {
        WpWebhooks::new(Secret::text(SECRET).unwrap(), DATE)
    }

    #[test]
    fn webhook_names_with_accents_verify() {
        let m = r#"{"date_created":"2026-01-02 03:04:05","webhook_name":"caf\u00e9","webhook_url_name":"crm-sync"}"#;
        let sig = attacks::mac(Algorithm::Sha256, SECRET, &[m.as_bytes()], Encoding::Base64);
        let parts = http::Request::post("/")
            .header(SIGNATURE, sig)
            .header(
                NAME,
                http::HeaderValue::from_bytes("café".as_bytes()).unwrap(),
            )
            .header(URL_NAME, "crm-sync")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let v = verifier()
            .verify(&parts, b"{}", SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(v.event_type(), Some("café"));
    }

    #[test]
    fn encodes_like_php_json_encode() {
        let mut s = String::new();
        php_json_string(&mut s, "a/b\"c\\d\u{e9}\u{1F600}\n");
        assert_eq!(s, r#""a\/b\"c\\d\u00e9\ud83d\ude00\n""#);
    }

    #[test]
    fn reports_no_event_id_since_nothing_identifies_a_delivery() {
        let v = case().run(&verifier()).unwrap();
        assert_eq!(v.event_id(), None);
        assert_eq!(v.content_digest(), None);
        assert_eq!(v.event_type(), Some("post_create"));
    }

    #[test]
    fn refuses_every_attack_shape_but_the_body_is_unsigned() {
        attacks::assert_attack_shapes(&verifier(), &case(), &[SIGNATURE, NAME, URL_NAME], false);
        let any_body = Case {
            body: b"anything".to_vec(),
            ..case()
        };
        assert!(any_body.run(&verifier()).is_ok());
    }

    #[test]
    fn refuses_another_creation_date() {
        let v = WpWebhooks::new(Secret::text(SECRET).unwrap(), "2026-01-02 03:04:06");
        assert!(case().run(&v).is_err());
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            |s| WpWebhooks::new(s, DATE),
            WpWebhooks::add_secret,
            Secret::text(SECRET).unwrap(),
            Secret::text("other").unwrap(),
        );
    }
}
