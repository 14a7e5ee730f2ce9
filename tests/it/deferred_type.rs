//! The layer reads the event id before the claim and leaves a body-derived
//! event type to the handler's first `Verified::event_type()` call.

use std::convert::Infallible;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_layer::Layer;
use tower_webhook::providers::{StandardWebhooks, Stripe};
use tower_webhook::{Secret, Verified, Verifier, WebhookLayer, testing};

async fn echo_type(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let v = req.extensions().get::<Verified>().expect("verified");
    let text = format!(
        "{}|{}",
        v.event_id().unwrap_or("-"),
        v.event_type().unwrap_or("-")
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}

async fn deliver<V: Verifier>(v: V, headers: http::HeaderMap, body: &'static [u8]) -> String {
    let svc = WebhookLayer::new(v).layer(tower::service_fn(echo_type));
    let mut req = Request::post("/")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(body)))
        .expect("request");
    req.headers_mut().extend(headers);
    let res = svc.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), 200);
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn stripe_handler_sees_the_type_that_comes_last_in_the_body() {
    const BODY: &[u8] =
        br#"{"id":"evt_9","object":"event","data":{"object":{"note":"x"}},"type":"charge.refunded"}"#;
    let ts = testing::unix(SystemTime::now());
    let stripe = Stripe::new(Secret::text("whsec_deferred").expect("secret"));
    let headers = testing::stripe("whsec_deferred", ts, BODY);
    assert_eq!(
        deliver(stripe, headers, BODY).await,
        "evt_9|charge.refunded"
    );
}

#[tokio::test]
async fn standard_webhooks_handler_sees_the_body_type() {
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &[u8] = br#"{"data":{},"type":"user.deleted"}"#;
    let ts = testing::unix(SystemTime::now());
    let sw = StandardWebhooks::new(Secret::standard_webhooks(SECRET).expect("secret"));
    let headers = testing::standard_webhooks(SECRET, "msg_9", ts, BODY);
    assert_eq!(deliver(sw, headers, BODY).await, "msg_9|user.deleted");
}
