//! Slack request signing, version `v0`.

use std::time::SystemTime;

use http::HeaderName;
use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

static SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");
static TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");

/// [Slack](https://docs.slack.dev/authentication/verifying-requests-from-slack):
/// HMAC-SHA256 over `v0:{X-Slack-Request-Timestamp}:{body}`, `v0=` +
/// lowercase hex in `X-Slack-Signature`, 300 s tolerance both ways. The key
/// is the app's signing secret as text.
///
/// Covers the Events API (JSON) and slash commands / interactivity
/// (form-encoded). Event id: the body's `event_id` (Events API only; other
/// requests carry none and are not de-duplicated). Event type: `event.type`,
/// else the top-level `type`.
pub struct Slack {
    keys: KeySet,
    tolerance: Tolerance,
}

hmac_provider!(Slack, Algorithm::Sha256, tolerance);

impl Slack {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::default(),
        }
    }
}

impl Verifier for Slack {
    fn provider(&self) -> &'static str {
        "slack"
    }

    fn content_types(&self) -> &[&'static str] {
        &["application/json", "application/x-www-form-urlencoded"]
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, &SIGNATURE)?;
        let ts_text = kit::required(parts, &TIMESTAMP)?;
        let ts = kit::parse_unix(ts_text, TIMESTAMP.as_str())?;
        let candidates = match header.strip_prefix("v0=") {
            Some(hex) => Candidates::one(hex.as_bytes(), Encoding::Hex),
            None => Candidates::new(),
        };
        let m = self
            .keys
            .verify(now, &[b"v0:", ts_text.as_bytes(), b":", body], &candidates)?;
        self.tolerance.check_secs(ts, now)?;

        let [id, inner, outer] =
            json::unique_fields(body, &[&["event_id"], &["event", "type"], &["type"]])?;
        let mut v = Verified::new("slack")
            .with_timestamp(ts)
            .with_key(m.key())
            .with_content_digest(m.mac.digest32());
        v.set_event(
            id.map(|id| (id, true)),
            inner.or(outer).map(|ty| (ty, true)),
        );
        Ok(v)
    }
}
