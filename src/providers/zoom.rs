//! Zoom: `x-zm-signature: v0=<hex>`, `x-zm-request-timestamp`.

use std::time::SystemTime;

use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Encoding, KeySet};
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

const SIGNATURE: &str = "x-zm-signature";
const TIMESTAMP: &str = "x-zm-request-timestamp";

/// [Zoom](https://developers.zoom.us/docs/api/webhooks/): HMAC-SHA256 over
/// `v0:{x-zm-request-timestamp}:{body}` with the app's Secret Token, `v0=` +
/// lowercase hex in `x-zm-signature`.
///
/// Zoom documents no tolerance; this verifier applies the crate's default
/// (300 s both ways), which [`Zoom::tolerance`] changes.
///
/// Zoom sends no event id. The event id is built from signed body fields:
/// `{event}:{event_ts}` plus `:{payload.object.id}` where present. Event
/// type: the body's `event`. The `endpoint.url_validation` challenge is
/// signed too; answer it with
/// [`Handshake::zoom`](crate::handshake::Handshake::zoom).
pub struct Zoom {
    keys: KeySet,
    tolerance: Tolerance,
}

hmac_provider!(Zoom, Algorithm::Sha256, tolerance);

impl Zoom {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::default(),
        }
    }
}

impl Verifier for Zoom {
    fn provider(&self) -> &'static str {
        "zoom"
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, SIGNATURE)?;
        let ts_text = kit::required(parts, TIMESTAMP)?;
        let ts = kit::parse_unix(ts_text, TIMESTAMP)?;
        let candidates = kit::prefixed(header, "v0=", Encoding::Hex);
        let m = self
            .keys
            .verify(now, &[b"v0:", ts_text.as_bytes(), b":", body], &candidates)?;
        self.tolerance.check_secs(ts, now)?;

        let [event, event_ts, object] = json::unique_fields(
            body,
            &[&["event"], &["event_ts"], &["payload", "object", "id"]],
        )?;
        let mut v = Verified::new("zoom")
            .with_timestamp(ts)
            .with_key(m.key())
            .with_content_digest(m.mac.digest32());
        if let (Some(event), Some(event_ts)) = (&event, &event_ts) {
            let id = match &object {
                Some(object) => format!("{event}:{event_ts}:{object}"),
                None => format!("{event}:{event_ts}"),
            };
            v = v.with_event_id(id, true);
        }
        if let Some(event) = event {
            v = v.with_event_type(event, true);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Secret;
    use crate::providers::attacks::{self, Case};

    const SECRET: &str = "zoom-secret-token";
    const BODY: &[u8] = br#"{"event":"meeting.started","payload":{"object":{"id":"123"}},"event_ts":1767326399512}"#;
    const TS: u64 = 1_767_326_400;

    fn case_at(ts: &str, now: u64) -> Case {
        let sig = attacks::mac(
            Algorithm::Sha256,
            SECRET,
            &[b"v0:", ts.as_bytes(), b":", BODY],
            Encoding::Hex,
        );
        Case {
            headers: attacks::headers(&[(SIGNATURE, &format!("v0={sig}")), (TIMESTAMP, ts)]),
            body: BODY.to_vec(),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(now),
        }
    }

    fn case() -> Case {
        case_at(&TS.to_string(), TS)
    }

    fn verifier() -> Zoom {
        Zoom::new(Secret::text(SECRET).unwrap())
    }

    #[test]
    fn builds_a_signed_event_id_from_body_fields() {
        let v = case().run(&verifier()).unwrap();
        assert_eq!(v.event_id(), Some("meeting.started:1767326399512:123"));
        assert!(v.id_signed());
        assert_eq!(v.event_type(), Some("meeting.started"));
        assert_eq!(v.timestamp(), Some(TS as i64));
    }

    #[test]
    fn refuses_every_attack_shape() {
        attacks::assert_attack_shapes(&verifier(), &case(), &[SIGNATURE, TIMESTAMP], true);
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case(),
            Zoom::new,
            Zoom::add_secret,
            Secret::text(SECRET).unwrap(),
            Secret::text("other").unwrap(),
        );
    }

    #[test]
    fn refuses_stale_future_and_extreme_timestamps() {
        let ts = TS.to_string();
        assert!(case_at(&ts, TS + 300).run(&verifier()).is_ok());
        assert_eq!(
            case_at(&ts, TS + 301).run(&verifier()).err(),
            Some(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            case_at(&ts, TS - 301).run(&verifier()).err(),
            Some(VerifyError::FutureTimestamp)
        );
        assert!(case_at("999999999999999999", TS).run(&verifier()).is_err());
        assert!(case_at("0", TS).run(&verifier()).is_err());
        assert!(
            case_at("18446744073709551616", TS)
                .run(&verifier())
                .is_err()
        );
    }
}
