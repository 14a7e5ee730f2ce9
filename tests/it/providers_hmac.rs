//! Each provider of this batch through a real HTTP server: a signed
//! delivery is handled (2xx), a tampered one, one under the wrong secret and
//! a stale one (where the scheme has a timestamp) are refused with 401 —
//! never a 5xx, and the handler never runs for a refused one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;
use tower_webhook::providers::{
    Adyen, GitLab, Intercom, LemonSqueezy, Linear, Mailgun, Paddle, Twitch, Typeform, WooCommerce,
    WpWebhooks, Zoom,
};
use tower_webhook::{FixedClock, Secret, Verifier, WebhookLayer, testing};

use crate::common;

const NOW: i64 = 1_767_330_000;
const KEY_HEX: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
const OTHER_HEX: &str = "3192C05522FDB1B87ADFFB378050D3CDDC14D0044583730A096F107C3767EB7B";

type Req = (HeaderMap, Vec<u8>);

async fn server(verifier: impl Verifier) -> (SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let layer = WebhookLayer::builder(verifier)
        .clock(FixedClock::at_unix(NOW as u64))
        .build();
    let app = Router::new()
        .route(
            "/hook",
            post(move || {
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

/// `good` accepts `ok`; `good` refuses `tampered` and `stale`; `wrong`
/// (another secret) refuses `ok`.
async fn check(
    name: &str,
    good: impl Verifier,
    wrong: impl Verifier,
    ok: Req,
    tampered: Req,
    stale: Option<Req>,
) {
    let (addr, calls) = server(good).await;
    let (wrong_addr, wrong_calls) = server(wrong).await;

    let r = common::post(addr, "/hook", tampered.0, tampered.1).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{name}: tampered: {}",
        r.text()
    );
    if let Some((h, b)) = stale {
        let r = common::post(addr, "/hook", h, b).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{name}: stale: {}",
            r.text()
        );
        assert_eq!(r.text(), r#"{"error":"stale_timestamp"}"#, "{name}");
    }
    let r = common::post(wrong_addr, "/hook", ok.0.clone(), ok.1.clone()).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{name}: wrong secret: {}",
        r.text()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "{name}: handler ran");
    assert_eq!(wrong_calls.load(Ordering::SeqCst), 0, "{name}: handler ran");

    let r = common::post(addr, "/hook", ok.0, ok.1).await;
    assert_eq!(
        (r.status, r.text()),
        (StatusCode::OK, "handled"),
        "{name}: accepted"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{name}");
}

fn text(s: &str) -> Secret {
    Secret::text(s).expect("non-empty")
}

/// Flips one byte of the body (inside a JSON string, so it stays JSON).
fn tamper(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = std::str::from_utf8(body).expect("utf-8");
    assert!(s.contains(from), "{from} in {s}");
    s.replacen(from, to, 1).into_bytes()
}

#[tokio::test]
async fn intercom_accepts_signed_and_refuses_forged_deliveries() {
    let b = br#"{"id":"notif_1","topic":"conversation.user.created","data":{"x":"abc"}}"#.to_vec();
    let h = testing::intercom("s", &b);
    let t = (h.clone(), tamper(&b, "abc", "abd"));
    check(
        "intercom",
        Intercom::new(text("s")),
        Intercom::new(text("x")),
        (h, b),
        t,
        None,
    )
    .await;
}

#[tokio::test]
async fn woocommerce_accepts_signed_and_refuses_forged_deliveries() {
    let b = br#"{"id":727,"total":"29.35"}"#.to_vec();
    let h = testing::woocommerce("s", "d-1", "order.created", &b);
    let t = (h.clone(), tamper(&b, "29.35", "0.00"));
    check(
        "woocommerce",
        WooCommerce::new(text("s")),
        WooCommerce::new(text("x")),
        (h, b),
        t,
        None,
    )
    .await;
}

#[tokio::test]
async fn wp_webhooks_checks_the_signed_names_not_the_body() {
    let date = "2026-01-02 03:04:05";
    let b = br#"{"post_id":42}"#.to_vec();
    let h = testing::wp_webhooks("s", date, "post_create", "crm-sync");
    // The body is not signed: tampering means changing a signed name.
    let mut th = h.clone();
    th.insert("x-wp-webhook-url-name", HeaderValue::from_static("other"));
    check(
        "wp-webhooks",
        WpWebhooks::new(text("s"), date),
        WpWebhooks::new(text("x"), date),
        (h, b.clone()),
        (th, b),
        None,
    )
    .await;
}

#[tokio::test]
async fn paddle_accepts_signed_and_refuses_forged_deliveries() {
    let b =
        br#"{"event_id":"evt_1","event_type":"subscription.activated","data":{"status":"active"}}"#
            .to_vec();
    let h = testing::paddle("pdl_ntfset_s", NOW, &b);
    let t = (h.clone(), tamper(&b, "active\"}", "paused\"}"));
    let stale = (testing::paddle("pdl_ntfset_s", NOW - 6, &b), b.clone());
    check(
        "paddle",
        Paddle::new(text("pdl_ntfset_s")),
        Paddle::new(text("x")),
        (h, b),
        t,
        Some(stale),
    )
    .await;
}

#[tokio::test]
async fn linear_accepts_signed_and_refuses_forged_deliveries() {
    let body = |ts: i64| {
        json!({ "action": "create", "type": "Issue", "data": { "title": "abc" }, "webhookTimestamp": ts })
            .to_string()
            .into_bytes()
    };
    let b = body(NOW * 1000 + 250);
    let h = testing::linear("s", "del-1", &b);
    let t = (h.clone(), tamper(&b, "abc", "abd"));
    let old = body((NOW - 61) * 1000);
    let stale = (testing::linear("s", "del-2", &old), old);
    check(
        "linear",
        Linear::new(text("s")),
        Linear::new(text("x")),
        (h, b),
        t,
        Some(stale),
    )
    .await;
}

#[tokio::test]
async fn zoom_accepts_signed_and_refuses_forged_deliveries() {
    let b = br#"{"event":"meeting.started","payload":{"object":{"id":"123","topic":"abc"}},"event_ts":1767326399512}"#.to_vec();
    let h = testing::zoom("s", NOW, &b);
    let t = (h.clone(), tamper(&b, "abc", "abd"));
    let stale = (testing::zoom("s", NOW - 301, &b), b.clone());
    check(
        "zoom",
        Zoom::new(text("s")),
        Zoom::new(text("x")),
        (h, b),
        t,
        Some(stale),
    )
    .await;
}

#[tokio::test]
async fn twitch_accepts_signed_and_refuses_forged_deliveries() {
    let b = br#"{"subscription":{"type":"channel.follow"},"event":{"user_login":"abc"}}"#.to_vec();
    let h = testing::twitch(
        "twitch-secret",
        "m-1",
        "2026-01-02T05:00:00.5Z",
        "notification",
        &b,
    );
    let t = (h.clone(), tamper(&b, "abc", "abd"));
    // 10 min 1 s before NOW.
    let old = testing::twitch(
        "twitch-secret",
        "m-2",
        "2026-01-02T04:49:59Z",
        "notification",
        &b,
    );
    check(
        "twitch",
        Twitch::new(text("twitch-secret")),
        Twitch::new(text("other-secret")),
        (h, b.clone()),
        t,
        Some((old, b)),
    )
    .await;
}

#[tokio::test]
async fn gitlab_token_checks_the_token_not_the_body() {
    let b = br#"{"object_kind":"push"}"#.to_vec();
    let h = testing::gitlab_token("glwh-s", "idem-1", "Push Hook");
    // The body is not authenticated by this scheme: tampering is a changed token.
    let th = testing::gitlab_token("glwh-t", "idem-1", "Push Hook");
    check(
        "gitlab-token",
        GitLab::token(text("glwh-s")),
        GitLab::token(text("glwh-x")),
        (h, b.clone()),
        (th, b),
        None,
    )
    .await;
}

#[tokio::test]
async fn gitlab_signing_token_accepts_signed_and_refuses_forged_deliveries() {
    let s = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let other = "whsec_YXbkM6H15gJnnupJEExlaoIBYGCCIaCX2RTqbZQ/vok=";
    let key = |s| Secret::standard_webhooks(s).expect("whsec");
    let b = br#"{"object_kind":"push","ref":"abc"}"#.to_vec();
    let h = testing::gitlab_signing(s, "idem-1", NOW, &b);
    let t = (h.clone(), tamper(&b, "abc", "abd"));
    let stale = (
        testing::gitlab_signing(s, "idem-2", NOW - 301, &b),
        b.clone(),
    );
    check(
        "gitlab-signing",
        GitLab::signing_token(key(s)),
        GitLab::signing_token(key(other)),
        (h, b),
        t,
        Some(stale),
    )
    .await;
}

#[tokio::test]
async fn mailgun_accepts_signed_and_refuses_forged_deliveries() {
    let b = testing::mailgun(
        "key-s",
        NOW,
        "tok-abc",
        json!({ "id": "ev-1", "event": "delivered" }),
    );
    let h = HeaderMap::new();
    // Only timestamp and token are signed: tampering means changing one.
    let t = (h.clone(), tamper(&b, "tok-abc", "tok-abd"));
    let old = testing::mailgun("key-s", NOW - 301, "tok-old", json!({ "id": "ev-2" }));
    check(
        "mailgun",
        Mailgun::new(text("key-s")),
        Mailgun::new(text("key-x")),
        (h.clone(), b),
        t,
        Some((h, old)),
    )
    .await;
}

#[tokio::test]
async fn mailgun_form_accepts_signed_and_refuses_forged_deliveries() {
    let sig = testing::mailgun_signature("key-s", NOW, "tok-abc");
    let b = format!("timestamp={NOW}&token=tok-abc&signature={sig}&event=opened").into_bytes();
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let t = (h.clone(), tamper(&b, "tok-abc", "tok-abd"));
    check(
        "mailgun-form",
        Mailgun::new(text("key-s")),
        Mailgun::new(text("key-x")),
        (h, b),
        t,
        None,
    )
    .await;
}

#[tokio::test]
async fn adyen_notification_items_accepts_signed_and_refuses_forged_deliveries() {
    let item = json!({
        "amount": { "value": 1130, "currency": "EUR" },
        "pspReference": "7914073381342284",
        "eventCode": "AUTHORISATION",
        "merchantAccountCode": "TestMerchant",
        "merchantReference": "ref-1",
        "success": "true",
    });
    let b = testing::adyen(KEY_HEX, vec![item]);
    let h = HeaderMap::new();
    let t = (h.clone(), tamper(&b, "1130", "1131"));
    let key = |k| Secret::hex(k).expect("hex");
    check(
        "adyen",
        Adyen::new(key(KEY_HEX)),
        Adyen::new(key(OTHER_HEX)),
        (h, b),
        t,
        None,
    )
    .await;
}

#[tokio::test]
async fn adyen_hmac_header_accepts_signed_and_refuses_forged_deliveries() {
    let b = br#"{"data":{"id":"BA1","status":"active"},"type":"balancePlatform.balanceAccount.created"}"#.to_vec();
    let h = testing::adyen_hmac_header(KEY_HEX, &b);
    let t = (h.clone(), tamper(&b, "active", "closed"));
    let key = |k| Secret::hex(k).expect("hex");
    check(
        "adyen-header",
        Adyen::hmac_header(key(KEY_HEX)),
        Adyen::hmac_header(key(OTHER_HEX)),
        (h, b),
        t,
        None,
    )
    .await;
}

#[tokio::test]
async fn lemonsqueezy_accepts_signed_and_refuses_forged_deliveries() {
    let b = br#"{"meta":{"event_name":"order_created"},"data":{"total":999}}"#.to_vec();
    let h = testing::lemonsqueezy("s", "order_created", &b);
    let t = (h.clone(), tamper(&b, "999", "1"));
    check(
        "lemonsqueezy",
        LemonSqueezy::new(text("s")),
        LemonSqueezy::new(text("x")),
        (h, b),
        t,
        None,
    )
    .await;
}

#[tokio::test]
async fn typeform_accepts_signed_and_refuses_forged_deliveries() {
    let b = br#"{"event_id":"01H","event_type":"form_response","form_response":{"text":"abc"}}"#
        .to_vec();
    let h = testing::typeform("s", &b);
    let t = (h.clone(), tamper(&b, "abc", "abd"));
    check(
        "typeform",
        Typeform::new(text("s")),
        Typeform::new(text("x")),
        (h, b),
        t,
        None,
    )
    .await;
}
