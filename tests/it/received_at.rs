//! Received-at mode through the layer: a delivery stored at the edge and
//! replayed an hour later through the same stack is checked against its
//! arrival time (`ReceivedAt`), not the clock.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::providers::Slack;
use tower_webhook::received::{ReceivedAt, StoredDelivery};
use tower_webhook::{Secret, WebhookLayer, testing};

const SECRET: &str = "received-at-secret";

fn stack(
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<tower_webhook::middleware::ResponseBody<Full<Bytes>>>,
    Error = Infallible,
> + Clone {
    let layer = WebhookLayer::new(Slack::new(Secret::text(SECRET).expect("secret")));
    ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(move |_req: Request<Full<Bytes>>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        }))
}

fn request(arrived: SystemTime, body: &'static [u8]) -> Request<Full<Bytes>> {
    let mut req = Request::post("/slack").header("content-type", "application/json");
    for (k, v) in &testing::slack(SECRET, testing::unix(arrived), body) {
        req = req.header(k, v);
    }
    req.body(Full::new(Bytes::from_static(body)))
        .expect("request")
}

#[tokio::test]
async fn an_hour_old_delivery_passes_with_its_arrival_time_and_fails_without() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = stack(Arc::clone(&calls));
    let arrived = SystemTime::now() - Duration::from_secs(3600);
    let body = br#"{"event_id":"Ev-late","type":"event_callback"}"#;

    // against `now`: stale, refused, the handler never sees it
    let res = svc
        .clone()
        .oneshot(request(arrived, body))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // with the arrival time: accepted
    let mut req = request(arrived, body);
    req.extensions_mut().insert(ReceivedAt(arrived));
    let res = svc.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // an arrival time does not make a delivery that was already stale then
    // acceptable
    let mut req = request(arrived, br#"{"event_id":"Ev-older"}"#);
    req.extensions_mut()
        .insert(ReceivedAt(arrived + Duration::from_secs(3600)));
    let res = svc.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_stored_delivery_replays_through_the_stack_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = stack(Arc::clone(&calls));
    let arrived = SystemTime::now() - Duration::from_secs(3600);
    let body = br#"{"event_id":"Ev-stored"}"#;
    let (parts, _) = request(arrived, body).into_parts();
    let queued = serde_json::to_string(&StoredDelivery::new(&parts, body, arrived)).expect("json");

    let stored: StoredDelivery = serde_json::from_str(&queued).expect("json");
    let replay = |s: &StoredDelivery| s.to_request().expect("decodes").map(Full::new);
    let res = svc
        .clone()
        .oneshot(replay(&stored))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    // the queue redelivers it: de-duplicated like a live delivery
    let res = svc.oneshot(replay(&stored)).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["webhook-duplicate"], "true");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
