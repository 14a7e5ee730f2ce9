//! Through a real HTTP server on loopback, for each provider of the
//! foundation: one accepted delivery and each rejection class with its
//! status; a rotated secret accepted; never a 5xx.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::StreamBody;
use http_body_util::combinators::BoxBody;
use hyper::body::Frame;
use tower_webhook::providers::Stripe;
use tower_webhook::{Secret, Tolerance, Verifier, testing};

use crate::common::cases::{SigAt, Ts, TsAt, body, cases, serve_cases};
use crate::common::{Reply, now, post, send};

async fn server(calls: Arc<AtomicUsize>) -> SocketAddr {
    serve_cases(&cases(), 4096, Duration::from_millis(400), calls).await
}

fn assert_status(r: &Reply, want: StatusCode, what: &str) {
    assert_eq!(r.status, want, "{what}: body {}", r.text());
    assert!(!r.status.is_server_error(), "{what}: 5xx");
}

#[tokio::test]
async fn each_provider_accepts_and_rejects_each_class_with_its_status() {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = server(Arc::clone(&calls)).await;
    let mut expected_calls = 0;
    // The rows below hold for the cases marked `http_suite`; every case
    // gets the bad-input matrix (tests/it/bad_input.rs).
    for (n, c) in cases().iter().enumerate().filter(|(_, c)| c.http_suite) {
        let SigAt::Header(signature_header) = c.signature else {
            unreachable!("{}: http_suite cases sign in a header", c.path)
        };
        let t = now();
        let id = |k: usize| format!("evt_{n}_{k}");
        let p = c.path;

        // accepted
        let b = body(&id(1));
        let r = post(addr, p, (c.sign)(c.good, t, b.as_bytes()), b.clone()).await;
        assert_status(&r, StatusCode::OK, &format!("{p} accepted"));
        assert_eq!(r.text(), "handled", "{p}: the handler answered");
        expected_calls += 1;

        // rotated secret accepted
        let b = body(&id(2));
        let r = post(addr, p, (c.sign)(c.other, t, b.as_bytes()), b.clone()).await;
        assert_status(&r, StatusCode::OK, &format!("{p} rotated secret"));
        assert_eq!(r.text(), "handled", "{p}: the handler answered");
        expected_calls += 1;

        // tampered body
        let b = body(&id(3));
        let tampered = b.replace("\"n\":1", "\"n\":2");
        let r = post(addr, p, (c.sign)(c.good, t, b.as_bytes()), tampered).await;
        assert_status(&r, StatusCode::UNAUTHORIZED, &format!("{p} tampered"));
        assert_eq!(r.text(), r#"{"error":"invalid_signature"}"#);

        // wrong secret
        let b = body(&id(4));
        let r = post(addr, p, (c.sign)(c.wrong, t, b.as_bytes()), b.clone()).await;
        assert_status(&r, StatusCode::UNAUTHORIZED, &format!("{p} wrong secret"));

        // missing signature header
        let b = body(&id(5));
        let mut h = (c.sign)(c.good, t, b.as_bytes());
        h.remove(signature_header);
        let r = post(addr, p, h, b.clone()).await;
        assert_status(&r, StatusCode::UNAUTHORIZED, &format!("{p} missing header"));
        assert_eq!(r.text(), r#"{"error":"missing_signature"}"#);

        // malformed header: a signature header that is not text, or repeated
        let mut h = (c.sign)(c.good, t, b.as_bytes());
        h.insert(
            signature_header,
            HeaderValue::from_bytes(b"\xff\xfe").expect("opaque"),
        );
        let r = post(addr, p, h, b.clone()).await;
        assert_status(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("{p} malformed header"),
        );
        let mut h = (c.sign)(c.good, t, b.as_bytes());
        let v = h[signature_header].clone();
        h.append(signature_header, v);
        let r = post(addr, p, h, b.clone()).await;
        assert_status(&r, StatusCode::BAD_REQUEST, &format!("{p} repeated header"));
        if let Some(Ts {
            at: TsAt::Header(set),
            ..
        }) = c.timestamp
        {
            let mut h = (c.sign)(c.good, t, b.as_bytes());
            set(&mut h, "soon");
            let r = post(addr, p, h, b.clone()).await;
            assert_status(
                &r,
                StatusCode::BAD_REQUEST,
                &format!("{p} malformed timestamp"),
            );
        }

        // stale and future timestamps
        if let Some(ts) = &c.timestamp {
            let both_ways = ts.future_refused;
            let b = body(&id(6));
            let r = post(addr, p, (c.sign)(c.good, t - 400, b.as_bytes()), b.clone()).await;
            assert_status(&r, StatusCode::UNAUTHORIZED, &format!("{p} stale"));
            assert_eq!(r.text(), r#"{"error":"stale_timestamp"}"#);
            let b = body(&id(7));
            let r = post(addr, p, (c.sign)(c.good, t + 400, b.as_bytes()), b.clone()).await;
            if both_ways {
                assert_status(&r, StatusCode::UNAUTHORIZED, &format!("{p} future"));
                assert_eq!(r.text(), r#"{"error":"future_timestamp"}"#);
            } else {
                // Stripe's own libraries accept future timestamps; so do we by default
                assert_status(&r, StatusCode::OK, &format!("{p} future (stale-only)"));
                expected_calls += 1;
            }
        }

        // oversize by Content-Length: refused before reading
        let big = "x".repeat(5000);
        let r = post(addr, p, (c.sign)(c.good, t, big.as_bytes()), big.clone()).await;
        assert_status(&r, StatusCode::PAYLOAD_TOO_LARGE, &format!("{p} oversize"));

        // oversize chunked: counted while read
        let r = chunked(addr, p, (c.sign)(c.good, t, big.as_bytes()), 10, 500).await;
        assert_status(
            &r,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("{p} oversize chunked"),
        );

        // wrong method
        let b = body(&id(8));
        let r = send(
            addr,
            Method::PUT,
            p,
            &(c.sign)(c.good, t, b.as_bytes()),
            b.clone(),
        )
        .await;
        assert_status(&r, StatusCode::METHOD_NOT_ALLOWED, &format!("{p} method"));

        // unsupported media type
        let mut h = (c.sign)(c.good, t, b.as_bytes());
        h.insert("content-type", HeaderValue::from_static("text/xml"));
        let r = send(addr, Method::POST, p, &h, b.clone()).await;
        assert_status(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("{p} media type"),
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        expected_calls,
        "only accepted deliveries reach the handler"
    );
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408() {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = server(Arc::clone(&calls)).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    tx.send(Ok(Frame::data(Bytes::from_static(b"{\"id\":"))))
        .await
        .expect("send");
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let body = BoxBody::new(StreamBody::new(stream));
    let req = http::Request::post(format!("http://{addr}/github"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", "sha256=00")
        .body(body)
        .expect("request");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<BoxBody<Bytes, Infallible>>();
    let res = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .expect("answered before the client gave up")
        .expect("response");
    assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
    drop(tx);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// Sends `chunks` chunks of `size` bytes without a Content-Length.
async fn chunked(
    addr: SocketAddr,
    path: &str,
    headers: HeaderMap,
    chunks: usize,
    size: usize,
) -> Reply {
    let frames =
        (0..chunks).map(move |_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; size]))));
    let body = BoxBody::new(StreamBody::new(futures_util::stream::iter(frames)));
    let mut req = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<BoxBody<Bytes, Infallible>>();
    let res = client.request(req.body(body).expect("request")).await;
    match res {
        Ok(res) => {
            let (parts, body) = res.into_parts();
            let body = http_body_util::BodyExt::collect(body)
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        }
        // The server may answer 413 and close while the client still writes.
        Err(e) => panic!("no answer to an oversize chunked body: {e}"),
    }
}

#[tokio::test]
async fn stripe_future_timestamps_are_refused_when_configured_symmetric() {
    let v = Stripe::new(Secret::text("whsec_x").expect("secret"))
        .tolerance(Tolerance::symmetric(Duration::from_secs(300)));
    let b = body("evt_f");
    let h = testing::stripe("whsec_x", now() + 400, b.as_bytes());
    let err = v
        .verify(
            &testing::parts("/", h),
            b.as_bytes(),
            std::time::SystemTime::now(),
        )
        .expect_err("future refused");
    assert_eq!(err, tower_webhook::VerifyError::FutureTimestamp);
}
