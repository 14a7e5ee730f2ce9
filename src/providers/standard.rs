//! Standard Webhooks v1 (HMAC-SHA256) and v1a (Ed25519), and Svix, which
//! is the same scheme under `svix-*` header names.

use std::time::SystemTime;

use http::header::GetAll;
use http::request::Parts;
use http::{HeaderName, HeaderValue};

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::key::{Ed25519Keys, PublicKey};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

/// Header names of one flavour of the scheme (parsed once).
#[derive(Debug, Clone, Copy)]
struct Names {
    id: &'static HeaderName,
    timestamp: &'static HeaderName,
    signature: &'static HeaderName,
}

static WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
static WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
static WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
static SVIX_ID: HeaderName = HeaderName::from_static("svix-id");
static SVIX_TIMESTAMP: HeaderName = HeaderName::from_static("svix-timestamp");
static SVIX_SIGNATURE: HeaderName = HeaderName::from_static("svix-signature");

const WEBHOOK: Names = Names {
    id: &WEBHOOK_ID,
    timestamp: &WEBHOOK_TIMESTAMP,
    signature: &WEBHOOK_SIGNATURE,
};
const SVIX: Names = Names {
    id: &SVIX_ID,
    timestamp: &SVIX_TIMESTAMP,
    signature: &SVIX_SIGNATURE,
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
            false,
            (&self.keys, &self.public_keys),
            self.tolerance,
            self.names,
            self.provider,
            parts,
            body,
            now,
        )
    }

    fn verify_deferred(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        verify_v1(
            true,
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
            false,
            (&self.keys, &self.public_keys),
            self.tolerance,
            [SVIX, WEBHOOK],
            "svix",
            parts,
            body,
            now,
        )
    }

    fn verify_deferred(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        verify_v1(
            true,
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

/// Picks the first header set whose id header is present, with the values
/// of that id header (looked up once).
fn pick(parts: &Parts, [first, second]: [Names; 2]) -> (Names, GetAll<'_, HeaderValue>) {
    let ids = parts.headers.get_all(first.id);
    if ids.iter().next().is_none() {
        let other = parts.headers.get_all(second.id);
        if other.iter().next().is_some() {
            return (second, other);
        }
    }
    (first, ids)
}

#[allow(clippy::too_many_arguments)]
fn verify_v1(
    defer: bool,
    (keys, public_keys): (&KeySet, &Ed25519Keys),
    tolerance: Tolerance,
    names: [Names; 2],
    provider: &'static str,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<Verified, VerifyError> {
    let (n, ids) = pick(parts, names);
    let sig = kit::signature(parts, n.signature)?;
    let id = kit::required_in(ids, n.id.as_str())?;
    let ts_text = kit::required(parts, n.timestamp)?;
    let ts = kit::parse_unix(ts_text, n.timestamp.as_str())?;

    let mut v1 = Candidates::new();
    let mut v1a = Candidates::new();
    for entry in kit::split_ascii(sig, b' ') {
        match entry.as_bytes() {
            [b'v', b'1', b',', b64 @ ..] => v1.push_encoded(b64, Encoding::Base64),
            // Decoded only when some public key could check it.
            [b'v', b'1', b'a', b',', b64 @ ..] if !public_keys.is_empty() => {
                v1a.push_encoded(b64, Encoding::Base64);
            }
            _ => {}
        }
    }
    let hmac = keys.verify(
        now,
        &[id.as_bytes(), b".", ts_text.as_bytes(), b".", body],
        &v1,
    );
    let label = match hmac {
        Ok(m) => m.key(),
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

    let mut v = Verified::new(provider)
        .with_event_id(id, true)
        .with_timestamp(ts)
        .with_key(label);
    if defer {
        v.set_event_type_in_body(&["type"]);
    } else {
        // Not claimed: a type named twice is left unknown, as when it is
        // read later (`Verified::event_type`).
        let ty = json::unique_fields(body, &[&["type"]])
            .ok()
            .and_then(|[ty]| ty);
        v.set_event(None, ty.map(|ty| (ty, true)));
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use ed25519_dalek::{Signer as _, SigningKey};

    use super::*;
    use crate::Secret;

    const TS: i64 = 1_767_229_200;
    const BODY: &[u8] = br#"{"type":"invoice.paid"}"#;
    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn pk(seed: u8) -> PublicKey {
        PublicKey::from_bytes(
            &SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .to_bytes(),
        )
        .unwrap()
    }

    fn v1a(seed: u8, id: &str, ts: i64, body: &[u8]) -> String {
        let msg = [id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body].concat();
        let sig = SigningKey::from_bytes(&[seed; 32]).sign(&msg).to_bytes();
        format!("v1a,{}", STANDARD.encode(sig))
    }

    fn request(sig: &str, ts: i64) -> Parts {
        http::Request::post("/")
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn at(ts: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(ts).unwrap())
    }

    #[test]
    fn public_key_only_verifier_accepts_v1a_and_ignores_v1() {
        let v = StandardWebhooks::with_public_key(pk(1));
        let sig = v1a(1, "msg_1", TS, BODY);
        let got = v.verify(&request(&sig, TS), BODY, at(TS)).unwrap();
        assert_eq!(got.event_type(), Some("invoice.paid"));
        // a valid HMAC v1 cannot verify: this verifier holds no secret
        let keys = KeySet::new(
            Algorithm::Sha256,
            &Secret::standard_webhooks(WHSEC).unwrap(),
        );
        let hmac = sign_v1(&keys, "msg_1", TS, BODY);
        assert_eq!(
            v.verify(&request(&hmac, TS), BODY, at(TS)).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn mixed_header_with_one_valid_entry_of_either_kind_is_accepted() {
        let secret = Secret::standard_webhooks(WHSEC).unwrap();
        let v = StandardWebhooks::new(secret.clone()).add_public_key(pk(1));
        let keys = KeySet::new(Algorithm::Sha256, &secret);
        let good_v1 = sign_v1(&keys, "msg_1", TS, BODY);
        let good_v1a = v1a(1, "msg_1", TS, BODY);
        let bad_v1a = v1a(2, "msg_1", TS, BODY);
        for header in [
            format!("v1,AAAA {good_v1a}"),
            format!("{bad_v1a} {good_v1}"),
            format!("v2,xyz {bad_v1a} {good_v1a}"),
        ] {
            assert!(
                v.verify(&request(&header, TS), BODY, at(TS)).is_ok(),
                "{header}"
            );
        }
        assert!(
            v.verify(&request(&format!("v1,AAAA {bad_v1a}"), TS), BODY, at(TS))
                .is_err()
        );
    }

    #[test]
    fn rejects_flipped_truncated_empty_and_mislabelled_v1a() {
        let v = StandardWebhooks::with_public_key(pk(1));
        let good = v1a(1, "msg_1", TS, BODY);
        let mut raw = STANDARD.decode(&good["v1a,".len()..]).unwrap();
        raw[63] ^= 0x80;
        let flipped = format!("v1a,{}", STANDARD.encode(&raw));
        let truncated = format!("v1a,{}", STANDARD.encode(&raw[..63]));
        let as_v1 = good.replacen("v1a,", "v1,", 1);
        for bad in [
            flipped,
            truncated,
            "v1a,".to_owned(),
            as_v1,
            good.replacen(',', "", 1),
        ] {
            assert!(v.verify(&request(&bad, TS), BODY, at(TS)).is_err(), "{bad}");
        }
    }

    #[test]
    fn v1a_checks_timestamp_both_ways_and_binds_it() {
        let v = StandardWebhooks::with_public_key(pk(1));
        let sig = v1a(1, "msg_1", TS, BODY);
        assert_eq!(
            v.verify(&request(&sig, TS), BODY, at(TS + 301))
                .unwrap_err(),
            VerifyError::StaleTimestamp
        );
        assert_eq!(
            v.verify(&request(&sig, TS), BODY, at(TS - 301))
                .unwrap_err(),
            VerifyError::FutureTimestamp
        );
        assert_eq!(
            v.verify(&request(&sig, TS + 1), BODY, at(TS)).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn rotated_and_expired_public_keys() {
        let v =
            Svix::with_public_key(pk(1).expires_at(at(TS))).add_public_key(pk(2).with_label("new"));
        let parts = |sig: &str| {
            http::Request::post("/")
                .header("svix-id", "msg_1")
                .header("svix-timestamp", TS.to_string())
                .header("svix-signature", sig)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let new = v
            .verify(&parts(&v1a(2, "msg_1", TS, BODY)), BODY, at(TS))
            .unwrap();
        assert_eq!(new.key_label(), Some("new"));
        // the old key has expired at TS
        assert!(
            v.verify(&parts(&v1a(1, "msg_1", TS, BODY)), BODY, at(TS))
                .is_err()
        );
        let only_old = Svix::with_public_key(pk(1).expires_at(at(TS)));
        assert_eq!(
            only_old
                .verify(&parts(&v1a(1, "msg_1", TS, BODY)), BODY, at(TS))
                .unwrap_err(),
            VerifyError::NoActiveSecret
        );
    }
}

#[cfg(test)]
mod deferred_tests {
    use super::*;
    use crate::Secret;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &[u8] = br#"{"data":{"x":1},"type":"user.created"}"#;

    #[test]
    fn deferred_verification_leaves_the_body_unparsed_until_the_type_is_asked_for() {
        let v1 = StandardWebhooks::new(Secret::standard_webhooks(SECRET).expect("secret"));
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let headers = crate::testing::standard_webhooks(SECRET, "msg_1", 1_700_000_000, BODY);
        let parts = crate::testing::parts("/", headers);
        let mut v = v1.verify_deferred(&parts, BODY, now).expect("verifies");
        assert_eq!(v.event_id(), Some("msg_1"));
        assert_eq!(v.event_type(), None);
        v.attach_body(bytes::Bytes::from_static(BODY));
        assert_eq!(v.event_type(), Some("user.created"));
        let eager = v1.verify(&parts, BODY, now).expect("verifies");
        assert_eq!(eager.event_type(), Some("user.created"));
    }
}
