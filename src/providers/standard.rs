//! Standard Webhooks v1 (HMAC-SHA256) and v1a (Ed25519), and Svix, which
//! is the same scheme under `svix-*` header names.

use std::time::SystemTime;

use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::key::{Ed25519Keys, PublicKey};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

/// Header names of one flavour of the scheme.
#[derive(Debug, Clone, Copy)]
struct Names {
    id: &'static str,
    timestamp: &'static str,
    signature: &'static str,
}

const WEBHOOK: Names = Names {
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};
const SVIX: Names = Names {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

/// [Standard Webhooks](https://www.standardwebhooks.com/) v1: HMAC-SHA256
/// over `{webhook-id}.{webhook-timestamp}.{body}`, base64 signatures
/// `v1,<b64>` separated by spaces, 300 s tolerance both ways.
///
/// Also the scheme of every Svix-based sender that white-labels its headers
/// (`webhook-*`), of Zapier's connection webhooks and of GitLab's signing
/// token. The secret is `whsec_` + base64: use [`Secret::standard_webhooks`](crate::Secret::standard_webhooks).
/// If a request carries `svix-*` headers instead, those are read.
///
/// Asymmetric senders sign with `v1a` (Ed25519, base64 of 64 bytes) over
/// the same content; add their `whpk_…` public keys with
/// [`add_public_key`](Self::add_public_key), or build a verifier that holds
/// only public keys with [`with_public_key`](Self::with_public_key). One
/// verifier may hold both kinds; a header may mix `v1,` and `v1a,` entries,
/// and any entry that verifies under any active key accepts the delivery.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_webhook::{providers::StandardWebhooks, PublicKey, Secret, Verifier};
///
/// let verifier = StandardWebhooks::new(Secret::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?)
///     .add_public_key(PublicKey::standard_webhooks("whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=")?);
/// let req = http::Request::post("/hook")
///     .header("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
///     .header("webhook-timestamp", "1614265330")
///     .header("webhook-signature", "v1,bm90LWEtbWF0Y2g= v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==")
///     .body(())?;
/// let now = UNIX_EPOCH + Duration::from_secs(1_614_265_330);
/// let verified = verifier.verify(&req.into_parts().0, br#"{"test": 2432232314}"#, now)?;
/// assert_eq!(verified.event_id(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Event id: `webhook-id` (signed). Event type: the body's `type` field.
pub struct StandardWebhooks {
    keys: KeySet,
    public_keys: Ed25519Keys,
    tolerance: Tolerance,
    names: [Names; 2],
    provider: &'static str,
}

hmac_provider!(StandardWebhooks, Algorithm::Sha256, tolerance);

impl StandardWebhooks {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            public_keys: Ed25519Keys::default(),
            tolerance: Tolerance::default(),
            names: [WEBHOOK, SVIX],
            provider: "standard-webhooks",
        }
    }

    /// A verifier holding one Ed25519 public key and no secret (a sender
    /// that signs only with `v1a`).
    pub fn with_public_key(key: PublicKey) -> Self {
        Self::from_keys(KeySet::empty(Algorithm::Sha256)).add_public_key(key)
    }

    /// Accepts `v1a` (Ed25519) signatures made with the private half of
    /// `key` too.
    pub fn add_public_key(mut self, key: PublicKey) -> Self {
        self.public_keys.add(key);
        self
    }

    /// Reports deliveries under another provider name (`"clerk"`,
    /// `"resend"`, `"gitlab"`): same scheme, another label in logs.
    pub fn provider_name(mut self, name: &'static str) -> Self {
        self.provider = name;
        self
    }
}

impl Verifier for StandardWebhooks {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        verify_v1(
            (&self.keys, &self.public_keys),
            self.tolerance,
            self.names,
            self.provider,
            parts,
            body,
            now,
        )
    }
}

/// [Svix](https://docs.svix.com/receiving/verifying-payloads/how-manual) and
/// the providers it delivers for (Clerk, Resend, ...): the Standard Webhooks
/// v1 scheme under `svix-id`, `svix-timestamp`, `svix-signature`, falling
/// back to the `webhook-*` names of white-labelled senders.
///
/// Ed25519 (`v1a`) senders: [`Svix::with_public_key`] and
/// [`Svix::add_public_key`], as on [`StandardWebhooks`].
///
/// Event id: `svix-id`. Event type: the body's `type` field.
pub struct Svix {
    keys: KeySet,
    public_keys: Ed25519Keys,
    tolerance: Tolerance,
}

hmac_provider!(Svix, Algorithm::Sha256, tolerance);

impl Svix {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            public_keys: Ed25519Keys::default(),
            tolerance: Tolerance::default(),
        }
    }

    /// A verifier holding one Ed25519 public key (`whpk_…`) and no secret.
    pub fn with_public_key(key: PublicKey) -> Self {
        Self::from_keys(KeySet::empty(Algorithm::Sha256)).add_public_key(key)
    }

    /// Accepts `v1a` (Ed25519) signatures made with the private half of
    /// `key` too.
    pub fn add_public_key(mut self, key: PublicKey) -> Self {
        self.public_keys.add(key);
        self
    }
}

impl Verifier for Svix {
    fn provider(&self) -> &'static str {
        "svix"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        verify_v1(
            (&self.keys, &self.public_keys),
            self.tolerance,
            [SVIX, WEBHOOK],
            "svix",
            parts,
            body,
            now,
        )
    }
}

/// Picks the first header set whose id header is present.
fn pick(parts: &Parts, names: [Names; 2]) -> Names {
    let [first, second] = names;
    if parts.headers.contains_key(first.id) || !parts.headers.contains_key(second.id) {
        first
    } else {
        second
    }
}

fn verify_v1(
    (keys, public_keys): (&KeySet, &Ed25519Keys),
    tolerance: Tolerance,
    names: [Names; 2],
    provider: &'static str,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<Verified, VerifyError> {
    let n = pick(parts, names);
    let sig = kit::signature(parts, n.signature)?;
    let id = kit::required(parts, n.id)?;
    let ts_text = kit::required(parts, n.timestamp)?;
    let ts = kit::parse_unix(ts_text, n.timestamp)?;

    let mut v1 = Candidates::new();
    let mut v1a = Candidates::new();
    for entry in sig.split(' ') {
        match entry.split_once(',') {
            Some(("v1", b64)) => v1.push_encoded(b64.as_bytes(), Encoding::Base64),
            Some(("v1a", b64)) => v1a.push_encoded(b64.as_bytes(), Encoding::Base64),
            _ => {}
        }
    }
    let hmac = keys.verify(
        now,
        &[id.as_bytes(), b".", ts_text.as_bytes(), b".", body],
        &v1,
    );
    let label = match hmac {
        Ok(m) => m.label(),
        Err(hmac_err) if !public_keys.is_empty() => {
            // Ed25519 takes the message in one piece.
            let mut msg = Vec::with_capacity(id.len() + ts_text.len() + body.len() + 2);
            for part in [id.as_bytes(), b".", ts_text.as_bytes(), b".", body] {
                msg.extend_from_slice(part);
            }
            match public_keys.verify(now, &msg, &v1a) {
                Ok(label) => label,
                // Both sets empty of active keys: say so; else a mismatch.
                Err(VerifyError::NoActiveSecret) => return Err(hmac_err),
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    tolerance.check_secs(ts, now)?;

    let [ty] = json::fields(body, &[&["type"]]);
    let mut v = Verified::new(provider)
        .with_event_id(id, true)
        .with_timestamp(ts)
        .with_key_label(label);
    if let Some(ty) = ty {
        v = v.with_event_type(ty);
    }
    Ok(v)
}

/// Signs like a Standard Webhooks sender (for tests).
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn sign_v1(keys: &KeySet, id: &str, ts: i64, body: &[u8]) -> String {
    let ts = ts.to_string();
    let mac = keys
        .sign(
            SystemTime::UNIX_EPOCH,
            &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
        )
        .map(|s| s.encode(Encoding::Base64))
        .unwrap_or_default();
    format!("v1,{mac}")
}
