//! Mailgun: the signature travels in the body (JSON or form fields).

use std::borrow::Cow;
use std::time::SystemTime;

use http::header::CONTENT_TYPE;
use http::request::Parts;

use super::json;
use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::payload::is_form;
use crate::verify::{Tolerance, Verified, Verifier, VerifyError};

/// [Mailgun](https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks):
/// lowercase hex HMAC-SHA256 of `{timestamp}{token}` with the HTTP webhook
/// signing key. JSON webhooks carry `signature.{timestamp,token,signature}`;
/// legacy form-encoded ones carry `timestamp`, `token`, `signature` fields.
///
/// # Security
/// **Only the timestamp and the token are signed, not the event data.**
/// Anyone who captures one delivery can attach any event data to its
/// signature while the timestamp is fresh. So:
///
/// - the signed `timestamp‖token` (a hash of its MAC) is what the layer
///   claims, on every delivery, JSON or form: a second use of a token is a
///   duplicate, whatever event data, event id or body format comes with it;
/// - the timestamp is checked against the crate's default window (300 s
///   both ways; Mailgun publishes none): [`Mailgun::tolerance`] changes it;
/// - the event id and type ([`Verified::event_id`], [`Verified::event_type`])
///   are marked unsigned ([`Verified::id_signed`] and
///   [`Verified::type_signed`] are false), and so is everything else in the
///   event data. When acting on an event matters (a bounce that unsubscribes
///   someone, say), fetch it from Mailgun's Events API by its id and act on
///   what the API returns.
///
/// Event id: `event-data.id` (JSON only; unsigned). Event type:
/// `event-data.event`, else the form's `event` field (unsigned).
pub struct Mailgun {
    keys: KeySet,
    tolerance: Tolerance,
}

hmac_provider!(Mailgun, Algorithm::Sha256, tolerance);

impl Mailgun {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            tolerance: Tolerance::default(),
        }
    }
}

/// The signed fields and the metadata, from either body form.
#[derive(Default)]
struct Fields {
    timestamp: Option<String>,
    token: Option<String>,
    signature: Option<String>,
    id: Option<String>,
    event: Option<String>,
}

fn from_json(body: &[u8]) -> Result<Fields, VerifyError> {
    let [timestamp, token, signature, id, event] = json::unique_fields(
        body,
        &[
            &["signature", "timestamp"],
            &["signature", "token"],
            &["signature", "signature"],
            &["event-data", "id"],
            &["event-data", "event"],
        ],
    )?;
    Ok(Fields {
        timestamp,
        token,
        signature,
        id,
        event,
    })
}

fn from_form(body: &[u8]) -> Result<Fields, VerifyError> {
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> =
        serde_urlencoded::from_bytes(body).map_err(|_| VerifyError::MalformedBody("form"))?;
    let mut f = Fields::default();
    for (k, v) in pairs {
        let slot = match &*k {
            "timestamp" => &mut f.timestamp,
            "token" => &mut f.token,
            "signature" => &mut f.signature,
            "event" => &mut f.event,
            _ => continue,
        };
        if slot.is_some() {
            return Err(VerifyError::MalformedBody("repeated signature field"));
        }
        *slot = Some(v.into_owned());
    }
    Ok(f)
}

impl Verifier for Mailgun {
    fn provider(&self) -> &'static str {
        "mailgun"
    }

    fn content_types(&self) -> &[&'static str] {
        &["application/json", "application/x-www-form-urlencoded"]
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let ct = kit::header_as(parts, CONTENT_TYPE, "content-type")?;
        let f = if is_form(ct) {
            from_form(body)?
        } else {
            from_json(body)?
        };
        let signature = f
            .signature
            .filter(|s| !s.is_empty())
            .ok_or(VerifyError::MissingSignature("signature"))?;
        let ts_text = f.timestamp.ok_or(VerifyError::MalformedBody("timestamp"))?;
        let ts = kit::parse_unix(&ts_text, "timestamp")
            .map_err(|_| VerifyError::MalformedBody("timestamp"))?;
        let token = f.token.ok_or(VerifyError::MalformedBody("token"))?;
        let candidates = Candidates::one(signature.as_bytes(), Encoding::Hex);
        let m = self
            .keys
            .verify(now, &[ts_text.as_bytes(), token.as_bytes()], &candidates)?;
        self.tolerance.check_secs(ts, now)?;

        let mut v = Verified::new("mailgun")
            .with_timestamp(ts)
            .with_key(m.key())
            // The signed text `timestamp‖token` (as its MAC), the same in a
            // form and a JSON body, and however it is split in two.
            .with_content_digest(m.mac.digest32());
        if let Some(id) = f.id.filter(|s| !s.is_empty()) {
            v = v.with_event_id(id, false);
        }
        if let Some(event) = f.event {
            v = v.with_event_type(event, false);
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
    use crate::verify::DedupKey;

    const KEY: &str = "key-signing";
    const TS: u64 = 1_767_337_200;
    const TOKEN: &str = "tok123";

    fn sig(ts: &str, token: &str) -> String {
        attacks::mac(
            Algorithm::Sha256,
            KEY,
            &[ts.as_bytes(), token.as_bytes()],
            Encoding::Hex,
        )
    }

    fn json_body(ts: &str, token: &str, sig: &str) -> Vec<u8> {
        format!(
            r#"{{"signature":{{"timestamp":"{ts}","token":"{token}","signature":"{sig}"}},"event-data":{{"event":"delivered","id":"ev-1"}}}}"#
        )
        .into_bytes()
    }

    fn case_at(now: u64) -> Case {
        let ts = TS.to_string();
        Case {
            headers: attacks::headers(&[("content-type", "application/json")]),
            body: json_body(&ts, TOKEN, &sig(&ts, TOKEN)),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(now),
        }
    }

    fn form_case(body: String) -> Case {
        Case {
            headers: attacks::headers(&[("content-type", "application/x-www-form-urlencoded")]),
            body: body.into_bytes(),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(TS),
        }
    }

    fn verifier() -> Mailgun {
        Mailgun::new(Secret::text(KEY).unwrap())
    }

    #[test]
    fn json_reports_the_event_data_as_unsigned_and_keys_on_the_token() {
        let v = case_at(TS).run(&verifier()).unwrap();
        assert_eq!(v.event_id(), Some("ev-1"));
        assert!(!v.id_signed());
        assert_eq!(v.event_type(), Some("delivered"));
        assert!(!v.type_signed());
        assert_eq!(v.timestamp(), Some(TS as i64));
        let Some(DedupKey::Digest(key)) = v.dedup_key() else {
            panic!("the token's digest is the key: {:?}", v.dedup_key());
        };
        // Other event data, another id, or none: the same key.
        let ts = TS.to_string();
        let s = sig(&ts, TOKEN);
        for data in [
            r#"{"event":"failed","id":"ev-2"}"#,
            r#"{"event":"delivered"}"#,
            r#"{}"#,
        ] {
            let body = format!(
                r#"{{"signature":{{"timestamp":"{ts}","token":"{TOKEN}","signature":"{s}"}},"event-data":{data}}}"#
            );
            let forged = Case {
                body: body.into_bytes(),
                ..case_at(TS)
            }
            .run(&verifier())
            .unwrap();
            assert_eq!(forged.dedup_key(), Some(DedupKey::Digest(key)), "{data}");
        }
    }

    #[test]
    fn form_and_json_with_one_token_share_the_key() {
        let s = sig(&TS.to_string(), TOKEN);
        let c = form_case(format!(
            "timestamp={TS}&token={TOKEN}&signature={s}&event=opened"
        ));
        let v = c.run(&verifier()).unwrap();
        assert_eq!(v.event_id(), None);
        assert_eq!(v.event_type(), Some("opened"));
        assert!(!v.type_signed());
        let json = case_at(TS).run(&verifier()).unwrap();
        assert!(v.dedup_key().is_some());
        assert_eq!(v.dedup_key(), json.dedup_key());
        let other = sig(&TS.to_string(), "tok124");
        let c = form_case(format!("timestamp={TS}&token=tok124&signature={other}"));
        assert_ne!(c.run(&verifier()).unwrap().dedup_key(), v.dedup_key());
        let twice = form_case(format!(
            "timestamp={TS}&token={TOKEN}&signature={s}&token=x"
        ));
        assert!(twice.run(&verifier()).is_err());
        assert!(form_case("%%%=&&".into()).run(&verifier()).is_err());
    }

    #[test]
    fn json_with_a_repeated_signature_field_is_malformed() {
        let ts = TS.to_string();
        let s = sig(&ts, TOKEN);
        let body = format!(
            r#"{{"signature":{{"timestamp":"{ts}","token":"{TOKEN}","signature":"{s}","token":"other"}}}}"#
        );
        let c = Case {
            body: body.into_bytes(),
            ..case_at(TS)
        };
        assert_eq!(
            c.run(&verifier()).err(),
            Some(VerifyError::MalformedBody("a signed field occurs twice"))
        );
    }

    #[test]
    fn refuses_every_changed_signed_field() {
        let ts = TS.to_string();
        let good = sig(&ts, TOKEN);
        let v = verifier();
        let run = |body: Vec<u8>| {
            Case {
                body,
                ..case_at(TS)
            }
            .run(&v)
        };
        assert!(run(json_body(&ts, TOKEN, &good)).is_ok());
        assert!(run(json_body(&ts, "tok124", &good)).is_err());
        assert!(run(json_body("1767337201", TOKEN, &good)).is_err());
        assert!(run(json_body(&ts, TOKEN, &good.to_uppercase())).is_err());
        assert!(run(json_body(&ts, TOKEN, &good[..62])).is_err());
        assert!(run(json_body(&ts, TOKEN, "")).is_err());
        assert!(run(json_body("-1", TOKEN, &sig("-1", TOKEN))).is_err());
        let huge = "99999999999999999999";
        assert!(run(json_body(huge, TOKEN, &sig(huge, TOKEN))).is_err());
        let max = "999999999999999999";
        assert_eq!(
            run(json_body(max, TOKEN, &sig(max, TOKEN))).err(),
            Some(VerifyError::FutureTimestamp)
        );
        assert!(run(b"{}".to_vec()).is_err());
        assert!(run(b"not json".to_vec()).is_err());
        assert!(run(Vec::new()).is_err());
    }

    #[test]
    fn refuses_wrong_secret_and_accepts_rotated_one() {
        attacks::assert_rotation(
            &case_at(TS),
            Mailgun::new,
            Mailgun::add_secret,
            Secret::text(KEY).unwrap(),
            Secret::text("key-other").unwrap(),
        );
    }

    #[test]
    fn refuses_stale_and_future_timestamps() {
        assert!(case_at(TS + 300).run(&verifier()).is_ok());
        assert_eq!(
            case_at(TS + 301).run(&verifier()).err(),
            Some(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            case_at(TS - 301).run(&verifier()).err(),
            Some(VerifyError::FutureTimestamp)
        );
    }

    #[test]
    fn duplicated_content_type_is_an_error() {
        let mut c = case_at(TS);
        c.headers
            .append("content-type", "application/json".parse().unwrap());
        assert!(c.run(&verifier()).is_err());
    }
}
