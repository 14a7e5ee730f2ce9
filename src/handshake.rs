//! Handshake responders: the set-up challenges some providers send to prove
//! that an endpoint is theirs, answered by the layer itself. A handshake
//! never reaches the handler and never touches the idempotency store (a
//! provider may repeat it at any time and must get an answer each time).
//!
//! | constructor | request | answer |
//! |---|---|---|
//! | [`Handshake::slack`] | signed POST, `"type":"url_verification"` | `{"challenge":…}` |
//! | [`Handshake::zoom`] | signed POST, `"event":"endpoint.url_validation"` | `{"plainToken":…,"encryptedToken":hex HMAC-SHA256}` |
//! | [`Handshake::twitch`] | signed POST, `Twitch-Eventsub-Message-Type: webhook_callback_verification` | the raw `challenge`, `text/plain` |
//! | [`Handshake::discord`] | signed POST, `"type":1` (PING) | `{"type":1}` |
//! | [`Handshake::meta`] | GET `?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` | the challenge, `text/plain`, if the token matches |
//! | [`Handshake::twitter_crc`] | GET `?crc_token=…` | `{"response_token":"sha256=" + base64 HMAC-SHA256}` |
//!
//! The POST handshakes are signed like any delivery: they are answered only
//! after verification succeeded. The GET ones carry no signature; the layer
//! accepts GET for them even though its methods default to POST.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_webhook::{handshake::Handshake, providers::Slack, testing, Secret, WebhookLayer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = WebhookLayer::builder(Slack::new(Secret::text("signing-secret")?))
//!     .handshake(Handshake::slack())
//!     .build();
//! let svc = ServiceBuilder::new().layer(layer).service(service_fn(|_: Request<Full<Bytes>>| async {
//!     unreachable!("a handshake never reaches the handler");
//!     #[allow(unreachable_code)]
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
//! }));
//!
//! let body = br#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
//! let mut req = Request::post("/slack/events").header("content-type", "application/json");
//! for (k, v) in &testing::slack("signing-secret", testing::unix(std::time::SystemTime::now()), body) {
//!     req = req.header(k, v);
//! }
//! let res = svc.oneshot(req.body(Full::new(Bytes::from_static(body)))?).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! let answer = res.into_body().collect().await?.to_bytes();
//! assert_eq!(&answer[..], br#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#);
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, Uri, header};
use subtle::ConstantTimeEq;

use crate::error::WebhookError;
use crate::providers::json;
use crate::providers::kit::{Algorithm, Encoding, KeySet};
use crate::secret::Secret;
use crate::verify::VerifyError;

/// One provider's set-up challenge; set it on a route with
/// [`WebhookLayerBuilder::handshake`](crate::middleware::WebhookLayerBuilder::handshake).
pub struct Handshake {
    kind: Kind,
}

enum Kind {
    Slack,
    Zoom(KeySet),
    Twitch,
    Discord,
    Meta(Secret),
    TwitterCrc(KeySet),
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            Kind::Slack => "slack",
            Kind::Zoom(_) => "zoom",
            Kind::Twitch => "twitch",
            Kind::Discord => "discord",
            Kind::Meta(_) => "meta",
            Kind::TwitterCrc(_) => "twitter_crc",
        };
        f.debug_tuple("Handshake").field(&name).finish()
    }
}

/// What the layer does with a request, as far as the handshake goes.
pub(crate) enum Answer {
    /// Not a handshake: carry on.
    Pass,
    /// A handshake: send this.
    Respond(Response<Bytes>),
    /// A handshake that failed its check.
    Refuse(WebhookError),
}

impl Handshake {
    /// Slack's `url_verification`: echoes `challenge` as `{"challenge":…}`.
    pub fn slack() -> Self {
        Self { kind: Kind::Slack }
    }

    /// Zoom's `endpoint.url_validation`: answers `plainToken` with
    /// `encryptedToken` = hex HMAC-SHA256(`secret`, plainToken). `secret` is
    /// the app's Secret Token, the one given to [`Zoom`](crate::providers::Zoom).
    pub fn zoom(secret: Secret) -> Self {
        Self {
            kind: Kind::Zoom(KeySet::new(Algorithm::Sha256, &secret)),
        }
    }

    /// Twitch EventSub's `webhook_callback_verification`: answers the raw
    /// `challenge` as `text/plain`.
    pub fn twitch() -> Self {
        Self { kind: Kind::Twitch }
    }

    /// Discord's interactions PING (`"type":1`): answers `{"type":1}`.
    pub fn discord() -> Self {
        Self {
            kind: Kind::Discord,
        }
    }

    /// Meta (Facebook, Instagram, WhatsApp) subscription check: a GET with
    /// `hub.mode=subscribe` whose `hub.verify_token` equals `verify_token`
    /// (compared in constant time) is answered with `hub.challenge`; another
    /// token is refused with 401.
    pub fn meta(verify_token: Secret) -> Self {
        Self {
            kind: Kind::Meta(verify_token),
        }
    }

    /// Twitter / X Account Activity CRC: a GET with `crc_token` is answered
    /// with `{"response_token":"sha256=<base64 HMAC-SHA256(consumer_secret, crc_token)>"}`.
    ///
    /// # Security
    /// The answer is an HMAC under the consumer secret, the key Twitter
    /// also signs deliveries with: an open CRC endpoint would sign whatever
    /// it is given. Only tokens of Twitter's shape are answered (1 to 128
    /// characters of `A-Z a-z 0-9 + / = _ -`), which can never be a JSON
    /// delivery body; anything else is refused with 400.
    pub fn twitter_crc(consumer_secret: Secret) -> Self {
        Self {
            kind: Kind::TwitterCrc(KeySet::new(Algorithm::Sha256, &consumer_secret)),
        }
    }

    /// Before verification: the GET handshakes.
    pub(crate) fn before_verify(&self, method: &Method, uri: &Uri, now: SystemTime) -> Answer {
        if method != Method::GET {
            return Answer::Pass;
        }
        let query = uri.query().unwrap_or_default();
        match &self.kind {
            Kind::Meta(token) => {
                let (Ok(Some(mode)), Ok(Some(given)), Ok(Some(challenge))) = (
                    param(query, "hub.mode"),
                    param(query, "hub.verify_token"),
                    param(query, "hub.challenge"),
                ) else {
                    return Answer::Pass;
                };
                if mode != "subscribe" {
                    return Answer::Pass;
                }
                if bool::from(token.expose().ct_eq(given.as_bytes())) {
                    Answer::Respond(text(challenge.into_owned()))
                } else {
                    Answer::Refuse(WebhookError::Verify(VerifyError::SignatureMismatch))
                }
            }
            Kind::TwitterCrc(keys) => match param(query, "crc_token") {
                Ok(Some(crc)) if !crc_token_shape(&crc) => Answer::Refuse(WebhookError::Verify(
                    VerifyError::MalformedHeader("crc_token"),
                )),
                Ok(Some(crc)) => match keys.sign(now, &[crc.as_bytes()]) {
                    Some(mac) => Answer::Respond(json(&serde_json::json!({
                        "response_token": format!("sha256={}", mac.encode(Encoding::Base64)),
                    }))),
                    None => Answer::Refuse(WebhookError::Verify(VerifyError::NoActiveSecret)),
                },
                _ => Answer::Pass,
            },
            Kind::Slack | Kind::Zoom(_) | Kind::Twitch | Kind::Discord => Answer::Pass,
        }
    }

    /// After verification: the signed POST handshakes.
    pub(crate) fn after_verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Answer {
        match &self.kind {
            Kind::Slack => {
                let [ty, challenge] = json::fields(body, &[&["type"], &["challenge"]]);
                match (ty.as_deref(), challenge) {
                    (Some("url_verification"), Some(c)) => {
                        Answer::Respond(json(&serde_json::json!({ "challenge": c })))
                    }
                    _ => Answer::Pass,
                }
            }
            Kind::Zoom(keys) => {
                let [event, plain] = json::fields(body, &[&["event"], &["payload", "plainToken"]]);
                match (event.as_deref(), plain) {
                    (Some("endpoint.url_validation"), Some(plain)) => {
                        match keys.sign(now, &[plain.as_bytes()]) {
                            Some(mac) => Answer::Respond(json(&serde_json::json!({
                                "plainToken": plain,
                                "encryptedToken": mac.encode(Encoding::Hex),
                            }))),
                            None => {
                                Answer::Refuse(WebhookError::Verify(VerifyError::NoActiveSecret))
                            }
                        }
                    }
                    _ => Answer::Pass,
                }
            }
            Kind::Twitch => {
                let ty = parts.headers.get("twitch-eventsub-message-type");
                if ty.is_none_or(|t| t != "webhook_callback_verification") {
                    return Answer::Pass;
                }
                let [challenge] = json::fields(body, &[&["challenge"]]);
                match challenge {
                    Some(c) => Answer::Respond(text(c)),
                    None => Answer::Refuse(WebhookError::Verify(VerifyError::MalformedBody(
                        "challenge",
                    ))),
                }
            }
            Kind::Discord => {
                let [ty] = json::fields(body, &[&["type"]]);
                if ty.as_deref() == Some("1") {
                    Answer::Respond(json(&serde_json::json!({ "type": 1 })))
                } else {
                    Answer::Pass
                }
            }
            Kind::Meta(_) | Kind::TwitterCrc(_) => Answer::Pass,
        }
    }
}

/// The value of `name` in `query`; an error when it is repeated (which one
/// would count is ambiguous) or the query does not decode.
fn param<'q>(query: &'q str, name: &str) -> Result<Option<Cow<'q, str>>, ()> {
    let pairs: Vec<(Cow<'q, str>, Cow<'q, str>)> =
        serde_urlencoded::from_str(query).map_err(|_| ())?;
    let mut found = None;
    for (k, v) in pairs {
        if k == name {
            if found.is_some() {
                return Err(());
            }
            found = Some(v);
        }
    }
    Ok(found)
}

fn respond(content_type: &'static str, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut res = Response::new(body.into());
    *res.status_mut() = StatusCode::OK;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn text(body: String) -> Response<Bytes> {
    respond("text/plain; charset=utf-8", body)
}

fn json(value: &serde_json::Value) -> Response<Bytes> {
    respond("application/json", value.to_string())
}

/// Whether `token` looks like a Twitter CRC token (and so can never be a
/// delivery body to sign).
fn crc_token_shape(token: &str) -> bool {
    (1..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str, h: &Handshake) -> Answer {
        h.before_verify(&Method::GET, &uri.parse().unwrap(), SystemTime::UNIX_EPOCH)
    }

    fn body_of(a: Answer) -> String {
        match a {
            Answer::Respond(r) => String::from_utf8(r.into_body().to_vec()).unwrap(),
            Answer::Pass => panic!("passed"),
            Answer::Refuse(e) => panic!("refused: {e}"),
        }
    }

    #[test]
    fn zoom_encrypted_token_is_hex_hmac_of_plain_token() {
        // The zoom-v0-02 vector's secret and plainToken; the expected value
        // is HMAC-SHA256 computed independently (Python hmac).
        let h = Handshake::zoom(Secret::text("aa7148701d9c7f3764a495").unwrap());
        let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1767326400000,"event":"endpoint.url_validation"}"#;
        let parts = http::Request::post("/").body(()).unwrap().into_parts().0;
        let got: serde_json::Value = serde_json::from_str(&body_of(h.after_verify(
            &parts,
            body,
            SystemTime::UNIX_EPOCH,
        )))
        .unwrap();
        assert_eq!(got["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(got["encryptedToken"], ZOOM_EXPECTED);
    }

    const ZOOM_EXPECTED: &str = "50170f333df93e052da0b0ec75692d04951f3fdbb62bfbc936ce55e7c7e876a5";

    #[test]
    fn meta_echoes_the_challenge_only_for_the_right_token() {
        let h = Handshake::meta(Secret::text("verify-me").unwrap());
        let ok = "/hook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444";
        assert_eq!(body_of(get(ok, &h)), "1158201444");
        let wrong = "/hook?hub.mode=subscribe&hub.verify_token=verify-mf&hub.challenge=1";
        assert!(matches!(get(wrong, &h), Answer::Refuse(_)));
        let twice = "/hook?hub.mode=subscribe&hub.verify_token=verify-me&hub.verify_token=x&hub.challenge=1";
        assert!(matches!(get(twice, &h), Answer::Pass));
        assert!(matches!(get("/hook", &h), Answer::Pass));
        assert!(matches!(
            get(
                "/hook?hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1",
                &h
            ),
            Answer::Pass
        ));
    }

    #[test]
    fn twitter_crc_answers_base64_hmac_of_the_token() {
        let h = Handshake::twitter_crc(Secret::text("consumer-secret").unwrap());
        let got: serde_json::Value =
            serde_json::from_str(&body_of(get("/hook?crc_token=abc%2B1", &h))).unwrap();
        let want = KeySet::new(Algorithm::Sha256, &Secret::text("consumer-secret").unwrap())
            .sign(SystemTime::UNIX_EPOCH, &[b"abc+1"])
            .unwrap()
            .encode(Encoding::Base64);
        assert_eq!(got["response_token"], format!("sha256={want}"));
        assert!(matches!(get("/hook", &h), Answer::Pass));
    }

    #[test]
    fn twitter_crc_refuses_to_sign_what_could_be_a_delivery() {
        let h = Handshake::twitter_crc(Secret::text("consumer-secret").unwrap());
        // a forged JSON body, URL-encoded: answering would forge its signature
        for forged in ["%7B%22a%22%3A1%7D", "a%20b", "x%0A"] {
            let uri = format!("/hook?crc_token={forged}");
            assert!(matches!(get(&uri, &h), Answer::Refuse(_)), "{forged}");
        }
        let long = format!("/hook?crc_token={}", "a".repeat(129));
        assert!(matches!(get(&long, &h), Answer::Refuse(_)));
    }

    fn post(h: &Handshake, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut req = http::Request::post("/");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let parts = req.body(()).unwrap().into_parts().0;
        h.after_verify(&parts, body, SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn ordinary_deliveries_pass_through_every_post_handshake() {
        let event = br#"{"type":"event_callback","event":"meeting.started","challenge":"c","payload":{"plainToken":"p"}}"#;
        for h in [
            Handshake::slack(),
            Handshake::zoom(Secret::text("s").unwrap()),
            Handshake::twitch(),
            Handshake::discord(),
        ] {
            assert!(matches!(post(&h, &[], event), Answer::Pass), "{h:?}");
            assert!(
                matches!(post(&h, &[], b"\xff not json"), Answer::Pass),
                "{h:?}"
            );
        }
        let typed = [("twitch-eventsub-message-type", "notification")];
        assert!(matches!(
            post(&Handshake::twitch(), &typed, event),
            Answer::Pass
        ));
        // Discord's type 2 (an application command) is not a PING.
        assert!(matches!(
            post(&Handshake::discord(), &[], br#"{"type":2}"#),
            Answer::Pass
        ));
        // A GET handshake never answers a POST, and vice versa.
        let meta = Handshake::meta(Secret::text("t").unwrap());
        let uri = "/?hub.mode=subscribe&hub.verify_token=t&hub.challenge=1"
            .parse()
            .unwrap();
        assert!(matches!(
            meta.before_verify(&Method::POST, &uri, SystemTime::UNIX_EPOCH),
            Answer::Pass
        ));
        assert!(matches!(
            get("/?crc_token=1", &Handshake::slack()),
            Answer::Pass
        ));
    }

    #[test]
    fn twitch_verification_without_a_challenge_is_refused() {
        let typed = [(
            "twitch-eventsub-message-type",
            "webhook_callback_verification",
        )];
        let got = post(&Handshake::twitch(), &typed, br#"{"subscription":{}}"#);
        assert!(matches!(
            got,
            Answer::Refuse(WebhookError::Verify(VerifyError::MalformedBody(_)))
        ));
        let ok = post(&Handshake::twitch(), &typed, br#"{"challenge":"abc"}"#);
        assert_eq!(body_of(ok), "abc");
    }

    #[test]
    fn slack_and_discord_answers() {
        let slack = post(
            &Handshake::slack(),
            &[],
            br#"{"type":"url_verification","challenge":"a\"b"}"#,
        );
        assert_eq!(body_of(slack), r#"{"challenge":"a\"b"}"#);
        let ping = post(&Handshake::discord(), &[], br#"{"type":1,"id":"9"}"#);
        assert_eq!(body_of(ping), r#"{"type":1}"#);
    }
}
