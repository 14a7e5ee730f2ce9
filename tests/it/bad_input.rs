//! The bad-input matrix: for every provider, through a real HTTP server,
//! hostile requests each get their expected 4xx — never a panic, never a
//! 5xx — and none reaches the handler. Every provider is one entry of
//! `common::cases`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tower_webhook::{ConfigError, Secret};

use crate::common;
use crate::common::cases::{Case, SigAt, TsAt, cases, get_json, serve_cases, set_json};
use crate::common::{Reply, now, post};

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
    // the headers carry the case's content type
    let mut req = http::Request::post(format!("http://{addr}{path}"));
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

/// A genuine delivery whose signature text `edit` changes (`None`:
/// removed), wherever the case carries it.
fn with_signature(
    c: &Case,
    t: i64,
    event: &[u8],
    edit: impl FnOnce(&str) -> Option<Vec<u8>>,
) -> (HeaderMap, Vec<u8>) {
    let (mut h, mut b) = c.deliver(c.good, t, event);
    match c.signature {
        SigAt::Header(name) | SigAt::Token(name) => {
            let old = h[name].to_str().expect("ascii").to_owned();
            match edit(&old) {
                None => {
                    h.remove(name);
                }
                Some(v) => {
                    h.insert(name, HeaderValue::from_bytes(&v).expect("opaque"));
                }
            }
        }
        SigAt::Body { pointer, .. } => {
            let old = get_json(&b, pointer);
            let new = edit(&old).map(|v| String::from_utf8(v).expect("JSON text is UTF-8"));
            set_json(&mut b, pointer, new.as_deref());
        }
    }
    (h, b)
}

/// A genuine delivery whose signed timestamp reads `text`.
fn with_timestamp(c: &Case, at: &TsAt, t: i64, event: &[u8], text: &str) -> (HeaderMap, Vec<u8>) {
    match at {
        TsAt::Header(set) => {
            let (mut h, b) = c.deliver(c.good, t, event);
            set(&mut h, text);
            (h, b)
        }
        TsAt::Body(pointer) => c.deliver_with(c.good, t, event, |b| {
            set_json(b, pointer, Some(text));
        }),
    }
}

async fn post_delivery(addr: SocketAddr, path: &str, (h, b): (HeaderMap, Vec<u8>)) -> Reply {
    post(addr, path, h, b).await
}

#[tokio::test]
async fn hostile_requests_get_their_4xx_for_every_provider() {
    let calls = Arc::new(AtomicUsize::new(0));
    let all = cases();
    let addr = serve_cases(&all, LIMIT, Duration::from_millis(300), Arc::clone(&calls)).await;
    // Every delivery is signed at its own `now()`: Paddle allows 5 s, and a
    // loaded machine may take longer than that over one case.
    for c in &all {
        let p = c.path;
        let ev = c.event(&format!("evt_bad_{}", &p[1..]));
        let ev = ev.as_bytes();
        let signed = || c.deliver(c.good, now(), ev);
        let in_body = matches!(c.signature, SigAt::Body { .. });
        let token = matches!(c.signature, SigAt::Token(_));

        // the entry itself: both secrets accepted, a wrong one refused (each
        // its own event: a repeated id would be answered as a duplicate)
        for (n, row, secret, want) in [
            (1, "genuine delivery", c.good, StatusCode::OK),
            (2, "rotated secret", c.other, StatusCode::OK),
            (3, "wrong secret", c.wrong, StatusCode::UNAUTHORIZED),
        ] {
            let ev = c.event(&format!("evt_ok_{}_{n}", &p[1..]));
            let r = post_delivery(addr, p, c.deliver(secret, now(), ev.as_bytes())).await;
            check(c, row, &r, want);
        }

        // body too large: by Content-Length, and chunked
        // (raw TCP: the server answers 413 and closes before reading all)
        let (h, big) = c.deliver(c.good, now(), &vec![b'x'; LIMIT + 1]);
        let r = common::send_raw(addr, &http::Method::POST, p, &h, &big).await;
        check(
            c,
            "content-length over limit",
            &r,
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        let chunked = vec![b'x'; LIMIT + 8192];
        let r = common::send_raw_chunked(addr, p, &signed().0, &chunked).await;
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
        let r = send_body(addr, p, &signed().0, BoxBody::new(StreamBody::new(stream))).await;
        check(c, "stalled body", &r, StatusCode::REQUEST_TIMEOUT);
        drop(tx);

        // the signature: missing, empty, repeated, oversized, not ASCII, not
        // UTF-8, of the wrong length or alphabet
        let r = post_delivery(addr, p, with_signature(c, now(), ev, |_| None)).await;
        check(c, "missing signature", &r, StatusCode::UNAUTHORIZED);
        let r = post_delivery(addr, p, with_signature(c, now(), ev, |_| Some(Vec::new()))).await;
        check(c, "empty signature", &r, StatusCode::UNAUTHORIZED);
        // A JSON field has one value (the first of repeated keys counts):
        // repeating applies to headers.
        if let SigAt::Header(name) | SigAt::Token(name) = c.signature {
            let (mut h, b) = signed();
            let v = h[name].clone();
            h.append(name, v);
            let r = post(addr, p, h, b).await;
            check(c, "repeated signature", &r, StatusCode::BAD_REQUEST);
        }
        let edit = |v: &str| Some(format!("{v}{}", "a".repeat(8192)).into_bytes());
        let r = post_delivery(addr, p, with_signature(c, now(), ev, edit)).await;
        check(c, "oversized signature", &r, StatusCode::UNAUTHORIZED);
        // A signature header must be visible ASCII (400); in a JSON string,
        // or as a token compared byte for byte, non-ASCII text is only a
        // wrong signature (401).
        let edit = |_: &str| Some("sïgnature".as_bytes().to_vec());
        let r = post_delivery(addr, p, with_signature(c, now(), ev, edit)).await;
        let want = if in_body || token {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        check(c, "non-ASCII signature", &r, want);
        // A JSON string cannot hold bytes that are not UTF-8: the invalid
        // UTF-8 body row below sends such bytes to body-signed schemes.
        if !in_body {
            let edit = |_: &str| Some(b"\xff\xfe\xfd".to_vec());
            let r = post_delivery(addr, p, with_signature(c, now(), ev, edit)).await;
            let want = if token {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            check(c, "non-UTF-8 signature", &r, want);
        }
        let edit = |v: &str| Some(v.as_bytes()[..v.len() - 2].to_vec());
        let r = post_delivery(addr, p, with_signature(c, now(), ev, edit)).await;
        check(c, "truncated signature", &r, StatusCode::UNAUTHORIZED);
        let edit = |v: &str| {
            let garbled: String = v
                .chars()
                .map(|ch| if ch.is_ascii_alphanumeric() { '!' } else { ch })
                .collect();
            Some(garbled.into_bytes())
        };
        let r = post_delivery(addr, p, with_signature(c, now(), ev, edit)).await;
        // Stripe's `t=` (Paddle's `ts=`) becomes `!=`: the timestamp is then
        // missing (400); every other scheme has no valid signature (401).
        let want = if c.ts_in_signature {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNAUTHORIZED
        };
        check(c, "signature of the wrong alphabet", &r, want);

        // timestamps, where the scheme signs one
        if let Some(ts) = &c.timestamp {
            for text in ["-5", "+5", "abc", "18446744073709551615", "1e9", "0x10", ""] {
                let r = post_delivery(addr, p, with_timestamp(c, &ts.at, now(), ev, text)).await;
                // an empty timestamp header counts as missing: 400 either way
                check(
                    c,
                    &format!("timestamp {text:?}"),
                    &r,
                    StatusCode::BAD_REQUEST,
                );
            }
            // HTTP strips spaces around a header value, so " 5" arrives as
            // "5": a valid Unix time that the signature does not cover (401).
            // Spaces stay inside Stripe's `t= 5,` (Paddle's `ts= 5;`) and
            // inside a JSON string (400); `5` is no RFC 3339 time (400).
            let header_unix = ts.unix && !c.ts_in_signature && matches!(ts.at, TsAt::Header(_));
            let want = if header_unix {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            for text in [" 5", "5 "] {
                let r = post_delivery(addr, p, with_timestamp(c, &ts.at, now(), ev, text)).await;
                check(c, &format!("timestamp {text:?}"), &r, want);
            }
            let r = post_delivery(addr, p, c.deliver(c.good, 0, ev)).await;
            check(c, "timestamp zero", &r, StatusCode::UNAUTHORIZED);
            if ts.future_refused {
                let r = post_delivery(addr, p, c.deliver(c.good, now() + 1_000_000_000, ev)).await;
                check(c, "timestamp far future", &r, StatusCode::UNAUTHORIZED);
            }
        }

        // Signed bodies the handler's type cannot take: 400, handler not
        // called. Where the signature travels in the body, such a body
        // carries none: the verifier refuses it first.
        let bad_body = match c.signature {
            SigAt::Header(_) | SigAt::Token(_) => StatusCode::BAD_REQUEST,
            SigAt::Body { unsigned, .. } => unsigned,
        };
        let not_utf8 = b"{\"id\":\"\xff\xfe\"}".to_vec();
        let r = post_delivery(addr, p, c.deliver(c.good, now(), &not_utf8)).await;
        check(c, "invalid UTF-8 body", &r, bad_body);
        // A form has no nesting (`[[[…]]]` is one field name) and an empty
        // form is a valid, empty one: the handler's `Value` takes both
        // (form payload shapes: tests/it/form_json.rs).
        if !c.is_form() {
            let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
            let r = post_delivery(addr, p, c.deliver(c.good, now(), deep.as_bytes())).await;
            check(c, "JSON nested 10 000 deep", &r, bad_body);
            let r = post_delivery(addr, p, c.deliver(c.good, now(), b"")).await;
            check(c, "empty body", &r, bad_body);
        }
        let long = format!(r#"{{"id":"evt_long","s":"{}"}}"#, "y".repeat(LIMIT));
        let r = post_delivery(addr, p, c.deliver(c.good, now(), long.as_bytes())).await;
        check(c, "a 1 MiB string", &r, StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2 * all.len(),
        "only the genuine deliveries (two per provider) reached a handler"
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
