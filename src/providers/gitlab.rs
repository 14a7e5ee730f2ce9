//! GitLab: the secret token (`X-Gitlab-Token`) or the signing token
//! (Standard Webhooks v1).

use std::sync::Arc;
use std::time::SystemTime;

use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::StandardWebhooks;
use super::kit;
use crate::secret::Secret;
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

const TOKEN: &str = "x-gitlab-token";
const IDEMPOTENCY_KEY: &str = "idempotency-key";
const EVENT_UUID: &str = "x-gitlab-event-uuid";
const EVENT: &str = "x-gitlab-event";

/// [GitLab](https://docs.gitlab.com/user/project/integrations/webhooks/),
/// either scheme:
///
/// - [`GitLab::token`]: GitLab sends the configured secret token verbatim in
///   `X-Gitlab-Token`; it is compared in constant time (as SHA-256 digests,
///   so not even its length leaks). **The body is not authenticated**: the
///   token proves only that the sender knows it, and anything that sees one
///   request can replay or forge others. **Nothing is de-duplicated**: the
///   id headers are not signed (a forger picks them), and a digest of the
///   body would prove nothing. Make such handlers idempotent yourself, or
///   use a signing token.
/// - [`GitLab::signing_token`]: newer GitLab signs with Standard Webhooks v1
///   (`webhook-id` = `Idempotency-Key`, `whsec_` secret), verified by
///   [`StandardWebhooks`] under the provider name `"gitlab"`.
///
/// Event id: `Idempotency-Key` (GitLab 17.4+, stable across retries), else
/// `X-Gitlab-Event-UUID`: signed (and claimed) with a signing token, only
/// shown with a plain token. Event type: `X-Gitlab-Event` (`Push Hook`),
/// never signed.
pub struct GitLab {
    scheme: Scheme,
}

enum Scheme {
    Token(Vec<Token>),
    Signing(StandardWebhooks),
}

struct Token {
    digest: Zeroizing<[u8; 32]>,
    label: Option<Arc<str>>,
    secret: Secret,
}

impl Token {
    fn new(secret: Secret) -> Self {
        if !super::kit::survives_header(secret.expose()) {
            tracing::warn!(
                label = secret.label().map(|l| &**l),
                "GitLab token starts or ends with a space or a tab: HTTP strips them, so it can never match"
            );
        }
        let digest = Zeroizing::new(Sha256::digest(secret.expose()).into());
        Self {
            digest,
            label: secret.label().cloned(),
            secret,
        }
    }
}

impl GitLab {
    /// The secret-token scheme: `X-Gitlab-Token` must equal `secret`
    /// ([`Secret::text`](crate::Secret::text)).
    pub fn token(secret: Secret) -> Self {
        Self {
            scheme: Scheme::Token(vec![Token::new(secret)]),
        }
    }

    /// The signing-token scheme (Standard Webhooks v1); the secret is the
    /// `whsec_…` string ([`Secret::standard_webhooks`](crate::Secret::standard_webhooks)).
    pub fn signing_token(secret: Secret) -> Self {
        Self {
            scheme: Scheme::Signing(StandardWebhooks::new(secret).provider_name("gitlab")),
        }
    }

    /// Accepts `secret` too (rotation).
    pub fn add_secret(mut self, secret: Secret) -> Self {
        self.scheme = match self.scheme {
            Scheme::Token(mut tokens) => {
                tokens.push(Token::new(secret));
                Scheme::Token(tokens)
            }
            Scheme::Signing(s) => Scheme::Signing(s.add_secret(secret)),
        };
        self
    }

    /// How far the signed timestamp may be from now (signing token only;
    /// default 300 s both ways). The secret token carries no timestamp.
    pub fn tolerance(mut self, tolerance: Tolerance) -> Self {
        if let Scheme::Signing(s) = self.scheme {
            self.scheme = Scheme::Signing(s.tolerance(tolerance));
        }
        self
    }
}

impl std::fmt::Debug for GitLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Token(_) => "token",
            Scheme::Signing(_) => "signing-token",
        };
        f.debug_struct("GitLab")
            .field("scheme", &scheme)
            .field("secrets", &"***")
            .finish()
    }
}

fn check_token(tokens: &[Token], parts: &Parts, now: SystemTime) -> Result<Verified, VerifyError> {
    // Byte for byte: a token is any text GitLab accepts, and it sends it
    // verbatim (UTF-8 included), so a non-ASCII header is a token too.
    let given = kit::header_bytes(parts, TOKEN, TOKEN)?
        .filter(|v| !v.trim_ascii().is_empty())
        .ok_or(VerifyError::MissingSignature(TOKEN))?;
    let given = Sha256::digest(given);
    let mut any = false;
    for t in tokens.iter().filter(|t| t.secret.is_active(now)) {
        any = true;
        if bool::from(t.digest.ct_eq(given.as_slice())) {
            return Ok(Verified::new("gitlab")
                .with_key_label(t.label.clone())
                .with_key_retiring(t.secret.is_retiring()));
        }
    }
    Err(if any {
        VerifyError::SignatureMismatch
    } else {
        VerifyError::NoActiveSecret
    })
}

impl Verifier for GitLab {
    fn provider(&self) -> &'static str {
        "gitlab"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let mut v = match &self.scheme {
            Scheme::Signing(s) => s.verify(parts, body, now)?,
            Scheme::Token(tokens) => {
                let mut v = check_token(tokens, parts, now)?;
                let id = match kit::header(parts, IDEMPOTENCY_KEY)?.filter(|s| !s.is_empty()) {
                    Some(id) => Some(id),
                    None => kit::header(parts, EVENT_UUID)?.filter(|s| !s.is_empty()),
                };
                if let Some(id) = id {
                    v = v.with_event_id(id, false);
                }
                v
            }
        };
        if let Some(ty) = kit::header(parts, EVENT)?.filter(|s| !s.is_empty()) {
            v = v.with_event_type(ty, false);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::providers::attacks::{self, Case};

    const TOKEN_TEXT: &str = "glwh-token";

    fn case() -> Case {
        Case {
            headers: attacks::headers(&[
                (TOKEN, TOKEN_TEXT),
                (IDEMPOTENCY_KEY, "idem-1"),
                (EVENT_UUID, "uuid-1"),
                (EVENT, "Push Hook"),
            ]),
            body: br#"{"object_kind":"push"}"#.to_vec(),
            now: SystemTime::UNIX_EPOCH,
        }
    }

    fn verifier() -> GitLab {
        GitLab::token(Secret::text(TOKEN_TEXT).unwrap())
    }

    #[test]
    fn a_non_ascii_token_is_compared_byte_for_byte() {
        // found by fuzzing: such a token was refused as a malformed header
        let v = GitLab::token(Secret::text("clé-ʓ").unwrap());
        let mut c = case();
        let token = |t: &str| http::HeaderValue::from_bytes(t.as_bytes()).unwrap();
        c.headers.insert(TOKEN, token("clé-ʓ"));
        assert!(c.run(&v).is_ok());
        c.headers.insert(TOKEN, token("clé-x"));
        assert_eq!(c.run(&v).unwrap_err(), VerifyError::SignatureMismatch);
        c.headers.insert(TOKEN, http::HeaderValue::from_static(" "));
        assert_eq!(c.run(&v).unwrap_err(), VerifyError::MissingSignature(TOKEN));
    }

    #[test]
    fn token_reports_idempotency_key_else_event_uuid() {
        let v = case().run(&verifier()).unwrap();
        assert_eq!(v.event_id(), Some("idem-1"));
        assert!(!v.id_signed());
        assert_eq!(v.content_digest(), None);
        assert_eq!(v.event_type(), Some("Push Hook"));
        let mut c = case();
        c.headers.remove(IDEMPOTENCY_KEY);
        assert_eq!(c.run(&verifier()).unwrap().event_id(), Some("uuid-1"));
    }

    #[test]
    fn token_refuses_every_attack_shape() {
        // The body is not authenticated by this scheme.
        attacks::assert_attack_shapes(&verifier(), &case(), &[TOKEN], false);
    }

    #[test]
    fn token_refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            GitLab::token,
            GitLab::add_secret,
            Secret::text(TOKEN_TEXT).unwrap(),
            Secret::text("glwh-other").unwrap(),
        );
    }

    #[test]
    fn token_comparison_is_exact() {
        for bad in ["glwh-token ", "GLWH-TOKEN", "glwh-toke", " glwh-token"] {
            let mut c = case();
            c.headers.insert(TOKEN, bad.parse().unwrap());
            assert!(c.run(&verifier()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signing_token_is_standard_webhooks_named_gitlab() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"object_kind":"push"}"#;
        let keys = kit::KeySet::new(
            kit::Algorithm::Sha256,
            &Secret::standard_webhooks(secret).unwrap(),
        );
        let sig = crate::providers::sign_v1(&keys, "idem-1", 1_000, body);
        let case = Case {
            headers: attacks::headers(&[
                ("webhook-id", "idem-1"),
                ("webhook-timestamp", "1000"),
                ("webhook-signature", &sig),
                (EVENT, "Push Hook"),
            ]),
            body: body.to_vec(),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000),
        };
        let v = GitLab::signing_token(Secret::standard_webhooks(secret).unwrap());
        let got = case.run(&v).unwrap();
        assert_eq!(got.provider(), "gitlab");
        assert_eq!(got.event_id(), Some("idem-1"));
        assert!(got.id_signed());
        assert_eq!(got.event_type(), Some("Push Hook"));
        attacks::assert_attack_shapes(
            &v,
            &case,
            &["webhook-id", "webhook-timestamp", "webhook-signature"],
            true,
        );
        let later = Case {
            now: case.now + Duration::from_secs(301),
            ..case
        };
        assert_eq!(later.run(&v).err(), Some(VerifyError::StaleTimestamp));
    }
}
