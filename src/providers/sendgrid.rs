//! SendGrid Event Webhook: ECDSA P-256 / SHA-256 over `{timestamp}{body}`.

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::request::Parts;
use p256::ecdsa::signature::DigestVerifier as _;
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use sha2::Digest as _;

use super::kit;
use crate::error::ConfigError;
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

/// The largest DER ECDSA P-256 signature is 72 bytes (96 base64 chars);
/// anything longer cannot be one.
const MAX_SIG_B64: usize = 96;

/// [SendGrid Event Webhook](https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features):
/// ECDSA over P-256 with SHA-256 of the `X-Twilio-Email-Event-Webhook-Timestamp`
/// text immediately followed by the raw body (a JSON array ending in
/// `\r\n`, which is signed). The signature header holds base64 of an ASN.1
/// DER signature. The key is the "verification key" from Mail Settings:
/// base64 of a DER SubjectPublicKeyInfo, given as is to [`SendGrid::new`].
///
/// SendGrid's libraries check no time window, so neither does this by
/// default; [`SendGrid::tolerance`] adds one. The timestamp is signed.
///
/// Event ids are per event (`sg_event_id` in each array element); the
/// delivery as a whole has none, so [`Verified::event_id`] is unset and the
/// signature itself identifies the delivery for de-duplication.
///
/// ```
/// use tower_webhook::providers::SendGrid;
///
/// let key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
/// let sendgrid = SendGrid::new(key)?;
/// assert!(SendGrid::new("not a key").is_err());
/// # let _ = sendgrid;
/// # Ok::<(), tower_webhook::ConfigError>(())
/// ```
pub struct SendGrid {
    keys: Vec<(VerifyingKey, Option<Arc<str>>)>,
    tolerance: Tolerance,
}

fn parse_key(base64_spki: &str) -> Result<VerifyingKey, ConfigError> {
    const WHAT: &str = "expected base64 of a DER SubjectPublicKeyInfo (P-256)";
    let der = STANDARD
        .decode(base64_spki.trim())
        .map_err(|_| ConfigError::InvalidKey(WHAT))?;
    VerifyingKey::from_public_key_der(&der).map_err(|_| ConfigError::InvalidKey(WHAT))
}

impl SendGrid {
    /// A verifier for this verification key (base64 SPKI DER, as SendGrid
    /// shows it); no time window.
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when `base64_spki` is not a P-256 public
    /// key in that form.
    pub fn new(base64_spki: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: vec![(parse_key(base64_spki)?, None)],
            tolerance: Tolerance::unchecked(),
        })
    }

    /// Accepts signatures verifying under this key too (rotation), reported
    /// as `label` in [`Verified::key_label`].
    ///
    /// # Errors
    /// As [`SendGrid::new`].
    pub fn add_key(mut self, base64_spki: &str, label: &str) -> Result<Self, ConfigError> {
        self.keys
            .push((parse_key(base64_spki)?, Some(label.into())));
        Ok(self)
    }

    /// Bounds the age of the signed timestamp (Unix seconds). SendGrid
    /// documents none.
    pub fn tolerance(mut self, tolerance: Tolerance) -> Self {
        self.tolerance = tolerance;
        self
    }
}

impl std::fmt::Debug for SendGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendGrid")
            .field("keys", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier for SendGrid {
    fn provider(&self) -> &'static str {
        "sendgrid"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let sig_b64 = kit::signature(parts, SIGNATURE)?;
        let ts_text = kit::required(parts, TIMESTAMP)?;
        // Malformed signatures cannot match; they are a mismatch, not a 400
        // (no oracle on what was wrong).
        if sig_b64.len() > MAX_SIG_B64 {
            return Err(VerifyError::SignatureMismatch);
        }
        let mut der = [0u8; 72];
        let n = STANDARD
            .decode_slice(sig_b64.as_bytes(), &mut der)
            .map_err(|_| VerifyError::SignatureMismatch)?;
        let sig = DerSignature::from_bytes(der.get(..n).unwrap_or_default())
            .map_err(|_| VerifyError::SignatureMismatch)?;

        // Hash the timestamp and the body as they are: no copy of the body.
        let sig = Signature::try_from(sig).map_err(|_| VerifyError::SignatureMismatch)?;
        let message = |d: &mut sha2::Sha256| {
            d.update(ts_text.as_bytes());
            d.update(body);
            Ok(())
        };
        let label = self
            .keys
            .iter()
            .find(|(key, _)| key.verify_digest(message, &sig).is_ok())
            .map(|(_, label)| label.clone())
            .ok_or(VerifyError::SignatureMismatch)?;

        let ts = if self.tolerance == Tolerance::unchecked() {
            kit::parse_unix(ts_text, TIMESTAMP).ok()
        } else {
            let ts = kit::parse_unix(ts_text, TIMESTAMP)?;
            self.tolerance.check_secs(ts, now)?;
            Some(ts)
        };
        let mut v = Verified::new("sendgrid")
            .with_key_label(label)
            // The normalized signature: ECDSA's (r, n - s) verifies too, so
            // the raw DER bytes would let a replay pose as a new delivery.
            .with_content_digest(digest(&sig.normalize_s().to_bytes()));
        if let Some(ts) = ts {
            v = v.with_timestamp(ts);
        }
        Ok(v)
    }
}

/// SHA-256 of the signature bytes: ECDSA signatures are randomised, so this
/// names one delivery (a replay carries the same bytes).
fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;

    use super::*;

    const TS: u64 = 1_767_319_200;
    const BODY: &[u8] = b"[{\"sg_event_id\":\"e1\",\"event\":\"processed\"}]\r\n";

    fn signer(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    fn key_b64(seed: u8) -> String {
        let der = signer(seed).verifying_key().to_public_key_der().unwrap();
        STANDARD.encode(der.as_bytes())
    }

    fn sign(seed: u8, ts: &str, body: &[u8]) -> String {
        let msg = [ts.as_bytes(), body].concat();
        let sig: DerSignature = signer(seed).sign(&msg);
        STANDARD.encode(sig.as_bytes())
    }

    fn request(sig: &str, ts: &str) -> Parts {
        http::Request::post("/sg")
            .header(SIGNATURE, sig)
            .header(TIMESTAMP, ts)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_flipped_twin_of_a_signature_has_the_same_digest() {
        // (r, n - s) verifies as well as (r, s): the replay digest must not
        // tell them apart, or a replay would pass as a new delivery
        let msg = [b"1767319200".as_slice(), BODY].concat();
        let sig: Signature = signer(7).sign(&msg);
        let (r, s) = sig.split_scalars();
        let twin = Signature::from_scalars(r, -*s).unwrap();
        assert_ne!(sig, twin);
        let v = SendGrid::new(&key_b64(7)).unwrap();
        let verify = |sig: Signature| {
            let der = STANDARD.encode(sig.to_der().as_bytes());
            v.verify(&request(&der, "1767319200"), BODY, at(TS))
                .unwrap()
        };
        let (a, b) = (verify(sig), verify(twin));
        assert_eq!(a.content_digest(), b.content_digest());
    }

    #[test]
    fn accepts_a_signed_batch() {
        let sig = sign(7, "1767319200", BODY);
        let v = SendGrid::new(&key_b64(7))
            .unwrap()
            .verify(&request(&sig, "1767319200"), BODY, at(TS))
            .unwrap();
        assert_eq!(v.timestamp(), Some(1_767_319_200));
        assert!(v.content_digest().is_some());
    }

    #[test]
    fn rejects_body_without_its_trailing_crlf() {
        let sig = sign(7, "1767319200", BODY);
        let cut = &BODY[..BODY.len() - 2];
        let got =
            SendGrid::new(&key_b64(7))
                .unwrap()
                .verify(&request(&sig, "1767319200"), cut, at(TS));
        assert_eq!(got.unwrap_err(), VerifyError::SignatureMismatch);
    }

    #[test]
    fn rejects_signature_with_one_flipped_bit() {
        let sig = sign(7, "1767319200", BODY);
        let mut raw = STANDARD.decode(&sig).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let got = SendGrid::new(&key_b64(7)).unwrap().verify(
            &request(&STANDARD.encode(raw), "1767319200"),
            BODY,
            at(TS),
        );
        assert_eq!(got.unwrap_err(), VerifyError::SignatureMismatch);
    }

    #[test]
    fn garbage_and_overlong_signatures_are_mismatches() {
        let v = SendGrid::new(&key_b64(7)).unwrap();
        for bad in ["!!!", "AAAA", &"A".repeat(200), "MEUCIQ=="] {
            let got = v.verify(&request(bad, "1767319200"), BODY, at(TS));
            assert_eq!(got.unwrap_err(), VerifyError::SignatureMismatch, "{bad}");
        }
    }

    #[test]
    fn rejects_timestamp_edited_after_signing() {
        let sig = sign(7, "1767319200", BODY);
        let got =
            SendGrid::new(&key_b64(7))
                .unwrap()
                .verify(&request(&sig, "1767319201"), BODY, at(TS));
        assert_eq!(got.unwrap_err(), VerifyError::SignatureMismatch);
    }

    #[test]
    fn rotated_key_verifies_and_is_named() {
        let v = SendGrid::new(&key_b64(7))
            .unwrap()
            .add_key(&key_b64(8), "new")
            .unwrap();
        let sig = sign(8, "1767319200", BODY);
        let got = v
            .verify(&request(&sig, "1767319200"), BODY, at(TS))
            .unwrap();
        assert_eq!(got.key_label(), Some("new"));
        let other = sign(9, "1767319200", BODY);
        assert!(
            v.verify(&request(&other, "1767319200"), BODY, at(TS))
                .is_err()
        );
    }

    #[test]
    fn configured_window_rejects_stale_and_future() {
        let v = SendGrid::new(&key_b64(7))
            .unwrap()
            .tolerance(Tolerance::symmetric(Duration::from_secs(300)));
        let sig = sign(7, "1767319200", BODY);
        assert_eq!(
            v.verify(&request(&sig, "1767319200"), BODY, at(TS + 301))
                .unwrap_err(),
            VerifyError::StaleTimestamp
        );
        assert_eq!(
            v.verify(&request(&sig, "1767319200"), BODY, at(TS - 301))
                .unwrap_err(),
            VerifyError::FutureTimestamp
        );
        assert!(
            v.verify(&request(&sig, "1767319200"), BODY, at(TS + 300))
                .is_ok()
        );
    }

    #[test]
    fn refuses_keys_that_are_not_p256_spki() {
        assert!(SendGrid::new("").is_err());
        assert!(SendGrid::new("AAAA").is_err());
        // an Ed25519 SPKI is valid DER but not a P-256 key
        assert!(
            SendGrid::new("MCowBQYDK2VwAyEA1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=").is_err()
        );
    }
}
