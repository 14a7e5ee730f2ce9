//! A configurable HMAC scheme for in-house senders.

use std::time::SystemTime;

use http::HeaderName;
use http::request::Parts;

use super::kit::{self, Candidates, KeySet};
pub use super::kit::{Algorithm, Encoding};
use crate::error::ConfigError;
use crate::secret::Secret;
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

/// What the sender signs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Signed {
    /// The raw body alone.
    Body,
    /// The timestamp header's text, then `separator`, then the body
    /// (`1700000000.{"a":1}` with separator `"."`).
    TimestampAndBody {
        /// Header carrying Unix seconds.
        header: HeaderName,
        /// Bytes between the timestamp and the body.
        separator: String,
    },
}

/// A configurable HMAC scheme for senders you control: which header carries
/// the signature, its prefix and encoding, the hash, and what is signed.
///
/// ```
/// use tower_webhook::providers::hmac::{Algorithm, Encoding, Hmac};
/// use tower_webhook::Secret;
///
/// let verifier = Hmac::builder("x-acme-signature")
///     .prefix("sha512=")
///     .encoding(Encoding::Hex)
///     .algorithm(Algorithm::Sha512)
///     .signed_timestamp("x-acme-timestamp", ".")
///     .id_header("x-acme-event-id")
///     .add_secret(Secret::text("in-house secret")?)
///     .build()?;
/// # let _ = verifier;
/// # Ok::<(), tower_webhook::ConfigError>(())
/// ```
pub struct Hmac {
    keys: KeySet,
    header: HeaderName,
    prefix: String,
    encoding: Encoding,
    signed: Signed,
    tolerance: Tolerance,
    id_header: Option<HeaderName>,
    type_header: Option<HeaderName>,
    provider: &'static str,
}

impl std::fmt::Debug for Hmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hmac")
            .field("header", &self.header)
            .field("prefix", &self.prefix)
            .field("encoding", &self.encoding)
            .field("signed", &self.signed)
            .field("tolerance", &self.tolerance)
            .field("secrets", &"***")
            .finish_non_exhaustive()
    }
}

/// Builds an [`Hmac`] verifier; see [`Hmac::builder`].
#[derive(Debug)]
#[must_use]
pub struct HmacBuilder {
    header: Result<HeaderName, ConfigError>,
    prefix: String,
    encoding: Encoding,
    algorithm: Algorithm,
    signed: Result<Signed, ConfigError>,
    tolerance: Tolerance,
    id_header: Option<Result<HeaderName, ConfigError>>,
    type_header: Option<Result<HeaderName, ConfigError>>,
    secrets: Vec<Secret>,
    provider: &'static str,
}

fn name(text: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::try_from(text).map_err(|_| ConfigError::InvalidHeaderName(text.to_owned()))
}

impl Hmac {
    /// Starts a scheme whose signature is in header `signature_header`.
    /// Defaults: no prefix, lowercase hex, SHA-256, body only, provider name
    /// `"hmac"`.
    pub fn builder(signature_header: &str) -> HmacBuilder {
        HmacBuilder {
            header: name(signature_header),
            prefix: String::new(),
            encoding: Encoding::Hex,
            algorithm: Algorithm::Sha256,
            signed: Ok(Signed::Body),
            tolerance: Tolerance::default(),
            id_header: None,
            type_header: None,
            secrets: Vec::new(),
            provider: "hmac",
        }
    }
}

impl HmacBuilder {
    /// Text before the signature (`"sha256="`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Hex or base64.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }
    /// SHA-1, SHA-256 or SHA-512.
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }
    /// Signs `{timestamp header}{separator}{body}` and checks the timestamp
    /// (Unix seconds) against the tolerance.
    pub fn signed_timestamp(mut self, header: &str, separator: impl Into<String>) -> Self {
        self.signed = name(header).map(|header| Signed::TimestampAndBody {
            header,
            separator: separator.into(),
        });
        self
    }
    /// How far the timestamp may be from now (default 300 s both ways).
    pub fn tolerance(mut self, tolerance: Tolerance) -> Self {
        self.tolerance = tolerance;
        self
    }
    /// Header with the event id, shown to the handler. It is not signed, so
    /// it is never claimed: the layer de-duplicates on the signature (a
    /// hash of it), as for GitHub.
    pub fn id_header(mut self, header: &str) -> Self {
        self.id_header = Some(name(header));
        self
    }
    /// Header with the event type (unsigned: shown to the handler with
    /// [`Verified::type_signed`](crate::Verified::type_signed) false).
    pub fn type_header(mut self, header: &str) -> Self {
        self.type_header = Some(name(header));
        self
    }
    /// Name in logs and metrics (default `"hmac"`).
    pub fn provider_name(mut self, name: &'static str) -> Self {
        self.provider = name;
        self
    }
    /// Adds an active secret; several may be active (rotation).
    pub fn add_secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Finishes the verifier.
    ///
    /// # Errors
    /// [`ConfigError::InvalidHeaderName`] for a bad header name,
    /// [`ConfigError::NoSecret`] when no secret was added.
    pub fn build(self) -> Result<Hmac, ConfigError> {
        let mut secrets = self.secrets.iter();
        let first = secrets.next().ok_or(ConfigError::NoSecret)?;
        let mut keys = KeySet::new(self.algorithm, first);
        for s in secrets {
            keys.add(s);
        }
        Ok(Hmac {
            keys,
            header: self.header?,
            prefix: self.prefix,
            encoding: self.encoding,
            signed: self.signed?,
            tolerance: self.tolerance,
            id_header: self.id_header.transpose()?,
            type_header: self.type_header.transpose()?,
            provider: self.provider,
        })
    }
}

impl Verifier for Hmac {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn content_types(&self) -> &[&'static str] {
        &[]
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let header = kit::header_as(parts, &self.header, "signature")?
            .filter(|s| !s.trim().is_empty())
            .ok_or(VerifyError::MissingSignature("signature"))?;
        let candidates = match header.strip_prefix(self.prefix.as_str()) {
            Some(sig) => Candidates::one(sig.as_bytes(), self.encoding),
            None => Candidates::new(),
        };
        let mut v = Verified::new(self.provider);
        let m = match &self.signed {
            Signed::Body => self.keys.verify(now, &[body], &candidates)?,
            Signed::TimestampAndBody { header, separator } => {
                let text = kit::header_as(parts, header, "timestamp")?
                    .filter(|s| !s.is_empty())
                    .ok_or(VerifyError::MissingHeader("timestamp"))?;
                let ts = kit::parse_unix(text, "timestamp")?;
                let m = self.keys.verify(
                    now,
                    &[text.as_bytes(), separator.as_bytes(), body],
                    &candidates,
                )?;
                self.tolerance.check_secs(ts, now)?;
                v = v.with_timestamp(ts);
                m
            }
        };
        v = v.with_key(m.key()).with_content_digest(m.mac.digest32());
        if let Some(h) = &self.id_header
            && let Some(id) = kit::header_as(parts, h, "event id")?.filter(|s| !s.is_empty())
        {
            v = v.with_event_id(id, false);
        }
        if let Some(h) = &self.type_header
            && let Some(ty) = kit::header_as(parts, h, "event type")?.filter(|s| !s.is_empty())
        {
            v = v.with_event_type(ty, false);
        }
        Ok(v)
    }
}
