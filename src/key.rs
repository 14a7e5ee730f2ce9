//! [`PublicKey`]: an Ed25519 verification key (Standard Webhooks `v1a`,
//! Discord), and the crate-private set of them a verifier holds.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::error::ConfigError;
use crate::providers::kit::Candidates;
use crate::verify::{KeyTag, VerifyError};

/// An Ed25519 public key: what an asymmetric sender publishes so that
/// receivers can verify without holding anything secret.
///
/// Verification uses `ed25519-dalek`'s `verify_strict` (small-order keys and
/// signature points, non-canonical encodings are refused).
///
/// | provider shows | constructor |
/// |---|---|
/// | `whpk_` + base64 (Standard Webhooks / Svix `v1a`) | [`PublicKey::standard_webhooks`] |
/// | 64 hex digits (Discord's application public key) | [`PublicKey::hex`] |
/// | 32 raw bytes | [`PublicKey::from_bytes`] |
///
/// ```
/// use tower_webhook::PublicKey;
///
/// let k = PublicKey::standard_webhooks("whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=")?;
/// assert_eq!(format!("{:?}", k.with_label("2026")), "PublicKey(\"2026\", ed25519)");
/// assert!(PublicKey::hex("00").is_err()); // not 32 bytes
/// # Ok::<(), tower_webhook::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    label: Option<Arc<str>>,
    expires_at: Option<SystemTime>,
    retiring: bool,
}

impl PublicKey {
    /// The key with these 32 bytes.
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when the bytes are not a point on the curve.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, ConfigError> {
        let key = VerifyingKey::from_bytes(bytes)
            .map_err(|_| ConfigError::InvalidKey("not an Ed25519 public key"))?;
        Ok(Self {
            key,
            label: None,
            expires_at: None,
            retiring: false,
        })
    }

    fn from_slice(bytes: &[u8], what: &'static str) -> Result<Self, ConfigError> {
        let arr: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| ConfigError::InvalidKey(what))?;
        Self::from_bytes(arr)
    }

    /// A Standard Webhooks public key: `whpk_` followed by the standard,
    /// padded base64 of the 32 key bytes. The prefix is optional.
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when the rest is not base64 of 32 bytes
    /// of an Ed25519 point.
    pub fn standard_webhooks(text: &str) -> Result<Self, ConfigError> {
        const WHAT: &str = "expected `whpk_` followed by base64 of 32 bytes";
        let b64 = text.trim();
        let b64 = b64.strip_prefix("whpk_").unwrap_or(b64);
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| ConfigError::InvalidKey(WHAT))?;
        Self::from_slice(&bytes, WHAT)
    }

    /// A key written as 64 hexadecimal digits (Discord shows it this way).
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when `text` is not hex of 32 bytes of an
    /// Ed25519 point.
    pub fn hex(text: &str) -> Result<Self, ConfigError> {
        const WHAT: &str = "expected 64 hexadecimal digits";
        let bytes = hex::decode(text.trim()).map_err(|_| ConfigError::InvalidKey(WHAT))?;
        Self::from_slice(&bytes, WHAT)
    }

    /// Names this key; [`Verified::key_label`](crate::Verified::key_label)
    /// reports the label of the key that matched.
    pub fn with_label(mut self, label: impl Into<Arc<str>>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The key is not used at or after `at`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Marks the key as on its way out, as [`Secret::retiring`](crate::Secret::retiring):
    /// a delivery that matches it logs a warning.
    pub fn retiring(mut self) -> Self {
        self.retiring = true;
        self
    }

    /// The 32 key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    fn is_active(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retiring = if self.retiring { ", retiring" } else { "" };
        match &self.label {
            Some(label) => write!(f, "PublicKey({label:?}, ed25519{retiring})"),
            None => write!(f, "PublicKey(ed25519{retiring})"),
        }
    }
}

/// The Ed25519 keys of one verifier (rotation: several may be active).
#[derive(Clone, Default)]
pub(crate) struct Ed25519Keys {
    keys: Vec<PublicKey>,
}

impl Ed25519Keys {
    pub(crate) fn add(&mut self, key: PublicKey) {
        self.keys.push(key);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks every 64-byte candidate against every active key with
    /// `verify_strict`; candidates of another length cannot match.
    ///
    /// # Errors
    /// [`VerifyError::SignatureMismatch`], or [`VerifyError::NoActiveSecret`]
    /// when no key is active.
    pub(crate) fn verify(
        &self,
        now: SystemTime,
        message: &[u8],
        candidates: &Candidates,
    ) -> Result<KeyTag, VerifyError> {
        let mut any = false;
        for key in self.keys.iter().filter(|k| k.is_active(now)) {
            any = true;
            for c in candidates.iter() {
                let Ok(bytes) = <&[u8; 64]>::try_from(c.as_bytes()) else {
                    continue;
                };
                let sig = Signature::from_bytes(bytes);
                if key.key.verify_strict(message, &sig).is_ok() {
                    return Ok(KeyTag {
                        label: key.label.clone(),
                        retiring: key.retiring,
                    });
                }
            }
        }
        if any {
            Err(VerifyError::SignatureMismatch)
        } else {
            Err(VerifyError::NoActiveSecret)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_keys_of_the_wrong_length_or_alphabet() {
        for bad in [
            "whpk_",
            "whpk_AAEC",
            "whpk_not base64",
            "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=AAAA",
        ] {
            assert!(PublicKey::standard_webhooks(bad).is_err(), "{bad}");
        }
        assert!(PublicKey::hex(&"ab".repeat(31)).is_err());
        assert!(PublicKey::hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_two_notations_of_one_key_agree() {
        let a = PublicKey::standard_webhooks("whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=")
            .unwrap();
        let b = PublicKey::hex(&hex::encode(a.to_bytes())).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
    }
}
