//! Stripe: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>]`.

use std::time::{Duration, SystemTime};

use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

const SIGNATURE: &str = "stripe-signature";

/// [Stripe](https://docs.stripe.com/webhooks/signature): HMAC-SHA256 over
/// `{t}.{body}`, lowercase hex, one `v1=` per active secret; `v0=` and other
/// schemes are ignored (no downgrade).
///
/// The key is the whole `whsec_…` string as text (Stripe does **not**
/// base64-decode it): use [`Secret::text`](crate::Secret::text).
/// Tolerance 300 s for age only, as Stripe's libraries (future timestamps
/// pass); set [`Tolerance::symmetric`] to bound them too.
///
/// Event id: the body's `id` (`evt_…`), covered by the signature. Event type:
/// the body's `type`.
pub struct Stripe {
    keys: KeySet,
    tolerance: Tolerance,
}

hmac_provider!(Stripe, Algorithm::Sha256, tolerance);

impl Stripe {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::stale_only(Duration::from_secs(300)),
        }
    }
}

impl Verifier for Stripe {
    fn provider(&self) -> &'static str {
        "stripe"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, SIGNATURE)?;
        let mut ts = None;
        let mut candidates = Candidates::new();
        for item in header.split(',') {
            match item.split_once('=') {
                Some(("t", t)) if ts.is_none() => ts = Some(kit::parse_unix(t, SIGNATURE)?),
                Some(("v1", sig)) => candidates.push_encoded(sig.as_bytes(), Encoding::Hex),
                _ => {}
            }
        }
        let ts = ts.ok_or(VerifyError::MalformedHeader(SIGNATURE))?;
        // Stripe's libraries sign the re-formatted integer; so do we.
        let mut buf = itoa::Buffer::new();
        let t = buf.format(ts);
        let m = self
            .keys
            .verify(now, &[t.as_bytes(), b".", body], &candidates)?;
        self.tolerance.check_secs(ts, now)?;

        let [id, ty] = json::fields(body, &[&["id"], &["type"]]);
        let mut v = Verified::new("stripe")
            .with_timestamp(ts)
            .with_key_label(m.label())
            .with_content_digest(m.mac.digest32());
        if let Some(id) = id {
            v = v.with_event_id(id, true);
        }
        if let Some(ty) = ty {
            v = v.with_event_type(ty);
        }
        Ok(v)
    }
}
