//! GitHub: `X-Hub-Signature-256: sha256=<hex>` (legacy SHA-1 on opt-in).

use std::time::SystemTime;

use http::HeaderName;
use http::request::Parts;

use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::secret::Secret;
use crate::verify::{Verified, Verifier, VerifyError};

static SIGNATURE_256: HeaderName = HeaderName::from_static("x-hub-signature-256");
static SIGNATURE_1: HeaderName = HeaderName::from_static("x-hub-signature");
static DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");
static EVENT: HeaderName = HeaderName::from_static("x-github-event");

/// [GitHub](https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries):
/// HMAC-SHA256 of the body, `sha256=` + lowercase hex in
/// `X-Hub-Signature-256`. No timestamp: GitHub signs none.
///
/// The legacy `X-Hub-Signature: sha1=…` header is only used when opted in
/// with [`GitHub::allow_sha1`], and only when the SHA-256 header is absent.
///
/// Event id: `X-GitHub-Delivery`; event type: `X-GitHub-Event`. **Neither
/// is signed**: anyone holding one captured delivery can resend it with any
/// delivery id and any event type. So the layer de-duplicates on the
/// signature alone (a hash of it): a replay under a fresh id, another type,
/// or both, is a duplicate, and a replay can never take the id of a genuine
/// delivery. [`Verified::id_signed`] and [`Verified::type_signed`] are
/// false: a handler that acts on the type should check it against the
/// payload (a `push` payload has `ref` and `commits`, say). Two deliveries
/// with byte-identical bodies are one event. Payloads may be JSON or
/// form-encoded (`payload=`).
pub struct GitHub {
    keys: KeySet,
    sha1: KeySet,
    allow_sha1: bool,
}

impl GitHub {
    /// A verifier with one secret (the text you typed into GitHub).
    pub fn new(secret: Secret) -> Self {
        Self {
            keys: KeySet::new(Algorithm::Sha256, &secret),
            sha1: KeySet::new(Algorithm::Sha1, &secret),
            allow_sha1: false,
        }
    }

    /// Accepts signatures made with `secret` too (rotation).
    pub fn add_secret(mut self, secret: Secret) -> Self {
        self.keys.add(&secret);
        self.sha1.add(&secret);
        self
    }

    /// Also accepts the legacy `X-Hub-Signature: sha1=…` header when the
    /// SHA-256 header is absent. HMAC-SHA1 is still unbroken, but prefer
    /// SHA-256: every GitHub delivery carries it.
    pub fn allow_sha1(mut self) -> Self {
        self.allow_sha1 = true;
        self
    }
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("secrets", &"***")
            .field("allow_sha1", &self.allow_sha1)
            .finish()
    }
}

impl Verifier for GitHub {
    fn provider(&self) -> &'static str {
        "github"
    }

    fn content_types(&self) -> &[&'static str] {
        &["application/json", "application/x-www-form-urlencoded"]
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let legacy = self.allow_sha1 && kit::header(parts, &SIGNATURE_256)?.is_none();
        let (keys, name, prefix) = if legacy {
            (&self.sha1, &SIGNATURE_1, "sha1=")
        } else {
            (&self.keys, &SIGNATURE_256, "sha256=")
        };
        let header = kit::signature(parts, name)?;
        let candidates = match header.strip_prefix(prefix) {
            Some(hex) => Candidates::one(hex.as_bytes(), Encoding::Hex),
            None => Candidates::new(),
        };
        let m = keys.verify(now, &[body], &candidates)?;
        // The digest is the SHA-256 signature whichever header was checked
        // (GitHub signs both with one secret), so a capture replayed without
        // its SHA-256 header is still a duplicate.
        let digest = match legacy {
            true => self
                .keys
                .mac_with(m.index, &[body])
                .unwrap_or(m.mac)
                .digest32(),
            false => m.mac.digest32(),
        };

        let mut v = Verified::new("github")
            .with_key(m.key())
            .with_content_digest(digest);
        let id = kit::header(parts, &DELIVERY)?.filter(|s| !s.is_empty());
        let ty = kit::header(parts, &EVENT)?.filter(|s| !s.is_empty());
        v.set_event(
            id.map(|id| (id.to_owned(), false)),
            ty.map(|ty| (ty.to_owned(), false)),
        );
        Ok(v)
    }
}
