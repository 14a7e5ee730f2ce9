//! Handshake responders through a real HTTP server: each challenge is
//! answered by the layer, the handler is never called, and nothing is
//! claimed in the idempotency store (the same handshake twice is answered
//! twice, never acknowledged as a duplicate).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::any;
use http::{HeaderMap, Method, StatusCode};
use tower_webhook::handshake::Handshake;
use tower_webhook::providers::{GitHub, Slack, Twitch, Zoom};
use tower_webhook::{FixedClock, Secret, Verifier, WebhookLayer, testing};

use crate::common;

const NOW: u64 = 1_767_330_000;

/// A route whose handler counts its calls.
async fn server(
    verifier: impl Verifier,
    handshake: Handshake,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let layer = WebhookLayer::builder(verifier)
        .clock(FixedClock::at_unix(NOW))
        .handshake(handshake)
        .build();
    let app = Router::new()
        .route(
            "/hook",
            any(move || {
                let seen = Arc::clone(&seen);
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    "handled"
                }
            }),
        )
        .route_layer(layer);
    (common::serve(app).await, calls)
}

fn secret(s: &str) -> Secret {
    Secret::text(s).expect("non-empty")
}

/// Sends the same request twice; both must get `want` and no duplicate mark.
async fn twice(
    addr: std::net::SocketAddr,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    want: &str,
) {
    for round in 0..2 {
        let mut h = headers.clone();
        if method == Method::POST {
            h.insert("content-type", "application/json".parse().expect("value"));
        }
        let r = common::send(addr, method.clone(), path, &h, body.to_vec()).await;
        assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.text());
        assert_eq!(r.text(), want, "round {round}");
        assert!(
            r.headers.get("webhook-duplicate").is_none(),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn slack_url_verification_is_echoed_without_the_handler() {
    let (addr, calls) = server(Slack::new(secret("slack-secret")), Handshake::slack()).await;
    let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV","type":"url_verification"}"#;
    let headers = testing::slack("slack-secret", NOW as i64, body);
    twice(
        addr,
        Method::POST,
        "/hook",
        &headers,
        body,
        r#"{"challenge":"3eZbrw1aBm2rZgRNFdxV"}"#,
    )
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // Unsigned, the same challenge is refused: handshakes are verified first.
    let r = common::post(addr, "/hook", HeaderMap::new(), body.to_vec()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // An ordinary event still reaches the handler.
    let event = br#"{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}"#;
    let r = common::post(
        addr,
        "/hook",
        testing::slack("slack-secret", NOW as i64, event),
        event.to_vec(),
    )
    .await;
    assert_eq!((r.status, r.text()), (StatusCode::OK, "handled"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn zoom_url_validation_answers_the_encrypted_token() {
    let s = "aa7148701d9c7f3764a495";
    let (addr, calls) = server(Zoom::new(secret(s)), Handshake::zoom(secret(s))).await;
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1767326400000,"event":"endpoint.url_validation"}"#;
    let headers = testing::zoom(s, NOW as i64, body);
    // encryptedToken: HMAC-SHA256 computed independently (Python hmac).
    let want = r#"{"encryptedToken":"50170f333df93e052da0b0ec75692d04951f3fdbb62bfbc936ce55e7c7e876a5","plainToken":"qgg8vlvZRS6UYooatFL8Aw"}"#;
    twice(addr, Method::POST, "/hook", &headers, body, want).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn twitch_callback_verification_answers_the_raw_challenge() {
    let s = "twitch-secret-0123";
    let (addr, calls) = server(Twitch::new(secret(s)), Handshake::twitch()).await;
    let body = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"type":"channel.follow"}}"#;
    let headers = testing::twitch(
        s,
        "m-1",
        "2026-01-02T05:00:00Z",
        "webhook_callback_verification",
        body,
    );
    twice(
        addr,
        Method::POST,
        "/hook",
        &headers,
        body,
        "pogchamp-kappa-360noscope-vohiyo",
    )
    .await;
    let r = common::post(addr, "/hook", headers.clone(), body.to_vec()).await;
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn discord_ping_is_answered_with_type_1() {
    // Any verifier: the PING is answered once the request verified.
    let (addr, calls) = server(GitHub::new(secret("gh")), Handshake::discord()).await;
    let body = br#"{"id":"1","type":1,"application_id":"2"}"#;
    let headers = testing::github("gh", "d-1", "ping", body);
    twice(addr, Method::POST, "/hook", &headers, body, r#"{"type":1}"#).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn meta_hub_challenge_is_echoed_for_the_right_token_only() {
    let (addr, calls) = server(
        GitHub::new(secret("gh")),
        Handshake::meta(secret("verify-me")),
    )
    .await;
    let ok = "/hook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444";
    twice(addr, Method::GET, ok, &HeaderMap::new(), b"", "1158201444").await;
    let wrong = "/hook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1158201444";
    let r = common::send(addr, Method::GET, wrong, &HeaderMap::new(), Vec::new()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A GET that is not a handshake is still refused by the method check.
    let r = common::send(addr, Method::GET, "/hook", &HeaderMap::new(), Vec::new()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn twitter_crc_is_answered_with_the_response_token() {
    let (addr, calls) = server(
        GitHub::new(secret("gh")),
        Handshake::twitter_crc(secret("consumer-secret")),
    )
    .await;
    // HMAC-SHA256("consumer-secret", "crc-123"), base64, computed independently (Python hmac).
    let want = r#"{"response_token":"sha256=CRC_EXPECTED"}"#.replace("CRC_EXPECTED", CRC_EXPECTED);
    twice(
        addr,
        Method::GET,
        "/hook?crc_token=crc-123",
        &HeaderMap::new(),
        b"",
        &want,
    )
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

const CRC_EXPECTED: &str = "O7uw7J4JPXZu290glTGmKPmiw+3zacvpj5jistrvVHY=";
