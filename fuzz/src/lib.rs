//! The fuzzing logic of tower-webhook, as plain functions: each
//! `fuzz_targets/<name>.rs` calls the function of the same name, and
//! `tests/replay.rs` runs every file of `seeds/<name>/` and
//! `regressions/<name>/` through it on stable Rust.
//!
//! Each function asserts invariants, not only "no panic":
//! - a delivery signed by the `testing` signer verifies, and the same
//!   delivery with one signed byte changed never does;
//! - a delivery the fuzzer built itself never verifies under a secret it
//!   cannot know (a random one per process);
//! - every error is a 4xx and names no secret; `Debug` of a secret or a
//!   verifier never depends on the key;
//! - a payload that parses re-serializes to the same value;
//! - forwarding headers are only believed from trusted proxies.
//!
//! Every provider is one row of [`PROVIDERS`]: adding a provider to the
//! harness is adding a row there.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use http::header::FORWARDED;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tower_webhook::client::PublicUrl;
use tower_webhook::client::TrustedProxies;
use tower_webhook::payload::{self, PayloadError};
use tower_webhook::providers::hmac::{Algorithm, Encoding, Hmac};
use tower_webhook::providers::{
    Adyen, Discord, GitHub, GitLab, Intercom, LemonSqueezy, Linear, Mailgun, Mandrill, Paddle,
    SendGrid, Shopify, Slack, Square, StandardWebhooks, Stripe, Svix, Twilio, Twitch, Typeform,
    Unsigned, WooCommerce, WpWebhooks, Zoom,
};
use tower_webhook::{
    ConfigError, PublicKey, Secret, Tolerance, Verifier, VerifyError, WebhookError, testing,
};

/// The fixed "now" of every verification, in Unix seconds.
pub const NOW: i64 = 1_700_000_000;
/// A key in plain-text form (Stripe, GitHub, Slack, Shopify, Hmac).
pub const TEXT_SECRET: &str = "fuzz-text-secret-3f9c2b71";
/// A key in `whsec_` + base64 form (Standard Webhooks, Svix).
pub const WHSEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A token sent verbatim (GitLab's, `Unsigned`'s): one run of 16+
/// alphanumerics, so that [`mac_text`] finds it like a MAC.
pub const TOKEN_SECRET: &str = "fuzzToken3f9c2b71a0e4d5c6";
/// A key in hex form (Adyen).
pub const HEX_SECRET: &str = "3f9c2b71a0e4d5c68b7f1e2d3c4b5a69";
/// A 32-byte private seed in hex form (Discord's Ed25519, SendGrid's
/// ECDSA): the verifier gets the public key derived from it.
pub const SEED_SECRET: &str = "0101010101010101010101010101010101010101010101010101010101010101";
/// The public origin the URL-signed schemes (Twilio, Mandrill, Square) are
/// configured with; requests go to `/webhooks`.
pub const ORIGIN: &str = "https://hooks.example.com";
/// The URL those schemes sign.
const SIGNED_URL: &str = "https://hooks.example.com/webhooks";
/// The `date_created` of the WP Webhooks row.
const WP_CREATED: &str = "2026-01-02 03:04:05";

/// A verifier whose `Debug` the harness checks (every provider has one).
pub trait FuzzVerifier: Verifier + std::fmt::Debug {}
impl<T: Verifier + std::fmt::Debug> FuzzVerifier for T {}

/// Builds the body as sent: `(secret, ts, body)` (see [`Provider::wrap`]).
pub type Wrap = fn(&str, i64, &[u8]) -> Vec<u8>;

/// One provider as the harness sees it.
pub struct Provider {
    /// A name for messages and seed files.
    pub name: &'static str,
    /// The `provider/scheme` pairs of `tests/data/vectors.json` it verifies.
    pub vectors: &'static [&'static str],
    /// Its secret as the provider presents it.
    pub secret: &'static str,
    /// How that presentation becomes a key.
    pub key: fn(&str) -> Result<Secret, ConfigError>,
    /// The default tolerance of the signed timestamp; `None` when the scheme
    /// signs no timestamp.
    pub tolerance: Option<Tolerance>,
    /// The verifier over one key and a tolerance.
    pub verifier: fn(Secret, Tolerance) -> Box<dyn FuzzVerifier>,
    /// Signs `body` at `ts` (Unix seconds) with a secret in its presented
    /// form, as the real sender would: the request's headers.
    pub sign: fn(&str, i64, &[u8]) -> HeaderMap,
    /// Builds the body as sent from the fuzzed body, for schemes that sign
    /// inside the body or read signed fields from it (Mailgun, Adyen's
    /// items, Linear's `webhookTimestamp`): `(secret, ts, body)`. A body
    /// that is not a JSON object is sent as it is.
    pub wrap: Option<Wrap>,
    /// Whether every byte of the body is covered: one changed byte must
    /// fail. Not so where the body is unsigned (WP Webhooks, GitLab's
    /// token, `Unsigned`, Mailgun's event data, Adyen's fields outside the
    /// signing string) or signed as decoded form fields (Twilio, Mandrill:
    /// `+` and a raw space decode alike, a repeated name keeps one value).
    pub signs_body: bool,
    /// Whether a genuine delivery of any body verifies. Not so where the
    /// scheme needs a shape (a UTF-8 form, a JSON object with its fields):
    /// such a body may be refused, with a 4xx.
    pub any_body: bool,
}

const FIVE_MIN: Duration = Duration::from_secs(300);

/// THE list of providers under fuzzing. A new provider is one more row.
#[rustfmt::skip]
pub const PROVIDERS: &[Provider] = &[
    Provider { name: "standard-webhooks", vectors: &["standard-webhooks/v1"], secret: WHSEC_SECRET, key: Secret::standard_webhooks, tolerance: Some(Tolerance::symmetric(FIVE_MIN)), verifier: |s, t| Box::new(StandardWebhooks::new(s).tolerance(t)), sign: |k, ts, b| testing::standard_webhooks(k, "msg_fuzz", ts, b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "svix", vectors: &["svix/v1", "clerk/v1", "resend/v1"], secret: WHSEC_SECRET, key: Secret::standard_webhooks, tolerance: Some(Tolerance::symmetric(FIVE_MIN)), verifier: |s, t| Box::new(Svix::new(s).tolerance(t)), sign: |k, ts, b| testing::svix(k, "msg_fuzz", ts, b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "stripe", vectors: &["stripe/v1"], secret: TEXT_SECRET, key: Secret::text, tolerance: Some(Tolerance::stale_only(FIVE_MIN)), verifier: |s, t| Box::new(Stripe::new(s).tolerance(t)), sign: testing::stripe, wrap: None, signs_body: true, any_body: true },
    Provider { name: "github", vectors: &["github/sha256"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(GitHub::new(s)), sign: |k, _, b| testing::github(k, "72d3162e-cc78-11e3-81ab-4c9367dc0958", "push", b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "github-sha1", vectors: &["github/sha1"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(GitHub::new(s).allow_sha1()), sign: sign_github_sha1, wrap: None, signs_body: true, any_body: true },
    Provider { name: "slack", vectors: &["slack/v0"], secret: TEXT_SECRET, key: Secret::text, tolerance: Some(Tolerance::symmetric(FIVE_MIN)), verifier: |s, t| Box::new(Slack::new(s).tolerance(t)), sign: testing::slack, wrap: None, signs_body: true, any_body: true },
    Provider { name: "shopify", vectors: &["shopify/hmac-sha256-base64"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(Shopify::new(s)), sign: |k, _, b| testing::shopify(k, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "orders/create", b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "hmac", vectors: &[], secret: TEXT_SECRET, key: Secret::text, tolerance: Some(Tolerance::symmetric(FIVE_MIN)), verifier: acme_hmac, sign: sign_acme_hmac, wrap: None, signs_body: true, any_body: true },
    Provider { name: "twilio", vectors: &["twilio/hmac-sha1"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(Twilio::new(s).public_url(origin())), sign: |k, _, b| testing::twilio(k, SIGNED_URL, b), wrap: None, signs_body: false, any_body: false },
    Provider { name: "twilio-shared-key", vectors: &["twilio/hmac-sha256-sharedkey"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(Twilio::with_shared_key(s).public_url(origin())), sign: |k, _, b| testing::twilio_shared_key(k, SIGNED_URL, b), wrap: None, signs_body: false, any_body: false },
    Provider { name: "mandrill", vectors: &["mandrill/hmac-sha1"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(Mandrill::new(s).public_url(origin())), sign: |k, _, b| testing::mandrill(k, SIGNED_URL, b), wrap: None, signs_body: false, any_body: false },
    Provider { name: "square", vectors: &["square/hmac-sha256"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(Square::new(s).public_url(origin())), sign: |k, _, b| testing::square(k, SIGNED_URL, b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "paddle", vectors: &["paddle/h1"], secret: TEXT_SECRET, key: Secret::text, tolerance: Some(Tolerance::symmetric(Duration::from_secs(5))), verifier: |s, t| Box::new(Paddle::new(s).tolerance(t)), sign: testing::paddle, wrap: None, signs_body: true, any_body: true },
    Provider { name: "zoom", vectors: &["zoom/v0"], secret: TEXT_SECRET, key: Secret::text, tolerance: Some(Tolerance::symmetric(FIVE_MIN)), verifier: |s, t| Box::new(Zoom::new(s).tolerance(t)), sign: testing::zoom, wrap: None, signs_body: true, any_body: true },
    Provider { name: "intercom", vectors: &["intercom/sha1"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(Intercom::new(s)), sign: |k, _, b| testing::intercom(k, b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "woocommerce", vectors: &["woocommerce/hmac-sha256-base64"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(WooCommerce::new(s)), sign: |k, _, b| testing::woocommerce(k, "wc_fuzz_1", "order.created", b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "lemonsqueezy", vectors: &["lemonsqueezy/hmac-sha256-hex"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(LemonSqueezy::new(s)), sign: |k, _, b| testing::lemonsqueezy(k, "order_created", b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "typeform", vectors: &["typeform/sha256-base64"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(Typeform::new(s)), sign: |k, _, b| testing::typeform(k, b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "linear", vectors: &["linear/hmac-sha256-hex"], secret: TEXT_SECRET, key: Secret::text, tolerance: Some(Tolerance::symmetric(Duration::from_secs(60))), verifier: |s, t| Box::new(Linear::new(s).tolerance(t)), sign: |k, _, b| testing::linear(k, "lin_fuzz_1", b), wrap: Some(linear_wrap), signs_body: true, any_body: false },
    Provider { name: "twitch", vectors: &["twitch/sha256"], secret: TEXT_SECRET, key: Secret::text, tolerance: Some(Tolerance::stale_only(Duration::from_secs(600))), verifier: |s, t| Box::new(Twitch::new(s).tolerance(t)), sign: |k, ts, b| testing::twitch(k, "tw_fuzz_1", &testing::rfc3339(ts), "notification", b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "mailgun", vectors: &["mailgun/hmac-sha256"], secret: TEXT_SECRET, key: Secret::text, tolerance: Some(Tolerance::symmetric(FIVE_MIN)), verifier: |s, t| Box::new(Mailgun::new(s).tolerance(t)), sign: |_, _, _| HeaderMap::new(), wrap: Some(mailgun_wrap), signs_body: false, any_body: false },
    Provider { name: "adyen", vectors: &["adyen/hmac-notification-item"], secret: HEX_SECRET, key: Secret::hex, tolerance: None, verifier: |s, _| Box::new(Adyen::new(s)), sign: |_, _, _| HeaderMap::new(), wrap: Some(adyen_wrap), signs_body: false, any_body: false },
    Provider { name: "adyen-header", vectors: &["adyen/hmac-header"], secret: HEX_SECRET, key: Secret::hex, tolerance: None, verifier: |s, _| Box::new(Adyen::hmac_header(s)), sign: |k, _, b| testing::adyen_hmac_header(k, b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "wp-webhooks", vectors: &["wp-webhooks/hmac-sha256-base64-meta"], secret: TEXT_SECRET, key: Secret::text, tolerance: None, verifier: |s, _| Box::new(WpWebhooks::new(s, WP_CREATED)), sign: |k, _, _| testing::wp_webhooks(k, WP_CREATED, "fuzz_hook", "fuzz-url"), wrap: None, signs_body: false, any_body: true },
    Provider { name: "gitlab-token", vectors: &["gitlab/token"], secret: TOKEN_SECRET, key: header_token, tolerance: None, verifier: |s, _| Box::new(GitLab::token(s)), sign: |k, _, _| testing::gitlab_token(k, "gl_fuzz_1", "Push Hook"), wrap: None, signs_body: false, any_body: true },
    Provider { name: "gitlab-signing", vectors: &["gitlab/signing-token-v1"], secret: WHSEC_SECRET, key: Secret::standard_webhooks, tolerance: Some(Tolerance::symmetric(FIVE_MIN)), verifier: |s, t| Box::new(GitLab::signing_token(s).tolerance(t)), sign: |k, ts, b| testing::gitlab_signing(k, "gl_fuzz_2", ts, b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "unsigned", vectors: &[], secret: TOKEN_SECRET, key: header_token, tolerance: None, verifier: unsigned, sign: |k, _, _| token_header(k), wrap: None, signs_body: false, any_body: true },
    Provider { name: "discord", vectors: &["discord/ed25519"], secret: SEED_SECRET, key: seed_key, tolerance: None, verifier: |s, _| Box::new(Discord::new(PublicKey::hex(&testing::discord_public_key(&seed(s.expose()))).expect("a valid key"))), sign: |k, ts, b| testing::discord(&seed_of(k), ts, b), wrap: None, signs_body: true, any_body: true },
    Provider { name: "sendgrid", vectors: &["sendgrid/ecdsa-p256-sha256"], secret: SEED_SECRET, key: p256_seed_key, tolerance: None, verifier: |s, _| Box::new(SendGrid::new(&testing::sendgrid_public_key(&seed(s.expose()))).expect("a valid key")), sign: |k, ts, b| testing::sendgrid(&seed_of(k), ts, b), wrap: None, signs_body: true, any_body: true },
];

fn origin() -> PublicUrl {
    PublicUrl::base(ORIGIN).expect("a valid origin")
}

/// A token that travels verbatim in a header (GitLab's, `Unsigned`'s):
/// only text a header value carries unchanged (HTTP drops the spaces and
/// tabs around a value, so a token made of them never arrives as sent).
fn header_token(text: &str) -> Result<Secret, ConfigError> {
    if HeaderValue::from_str(text).is_err() || text.trim_matches([' ', '\t']) != text {
        return Err(ConfigError::InvalidSecret("not a header value"));
    }
    Secret::text(text)
}

/// `Unsigned` with a token in `x-fuzz-token`.
fn unsigned(secret: Secret, _: Tolerance) -> Box<dyn FuzzVerifier> {
    let v = Unsigned::zapier()
        .token_header("x-fuzz-token", secret)
        .and_then(|b| b.build())
        .expect("a valid configuration");
    Box::new(v)
}

fn token_header(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-fuzz-token", header(token.to_owned()));
    h
}

/// A 32-byte seed in hex.
fn seed_key(text: &str) -> Result<Secret, ConfigError> {
    let s = Secret::hex(text)?;
    if s.expose().len() != 32 {
        return Err(ConfigError::InvalidSecret("a seed is 32 bytes"));
    }
    Ok(s)
}

/// A seed that is a P-256 scalar (non-zero, below the group order, whose
/// first byte is 0xff): SendGrid's signer needs one.
fn p256_seed_key(text: &str) -> Result<Secret, ConfigError> {
    let s = seed_key(text)?;
    let b = s.expose();
    if b.iter().all(|&x| x == 0) || b.first() == Some(&0xff) {
        return Err(ConfigError::InvalidSecret("not a P-256 scalar"));
    }
    Ok(s)
}

fn seed(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().expect("seed_key checked the length")
}

fn seed_of(text: &str) -> [u8; 32] {
    seed(seed_key(text).expect("a seed").expose())
}

fn json_object(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Linear's body: `webhookTimestamp` (Unix ms) set in the JSON object.
fn linear_wrap(_: &str, ts: i64, body: &[u8]) -> Vec<u8> {
    match json_object(body) {
        Some(mut m) => {
            m.insert("webhookTimestamp".into(), ts.saturating_mul(1000).into());
            serde_json::to_vec(&m).expect("a map serializes")
        }
        None => body.to_vec(),
    }
}

/// Mailgun's JSON body: the object as `event-data`, signed at `ts`.
fn mailgun_wrap(key: &str, ts: i64, body: &[u8]) -> Vec<u8> {
    match json_object(body) {
        Some(m) => testing::mailgun(key, ts, "mg-fuzz-token", Value::Object(m)),
        None => body.to_vec(),
    }
}

/// One signed Adyen item, the object in its (unsigned) `additionalData`.
fn adyen_wrap(key: &str, _: i64, body: &[u8]) -> Vec<u8> {
    match json_object(body) {
        Some(m) => testing::adyen(
            key,
            vec![serde_json::json!({
                "pspReference": "psp_fuzz_1",
                "merchantAccountCode": "FuzzShop",
                "amount": { "value": 1000, "currency": "EUR" },
                "eventCode": "AUTHORISATION",
                "success": "true",
                "additionalData": { "event": m },
            })],
        ),
        None => body.to_vec(),
    }
}
/// The in-house scheme the `hmac` row configures: SHA-512, `sha512=` + hex,
/// over `{timestamp}.{body}`.
fn acme_hmac(secret: Secret, tolerance: Tolerance) -> Box<dyn FuzzVerifier> {
    let v = Hmac::builder("x-acme-signature")
        .prefix("sha512=")
        .encoding(Encoding::Hex)
        .algorithm(Algorithm::Sha512)
        .signed_timestamp("x-acme-timestamp", ".")
        .id_header("x-acme-event-id")
        .type_header("x-acme-event")
        .tolerance(tolerance)
        .add_secret(secret)
        .build()
        .expect("the acme scheme is valid");
    Box::new(v)
}

fn mac_hex<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> String {
    let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

fn text_key(secret: &str) -> Secret {
    Secret::text(secret).expect("a non-empty text secret")
}

/// Signs like an `acme` sender, independently of the crate's own signers.
fn sign_acme_hmac(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let t = ts.to_string();
    let key = text_key(secret);
    let sig = mac_hex::<hmac::Hmac<sha2::Sha512>>(key.expose(), &[t.as_bytes(), b".", body]);
    let mut h = HeaderMap::new();
    h.insert("x-acme-signature", header(format!("sha512={sig}")));
    h.insert("x-acme-timestamp", header(t));
    h.insert("x-acme-event-id", HeaderValue::from_static("evt_acme_1"));
    h.insert("x-acme-event", HeaderValue::from_static("thing.happened"));
    h
}

/// Signs like GitHub's legacy `X-Hub-Signature: sha1=…` alone.
fn sign_github_sha1(secret: &str, _ts: i64, body: &[u8]) -> HeaderMap {
    let key = text_key(secret);
    let sig = mac_hex::<hmac::Hmac<sha1::Sha1>>(key.expose(), &[body]);
    let mut h = HeaderMap::new();
    h.insert("x-hub-signature", header(format!("sha1={sig}")));
    h.insert(
        "x-github-delivery",
        HeaderValue::from_static("9f0b4c2e-cc78-11e3-81ab-4c9367dc0958"),
    );
    h.insert("x-github-event", HeaderValue::from_static("push"));
    h
}

fn header(text: String) -> HeaderValue {
    HeaderValue::from_str(&text).expect("signatures are visible ASCII")
}

/// The body the header targets sign.
pub const BODY: &[u8] = br#"{"id":"evt_fuzz","type":"fuzz.test","event_id":"Ev_fuzz"}"#;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW.unsigned_abs())
}

fn pick(selector: u8) -> &'static Provider {
    &PROVIDERS[usize::from(selector) % PROVIDERS.len()]
}

fn request(headers: HeaderMap) -> Parts {
    testing::parts("/webhooks", headers)
}

impl Provider {
    fn tolerance_or_none(&self) -> Tolerance {
        self.tolerance.unwrap_or_else(Tolerance::unchecked)
    }

    /// A delivery of `body` signed with `secret` at `ts`: the headers and
    /// the body as sent (see [`Provider::wrap`]).
    pub fn deliver(&self, secret: &str, ts: i64, body: &[u8]) -> (HeaderMap, Vec<u8>) {
        let body = match self.wrap {
            Some(wrap) => wrap(secret, ts, body),
            None => body.to_vec(),
        };
        ((self.sign)(secret, ts, &body), body)
    }

    /// The verifier over the row's own secret.
    pub fn own_verifier(&self) -> Box<dyn FuzzVerifier> {
        let key = (self.key)(self.secret).expect("the row's secret is valid");
        (self.verifier)(key, self.tolerance_or_none())
    }
}

/// A random secret for this process, in a form `p` accepts: the fuzzer can
/// never have seen it, so nothing it builds may verify under it.
fn random_secret(p: &Provider) -> (String, Secret) {
    static RAW: OnceLock<[u8; 32]> = OnceLock::new();
    let raw = RAW.get_or_init(|| {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).expect("the OS has randomness");
        // below P-256's order, so that SendGrid's row takes it too
        b[0] &= 0x7f;
        b[1] |= 1;
        b
    });
    for text in [format!("whsec_{}", STANDARD.encode(raw)), hex::encode(raw)] {
        if let Ok(key) = (p.key)(&text) {
            return (text, key);
        }
    }
    panic!("{}: no random secret form is accepted", p.name);
}

/// Asserts what holds of every verification error.
fn check_error(p: &Provider, e: &VerifyError, _secrets: &[&str]) {
    let status = WebhookError::Verify(*e).status();
    assert!(
        status.is_client_error(),
        "{}: {e:?} maps to {status}",
        p.name
    );
    // `VerifyError` holds only static text (header names), so it cannot
    // carry a secret; a text search here only ever matched secrets the
    // fuzzer had chosen to equal a message. Secrets in `Debug` output are
    // checked by the `secret` target.
}

/// The longest run of base64/hex characters (with `=` padding) in `value`:
/// the MAC text of a signature header.
pub fn mac_text(value: &[u8]) -> &[u8] {
    let is_sig = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    let mut best: &[u8] = &[];
    let mut i = 0;
    while i < value.len() {
        if !value.get(i).is_some_and(is_sig) {
            i += 1;
            continue;
        }
        let start = i;
        while value.get(i).is_some_and(is_sig) {
            i += 1;
        }
        while value.get(i) == Some(&b'=') {
            i += 1;
        }
        if let Some(run) = value.get(start..i)
            && run.len() > best.len()
        {
            best = run;
        }
    }
    best
}

/// The header of a signed request that carries the signature: the one with
/// the longest MAC text (at least 16 characters).
pub fn signature_header_name(headers: &HeaderMap) -> Option<HeaderName> {
    headers
        .iter()
        .map(|(n, v)| (n, mac_text(v.as_bytes()).len()))
        .filter(|(_, len)| *len >= 16)
        .max_by_key(|(_, len)| *len)
        .map(|(n, _)| n.clone())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `[selector][header value]`: the signature header of provider
/// `selector` holds the fuzzed value, the rest is a genuine delivery.
/// It verifies only if the value contains the genuine MAC text.
pub fn signature_header(data: &[u8]) {
    let Some((&sel, value)) = data.split_first() else {
        return;
    };
    let p = pick(sel);
    let (mut headers, body) = p.deliver(p.secret, NOW, BODY);
    // Mailgun and Adyen's items carry the signature in the body.
    let Some(name) = signature_header_name(&headers) else {
        return;
    };
    let original = headers[&name].as_bytes().to_vec();
    let mac = mac_text(&original).to_vec();
    let Ok(fuzzed) = HeaderValue::from_bytes(value) else {
        return;
    };
    headers.insert(name, fuzzed);
    match p.own_verifier().verify(&request(headers), &body, now()) {
        Ok(_) => assert!(
            find(value, &mac).is_some(),
            "{}: verified without the genuine MAC: {:?}",
            p.name,
            String::from_utf8_lossy(value)
        ),
        Err(e) => {
            check_error(p, &e, &[p.secret]);
            assert_ne!(
                value,
                &original[..],
                "{}: its own signature failed: {e}",
                p.name
            );
        }
    }
}

/// The providers whose signed timestamp is Unix seconds in a header (not
/// Linear's and Mailgun's in the body, not Twitch's RFC 3339): the rows the
/// [`timestamp`] target picks from, in [`PROVIDERS`] order.
pub fn timed() -> &'static [&'static Provider] {
    static TIMED: OnceLock<Vec<&'static Provider>> = OnceLock::new();
    TIMED.get_or_init(|| {
        let now_text = NOW.to_string();
        PROVIDERS
            .iter()
            .filter(|p| p.tolerance.is_some() && p.wrap.is_none())
            .filter(|p| {
                (p.sign)(p.secret, NOW, BODY)
                    .values()
                    .any(|v| find(v.as_bytes(), now_text.as_bytes()).is_some())
            })
            .collect()
    })
}

/// `[selector][timestamp text]`, for the providers of [`timed`].
///
/// When the text is a canonical integer, a delivery signed at that time
/// verifies exactly when the tolerance allows it. In every case, the text
/// put in place of the timestamp of a delivery signed at [`NOW`] verifies
/// only if it is plain digits worth [`NOW`].
pub fn timestamp(data: &[u8]) {
    let timed = timed();
    let Some((&sel, text)) = data.split_first() else {
        return;
    };
    let Some(p) = timed.get(usize::from(sel) % timed.len().max(1)) else {
        return;
    };
    let tolerance = p.tolerance_or_none();
    let verifier = p.own_verifier();

    let canonical = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<i64>().ok().filter(|ts| ts.to_string() == t));
    if let Some(ts) = canonical {
        let headers = (p.sign)(p.secret, ts, BODY);
        let got = verifier.verify(&request(headers), BODY, now());
        if ts < 0 || text.len() > 18 {
            assert!(
                matches!(got, Err(VerifyError::MalformedHeader(_))),
                "{}: timestamp {ts} gave {got:?}",
                p.name
            );
        } else {
            match tolerance.check_secs(ts, now()) {
                Ok(()) => {
                    let v = got.unwrap_or_else(|e| panic!("{}: ts {ts} refused: {e}", p.name));
                    assert_eq!(v.timestamp(), Some(ts), "{}", p.name);
                }
                Err(want) => assert_eq!(got.err(), Some(want), "{}: ts {ts}", p.name),
            }
        }
    }

    // The fuzzed text in place of the signed timestamp.
    let now_text = NOW.to_string();
    let signed = (p.sign)(p.secret, NOW, BODY);
    let mut headers = HeaderMap::new();
    let mut replaced = 0;
    for (name, value) in &signed {
        let bytes = value.as_bytes();
        let value = match find(bytes, now_text.as_bytes()) {
            Some(at) if replaced == 0 => {
                replaced += 1;
                let mut v = bytes[..at].to_vec();
                v.extend_from_slice(text);
                v.extend_from_slice(&bytes[at + now_text.len()..]);
                match HeaderValue::from_bytes(&v) {
                    Ok(v) => v,
                    Err(_) => return,
                }
            }
            _ => value.clone(),
        };
        headers.append(name.clone(), value);
    }
    assert_eq!(replaced, 1, "{}: no header carries the timestamp", p.name);
    match verifier.verify(&request(headers), BODY, now()) {
        Ok(v) => {
            // The signature covers the timestamp: the text's leading digits
            // must be worth NOW (Stripe's `t=` may be followed by more items
            // of its list, and, as Stripe's libraries, it reads the number).
            let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
            let worth = std::str::from_utf8(&text[..digits])
                .ok()
                .and_then(|t| t.parse::<u128>().ok());
            assert_eq!(
                worth,
                Some(u128::from(NOW.unsigned_abs())),
                "{}: timestamp {:?} verified",
                p.name,
                String::from_utf8_lossy(text)
            );
            assert_eq!(v.timestamp(), Some(NOW), "{}", p.name);
        }
        Err(e) => check_error(p, &e, &[p.secret]),
    }
}

/// `[constructor][text]`: the `Secret` constructors, then every provider
/// with a key made from the text: `Debug` never depends on the key, a
/// delivery signed with it verifies, and one signed with another key does not.
pub fn secret(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(rest).ok();
    let made = match (sel % 4, text) {
        (0, _) => {
            let s = Secret::new(rest.to_vec());
            if let Ok(s) = &s {
                assert_eq!(s.expose(), rest);
            }
            assert_eq!(s.is_ok(), !rest.is_empty());
            s
        }
        (1, Some(t)) => {
            let s = Secret::text(t);
            if let Ok(s) = &s {
                assert_eq!(s.expose(), rest);
            }
            assert_eq!(s.is_ok(), !t.is_empty());
            s
        }
        (2, Some(t)) => {
            let s = Secret::standard_webhooks(t);
            let b64 = t.strip_prefix("whsec_").unwrap_or(t).trim();
            match (STANDARD.decode(b64), &s) {
                (Ok(want), Ok(s)) => assert_eq!(s.expose(), &want[..]),
                (Ok(want), Err(e)) => {
                    assert!(want.is_empty(), "{t:?}: {e}");
                    assert_eq!(e, &ConfigError::EmptySecret);
                }
                (Err(_), Ok(_)) => panic!("{t:?}: accepted, but it is not base64"),
                (Err(_), Err(e)) => assert!(matches!(e, ConfigError::InvalidSecret(_))),
            }
            s
        }
        (3, Some(t)) => {
            let s = Secret::hex(t);
            match (hex::decode(t.trim()), &s) {
                (Ok(want), Ok(s)) => assert_eq!(s.expose(), &want[..]),
                (Ok(want), Err(e)) => assert!(want.is_empty(), "{t:?}: {e}"),
                (Err(_), Ok(_)) => panic!("{t:?}: accepted, but it is not hex"),
                (Err(_), Err(_)) => {}
            }
            s
        }
        _ => return,
    };
    if let Ok(s) = &made {
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(
            format!("{:?}", s.clone().with_label("l")),
            "Secret(\"l\", ***)"
        );
    }
    let Some(text) = text else {
        return;
    };
    for p in PROVIDERS {
        let Ok(key) = (p.key)(text) else {
            continue;
        };
        let own = (p.key)(p.secret).expect("the row's secret is valid");
        // HMAC pads short keys with zeros: `k` and `k\0` are the same key.
        let unpadded =
            |k: &[u8]| k[..k.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)].to_vec();
        let same_key = unpadded(key.expose()) == unpadded(own.expose());
        let verifier = (p.verifier)(key, p.tolerance_or_none());
        assert_eq!(
            format!("{verifier:?}"),
            format!("{:?}", p.own_verifier()),
            "{}: Debug depends on the key",
            p.name
        );
        let (headers, body) = p.deliver(text, NOW, BODY);
        let parts = request(headers);
        if let Err(e) = verifier.verify(&parts, &body, now()) {
            panic!("{}: signed with {text:?}, refused: {e}", p.name);
        }
        match p.own_verifier().verify(&parts, &body, now()) {
            Ok(_) => assert!(same_key, "{}: another key verified", p.name),
            Err(e) => {
                assert_eq!(e, VerifyError::SignatureMismatch, "{}", p.name);
                check_error(p, &e, &[text, p.secret]);
            }
        }
    }
}

/// The input of [`verify`], built by [`Arbitrary`] from simple framing so
/// that seeds can be written by hand (see [`Delivery::encode`]):
/// `[provider][mode][at hi][at lo][delta][header count]`, then per header
/// `[name index]` (0: `[len][name]` follows) `[len][value]`, then the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Which row of [`PROVIDERS`].
    pub provider: u8,
    /// 0: the headers and body as given; 1: signed, then one byte changed;
    /// 2: signed, then the headers appended.
    pub mode: u8,
    /// Where mode 1 changes a byte.
    pub at: u16,
    /// What mode 1 XORs into that byte (0 counts as 1).
    pub delta: u8,
    /// Headers, in order (repeats allowed).
    pub headers: Vec<(HeaderName, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

/// At most this many fuzzed headers.
const MAX_HEADERS: u8 = 12;

/// Header names the fuzzer picks by index: every name the signers send,
/// then the usual ones.
pub fn header_names() -> &'static [HeaderName] {
    static NAMES: OnceLock<Vec<HeaderName>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<HeaderName> = Vec::new();
        for p in PROVIDERS {
            for name in (p.sign)(p.secret, NOW, BODY).keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        for extra in ["content-type", "forwarded", "x-forwarded-for"] {
            names.push(HeaderName::from_static(extra));
        }
        names
    })
}

impl<'a> Arbitrary<'a> for Delivery {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let provider = u8::arbitrary(u)?;
        let mode = u8::arbitrary(u)?;
        let at = u16::from_be_bytes([u8::arbitrary(u)?, u8::arbitrary(u)?]);
        let delta = u8::arbitrary(u)?;
        let count = u8::arbitrary(u)? % (MAX_HEADERS + 1);
        let names = header_names();
        let mut headers = Vec::new();
        for _ in 0..count {
            let index = usize::from(u8::arbitrary(u)?);
            let name = match index.checked_sub(1) {
                None => {
                    let len = usize::from(u8::arbitrary(u)?).min(u.len());
                    HeaderName::from_bytes(u.bytes(len)?).ok()
                }
                Some(i) => names.get(i % names.len()).cloned(),
            };
            let len = usize::from(u8::arbitrary(u)?).min(u.len());
            let value = u.bytes(len)?.to_vec();
            if let Some(name) = name {
                headers.push((name, value));
            }
        }
        let body = u.bytes(u.len())?.to_vec();
        Ok(Self {
            provider,
            mode,
            at,
            delta,
            headers,
            body,
        })
    }
}

impl Delivery {
    /// The bytes [`Arbitrary`] turns back into this delivery (header values
    /// and names are cut at 255 bytes, at most [`MAX_HEADERS`] headers).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.provider, self.mode];
        out.extend_from_slice(&self.at.to_be_bytes());
        out.push(self.delta);
        let headers = &self.headers[..self.headers.len().min(usize::from(MAX_HEADERS))];
        out.push(u8::try_from(headers.len()).unwrap_or(MAX_HEADERS));
        let short = |b: &[u8]| b[..b.len().min(255)].to_vec();
        for (name, value) in headers {
            match header_names().iter().position(|n| n == name) {
                Some(i) => out.push(u8::try_from(i + 1).expect("fewer than 255 names")),
                None => {
                    let n = short(name.as_str().as_bytes());
                    out.push(0);
                    out.push(u8::try_from(n.len()).unwrap_or(255));
                    out.extend_from_slice(&n);
                }
            }
            let v = short(value);
            out.push(u8::try_from(v.len()).unwrap_or(255));
            out.extend_from_slice(&v);
        }
        out.extend_from_slice(&self.body);
        out
    }

    fn header_map(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                h.append(name.clone(), v);
            }
        }
        h
    }
}

/// A whole verification of arbitrary headers and body (see [`Delivery`]).
pub fn verify(data: &[u8]) {
    let Ok(d) = Delivery::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let p = pick(d.provider);
    match d.mode % 3 {
        0 => verify_forged(p, &d),
        1 => verify_mutated(p, &d),
        _ => verify_with_noise(p, &d),
    }
}

/// Whatever the fuzzer built, it is not signed with a secret it never saw.
fn verify_forged(p: &Provider, d: &Delivery) {
    let (text, key) = random_secret(p);
    let tolerance = if d.at.is_multiple_of(2) {
        p.tolerance_or_none()
    } else {
        Tolerance::unchecked()
    };
    let verifier = (p.verifier)(key, tolerance);
    for ct in verifier.content_types() {
        assert!(!ct.is_empty() && ct.bytes().all(|b| !b.is_ascii_uppercase()));
    }
    match verifier.verify(&request(d.header_map()), &d.body, now()) {
        Ok(v) => panic!("{}: a forged delivery verified: {v:?}", p.name),
        Err(e) => check_error(p, &e, &[&text]),
    }
}

/// A genuine delivery of the fuzzed body verifies; with one byte of the body
/// or of a header carrying the MAC or the timestamp changed, it does not.
fn verify_mutated(p: &Provider, d: &Delivery) {
    let verifier = p.own_verifier();
    let (signed, body) = p.deliver(p.secret, NOW, &d.body);
    match verifier.verify(&request(signed.clone()), &body, now()) {
        Ok(v) => {
            assert_eq!(v.provider(), verifier.provider());
            if p.tolerance.is_some() {
                assert_eq!(v.timestamp(), Some(NOW), "{}", p.name);
            }
        }
        // a body of the wrong shape for the scheme
        Err(e) if !p.any_body => return check_error(p, &e, &[p.secret]),
        Err(e) => panic!("{}: a genuine delivery was refused: {e}", p.name),
    }

    let now_text = NOW.to_string();
    let covered = |v: &HeaderValue| {
        let b = v.as_bytes();
        mac_text(b).len() >= 16 || find(b, now_text.as_bytes()).is_some()
    };
    let header_len: usize = signed
        .values()
        .filter(|v| covered(v))
        .map(|v| v.len())
        .sum();
    let body_len = if p.signs_body { body.len() } else { 0 };
    let total = header_len + body_len;
    if total == 0 {
        return;
    }
    let mut at = usize::from(d.at) % total;
    let delta = d.delta.max(1);
    let mut body = body;
    let mut headers = HeaderMap::new();
    for (name, value) in &signed {
        let mut value = value.clone();
        if covered(&value) {
            if let Some(b) = value.as_bytes().get(at) {
                let mut bytes = value.as_bytes().to_vec();
                bytes[at] = b ^ delta;
                let Ok(v) = HeaderValue::from_bytes(&bytes) else {
                    return;
                };
                value = v;
                at = usize::MAX;
            } else {
                at = at.saturating_sub(value.len());
            }
        }
        headers.append(name.clone(), value);
    }
    if let Some(b) = body.get_mut(at) {
        *b ^= delta;
    }
    match verifier.verify(&request(headers), &body, now()) {
        Ok(v) => panic!(
            "{}: verified after a change at {} ^ {delta:#04x}: {v:?}",
            p.name, d.at
        ),
        Err(e) => check_error(p, &e, &[p.secret]),
    }
}

/// A genuine delivery with the fuzzed headers appended: it may be refused
/// (a repeated header), but whatever passes is the signed delivery.
fn verify_with_noise(p: &Provider, d: &Delivery) {
    let verifier = p.own_verifier();
    let (mut headers, body) = p.deliver(p.secret, NOW, &d.body);
    for (name, value) in &d.headers {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(name.clone(), v);
        }
    }
    match verifier.verify(&request(headers), &body, now()) {
        Ok(v) => {
            assert_eq!(v.provider(), verifier.provider());
            if p.tolerance.is_some() {
                assert_eq!(v.timestamp(), Some(NOW), "{}", p.name);
            }
        }
        Err(e) => check_error(p, &e, &[p.secret]),
    }
}

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("Application/X-WWW-Form-Urlencoded ; charset=utf-8"),
    Some("text/plain"),
];

/// A handler's typed payload.
#[derive(Debug, serde::Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    #[allow(dead_code)]
    ty: Option<String>,
}

/// Equal JSON values, floats within a relative 1e-12 (serde_json's default
/// float parsing is not always correctly rounded).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| same_json(a, b)))
        }
        _ => a == b,
    }
}

/// `[content type][body]`: `payload::parse`, `json` and `form`.
pub fn payload(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let ct = CONTENT_TYPES[usize::from(sel) % CONTENT_TYPES.len()];
    let check_status = |e: &PayloadError| {
        assert!(e.status().is_client_error(), "{e:?}");
        assert!(!e.code().is_empty());
    };

    let parsed = payload::parse::<Value>(ct, body);
    if payload::is_form(ct) {
        if let Err(e) = &parsed {
            assert!(matches!(e, PayloadError::Shape(_)), "form error {e:?}");
            check_status(e);
        }
    } else {
        let direct = payload::json::<Value>(body);
        assert_eq!(parsed.is_ok(), direct.is_ok());
        match &direct {
            Ok(v) => {
                let again = serde_json::to_vec(v).expect("a Value serializes");
                let back = payload::json::<Value>(&again)
                    .unwrap_or_else(|e| panic!("re-serialized JSON does not parse: {e}"));
                assert!(same_json(v, &back), "{v} != {back}");
            }
            // Any JSON is a Value: only a syntax error can refuse it.
            Err(e) => {
                assert!(matches!(e, PayloadError::Syntax(_)), "{e:?}");
                check_status(e);
            }
        }
        match payload::json::<Event>(body) {
            Ok(ev) => {
                let v = direct.as_ref().expect("a typed payload is JSON");
                // serde also fills a struct from an array (`["evt_1"]`), by
                // position: only an object has an `id` field to compare.
                if v.is_object() {
                    assert_eq!(v.get("id").and_then(Value::as_str), Some(ev.id.as_str()));
                }
            }
            Err(e) => {
                check_status(&e);
                if direct.is_ok() {
                    assert!(matches!(e, PayloadError::Shape(_)), "{e:?}");
                }
            }
        }
    }

    match payload::form::<Vec<(String, String)>>(body) {
        Ok(pairs) => {
            let again = serde_urlencoded::to_string(&pairs).expect("pairs encode");
            let back = payload::form::<Vec<(String, String)>>(again.as_bytes())
                .unwrap_or_else(|e| panic!("re-encoded form does not parse: {e}"));
            assert_eq!(pairs, back);
        }
        Err(e) => check_status(&e),
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Lines of text: trusted networks (comma-separated), the peer address, an
/// address to append as the right-most hop, then `name: value` headers
/// (`forwarded`, `x-forwarded-for`, ...). Unparseable addresses fall back
/// to `10.0.0.1` and `203.0.113.9`.
pub fn forwarded(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let nets = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut addr = |fallback: [u8; 4]| {
        std::str::from_utf8(lines.next().unwrap_or_default())
            .ok()
            .and_then(|t| t.trim().parse::<IpAddr>().ok())
            .unwrap_or(IpAddr::from(fallback))
    };
    let peer = addr([10, 0, 0, 1]);
    let extra = addr([203, 0, 113, 9]);
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim_ascii()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }

    let cidrs: Vec<&str> = nets.split(',').filter(|c| !c.trim().is_empty()).collect();
    let proxies = match TrustedProxies::new(cidrs.iter().copied()) {
        Ok(p) => p,
        Err(ConfigError::InvalidNetwork(bad)) => {
            assert!(cidrs.iter().any(|c| c.trim() == bad), "{bad:?}");
            // the valid ones alone
            let good: Vec<&str> = cidrs
                .iter()
                .copied()
                .filter(|c| TrustedProxies::new([*c]).is_ok())
                .collect();
            TrustedProxies::new(good).expect("each one is valid")
        }
        Err(e) => panic!("unexpected {e:?}"),
    };
    // Inputs with a `Forwarded` header exercise the RFC 7239 mode, the
    // others the default X-Forwarded-For mode.
    let standard = headers.contains_key(FORWARDED);
    let proxies = if standard {
        proxies.use_forwarded()
    } else {
        proxies
    };

    let client = proxies.client_ip(peer, &headers);
    // The forwarding header that was not chosen is never read.
    let mut other = headers.clone();
    if standard {
        other.remove("x-forwarded-for");
    } else {
        other.remove(FORWARDED);
    }
    assert_eq!(
        proxies.client_ip(peer, &other),
        client,
        "the forwarding header that was not chosen changed the client"
    );
    assert_eq!(client, proxies.client_ip(peer, &headers));
    assert_eq!(proxies.client_ip(peer, &HeaderMap::new()), canonical(peer));
    assert_eq!(
        TrustedProxies::none().client_ip(peer, &headers),
        canonical(peer)
    );
    if !proxies.contains(peer) {
        assert_eq!(client, canonical(peer), "an untrusted peer was overridden");
        return;
    }

    // One more hop on the right, as the last proxy would append it.
    let mut more = headers.clone();
    if standard {
        let hop = match extra {
            IpAddr::V4(v4) => format!("for={v4}"),
            IpAddr::V6(v6) => format!("for=\"[{v6}]\""),
        };
        more.append(FORWARDED, header(hop));
    } else {
        more.append("x-forwarded-for", header(extra.to_string()));
    }
    let after = proxies.client_ip(peer, &more);
    let extra = canonical(extra);
    if proxies.contains(extra) {
        assert!(
            after == client || (client == canonical(peer) && after == extra),
            "a trusted hop changed the client from {client} to {after}"
        );
    } else {
        assert_eq!(after, extra, "the right-most untrusted hop is the client");
    }
}
