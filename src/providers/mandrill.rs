//! Mandrill (Mailchimp Transactional): `X-Mandrill-Signature` over the
//! webhook URL and the sorted POST fields.

use std::collections::BTreeMap;
use std::time::SystemTime;

use http::request::Parts;

use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::client::PublicUrl;
use crate::verify::{Verified, Verifier, VerifyError};

const SIGNATURE: &str = "x-mandrill-signature";

/// [Mandrill](https://mailchimp.com/developer/transactional/guides/track-respond-activity-webhooks/):
/// base64 HMAC-SHA1, keyed with the webhook's key, over the webhook URL
/// exactly as configured in Mandrill (scheme, host, path, query) followed by
/// each POST field sorted by name, as name then value (a repeated name
/// keeps its last value, as PHP's `$_POST` does). Events come batched in
/// one form field, `mandrill_events` (a JSON array).
///
/// The URL comes from a [`PublicUrl`]: configure it with the URL you gave
/// Mandrill (see its `# Deployment` section).
///
/// No timestamp, no delivery id: the MAC identifies the delivery for
/// de-duplication; de-duplicate single events on their `_id`.
///
/// Mandrill's scheme joins names and values with no separator, so the same
/// characters split into other fields carry the same signature (`a=bc` and
/// `ab=c` both sign `abc`): a verified body proves its characters, not
/// where one field ends. Read only the fields you expect
/// (`mandrill_events`) and refuse the rest.
///
/// ```
/// use std::time::SystemTime;
/// use tower_webhook::{client::PublicUrl, providers::Mandrill, Secret, Verifier};
///
/// let mandrill = Mandrill::new(Secret::text("webhook-key")?)
///     .public_url(PublicUrl::base("https://api.example.com")?);
/// let req = http::Request::post("/webhooks/mandrill")
///     .header("x-mandrill-signature", "AAAA")
///     .body(())?;
/// assert!(mandrill.verify(&req.into_parts().0, b"mandrill_events=%5B%5D", SystemTime::now()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Mandrill {
    keys: KeySet,
    url: PublicUrl,
}

hmac_provider!(Mandrill, Algorithm::Sha1);

impl Mandrill {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            url: PublicUrl::default(),
        }
    }

    /// How the webhook URL is rebuilt (default: from the request, trusting
    /// no proxy).
    pub fn public_url(mut self, url: PublicUrl) -> Self {
        self.url = url;
        self
    }
}

/// The signed fields: sorted by name, the last value of a repeated name.
fn sorted(fields: Vec<(String, String)>) -> BTreeMap<String, String> {
    fields.into_iter().collect()
}

impl Verifier for Mandrill {
    fn provider(&self) -> &'static str {
        "mandrill"
    }

    fn content_types(&self) -> &[&'static str] {
        &["application/x-www-form-urlencoded"]
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let sig = kit::signature(parts, SIGNATURE)?;
        let url = self.url.resolve(parts)?;
        let fields = sorted(kit::form_fields(body)?);
        let mut signed: Vec<&[u8]> = Vec::with_capacity(1 + 2 * fields.len());
        signed.push(url.as_bytes());
        for (name, value) in &fields {
            signed.push(name.as_bytes());
            signed.push(value.as_bytes());
        }
        let candidates = Candidates::one(sig.trim().as_bytes(), Encoding::Base64);
        let m = self.keys.verify(now, &signed, &candidates)?;
        Ok(Verified::new("mandrill")
            .with_key(m.key())
            .with_content_digest(m.mac.digest32()))
    }
}

/// Signs like Mandrill (for tests).
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn sign(secret: &crate::Secret, url: &str, body: &[u8]) -> String {
    let mut signed = url.as_bytes().to_vec();
    for (name, value) in sorted(kit::form_fields(body).unwrap_or_default()) {
        signed.extend_from_slice(name.as_bytes());
        signed.extend_from_slice(value.as_bytes());
    }
    KeySet::new(Algorithm::Sha1, secret)
        .sign(SystemTime::UNIX_EPOCH, &[&signed])
        .map(|s| s.encode(Encoding::Base64))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    const BODY: &[u8] =
        b"mandrill_events=%5B%7B%22event%22%3A%22send%22%2C%22_id%22%3A%22a1%22%7D%5D";

    fn key() -> Secret {
        Secret::text("KfFu1436914aaf0e394c0d").unwrap()
    }

    fn verifier() -> Mandrill {
        Mandrill::new(key()).public_url(PublicUrl::base("https://api.example.com").unwrap())
    }

    fn request(path: &str, sig: &str) -> Parts {
        http::Request::post(path)
            .header(SIGNATURE, sig)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn accepts_a_signed_batch() {
        let sig = sign(&key(), "https://api.example.com/hooks/mandrill", BODY);
        let parts = request("/hooks/mandrill", &sig);
        assert!(verifier().verify(&parts, BODY, SystemTime::now()).is_ok());
    }

    #[test]
    fn trailing_slash_and_query_change_the_signed_url() {
        let sig = sign(&key(), "https://api.example.com/hooks/mandrill", BODY);
        for path in ["/hooks/mandrill/", "/hooks/mandrill?x=1", "/hooks/Mandrill"] {
            let got = verifier().verify(&request(path, &sig), BODY, SystemTime::now());
            assert_eq!(got.unwrap_err(), VerifyError::SignatureMismatch, "{path}");
        }
    }

    #[test]
    fn rejects_signature_with_one_flipped_bit_and_extra_fields() {
        let sig = sign(&key(), "https://api.example.com/h", BODY);
        let mut raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &sig).unwrap();
        raw[0] ^= 1;
        let flipped = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw);
        assert!(
            verifier()
                .verify(&request("/h", &flipped), BODY, SystemTime::now())
                .is_err()
        );
        let extra = [BODY, b"&x=1"].concat();
        assert!(
            verifier()
                .verify(&request("/h", &sig), &extra, SystemTime::now())
                .is_err()
        );
    }

    #[test]
    fn rotated_key_verifies() {
        let new = Secret::text("new-key").unwrap();
        let v = verifier().add_secret(new.clone());
        let sig = sign(&new, "https://api.example.com/h", BODY);
        assert!(
            v.verify(&request("/h", &sig), BODY, SystemTime::now())
                .is_ok()
        );
    }
}
