//! Twitch EventSub (webhook transport): `Twitch-Eventsub-Message-Signature`.

use std::time::{Duration, SystemTime};

use http::request::Parts;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::kit::{self, Algorithm, Encoding, KeySet};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

const SIGNATURE: &str = "twitch-eventsub-message-signature";
const ID: &str = "twitch-eventsub-message-id";
const TIMESTAMP: &str = "twitch-eventsub-message-timestamp";
const SUBSCRIPTION_TYPE: &str = "twitch-eventsub-subscription-type";

/// [Twitch EventSub](https://dev.twitch.tv/docs/eventsub/handling-webhook-events):
/// `sha256=` + lowercase hex HMAC-SHA256 over message id ‖ timestamp ‖ body
/// (no separators; the raw header values), with the subscription's secret
/// as text.
///
/// `Twitch-Eventsub-Message-Timestamp` is RFC 3339 (UTC, up to nanoseconds);
/// messages older than 10 minutes are refused, future ones are not, as
/// Twitch's guide says ([`Twitch::tolerance`] changes it).
///
/// Event id: `Twitch-Eventsub-Message-Id` (signed). Event type:
/// `Twitch-Eventsub-Subscription-Type` (`channel.follow`): a header the
/// signature does not cover ([`Verified::type_signed`](crate::Verified::type_signed)
/// is false); the signed body names it too, as `subscription.type`. The
/// `webhook_callback_verification` challenge is answered by
/// [`Handshake::twitch`](crate::handshake::Handshake::twitch).
pub struct Twitch {
    keys: KeySet,
    tolerance: Tolerance,
}

hmac_provider!(Twitch, Algorithm::Sha256, tolerance);

impl Twitch {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::stale_only(Duration::from_secs(600)),
        }
    }
}

impl Verifier for Twitch {
    fn provider(&self) -> &'static str {
        "twitch"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, SIGNATURE)?;
        let id = kit::required(parts, ID)?;
        let ts_text = kit::required(parts, TIMESTAMP)?;
        let ts = OffsetDateTime::parse(ts_text, &Rfc3339)
            .map_err(|_| VerifyError::MalformedHeader(TIMESTAMP))?
            .unix_timestamp();
        let candidates = kit::prefixed(header, "sha256=", Encoding::Hex);
        let m = self
            .keys
            .verify(now, &[id.as_bytes(), ts_text.as_bytes(), body], &candidates)?;
        self.tolerance.check_secs(ts, now)?;

        let mut v = Verified::new("twitch")
            .with_event_id(id, true)
            .with_timestamp(ts)
            .with_key(m.key())
            .with_content_digest(m.mac.digest32());
        if let Some(ty) = kit::header(parts, SUBSCRIPTION_TYPE)?.filter(|s| !s.is_empty()) {
            v = v.with_event_type(ty, false);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use crate::providers::attacks::{self, Case};

    const SECRET: &str = "twitch-secret-0123";
    const BODY: &[u8] = br#"{"subscription":{"type":"channel.follow"},"event":{"user_id":"1"}}"#;
    const TS: &str = "2026-01-02T05:00:00.123456789Z";
    const TS_UNIX: u64 = 1_767_330_000;

    fn case_at(ts: &str, now: u64) -> Case {
        let sig = attacks::mac(
            Algorithm::Sha256,
            SECRET,
            &[b"msg-1", ts.as_bytes(), BODY],
            Encoding::Hex,
        );
        Case {
            headers: attacks::headers(&[
                (SIGNATURE, &format!("sha256={sig}")),
                (ID, "msg-1"),
                (TIMESTAMP, ts),
                (SUBSCRIPTION_TYPE, "channel.follow"),
            ]),
            body: BODY.to_vec(),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(now),
        }
    }

    fn case() -> Case {
        case_at(TS, TS_UNIX)
    }

    fn verifier() -> Twitch {
        Twitch::new(Secret::text(SECRET).unwrap())
    }

    #[test]
    fn reports_signed_message_id_and_rfc3339_timestamp() {
        let v = case().run(&verifier()).unwrap();
        assert_eq!(v.event_id(), Some("msg-1"));
        assert!(v.id_signed());
        assert_eq!(v.timestamp(), Some(TS_UNIX as i64));
        assert_eq!(v.event_type(), Some("channel.follow"));
    }

    #[test]
    fn refuses_every_attack_shape() {
        attacks::assert_attack_shapes(&verifier(), &case(), &[SIGNATURE, ID, TIMESTAMP], true);
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            Twitch::new,
            Twitch::add_secret,
            Secret::text(SECRET).unwrap(),
            Secret::text("other-secret").unwrap(),
        );
    }

    #[test]
    fn refuses_messages_older_than_ten_minutes_only() {
        let v = verifier();
        assert!(case_at(TS, TS_UNIX + 600).run(&v).is_ok());
        assert_eq!(
            case_at(TS, TS_UNIX + 601).run(&v).err(),
            Some(VerifyError::StaleTimestamp)
        );
        assert!(case_at(TS, TS_UNIX - 86_400).run(&v).is_ok());
    }

    #[test]
    fn parses_offsets_and_refuses_malformed_timestamps() {
        assert!(
            case_at("2026-01-02T06:00:00+01:00", TS_UNIX)
                .run(&verifier())
                .is_ok()
        );
        for bad in [
            "2026-01-02T05:00:00",
            "1767330000",
            "2026-13-02T05:00:00Z",
            "9999999-01-01T00:00:00Z",
            "",
        ] {
            assert!(case_at(bad, TS_UNIX).run(&verifier()).is_err(), "{bad}");
        }
    }
}
