//! Standard Webhooks v1 (HMAC-SHA256), and Svix, which is the same scheme
//! under `svix-*` header names.

use std::time::SystemTime;

use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
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
/// Event id: `webhook-id` (signed). Event type: the body's `type` field.
pub struct StandardWebhooks {
    keys: KeySet,
    tolerance: Tolerance,
    names: [Names; 2],
    provider: &'static str,
}

hmac_provider!(StandardWebhooks, Algorithm::Sha256, tolerance);

impl StandardWebhooks {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::default(),
            names: [WEBHOOK, SVIX],
            provider: "standard-webhooks",
        }
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
            &self.keys,
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
/// Event id: `svix-id`. Event type: the body's `type` field.
pub struct Svix {
    keys: KeySet,
    tolerance: Tolerance,
}

hmac_provider!(Svix, Algorithm::Sha256, tolerance);

impl Svix {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::default(),
        }
    }
}

impl Verifier for Svix {
    fn provider(&self) -> &'static str {
        "svix"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        verify_v1(
            &self.keys,
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
    keys: &KeySet,
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

    let mut candidates = Candidates::new();
    for entry in sig.split(' ') {
        if let Some(("v1", b64)) = entry.split_once(',') {
            candidates.push_encoded(b64.as_bytes(), Encoding::Base64);
        }
    }
    let m = keys.verify(
        now,
        &[id.as_bytes(), b".", ts_text.as_bytes(), b".", body],
        &candidates,
    )?;
    tolerance.check_secs(ts, now)?;

    let [ty] = json::fields(body, &[&["type"]]);
    let mut v = Verified::new(provider)
        .with_event_id(id, true)
        .with_timestamp(ts)
        .with_key_label(m.label());
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
