//! The actix-web adapter: the same bookkeeping as the tower service
//! (complete on 2xx, release on anything else, panics included), the
//! extractor's 400/422/500 answers, client addresses for the rate limiter
//! and the rate-limit headers on the handler's response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, HttpResponse, web};
use serde::Deserialize;
use tower_webhook::actix::{FormJson, Webhook, WebhookMiddleware};
use tower_webhook::providers::GitHub;
use tower_webhook::rate_limit::RateLimit;
use tower_webhook::{Secret, WebhookLayer, testing};

const SECRET: &str = "actix-secret";

fn layer() -> WebhookLayer<GitHub> {
    WebhookLayer::new(GitHub::new(Secret::text(SECRET).expect("secret")))
}

fn delivery(id: &str, body: &str) -> TestRequest {
    let mut req = TestRequest::post()
        .uri("/hook")
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_owned());
    for (k, v) in &testing::github(SECRET, id, "push", body.as_bytes()) {
        req = req.insert_header((k.as_str(), v.to_str().expect("ascii")));
    }
    req
}

fn is_duplicate<B>(res: &ServiceResponse<B>) -> bool {
    res.headers()
        .get("webhook-duplicate")
        .is_some_and(|v| v == "true")
}

#[derive(Debug, Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
}

#[actix_web::test]
async fn handler_gets_the_parsed_payload_and_a_retry_is_acknowledged_as_duplicate() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let app = init_service(
        App::new().service(
            web::resource("/hook")
                .wrap(WebhookMiddleware::new(&layer()))
                .route(web::post().to(move |hook: Webhook<Push>| {
                    let seen = Arc::clone(&seen);
                    async move {
                        seen.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(hook.meta.event_id(), Some("d-1"));
                        HttpResponse::Ok().body(hook.payload.git_ref)
                    }
                })),
        ),
    )
    .await;
    let body = r#"{"ref":"refs/heads/main"}"#;
    let res = call_service(&app, delivery("d-1", body).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!is_duplicate(&res));
    assert_eq!(read_body(res).await, "refs/heads/main");

    let again = call_service(&app, delivery("d-1", body).to_request()).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(is_duplicate(&again));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the duplicate never reaches the handler"
    );

    let tampered = delivery("d-2", body).set_payload(r#"{"ref":"refs/heads/evil"}"#);
    let res = call_service(&app, tampered.to_request()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(read_body(res).await, r#"{"error":"invalid_signature"}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn handler_failure_releases_the_claim_and_the_retry_is_handled() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let app = init_service(
        App::new().service(
            web::resource("/hook")
                .wrap(WebhookMiddleware::new(&layer()))
                .route(web::post().to(move |_: Webhook<Push>| {
                    let seen = Arc::clone(&seen);
                    async move {
                        // first an error answer, then an `Err`, then success
                        match seen.fetch_add(1, Ordering::SeqCst) {
                            0 => Ok(HttpResponse::ServiceUnavailable().finish()),
                            1 => Err(actix_web::error::ErrorInternalServerError("db down")),
                            _ => Ok(HttpResponse::Ok().finish()),
                        }
                    }
                })),
        ),
    )
    .await;
    let body = r#"{"ref":"x"}"#;
    let first = call_service(&app, delivery("d-9", body).to_request()).await;
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    let second = call_service(&app, delivery("d-9", body).to_request()).await;
    assert_eq!(second.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!is_duplicate(&second));
    let third = call_service(&app, delivery("d-9", body).to_request()).await;
    assert_eq!(third.status(), StatusCode::OK);
    assert!(!is_duplicate(&third));
    let fourth = call_service(&app, delivery("d-9", body).to_request()).await;
    assert!(is_duplicate(&fourth));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[actix_web::test]
async fn invalid_or_misshapen_payload_answers_400_or_422_and_releases_the_claim() {
    let app = init_service(
        App::new().service(
            web::resource("/hook")
                .wrap(WebhookMiddleware::new(&layer()))
                .route(web::post().to(|hook: Webhook<Push>| async move {
                    HttpResponse::Ok().body(hook.payload.git_ref)
                })),
        ),
    )
    .await;
    let res = call_service(&app, delivery("d-3", r#"{"ref":"#).to_request()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(read_body(res).await, r#"{"error":"invalid_payload"}"#);

    let res = call_service(&app, delivery("d-3", r#"{"ref":7}"#).to_request()).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        res.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(read_body(res).await, r#"{"error":"unexpected_payload"}"#);

    // the claim was released twice: the corrected retry is handled
    let res = call_service(&app, delivery("d-3", r#"{"ref":"ok"}"#).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(read_body(res).await, "ok");
}

#[actix_web::test]
async fn form_json_reads_the_payload_field_of_a_form_body() {
    let app = init_service(
        App::new().service(
            web::resource("/hook")
                .wrap(WebhookMiddleware::new(&layer()))
                .route(web::post().to(|hook: FormJson<Push>| async move {
                    HttpResponse::Ok().body(hook.payload.git_ref)
                })),
        ),
    )
    .await;
    let body = "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fdev%22%7D";
    let req = delivery("d-4", body)
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .to_request();
    let res = call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(read_body(res).await, "refs/heads/dev");
}

#[actix_web::test]
async fn extractor_without_the_middleware_answers_500() {
    let app = init_service(App::new().route(
        "/hook",
        web::post().to(|_: Webhook<Push>| async { HttpResponse::Ok().finish() }),
    ))
    .await;
    let res = call_service(&app, delivery("d-5", r#"{"ref":"x"}"#).to_request()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = read_body(res).await;
    assert!(body.starts_with(br#"{"error":"misconfigured""#), "{body:?}");
}

#[actix_web::test]
async fn pre_auth_limit_keys_on_the_peer_address_and_headers_reach_the_handler_response() {
    let layer = WebhookLayer::builder(GitHub::new(Secret::text(SECRET).expect("secret")))
        .pre_auth_limit(RateLimit::per_minute(1).expect("limit"))
        .rate_limit_headers(true)
        .build();
    let app = init_service(
        App::new().service(
            web::resource("/hook")
                .wrap(WebhookMiddleware::new(&layer))
                .route(web::post().to(|_: Webhook<Push>| async { HttpResponse::Ok().finish() })),
        ),
    )
    .await;
    let a: SocketAddr = "192.0.2.1:4000".parse().expect("addr");
    let b: SocketAddr = "192.0.2.2:4000".parse().expect("addr");
    let body = r#"{"ref":"x"}"#;
    let res = call_service(&app, delivery("d-6", body).peer_addr(a).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers().contains_key("ratelimit-policy"),
        "{:?}",
        res.headers()
    );
    let res = call_service(&app, delivery("d-7", body).peer_addr(a).to_request()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    // another client has its own bucket
    let res = call_service(&app, delivery("d-7", body).peer_addr(b).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[test]
fn handler_panic_releases_the_claim_on_a_real_server() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let layer = layer();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                let seen = Arc::clone(&seen);
                App::new().service(
                    web::resource("/hook")
                        .wrap(WebhookMiddleware::new(&layer))
                        .route(web::post().to(move |_: Webhook<Push>| {
                            let n = seen.fetch_add(1, Ordering::SeqCst);
                            async move {
                                assert!(n > 0, "the first delivery's handler panics");
                                HttpResponse::Ok().finish()
                            }
                        })),
                )
            })
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run()
            .await
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let body = r#"{"ref":"x"}"#;
        let send = || async {
            let mut req = http::Request::post(format!("http://{addr}/hook"))
                .header("content-type", "application/json");
            for (k, v) in &testing::github(SECRET, "d-8", "push", body.as_bytes()) {
                req = req.header(k, v);
            }
            let req = req
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    body.as_bytes(),
                )))
                .expect("request");
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http();
            tokio::time::timeout(std::time::Duration::from_secs(5), client.request(req)).await
        };
        // the panic: no answer (connection closed) or a 500
        let first = send().await.expect("answers in time");
        if let Ok(res) = &first {
            assert!(res.status().is_server_error(), "{:?}", res.status());
        }
        // the release runs in a spawned task: the retry may meet the claim
        // in flight (409) for a moment, never a duplicate
        let mut status = None;
        for _ in 0..50 {
            let res = send().await.expect("answers in time").expect("response");
            assert!(res.headers().get("webhook-duplicate").is_none());
            status = Some(res.status());
            if res.status() == http::StatusCode::OK {
                break;
            }
            assert_eq!(res.status(), http::StatusCode::CONFLICT);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(status, Some(http::StatusCode::OK));
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[actix_web::test]
async fn middleware_answers_405_and_415_with_json_bodies() {
    let app = init_service(
        App::new().service(
            web::resource("/hook")
                .wrap(WebhookMiddleware::new(&layer()))
                .route(web::post().to(|_: Webhook<Push>| async { HttpResponse::Ok().finish() })),
        ),
    )
    .await;
    let res = app
        .call(TestRequest::get().uri("/hook").to_request())
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(read_body(res).await, r#"{"error":"method_not_allowed"}"#);
    let req = delivery("d-10", "{}")
        .insert_header(("content-type", "text/plain"))
        .to_request();
    let res = call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// Serves `layer` at `/hook` on a real actix server (own thread, own
/// system); the handler answers 200.
fn real_server(layer: WebhookLayer<GitHub>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                App::new().service(
                    web::resource("/hook")
                        .wrap(WebhookMiddleware::new(&layer))
                        .route(
                            web::post()
                                .to(|_: Webhook<Push>| async { HttpResponse::Ok().finish() }),
                        ),
                )
            })
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run()
            .await
        })
    });
    addr
}

/// Writes `head` then each chunk of `body` (with a pause) on a raw
/// connection and returns the status line.
fn raw_exchange(addr: SocketAddr, head: &str, body: &[&[u8]]) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    conn.write_all(head.as_bytes()).expect("head");
    for chunk in body {
        // the server may answer (and close) before the body is sent
        if conn.write_all(chunk).is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut answer = vec![0u8; 256];
    let n = conn.read(&mut answer).expect("an answer");
    let text = String::from_utf8_lossy(answer.get(..n).unwrap_or_default()).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn slow_body_answers_408_and_long_chunked_body_413_while_read() {
    let layer = WebhookLayer::builder(GitHub::new(Secret::text(SECRET).expect("secret")))
        .read_timeout(std::time::Duration::from_millis(300))
        .body_limit(64)
        .build();
    let addr = real_server(layer);
    // wait for the server
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // 10 of the 40 declared bytes, then silence
    let head = "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n";
    let status = raw_exchange(addr, head, &[b"{\"ref\":\"ab"]);
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");

    // declared too long: refused before reading
    let head = "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 65\r\n\r\n";
    let status = raw_exchange(addr, head, &[]);
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");

    // chunked, no length: counted while read (3 chunks of 30 bytes)
    let head = "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let chunk = format!("1e\r\n{}\r\n", "a".repeat(30));
    let status = raw_exchange(
        addr,
        head,
        &[
            chunk.as_bytes(),
            chunk.as_bytes(),
            chunk.as_bytes(),
            b"0\r\n\r\n",
        ],
    );
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
}
