//! Shopify: `X-Shopify-Hmac-Sha256: <base64>`.

use std::time::SystemTime;

use http::HeaderName;
use http::request::Parts;

use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::verify::{Verified, Verifier, VerifyError};

/// [Shopify](https://shopify.dev/docs/apps/build/webhooks/verify-deliveries):
/// base64 HMAC-SHA256 of the body in `X-Shopify-Hmac-Sha256` (the Events
/// product's `Shopify-Hmac-Sha256` too). The key is the app's client secret
/// as text; after a rotation Shopify may sign with the old one for an hour,
/// so add both. No timestamp: Shopify signs none.
///
/// Event id: `X-Shopify-Webhook-Id` (`Shopify-Webhook-Id`); event type:
/// `X-Shopify-Topic`. **Neither is signed** (nor `X-Shopify-Shop-Domain`):
/// anyone holding one captured delivery can resend it under any id, topic
/// or shop. So the layer de-duplicates on the signature alone (a hash of
/// it): a replay under a fresh id or topic is a duplicate, and a replay can
/// never take the id of a genuine delivery still to be handled.
/// [`Verified::id_signed`](crate::Verified::id_signed) and
/// [`Verified::type_signed`](crate::Verified::type_signed) are false. Two
/// deliveries with byte-identical bodies (under two topics, say) are one
/// event.
pub struct Shopify {
    keys: KeySet,
}

hmac_provider!(Shopify, Algorithm::Sha256);

impl Shopify {
    fn from_keys(keys: KeySet) -> Self {
        Self { keys }
    }
}

// Each under its classic `X-` name and the newer one without it.
static HMAC: HeaderName = HeaderName::from_static("x-shopify-hmac-sha256");
static HMAC_NEW: HeaderName = HeaderName::from_static("shopify-hmac-sha256");
static WEBHOOK_ID: HeaderName = HeaderName::from_static("x-shopify-webhook-id");
static WEBHOOK_ID_NEW: HeaderName = HeaderName::from_static("shopify-webhook-id");
static TOPIC: HeaderName = HeaderName::from_static("x-shopify-topic");
static TOPIC_NEW: HeaderName = HeaderName::from_static("shopify-topic");

/// The first of `names` that is present.
fn either<'a>(
    parts: &'a Parts,
    names: [&'static HeaderName; 2],
) -> Result<Option<&'a str>, VerifyError> {
    let found = match kit::header(parts, names[0])? {
        Some(v) => Some(v),
        None => kit::header(parts, names[1])?,
    };
    Ok(found.filter(|v| !v.is_empty()))
}

impl Verifier for Shopify {
    fn provider(&self) -> &'static str {
        "shopify"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let names = [&HMAC, &HMAC_NEW];
        let header = either(parts, names)?.ok_or(VerifyError::MissingSignature(HMAC.as_str()))?;
        let candidates = Candidates::one(header.as_bytes(), Encoding::Base64);
        let m = self.keys.verify(now, &[body], &candidates)?;

        let mut v = Verified::new("shopify")
            .with_key(m.key())
            .with_content_digest(m.mac.digest32());
        let id = either(parts, [&WEBHOOK_ID, &WEBHOOK_ID_NEW])?;
        let ty = either(parts, [&TOPIC, &TOPIC_NEW])?;
        v.set_event(
            id.map(|id| (id.to_owned(), false)),
            ty.map(|ty| (ty.to_owned(), false)),
        );
        Ok(v)
    }
}
