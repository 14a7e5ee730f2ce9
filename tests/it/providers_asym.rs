//! Asymmetric, URL-signing and unsigned providers through a real HTTP
//! server on loopback: accepted delivery, tampered body, wrong key, stale
//! timestamp where the scheme has one, and for URL schemes the trusted /
//! untrusted proxy cases.

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode};
use tower_webhook::client::{PublicUrl, TrustedProxies};
use tower_webhook::providers::{
    Discord, Mandrill, SendGrid, Square, StandardWebhooks, Twilio, Unsigned,
};
use tower_webhook::{PublicKey, Secret, Tolerance, Verifier, WebhookLayer, testing};

use crate::common;
use crate::common::{now, post as post_json};

const SEED: [u8; 32] = [7; 32];
const OTHER: [u8; 32] = [9; 32];
const FORM: &str = "application/x-www-form-urlencoded";

async fn server<V: Verifier>(verifier: V) -> std::net::SocketAddr {
    let app = Router::new()
        .route("/hook", post(|| async { "handled" }))
        .route("/hooks/twilio", post(|| async { "handled" }))
        .layer(WebhookLayer::new(verifier));
    common::serve(app).await
}

fn with(mut h: HeaderMap, k: &'static str, v: &str) -> HeaderMap {
    h.insert(k, HeaderValue::from_str(v).expect("header value"));
    h
}

async fn post_form(
    addr: std::net::SocketAddr,
    path: &str,
    headers: HeaderMap,
    body: &'static [u8],
) -> common::Reply {
    post_json(addr, path, with(headers, "content-type", FORM), body).await
}

#[tokio::test]
async fn standard_webhooks_v1a_end_to_end() {
    let key = PublicKey::standard_webhooks(&testing::ed25519_public_key(&SEED)).unwrap();
    let addr = server(StandardWebhooks::with_public_key(key)).await;
    let body = br#"{"type":"invoice.paid"}"#;

    let ok = post_json(
        addr,
        "/hook",
        testing::standard_webhooks_v1a(&SEED, "msg_1", now(), body),
        &body[..],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.text(), "handled");

    let h = testing::standard_webhooks_v1a(&SEED, "msg_2", now(), body);
    let tampered = post_json(addr, "/hook", h, &br#"{"type":"invoice.pa1d"}"#[..]).await;
    assert_eq!(tampered.status, StatusCode::UNAUTHORIZED);

    let wrong = testing::standard_webhooks_v1a(&OTHER, "msg_3", now(), body);
    assert_eq!(
        post_json(addr, "/hook", wrong, &body[..]).await.status,
        StatusCode::UNAUTHORIZED
    );

    let stale = testing::standard_webhooks_v1a(&SEED, "msg_4", now() - 301, body);
    let res = post_json(addr, "/hook", stale, &body[..]).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.text(), r#"{"error":"stale_timestamp"}"#);
}

#[tokio::test]
async fn standard_webhooks_mixed_header_accepts_either_kind_of_key() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let key = PublicKey::standard_webhooks(&testing::ed25519_public_key(&SEED)).unwrap();
    let v = StandardWebhooks::new(Secret::standard_webhooks(secret).unwrap()).add_public_key(key);
    let addr = server(v).await;
    let body = br#"{"type":"a"}"#;
    let ts = now();
    // header: a v1 made with another secret, then a valid v1a
    let bad_v1 =
        testing::standard_webhooks("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "msg_m", ts, body);
    let v1a = testing::standard_webhooks_v1a(&SEED, "msg_m", ts, body);
    let mixed = format!(
        "{} {}",
        bad_v1["webhook-signature"].to_str().unwrap(),
        v1a["webhook-signature"].to_str().unwrap()
    );
    let h = with(v1a.clone(), "webhook-signature", &mixed);
    assert_eq!(
        post_json(addr, "/hook", h, &body[..]).await.status,
        StatusCode::OK
    );
    // and the HMAC secret alone still works
    let h = testing::standard_webhooks(secret, "msg_n", ts, body);
    assert_eq!(
        post_json(addr, "/hook", h, &body[..]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn discord_end_to_end_answers_401_to_bad_signatures() {
    let key = PublicKey::hex(&testing::discord_public_key(&SEED)).unwrap();
    let addr =
        server(Discord::new(key).tolerance(Tolerance::symmetric(Duration::from_secs(300)))).await;
    let body = br#"{"type":1,"id":"1"}"#;

    let ok = post_json(
        addr,
        "/hook",
        testing::discord(&SEED, now(), body),
        &body[..],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let tampered = post_json(
        addr,
        "/hook",
        testing::discord(&SEED, now(), body),
        &br#"{"type":2,"id":"1"}"#[..],
    )
    .await;
    assert_eq!(tampered.status, StatusCode::UNAUTHORIZED);
    let wrong = post_json(
        addr,
        "/hook",
        testing::discord(&OTHER, now(), body),
        &body[..],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let stale = post_json(
        addr,
        "/hook",
        testing::discord(&SEED, now() - 301, body),
        &body[..],
    )
    .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sendgrid_end_to_end() {
    let v = SendGrid::new(&testing::sendgrid_public_key(&SEED))
        .unwrap()
        .tolerance(Tolerance::symmetric(Duration::from_secs(300)));
    let addr = server(v).await;
    let body = b"[{\"sg_event_id\":\"e1\",\"event\":\"open\"}]\r\n";

    let ok = post_json(
        addr,
        "/hook",
        testing::sendgrid(&SEED, now(), body),
        &body[..],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let cut = &body[..body.len() - 2];
    let tampered = post_json(addr, "/hook", testing::sendgrid(&SEED, now(), body), cut).await;
    assert_eq!(tampered.status, StatusCode::UNAUTHORIZED);
    let wrong = post_json(
        addr,
        "/hook",
        testing::sendgrid(&OTHER, now(), body),
        &body[..],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let stale = post_json(
        addr,
        "/hook",
        testing::sendgrid(&SEED, now() - 301, body),
        &body[..],
    )
    .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
}

const TWILIO_URL: &str = "https://hooks.example.com/hooks/twilio?acct=1";
const TWILIO_PATH: &str = "/hooks/twilio?acct=1";
const TWILIO_BODY: &[u8] = b"MessageSid=SM1&Body=Ahoy%21+there&From=%2B15005550006";

fn base() -> PublicUrl {
    PublicUrl::base("https://hooks.example.com").expect("base url")
}

#[tokio::test]
async fn twilio_end_to_end_with_a_base_url() {
    let addr = server(Twilio::new(Secret::text("auth-token").unwrap()).public_url(base())).await;
    let h = testing::twilio("auth-token", TWILIO_URL, TWILIO_BODY);
    assert_eq!(
        post_form(addr, TWILIO_PATH, h.clone(), TWILIO_BODY)
            .await
            .status,
        StatusCode::OK
    );
    let tampered = b"MessageSid=SM1&Body=Ahoy%21+th3re&From=%2B15005550006";
    assert_eq!(
        post_form(addr, TWILIO_PATH, h, tampered).await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = testing::twilio("other-token", TWILIO_URL, TWILIO_BODY);
    assert_eq!(
        post_form(addr, TWILIO_PATH, wrong, TWILIO_BODY)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // signed for another path of the same host
    let elsewhere = testing::twilio(
        "auth-token",
        "https://hooks.example.com/hooks/twilio?acct=2",
        TWILIO_BODY,
    );
    assert_eq!(
        post_form(addr, TWILIO_PATH, elsewhere, TWILIO_BODY)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn twilio_json_body_hash_and_shared_key_end_to_end() {
    let v = Twilio::new(Secret::text("auth-token").unwrap())
        .add_shared_key(Secret::text("shared-secret").unwrap())
        .public_url(base());
    let addr = server(v).await;
    let body = br#"{"EventType":"onMessageAdded"}"#;
    use sha2::Digest as _;
    let hash = hex::encode(sha2::Sha256::digest(body));
    let path = format!("/hooks/twilio?bodySHA256={hash}");
    let url = format!("https://hooks.example.com{path}");
    let h = testing::twilio("auth-token", &url, body);
    assert_eq!(
        post_json(addr, &path, h.clone(), &body[..]).await.status,
        StatusCode::OK
    );
    let tampered = post_json(addr, &path, h, &br#"{"EventType":"onMessageRemoved"}"#[..]).await;
    assert_eq!(tampered.status, StatusCode::UNAUTHORIZED);

    let h = testing::twilio_shared_key("shared-secret", TWILIO_URL, TWILIO_BODY);
    assert_eq!(
        post_form(addr, TWILIO_PATH, h, TWILIO_BODY).await.status,
        StatusCode::OK
    );
    // the Auth Token cannot stand in for the SharedKey
    let h = testing::twilio_shared_key("auth-token", TWILIO_URL, TWILIO_BODY);
    assert_eq!(
        post_form(addr, TWILIO_PATH, h, TWILIO_BODY).await.status,
        StatusCode::UNAUTHORIZED
    );
}

fn forwarded(h: HeaderMap) -> HeaderMap {
    let h = with(h, "x-forwarded-proto", "https");
    with(h, "x-forwarded-host", "hooks.example.com")
}

#[tokio::test]
async fn twilio_behind_a_trusted_proxy_uses_its_forwarded_headers() {
    let trusted = PublicUrl::from_request(TrustedProxies::new(["127.0.0.1"]).unwrap());
    let addr = server(Twilio::new(Secret::text("auth-token").unwrap()).public_url(trusted)).await;
    let h = forwarded(testing::twilio("auth-token", TWILIO_URL, TWILIO_BODY));
    let res = post_form(addr, TWILIO_PATH, h, TWILIO_BODY).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_not_believed() {
    let untrusted = PublicUrl::from_request(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
    let addr = server(Twilio::new(Secret::text("auth-token").unwrap()).public_url(untrusted)).await;
    let h = forwarded(testing::twilio("auth-token", TWILIO_URL, TWILIO_BODY));
    assert_eq!(
        post_form(addr, TWILIO_PATH, h, TWILIO_BODY).await.status,
        StatusCode::UNAUTHORIZED
    );
    // what the server itself saw is what counts for that peer
    let own = format!("https://{addr}{TWILIO_PATH}");
    let h = forwarded(testing::twilio("auth-token", &own, TWILIO_BODY));
    assert_eq!(
        post_form(addr, TWILIO_PATH, h, TWILIO_BODY).await.status,
        StatusCode::OK
    );
}

const MANDRILL_BODY: &[u8] =
    b"mandrill_events=%5B%7B%22event%22%3A%22send%22%2C%22_id%22%3A%22a%22%7D%5D";

#[tokio::test]
async fn mandrill_end_to_end_and_behind_proxies() {
    let addr = server(Mandrill::new(Secret::text("mkey").unwrap()).public_url(base())).await;
    let url = "https://hooks.example.com/hook";
    let h = testing::mandrill("mkey", url, MANDRILL_BODY);
    assert_eq!(
        post_form(addr, "/hook", h.clone(), MANDRILL_BODY)
            .await
            .status,
        StatusCode::OK
    );
    let tampered = b"mandrill_events=%5B%7B%22event%22%3A%22open%22%2C%22_id%22%3A%22a%22%7D%5D";
    assert_eq!(
        post_form(addr, "/hook", h, tampered).await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = testing::mandrill("other", url, MANDRILL_BODY);
    assert_eq!(
        post_form(addr, "/hook", wrong, MANDRILL_BODY).await.status,
        StatusCode::UNAUTHORIZED
    );
    // JSON is not what Mandrill posts
    let h = testing::mandrill("mkey", url, MANDRILL_BODY);
    let res = post_json(addr, "/hook", h, MANDRILL_BODY).await;
    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let trusted = PublicUrl::from_request(TrustedProxies::new(["127.0.0.0/8"]).unwrap());
    let addr = server(Mandrill::new(Secret::text("mkey").unwrap()).public_url(trusted)).await;
    let h = forwarded(testing::mandrill("mkey", url, MANDRILL_BODY));
    assert_eq!(
        post_form(addr, "/hook", h, MANDRILL_BODY).await.status,
        StatusCode::OK
    );

    let untrusted = PublicUrl::from_request(TrustedProxies::none());
    let addr = server(Mandrill::new(Secret::text("mkey").unwrap()).public_url(untrusted)).await;
    let h = forwarded(testing::mandrill("mkey", url, MANDRILL_BODY));
    assert_eq!(
        post_form(addr, "/hook", h, MANDRILL_BODY).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn square_end_to_end_and_behind_proxies() {
    let body = br#"{"type":"payment.created","event_id":"e-9"}"#;
    let url = "https://hooks.example.com/hook";
    let addr = server(Square::new(Secret::text("sqkey").unwrap()).public_url(base())).await;
    let h = testing::square("sqkey", url, body);
    assert_eq!(
        post_json(addr, "/hook", h.clone(), &body[..]).await.status,
        StatusCode::OK
    );
    let tampered = br#"{"type":"payment.created","event_id":"e-8"}"#;
    assert_eq!(
        post_json(addr, "/hook", h, &tampered[..]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = testing::square("nope", url, body);
    assert_eq!(
        post_json(addr, "/hook", wrong, &body[..]).await.status,
        StatusCode::UNAUTHORIZED
    );

    let body2 = br#"{"type":"payment.created","event_id":"e-10"}"#;
    let trusted = PublicUrl::from_request(TrustedProxies::new(["127.0.0.1/32"]).unwrap());
    let addr = server(Square::new(Secret::text("sqkey").unwrap()).public_url(trusted)).await;
    let h = forwarded(testing::square("sqkey", url, body2));
    assert_eq!(
        post_json(addr, "/hook", h, &body2[..]).await.status,
        StatusCode::OK
    );

    let untrusted = PublicUrl::from_request(TrustedProxies::new(["192.0.2.0/24"]).unwrap());
    let addr = server(Square::new(Secret::text("sqkey").unwrap()).public_url(untrusted)).await;
    let h = forwarded(testing::square("sqkey", url, body2));
    assert_eq!(
        post_json(addr, "/hook", h, &body2[..]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unsigned_providers_end_to_end() {
    // Mailchimp: query token
    let v = Unsigned::mailchimp()
        .token_query("token", Secret::text("mc-token").unwrap())
        .build()
        .unwrap();
    let addr = server(v).await;
    let body = b"type=subscribe&data%5Bemail%5D=a%40example.com";
    let ok = post_form(addr, "/hook?token=mc-token", HeaderMap::new(), body).await;
    assert_eq!(ok.status, StatusCode::OK);
    let bad = post_form(addr, "/hook?token=mc-tokem", HeaderMap::new(), body).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let none = post_form(addr, "/hook", HeaderMap::new(), body).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);

    // Zapier: Basic auth
    let v = Unsigned::zapier()
        .basic_auth("zap", Secret::text("pw").unwrap())
        .build()
        .unwrap();
    let addr = server(v).await;
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("zap:pw")
    );
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("zap:pX")
    );
    let h = with(HeaderMap::new(), "authorization", &good);
    assert_eq!(
        post_json(addr, "/hook", h, &b"{}"[..]).await.status,
        StatusCode::OK
    );
    let h = with(HeaderMap::new(), "authorization", &bad);
    assert_eq!(
        post_json(addr, "/hook", h, &b"{}"[..]).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Papertrail: source network (the loopback peer) + token
    let allowed = Unsigned::papertrail()
        .allow_networks(["127.0.0.0/8"], TrustedProxies::none())
        .unwrap()
        .token_query("k", Secret::text("pt").unwrap())
        .build()
        .unwrap();
    let addr = server(allowed).await;
    let body = b"payload=%7B%22events%22%3A%5B%5D%7D";
    assert_eq!(
        post_form(addr, "/hook?k=pt", HeaderMap::new(), body)
            .await
            .status,
        StatusCode::OK
    );
    let denied = Unsigned::papertrail()
        .allow_networks(["192.0.2.0/24"], TrustedProxies::none())
        .unwrap()
        .build()
        .unwrap();
    let addr = server(denied).await;
    // a forged X-Forwarded-For from an untrusted peer does not help
    let h = with(HeaderMap::new(), "x-forwarded-for", "192.0.2.5");
    let res = post_form(addr, "/hook?k=pt", h, body).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}
