//! Square: `x-square-hmacsha256-signature` over the notification URL and
//! the body.

use std::time::SystemTime;

use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::client::PublicUrl;
use crate::verify::{Verified, Verifier, VerifyError};

const SIGNATURE: &str = "x-square-hmacsha256-signature";

/// [Square](https://developer.squareup.com/docs/webhooks/step3validate):
/// base64 HMAC-SHA256, keyed with the subscription's signature key (raw
/// text: [`Secret::text`](crate::Secret::text)), over the notification URL
/// exactly as registered (query string included, no trailing-slash
/// changes) immediately followed by the raw body. The legacy
/// `x-square-signature` (HMAC-SHA1) header is not used.
///
/// The URL comes from a [`PublicUrl`]: configure it with the notification
/// URL's origin (see its `# Deployment` section).
///
/// # Security
/// URL and body are joined without a separator, so bytes could move from
/// the end of the path to the start of the body; a JSON body cannot start
/// with path characters, so this is harmless for Square's payloads. No
/// timestamp is signed: a captured delivery can be replayed (the event id
/// de-duplicates it).
///
/// Event id: the body's `event_id` (signed). Event
/// type: the body's `type`.
///
/// ```
/// use std::time::SystemTime;
/// use tower_webhook::{client::PublicUrl, providers::Square, Secret, Verifier};
///
/// let square = Square::new(Secret::text("signature-key")?)
///     .public_url(PublicUrl::base("https://api.example.com")?);
/// let req = http::Request::post("/square").header("x-square-hmacsha256-signature", "AAAA").body(())?;
/// assert!(square.verify(&req.into_parts().0, b"{}", SystemTime::now()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Square {
    keys: KeySet,
    url: PublicUrl,
}

hmac_provider!(Square, Algorithm::Sha256);

impl Square {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            url: PublicUrl::default(),
        }
    }

    /// How the notification URL is rebuilt (default: from the request,
    /// trusting no proxy).
    pub fn public_url(mut self, url: PublicUrl) -> Self {
        self.url = url;
        self
    }
}

impl Verifier for Square {
    fn provider(&self) -> &'static str {
        "square"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let sig = kit::signature(parts, SIGNATURE)?;
        let url = self.url.resolve(parts)?;
        let candidates = Candidates::one(sig.trim().as_bytes(), Encoding::Base64);
        let m = self
            .keys
            .verify(now, &[url.as_bytes(), body], &candidates)?;

        let [id, ty] = json::unique_fields(body, &[&["event_id"], &["type"]])?;
        let mut v = Verified::new("square").with_key(m.key());
        if let Some(id) = id {
            v = v.with_event_id(id, true);
        } else {
            v = v.with_content_digest(m.mac.digest32());
        }
        if let Some(ty) = ty {
            v = v.with_event_type(ty, true);
        }
        Ok(v)
    }
}

/// Signs like Square (for tests).
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn sign(secret: &crate::Secret, url: &str, body: &[u8]) -> String {
    KeySet::new(Algorithm::Sha256, secret)
        .sign(SystemTime::UNIX_EPOCH, &[url.as_bytes(), body])
        .map(|s| s.encode(Encoding::Base64))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    const BODY: &[u8] = br#"{"type":"payment.created","event_id":"e-1"}"#;

    fn key() -> Secret {
        Secret::text("Ibxx_5AKakO-3qeNVR61Dw").unwrap()
    }

    fn verifier() -> Square {
        Square::new(key()).public_url(PublicUrl::base("https://api.example.com").unwrap())
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
    fn accepts_and_reports_the_signed_event_id() {
        let sig = sign(&key(), "https://api.example.com/sq?env=1", BODY);
        let v = verifier()
            .verify(&request("/sq?env=1", &sig), BODY, SystemTime::now())
            .unwrap();
        assert_eq!(v.event_id(), Some("e-1"));
        assert!(v.id_signed());
        assert_eq!(v.event_type(), Some("payment.created"));
    }

    #[test]
    fn a_request_to_another_path_or_scheme_is_rejected() {
        let sig = sign(&key(), "https://api.example.com/sq", BODY);
        let got = verifier().verify(&request("/sr", &sig), BODY, SystemTime::now());
        assert_eq!(got.unwrap_err(), VerifyError::SignatureMismatch);
        let http =
            Square::new(key()).public_url(PublicUrl::base("http://api.example.com").unwrap());
        assert!(
            http.verify(&request("/sq", &sig), BODY, SystemTime::now())
                .is_err()
        );
    }

    #[test]
    fn rejects_truncated_and_empty_signatures() {
        let sig = sign(&key(), "https://api.example.com/sq", BODY);
        for bad in [&sig[..sig.len() - 4], " ", "v1,"] {
            let got = verifier().verify(&request("/sq", bad), BODY, SystemTime::now());
            assert!(got.is_err(), "{bad:?}");
        }
    }
}
