//! Discord: `X-Signature-Ed25519` over `{X-Signature-Timestamp}{body}`.

use std::time::SystemTime;

use http::request::Parts;

use super::json;
use super::kit::{self, Candidates, Encoding};
use crate::key::{Ed25519Keys, PublicKey};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

const SIGNATURE: &str = "x-signature-ed25519";
const TIMESTAMP: &str = "x-signature-timestamp";

/// [Discord](https://discord.com/developers/docs/interactions/overview)
/// interactions and webhook events: an Ed25519 signature (hex, 64 bytes) in
/// `X-Signature-Ed25519` over the `X-Signature-Timestamp` text immediately
/// followed by the raw body. The key is the application's public key, shown
/// as 64 hex digits: [`PublicKey::hex`].
///
/// Discord's own library checks no time window, so neither does this by
/// default; [`Discord::tolerance`] adds one (the timestamp must then be Unix
/// seconds). Discord probes endpoints with bad signatures and removes those
/// that do not answer **401**: every signature failure here maps to 401.
///
/// Event id: the body's `id` (the interaction id, signed). Event type: the
/// body's `type` (`1` is the PING that must be answered `{"type":1}`).
///
/// ```
/// use std::time::SystemTime;
/// use tower_webhook::{providers::Discord, PublicKey, Verifier};
///
/// let discord = Discord::new(PublicKey::hex(
///     "08eb1e7ffc6b6533b538b0851403dd317cccbd3459d32446d13fad93176b0642",
/// )?);
/// let req = http::Request::post("/interactions")
///     .header("x-signature-ed25519", "00".repeat(64))
///     .header("x-signature-timestamp", "1767315600")
///     .body(())?;
/// assert!(discord.verify(&req.into_parts().0, b"{}", SystemTime::now()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Discord {
    keys: Ed25519Keys,
    tolerance: Tolerance,
}

impl Discord {
    /// A verifier for the application with this public key; no time window.
    pub fn new(key: PublicKey) -> Self {
        let mut keys = Ed25519Keys::default();
        keys.add(key);
        Self {
            keys,
            tolerance: Tolerance::unchecked(),
        }
    }

    /// Accepts signatures verifying under `key` too (several applications
    /// posting to one endpoint).
    pub fn add_public_key(mut self, key: PublicKey) -> Self {
        self.keys.add(key);
        self
    }

    /// Bounds the age of `X-Signature-Timestamp` (Unix seconds). Discord
    /// documents no window; a symmetric 300 s is a reasonable choice.
    pub fn tolerance(mut self, tolerance: Tolerance) -> Self {
        self.tolerance = tolerance;
        self
    }
}

impl std::fmt::Debug for Discord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord")
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

impl Verifier for Discord {
    fn provider(&self) -> &'static str {
        "discord"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let sig = kit::signature(parts, SIGNATURE)?;
        // The timestamp is part of what is signed; without it nothing can
        // verify. Discord expects 401 for every unverifiable request.
        let ts_text = kit::header(parts, TIMESTAMP)?
            .filter(|t| !t.is_empty())
            .ok_or(VerifyError::MissingSignature(TIMESTAMP))?;
        let candidates = Candidates::one(sig.as_bytes(), Encoding::Hex);
        let mut msg = Vec::with_capacity(ts_text.len() + body.len());
        msg.extend_from_slice(ts_text.as_bytes());
        msg.extend_from_slice(body);
        let label = self.keys.verify(now, &msg, &candidates)?;

        let ts = if self.tolerance == Tolerance::unchecked() {
            kit::parse_unix(ts_text, TIMESTAMP).ok()
        } else {
            let ts = kit::parse_unix(ts_text, TIMESTAMP)?;
            self.tolerance.check_secs(ts, now)?;
            Some(ts)
        };

        let [id, ty] = json::unique_fields(body, &[&["id"], &["type"]])?;
        let mut v = Verified::new("discord").with_key(label);
        // Without a body `id` (webhook events), the verified signature names
        // the delivery, as an HMAC's does (`verify_strict` refuses any other
        // encoding of it).
        if let Some(sig) = candidates.iter().next() {
            v = v.with_content_digest(sig.digest32());
        }
        if let Some(ts) = ts {
            v = v.with_timestamp(ts);
        }
        if let Some(id) = id {
            v = v.with_event_id(id, true);
        }
        if let Some(ty) = ty {
            v = v.with_event_type(ty, true);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    const TS: u64 = 1_767_315_600;

    fn signer(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn verifier(seed: u8) -> Discord {
        let pk = PublicKey::from_bytes(&signer(seed).verifying_key().to_bytes()).unwrap();
        Discord::new(pk)
    }

    fn request(sig: &str, ts: &str) -> Parts {
        http::Request::post("/i")
            .header(SIGNATURE, sig)
            .header(TIMESTAMP, ts)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn sign(seed: u8, ts: &str, body: &[u8]) -> String {
        let msg = [ts.as_bytes(), body].concat();
        hex::encode(signer(seed).sign(&msg).to_bytes())
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const BODY: &[u8] = br#"{"type":1,"id":"42"}"#;

    #[test]
    fn accepts_a_signed_ping_and_reports_its_id_and_type() {
        let sig = sign(1, "1767315600", BODY);
        let v = verifier(1)
            .verify(&request(&sig, "1767315600"), BODY, at(TS))
            .unwrap();
        assert_eq!(v.event_id(), Some("42"));
        assert_eq!(v.event_type(), Some("1"));
        assert_eq!(v.timestamp(), Some(1_767_315_600));
    }

    #[test]
    fn rejects_signature_with_one_flipped_bit() {
        let mut raw = hex::decode(sign(1, "1767315600", BODY)).unwrap();
        raw[10] ^= 1;
        let got = verifier(1).verify(&request(&hex::encode(raw), "1767315600"), BODY, at(TS));
        assert_eq!(got.unwrap_err(), VerifyError::SignatureMismatch);
    }

    #[test]
    fn rejects_truncated_odd_and_empty_signatures() {
        let good = sign(1, "1767315600", BODY);
        for bad in [&good[..126], "", "zz", &good[..127]] {
            let got = verifier(1).verify(&request(bad, "1767315600"), BODY, at(TS));
            assert!(got.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_timestamp_is_a_401_class_error() {
        let sig = sign(1, "1767315600", BODY);
        let parts = http::Request::post("/i")
            .header(SIGNATURE, &sig)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let err = verifier(1).verify(&parts, BODY, at(TS)).unwrap_err();
        assert_eq!(err, VerifyError::MissingSignature(TIMESTAMP));
        assert_eq!(
            crate::WebhookError::from(err).status(),
            http::StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn rejects_timestamp_edited_after_signing() {
        let sig = sign(1, "1767315600", BODY);
        let got = verifier(1).verify(&request(&sig, "1767315601"), BODY, at(TS));
        assert_eq!(got.unwrap_err(), VerifyError::SignatureMismatch);
    }

    #[test]
    fn rotated_keys_both_verify() {
        let v = verifier(1)
            .add_public_key(PublicKey::from_bytes(&signer(2).verifying_key().to_bytes()).unwrap());
        for seed in [1, 2] {
            let sig = sign(seed, "1767315600", BODY);
            assert!(v.verify(&request(&sig, "1767315600"), BODY, at(TS)).is_ok());
        }
        let sig = sign(3, "1767315600", BODY);
        assert!(
            v.verify(&request(&sig, "1767315600"), BODY, at(TS))
                .is_err()
        );
    }

    #[test]
    fn no_window_by_default_but_a_configured_one_applies() {
        let sig = sign(1, "1767315600", BODY);
        let late = at(TS + 86_400);
        assert!(
            verifier(1)
                .verify(&request(&sig, "1767315600"), BODY, late)
                .is_ok()
        );
        let strict = verifier(1).tolerance(Tolerance::symmetric(Duration::from_secs(300)));
        assert_eq!(
            strict
                .verify(&request(&sig, "1767315600"), BODY, late)
                .unwrap_err(),
            VerifyError::StaleTimestamp
        );
        assert_eq!(
            strict
                .verify(&request(&sig, "1767315600"), BODY, at(TS - 301))
                .unwrap_err(),
            VerifyError::FutureTimestamp
        );
    }

    #[test]
    fn extreme_or_non_numeric_timestamps_are_clean_errors_with_a_window() {
        let strict = verifier(1).tolerance(Tolerance::default());
        for ts in ["99999999999999999999", "-1", "abc"] {
            let sig = sign(1, ts, BODY);
            let got = strict.verify(&request(&sig, ts), BODY, at(TS));
            assert!(matches!(got, Err(VerifyError::MalformedHeader(_))), "{ts}");
        }
    }
}
