//! What an attacker holding one captured, genuinely signed delivery can do
//! through a real server, with the in-memory store and with Redis (when
//! `REDIS_URL` is set): nothing. For every provider whose event id or type
//! is not signed (GitHub, Shopify, WooCommerce, Linear, Twilio, an in-house
//! `Hmac` scheme) and for Mailgun, whose event data is not signed:
//!
//! - the capture replayed under a fresh id, a fresh type, or both, is a
//!   duplicate, and the handler never sees the forged values;
//! - the capture replayed under the id of a genuine delivery still to be
//!   handled does not stop that delivery;
//! - many replays add no key to the store;
//! - a signed body with two `id` keys is refused (400).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode};
use tower_webhook::client::PublicUrl;
use tower_webhook::providers::hmac::Hmac;
use tower_webhook::providers::{GitHub, Linear, Mailgun, Shopify, Stripe, Twilio, WooCommerce};
use tower_webhook::verify::DedupKey;
use tower_webhook::{IdempotencyStore, MemoryStore, Secret, Verifier, Webhook, WebhookLayer};
use tower_webhook::{Verified, testing};

use crate::common;

const SECRET: &str = "replay-test-secret";
const ORIGIN: &str = "https://hooks.example.com";
const FORM: &str = "application/x-www-form-urlencoded";

/// One provider whose id and/or type travel outside the signature.
struct Scheme {
    path: &'static str,
    verifier: fn() -> Box<dyn Verifier>,
    /// A signed delivery of `body`: headers (content type included).
    sign: fn(id: &str, ty: &str, body: &[u8]) -> HeaderMap,
    /// A body unique to `n` in the scheme's format.
    body: fn(n: &str) -> Vec<u8>,
    id_header: &'static str,
    type_header: Option<&'static str>,
}

fn json_body(n: &str) -> Vec<u8> {
    format!(r#"{{"id":"{n}","note":"order {n}"}}"#).into_bytes()
}

fn linear_body(n: &str) -> Vec<u8> {
    let ms = common::now() * 1000;
    format!(r#"{{"type":"Issue","action":"create","data":{{"id":"{n}"}},"webhookTimestamp":{ms}}}"#)
        .into_bytes()
}

fn form_body(n: &str) -> Vec<u8> {
    format!("MessageSid=SM{n}&Body=hello+{n}").into_bytes()
}

fn with(mut h: HeaderMap, pairs: &[(&'static str, &str)]) -> HeaderMap {
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).expect("header value"));
    }
    h
}

fn schemes() -> Vec<Scheme> {
    vec![
        Scheme {
            path: "/github",
            verifier: || Box::new(GitHub::new(Secret::text(SECRET).expect("secret"))),
            sign: |id, ty, body| {
                with(
                    testing::github(SECRET, id, ty, body),
                    &[("content-type", "application/json")],
                )
            },
            body: json_body,
            id_header: "x-github-delivery",
            type_header: Some("x-github-event"),
        },
        Scheme {
            path: "/shopify",
            verifier: || Box::new(Shopify::new(Secret::text(SECRET).expect("secret"))),
            sign: |id, ty, body| {
                with(
                    testing::shopify(SECRET, id, ty, body),
                    &[("content-type", "application/json")],
                )
            },
            body: json_body,
            id_header: "x-shopify-webhook-id",
            type_header: Some("x-shopify-topic"),
        },
        Scheme {
            path: "/woocommerce",
            verifier: || Box::new(WooCommerce::new(Secret::text(SECRET).expect("secret"))),
            sign: |id, ty, body| {
                with(
                    testing::woocommerce(SECRET, id, ty, body),
                    &[("content-type", "application/json")],
                )
            },
            body: json_body,
            id_header: "x-wc-webhook-delivery-id",
            type_header: Some("x-wc-webhook-topic"),
        },
        Scheme {
            path: "/linear",
            verifier: || Box::new(Linear::new(Secret::text(SECRET).expect("secret"))),
            sign: |id, ty, body| {
                with(
                    testing::linear(SECRET, id, body),
                    &[("content-type", "application/json"), ("linear-event", ty)],
                )
            },
            body: linear_body,
            id_header: "linear-delivery",
            type_header: Some("linear-event"),
        },
        Scheme {
            path: "/twilio",
            verifier: || {
                Box::new(
                    Twilio::new(Secret::text(SECRET).expect("secret"))
                        .public_url(PublicUrl::base(ORIGIN).expect("url")),
                )
            },
            sign: |id, _ty, body| {
                let url = format!("{ORIGIN}/twilio");
                with(
                    testing::twilio(SECRET, &url, body),
                    &[("content-type", FORM), ("i-twilio-idempotency-token", id)],
                )
            },
            body: form_body,
            id_header: "i-twilio-idempotency-token",
            type_header: None,
        },
        Scheme {
            path: "/in-house",
            verifier: || {
                Box::new(
                    Hmac::builder("x-signature")
                        .id_header("x-delivery")
                        .type_header("x-event")
                        .add_secret(Secret::text(SECRET).expect("secret"))
                        .build()
                        .expect("scheme"),
                )
            },
            sign: |id, ty, body| {
                let sig = hex_hmac(body);
                with(
                    HeaderMap::new(),
                    &[
                        ("content-type", "application/json"),
                        ("x-signature", &sig),
                        ("x-delivery", id),
                        ("x-event", ty),
                    ],
                )
            },
            body: json_body,
            id_header: "x-delivery",
            type_header: Some("x-event"),
        },
    ]
}

/// The in-house scheme's signature: lowercase hex HMAC-SHA256 of the body
/// (the GitHub signer's, without its prefix).
fn hex_hmac(body: &[u8]) -> String {
    let h = testing::github(SECRET, "x", "x", body);
    h["x-hub-signature-256"]
        .to_str()
        .expect("ascii")
        .trim_start_matches("sha256=")
        .to_owned()
}

/// What the handlers saw: (path, event id, event type, id signed, type
/// signed), one entry per call.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>, bool, bool)>>>;

struct Server {
    addr: std::net::SocketAddr,
    seen: Seen,
}

/// Serves every scheme, Mailgun and Stripe on one store. A payload with
/// `flaky` in it fails (503) the first time it is handled.
async fn server<St: IdempotencyStore + Clone>(store: St, endpoint: &str) -> Server {
    let seen: Seen = Arc::default();
    let flaky: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut app = Router::new();
    let mut routes: Vec<(&str, Box<dyn Verifier>)> = schemes()
        .into_iter()
        .map(|s| (s.path, (s.verifier)()))
        .collect();
    routes.push((
        "/mailgun",
        Box::new(Mailgun::new(Secret::text(SECRET).expect("secret"))),
    ));
    routes.push((
        "/stripe",
        Box::new(Stripe::new(Secret::text(SECRET).expect("secret"))),
    ));
    for (path, verifier) in routes {
        let (seen, flaky) = (seen.clone(), flaky.clone());
        let handler = move |hook: Webhook<serde_json::Value>| {
            let (seen, flaky) = (seen.clone(), flaky.clone());
            async move {
                let m: &Verified = &hook.meta;
                let payload = format!("{path} {}", hook.payload);
                if payload.contains("flaky") && flaky.lock().expect("lock").insert(payload) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                seen.lock().expect("lock").push((
                    path.to_owned(),
                    m.event_id().map(str::to_owned),
                    m.event_type().map(str::to_owned),
                    m.id_signed(),
                    m.type_signed(),
                ));
                StatusCode::OK
            }
        };
        let layer = WebhookLayer::builder(verifier)
            .endpoint_name(&format!("{endpoint}{path}"))
            .with_store(store.clone())
            .build();
        app = app.merge(Router::new().route(path, post(handler).layer(layer)));
    }
    Server {
        addr: common::serve(app).await,
        seen,
    }
}

/// How many keys the store holds now.
trait Count {
    async fn keys(&self) -> usize;
}

impl Count for MemoryStore {
    async fn keys(&self) -> usize {
        self.entry_count()
    }
}

/// The answer to one delivery: status and whether it was a duplicate.
async fn send(addr: std::net::SocketAddr, path: &str, h: HeaderMap, body: Vec<u8>) -> (u16, bool) {
    let r = common::send(addr, http::Method::POST, path, &h, body).await;
    (
        r.status.as_u16(),
        r.headers.contains_key("webhook-duplicate"),
    )
}

fn handled(seen: &Seen, path: &str) -> usize {
    seen.lock()
        .expect("lock")
        .iter()
        .filter(|s| s.0 == path)
        .count()
}

async fn replays_under_fresh_ids_and_types_are_duplicates<St>(
    store: St,
    count: &impl Count,
    endpoint: &str,
) where
    St: IdempotencyStore + Clone,
{
    let s = server(store.clone(), endpoint).await;
    for scheme in schemes() {
        let path = scheme.path;
        let body = (scheme.body)("cap-1");
        let capture = (scheme.sign)("genuine-1", "orders/create", &body);
        assert_eq!(
            send(s.addr, path, capture.clone(), body.clone()).await,
            (200, false),
            "{path}: the genuine delivery"
        );
        let keys = count.keys().await;

        let mut forgeries = vec![(
            "fresh id",
            with(capture.clone(), &[(scheme.id_header, "forged-2")]),
        )];
        let mut stripped = capture.clone();
        stripped.remove(scheme.id_header);
        forgeries.push(("id stripped", stripped));
        if let Some(ty) = scheme.type_header {
            forgeries.push((
                "fresh type",
                with(capture.clone(), &[(ty, "refunds/create")]),
            ));
            forgeries.push((
                "fresh id and type",
                with(
                    capture.clone(),
                    &[(scheme.id_header, "forged-3"), (ty, "app/uninstalled")],
                ),
            ));
        }
        for (what, headers) in forgeries {
            assert_eq!(
                send(s.addr, path, headers, body.clone()).await,
                (200, true),
                "{path}: a replay under a {what} is a duplicate"
            );
        }
        // Many replays under fresh ids and types: no key is added.
        for n in 0..50 {
            let mut h = with(
                capture.clone(),
                &[(scheme.id_header, &format!("flood-{n}"))],
            );
            if let Some(ty) = scheme.type_header {
                h = with(h, &[(ty, &format!("type-{n}"))]);
            }
            assert_eq!(
                send(s.addr, path, h, body.clone()).await,
                (200, true),
                "{path}"
            );
        }
        assert_eq!(count.keys().await, keys, "{path}: replays added keys");
        assert_eq!(handled(&s.seen, path), 1, "{path}: handled more than once");
        let seen = s.seen.lock().expect("lock").clone();
        let (_, id, ty, id_signed, type_signed) =
            seen.iter().find(|e| e.0 == path).expect("the genuine call");
        assert_eq!(id.as_deref(), Some("genuine-1"), "{path}");
        assert!(!id_signed, "{path}: the id is not signed");
        if scheme.type_header.is_some() {
            assert_eq!(ty.as_deref(), Some("orders/create"), "{path}");
            assert!(!type_signed, "{path}: the type header is not signed");
        }
    }
}

async fn a_replay_cannot_take_a_pending_genuine_id<St>(
    store: St,
    count: &impl Count,
    endpoint: &str,
) where
    St: IdempotencyStore + Clone,
{
    let s = server(store.clone(), endpoint).await;
    for scheme in schemes() {
        let path = scheme.path;
        // The attacker's capture, handled once.
        let cap_body = (scheme.body)("cap-2");
        let capture = (scheme.sign)("captured-1", "orders/create", &cap_body);
        assert_eq!(
            send(s.addr, path, capture.clone(), cap_body.clone()).await,
            (200, false)
        );
        // A genuine delivery whose first attempt fails (503): pending.
        let gen_body = (scheme.body)("flaky-genuine");
        let genuine = (scheme.sign)("genuine-9", "orders/paid", &gen_body);
        let first = send(s.addr, path, genuine.clone(), gen_body.clone()).await;
        assert_eq!(first, (503, false), "{path}: the first attempt fails");
        // The capture replayed under the genuine delivery's id: a duplicate
        // of the capture, nothing more.
        let before = count.keys().await;
        let forged = with(capture, &[(scheme.id_header, "genuine-9")]);
        assert_eq!(
            send(s.addr, path, forged, cap_body).await,
            (200, true),
            "{path}"
        );
        assert_eq!(count.keys().await, before, "{path}: the replay added a key");
        // The provider's retry of the genuine delivery is handled.
        assert_eq!(
            send(s.addr, path, genuine, gen_body).await,
            (200, false),
            "{path}: the genuine retry was taken for a duplicate"
        );
        assert_eq!(handled(&s.seen, path), 2, "{path}");
    }
}

async fn mailgun_tokens_are_claimed_whatever_the_event_data<St>(
    store: St,
    count: &impl Count,
    endpoint: &str,
) where
    St: IdempotencyStore + Clone,
{
    let s = server(store.clone(), endpoint).await;
    let ts = common::now();
    let token = format!("tok-{endpoint}");
    let json = |data: serde_json::Value| testing::mailgun(SECRET, ts, &token, data);
    let ct = |v: &'static str| with(HeaderMap::new(), &[("content-type", v)]);
    let genuine = json(serde_json::json!({"event": "delivered", "id": "ev-1"}));
    assert_eq!(
        send(s.addr, "/mailgun", ct("application/json"), genuine).await,
        (200, false)
    );
    let keys = count.keys().await;

    let sig = testing::mailgun_signature(SECRET, ts, &token);
    let replays: Vec<(&str, HeaderMap, Vec<u8>)> = vec![
        (
            "other event data",
            ct("application/json"),
            json(
                serde_json::json!({"event": "unsubscribed", "id": "ev-2", "recipient": "ceo@example.com"}),
            ),
        ),
        (
            "no event id",
            ct("application/json"),
            json(serde_json::json!({"event": "failed"})),
        ),
        (
            "no event data",
            ct("application/json"),
            json(serde_json::json!({})),
        ),
        (
            "the token as a form",
            ct(FORM),
            format!("timestamp={ts}&token={token}&signature={sig}&event=complained").into_bytes(),
        ),
    ];
    for (what, h, body) in replays {
        assert_eq!(
            send(s.addr, "/mailgun", h, body).await,
            (200, true),
            "mailgun: {what} is a duplicate"
        );
    }
    assert_eq!(count.keys().await, keys, "mailgun: replays added keys");
    assert_eq!(handled(&s.seen, "/mailgun"), 1);
    let seen = s.seen.lock().expect("lock").clone();
    let (_, id, ty, id_signed, type_signed) = &seen[0];
    assert_eq!(
        (id.as_deref(), ty.as_deref()),
        (Some("ev-1"), Some("delivered"))
    );
    assert!(
        !id_signed && !type_signed,
        "mailgun's event data is unsigned"
    );

    // A form first, then JSON with the same token: one event too.
    let token2 = format!("tok2-{endpoint}");
    let sig2 = testing::mailgun_signature(SECRET, ts, &token2);
    let form = format!("timestamp={ts}&token={token2}&signature={sig2}&event=opened");
    assert_eq!(
        send(s.addr, "/mailgun", ct(FORM), form.into_bytes()).await,
        (200, false)
    );
    let as_json = testing::mailgun(
        SECRET,
        ts,
        &token2,
        serde_json::json!({"event": "opened", "id": "x"}),
    );
    assert_eq!(
        send(s.addr, "/mailgun", ct("application/json"), as_json).await,
        (200, true)
    );
}

async fn a_signed_body_with_two_ids_is_refused<St>(store: St, count: &impl Count, endpoint: &str)
where
    St: IdempotencyStore + Clone,
{
    let s = server(store.clone(), endpoint).await;
    let keys = count.keys().await;
    let body = br#"{"id":"evt_claimed","object":"event","type":"invoice.paid","id":"evt_other"}"#;
    let h = with(
        testing::stripe(SECRET, common::now(), body),
        &[("content-type", "application/json")],
    );
    let r = common::send(s.addr, http::Method::POST, "/stripe", &h, body.to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.text(), r#"{"error":"malformed_body"}"#);
    assert_eq!(count.keys().await, keys, "nothing was claimed");
    assert_eq!(handled(&s.seen, "/stripe"), 0);
}

mod memory {
    use super::*;

    #[tokio::test]
    async fn replays_under_fresh_ids_and_types_are_duplicates() {
        let store = MemoryStore::new();
        super::replays_under_fresh_ids_and_types_are_duplicates(store.clone(), &store, "m1").await;
    }

    #[tokio::test]
    async fn a_replay_cannot_take_a_pending_genuine_id() {
        let store = MemoryStore::new();
        super::a_replay_cannot_take_a_pending_genuine_id(store.clone(), &store, "m2").await;
    }

    #[tokio::test]
    async fn mailgun_tokens_are_claimed_whatever_the_event_data() {
        let store = MemoryStore::new();
        super::mailgun_tokens_are_claimed_whatever_the_event_data(store.clone(), &store, "m3")
            .await;
    }

    #[tokio::test]
    async fn a_signed_body_with_two_ids_is_refused() {
        let store = MemoryStore::new();
        super::a_signed_body_with_two_ids_is_refused(store.clone(), &store, "m4").await;
    }
}

mod on_redis {
    use std::time::Duration;

    use ::redis::AsyncCommands as _;
    use tower_webhook::store::RedisStore;

    use super::*;

    /// The keys of one Redis store, counted over their own connection.
    struct RedisKeys {
        conn: ::redis::aio::MultiplexedConnection,
        prefix: String,
    }

    impl Count for RedisKeys {
        async fn keys(&self) -> usize {
            let mut conn = self.conn.clone();
            let keys: Vec<String> = conn.keys(format!("{}*", self.prefix)).await.expect("KEYS");
            keys.len()
        }
    }

    /// A Redis store under a prefix of its own, and its key count. `None`
    /// when `REDIS_URL` is not set; a panic when it is set and Redis does
    /// not answer.
    async fn store(test: &str) -> Option<(RedisStore, RedisKeys)> {
        let url = common::redis_url()?;
        let prefix = common::unique_prefix(test);
        let store = tokio::time::timeout(
            Duration::from_secs(10),
            RedisStore::connect(&url, prefix.clone()),
        )
        .await
        .expect("REDIS_URL is set but Redis did not answer within 10 s")
        .expect("REDIS_URL is set but Redis refused the connection");
        let conn = ::redis::Client::open(url.as_str())
            .expect("REDIS_URL")
            .get_multiplexed_async_connection()
            .await
            .expect("REDIS_URL is set but Redis refused the connection");
        Some((store, RedisKeys { conn, prefix }))
    }

    #[tokio::test]
    async fn replays_under_fresh_ids_and_types_are_duplicates() {
        let Some((store, keys)) = store("r1").await else {
            return;
        };
        super::replays_under_fresh_ids_and_types_are_duplicates(store, &keys, "r1").await;
    }

    #[tokio::test]
    async fn a_replay_cannot_take_a_pending_genuine_id() {
        let Some((store, keys)) = store("r2").await else {
            return;
        };
        super::a_replay_cannot_take_a_pending_genuine_id(store, &keys, "r2").await;
    }

    #[tokio::test]
    async fn mailgun_tokens_are_claimed_whatever_the_event_data() {
        let Some((store, keys)) = store("r3").await else {
            return;
        };
        super::mailgun_tokens_are_claimed_whatever_the_event_data(store, &keys, "r3").await;
    }

    #[tokio::test]
    async fn a_signed_body_with_two_ids_is_refused() {
        let Some((store, keys)) = store("r4").await else {
            return;
        };
        super::a_signed_body_with_two_ids_is_refused(store, &keys, "r4").await;
    }
}

#[test]
fn the_signature_digest_ignores_the_receivers_secret_order_and_the_header_used() {
    use std::time::SystemTime;
    let body = br#"{"zen":"one delivery"}"#;
    let mut both = testing::github("new", "d-1", "push", body);
    // GitHub sends the legacy SHA-1 header too (Intercom's signer makes it).
    both.extend(testing::intercom("new", body));
    let parts = |h: HeaderMap| testing::parts("/", h);
    let secret = |s: &str| Secret::text(s).expect("secret");
    let a = GitHub::new(secret("old"))
        .add_secret(secret("new"))
        .allow_sha1();
    let b = GitHub::new(secret("new"))
        .add_secret(secret("old"))
        .allow_sha1();
    let now = SystemTime::now();
    let key = |v: &GitHub, h: HeaderMap| -> [u8; 32] {
        let verified = v.verify(&parts(h), body, now).expect("verifies");
        match verified.dedup_key() {
            Some(DedupKey::Digest(d)) => d,
            other => panic!("a digest key, not {other:?}"),
        }
    };
    let reference = key(&a, both.clone());
    assert_eq!(key(&b, both.clone()), reference, "the order of secrets");
    let mut sha1_only = both.clone();
    sha1_only.remove("x-hub-signature-256");
    assert_eq!(key(&a, sha1_only.clone()), reference, "the SHA-1 header");
    assert_eq!(key(&b, sha1_only), reference, "both");
    // Another body is another delivery.
    let other = br#"{"zen":"another"}"#;
    let h = testing::github("new", "d-1", "push", other);
    let v = a.verify(&parts(h), other, now).expect("verifies");
    assert_ne!(v.dedup_key(), Some(DedupKey::Digest(reference)));
}
