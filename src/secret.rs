//! [`Secret`]: key material that zeroizes on drop and never prints.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::ConfigError;

/// Key material for a symmetric signature scheme (an HMAC key, a shared token).
///
/// The bytes are zeroized when the value is dropped, `Debug` prints
/// `Secret(***)` (with the label, if any), and there is no `Display` nor
/// `Serialize`: a secret cannot end up in a log line by accident.
///
/// Each provider presents its secret in its own format; pick the constructor
/// that matches what the provider's dashboard shows you:
///
/// | provider shows | constructor |
/// |---|---|
/// | `whsec_` + base64 (Standard Webhooks, Svix, Clerk, Resend, GitLab signing token) | [`Secret::standard_webhooks`] |
/// | a plain string (Stripe's `whsec_…` too: Stripe uses the whole string) | [`Secret::text`] |
/// | hex (Adyen) | [`Secret::hex`] |
/// | raw bytes | [`Secret::new`] |
///
/// ```
/// use tower_webhook::Secret;
///
/// let s = Secret::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?.with_label("2026-q4");
/// assert_eq!(format!("{s:?}"), "Secret(\"2026-q4\", ***)");
/// assert!(Secret::text("").is_err()); // an empty key is refused
/// # Ok::<(), tower_webhook::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    bytes: Zeroizing<Vec<u8>>,
    label: Option<Arc<str>>,
    expires_at: Option<SystemTime>,
    retiring: bool,
}

impl Secret {
    /// A secret made of these exact bytes.
    ///
    /// # Errors
    /// [`ConfigError::EmptySecret`] when `bytes` is empty.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        Ok(Self {
            bytes,
            label: None,
            expires_at: None,
            retiring: false,
        })
    }

    /// A secret used as the UTF-8 bytes of `text`, without any decoding
    /// (Stripe, GitHub, Slack, Shopify and most HMAC providers).
    ///
    /// # Errors
    /// [`ConfigError::EmptySecret`] when `text` is empty.
    pub fn text(text: &str) -> Result<Self, ConfigError> {
        Self::new(text.as_bytes().to_vec())
    }

    /// A Standard Webhooks / Svix secret: `whsec_` followed by standard,
    /// padded base64. The prefix is optional; the decoded bytes are the key.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSecret`] when the rest is not valid base64,
    /// [`ConfigError::EmptySecret`] when it decodes to nothing.
    pub fn standard_webhooks(text: &str) -> Result<Self, ConfigError> {
        let b64 = text.strip_prefix("whsec_").unwrap_or(text);
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|_| ConfigError::InvalidSecret("expected `whsec_` followed by base64"))?;
        Self::new(bytes)
    }

    /// A secret shown as hex (Adyen's HMAC key); the decoded bytes are the key.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSecret`] when `text` is not hex,
    /// [`ConfigError::EmptySecret`] when it is empty.
    pub fn hex(text: &str) -> Result<Self, ConfigError> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| ConfigError::InvalidSecret("expected hexadecimal digits"))?;
        Self::new(bytes)
    }

    /// Names this secret; [`Verified::key_label`](crate::Verified::key_label)
    /// reports the label of the secret that matched, so an old secret can be
    /// retired once nothing matches it any more.
    pub fn with_label(mut self, label: impl Into<Arc<str>>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The secret is not used at or after `at`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Marks the secret as on its way out: it still verifies, but each
    /// delivery that matches it logs a warning naming the provider and the
    /// label (never the secret), and [`Verified::key_retiring`](crate::Verified::key_retiring)
    /// says so. Label the secret to tell which one is meant.
    pub fn retiring(mut self) -> Self {
        self.retiring = true;
        self
    }

    /// Whether the secret is marked [retiring](Self::retiring).
    pub fn is_retiring(&self) -> bool {
        self.retiring
    }

    /// The label given with [`Secret::with_label`].
    pub fn label(&self) -> Option<&Arc<str>> {
        self.label.as_ref()
    }

    /// When the secret stops being used, if it expires.
    pub fn expiry(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Whether the secret may be used at `now`.
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// The key bytes. Keep them out of logs.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retiring = if self.retiring { ", retiring" } else { "" };
        match &self.label {
            Some(label) => write!(f, "Secret({label:?}, ***{retiring})"),
            None => write!(f, "Secret(***{retiring})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_secret_strips_prefix_and_decodes() {
        let s = Secret::standard_webhooks("whsec_AAEC").unwrap();
        assert_eq!(s.expose(), &[0, 1, 2]);
        let bare = Secret::standard_webhooks("AAEC").unwrap();
        assert_eq!(bare.expose(), &[0, 1, 2]);
    }

    #[test]
    fn refuses_empty_and_undecodable_secrets() {
        assert!(matches!(Secret::text(""), Err(ConfigError::EmptySecret)));
        assert!(matches!(
            Secret::standard_webhooks("whsec_"),
            Err(ConfigError::EmptySecret)
        ));
        assert!(matches!(
            Secret::standard_webhooks("whsec_not base64!"),
            Err(ConfigError::InvalidSecret(_))
        ));
        assert!(matches!(
            Secret::hex("zz"),
            Err(ConfigError::InvalidSecret(_))
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let s = Secret::text("hunter2-very-secret").unwrap();
        let shown = format!("{s:?} {:?}", s.clone().with_label("old"));
        assert!(!shown.contains("hunter2"));
        assert_eq!(shown, "Secret(***) Secret(\"old\", ***)");
        let retiring = format!("{:?}", s.with_label("2025").retiring());
        assert_eq!(retiring, "Secret(\"2025\", ***, retiring)");
    }

    #[test]
    fn expired_secret_is_inactive() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100);
        let s = Secret::text("k").unwrap().expires_at(at);
        assert!(s.is_active(at - std::time::Duration::from_secs(1)));
        assert!(!s.is_active(at));
    }
}
