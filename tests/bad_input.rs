//! The bad-input matrix: for every provider, through a real HTTP server,
//! hostile requests each get their expected 4xx — never a panic, never a
//! 5xx — and none reaches the handler.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::cases::{Case, body, cases, serve_cases};
use common::{Reply, now, post};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tower_webhook::{ConfigError, Secret};

const LIMIT: usize = 1024 * 1024;

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    BoxBody<Bytes, Infallible>,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

async fn send_body(
    addr: SocketAddr,
    path: &str,
    headers: &HeaderMap,
    body: BoxBody<Bytes, Infallible>,
) -> Reply {
    let mut req = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let fut = client().request(req.body(body).expect("request"));
    let res = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("answered in time")
        .expect("server answered");
    let (parts, body) = res.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// The expected status of each row, checked with the row's name.
fn check(c: &Case, row: &str, r: &Reply, want: StatusCode) {
    assert!(
        !r.status.is_server_error(),
        "{} {row}: 5xx {}",
        c.path,
        r.text()
    );
    assert_eq!(r.status, want, "{} {row}: {}", c.path, r.text());
}

#[tokio::test]
async fn hostile_requests_get_their_4xx_for_every_provider() {
    let calls = Arc::new(AtomicUsize::new(0));
    let all = cases();
    let addr = serve_cases(&all, LIMIT, Duration::from_millis(300), Arc::clone(&calls)).await;
    let t = now();
    for c in &all {
        let p = c.path;
        let b = body(&format!("evt_bad_{}", &p[1..]));
        let bb = b.as_bytes();
        let signed = || (c.sign)(c.good, t, bb);

        // body too large: by Content-Length, and chunked
        // (raw TCP: the server answers 413 and closes before reading all)
        let big = vec![b'x'; LIMIT + 1];
        let mut h = (c.sign)(c.good, t, &big);
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let r = common::send_raw(addr, &http::Method::POST, p, &h, &big).await;
        check(
            c,
            "content-length over limit",
            &r,
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        let chunked = vec![b'x'; LIMIT + 8192];
        let mut h = signed();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let r = common::send_raw_chunked(addr, p, &h, &chunked).await;
        check(c, "chunked over limit", &r, StatusCode::PAYLOAD_TOO_LARGE);

        // a body that stalls
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
        tx.send(Ok(Frame::data(Bytes::from_static(b"{"))))
            .await
            .expect("send");
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
            );
        let r = send_body(addr, p, &signed(), BoxBody::new(StreamBody::new(stream))).await;
        check(c, "stalled body", &r, StatusCode::REQUEST_TIMEOUT);
        drop(tx);

        // signature header: missing, empty, repeated, oversized, not ASCII, not UTF-8
        let mut h = signed();
        h.remove(c.signature_header);
        check(
            c,
            "missing signature",
            &post(addr, p, h, b.clone()).await,
            StatusCode::UNAUTHORIZED,
        );
        let mut h = signed();
        h.insert(c.signature_header, HeaderValue::from_static(""));
        check(
            c,
            "empty signature",
            &post(addr, p, h, b.clone()).await,
            StatusCode::UNAUTHORIZED,
        );
        let mut h = signed();
        let v = h[c.signature_header].clone();
        h.append(c.signature_header, v);
        check(
            c,
            "repeated signature",
            &post(addr, p, h, b.clone()).await,
            StatusCode::BAD_REQUEST,
        );
        let mut h = signed();
        let huge = format!(
            "{}{}",
            h[c.signature_header].to_str().expect("ascii"),
            "a".repeat(8192)
        );
        h.insert(
            c.signature_header,
            HeaderValue::from_str(&huge).expect("visible"),
        );
        check(
            c,
            "oversized signature",
            &post(addr, p, h, b.clone()).await,
            StatusCode::UNAUTHORIZED,
        );
        for (row, bytes) in [
            ("non-ASCII signature", "sïgnature".as_bytes()),
            ("non-UTF-8 signature", b"\xff\xfe\xfd"),
        ] {
            let mut h = signed();
            h.insert(
                c.signature_header,
                HeaderValue::from_bytes(bytes).expect("opaque"),
            );
            check(
                c,
                row,
                &post(addr, p, h, b.clone()).await,
                StatusCode::BAD_REQUEST,
            );
        }

        // signature of the wrong length or alphabet
        let mut h = signed();
        let v = h[c.signature_header].to_str().expect("ascii").to_owned();
        h.insert(
            c.signature_header,
            HeaderValue::from_str(&v[..v.len() - 2]).expect("visible"),
        );
        check(
            c,
            "truncated signature",
            &post(addr, p, h, b.clone()).await,
            StatusCode::UNAUTHORIZED,
        );
        let mut h = signed();
        let garbled: String = v
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() { '!' } else { ch })
            .collect();
        h.insert(
            c.signature_header,
            HeaderValue::from_str(&garbled).expect("visible"),
        );
        let r = post(addr, p, h, b.clone()).await;
        // Stripe's `t=` (Paddle's `ts=`) becomes `!=`: the timestamp is then
        // missing (400); every other scheme has no valid signature (401).
        let want = if c.ts_in_signature {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNAUTHORIZED
        };
        check(c, "signature of the wrong alphabet", &r, want);

        // timestamps, where the scheme signs one
        if let Some(set) = c.set_timestamp {
            for text in ["-5", "+5", "abc", "18446744073709551615", "1e9", "0x10", ""] {
                let mut h = signed();
                set(&mut h, text);
                let r = post(addr, p, h, b.clone()).await;
                // an empty timestamp header counts as missing: 400 either way
                check(
                    c,
                    &format!("timestamp {text:?}"),
                    &r,
                    StatusCode::BAD_REQUEST,
                );
            }
            // HTTP strips spaces around a header value, so " 5" arrives as
            // "5": a valid number that the signature does not cover (401).
            // Stripe's `t= 5,` (Paddle's `ts= 5;`) keeps its space inside the
            // header: 400.
            let want = if c.ts_in_signature {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNAUTHORIZED
            };
            for text in [" 5", "5 "] {
                let mut h = signed();
                set(&mut h, text);
                let r = post(addr, p, h, b.clone()).await;
                check(c, &format!("timestamp {text:?}"), &r, want);
            }
            let r = post(addr, p, (c.sign)(c.good, 0, bb), b.clone()).await;
            check(c, "timestamp zero", &r, StatusCode::UNAUTHORIZED);
            if c.future_refused {
                let r = post(addr, p, (c.sign)(c.good, t + 1_000_000_000, bb), b.clone()).await;
                check(c, "timestamp far future", &r, StatusCode::UNAUTHORIZED);
            }
        }

        // signed bodies the handler's type cannot take: 400, handler not called
        let not_utf8 = b"{\"id\":\"\xff\xfe\"}".to_vec();
        let r = post(addr, p, (c.sign)(c.good, t, &not_utf8), not_utf8.clone()).await;
        check(c, "invalid UTF-8 body", &r, StatusCode::BAD_REQUEST);
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let r = post(addr, p, (c.sign)(c.good, t, deep.as_bytes()), deep.clone()).await;
        check(c, "JSON nested 10 000 deep", &r, StatusCode::BAD_REQUEST);
        let r = post(addr, p, (c.sign)(c.good, t, b""), Bytes::new()).await;
        check(c, "empty body", &r, StatusCode::BAD_REQUEST);
        let long = format!(r#"{{"id":"evt_long","s":"{}"}}"#, "y".repeat(LIMIT));
        let r = post(addr, p, (c.sign)(c.good, t, long.as_bytes()), long.clone()).await;
        check(c, "a 1 MiB string", &r, StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no hostile request reached a handler"
    );
}

#[test]
fn empty_or_undecodable_secrets_are_refused_when_building() {
    assert_eq!(Secret::text("").err(), Some(ConfigError::EmptySecret));
    assert_eq!(
        Secret::standard_webhooks("whsec_").err(),
        Some(ConfigError::EmptySecret)
    );
    let err = Secret::standard_webhooks("whsec_***not-base64***").expect_err("refused");
    assert!(
        err.to_string().contains("whsec_"),
        "the error says what was expected: {err}"
    );
    assert!(Secret::hex("xyz").is_err());
}
