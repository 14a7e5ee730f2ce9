//! The 1 KiB deliveries the in-process benches send through the layer, and
//! the service that only collects the body.
#![allow(dead_code)]

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use tower_webhook::client::ClientAddr;
use tower_webhook::testing;

/// The size of every body.
pub(crate) const SIZE: usize = 1024;

/// A Stripe event of exactly [`SIZE`] bytes with id `evt_<n>` (type last,
/// as Stripe sends it).
pub(crate) fn event(n: u64) -> String {
    let head = format!(
        r#"{{"id":"evt_{n:020}","object":"event","api_version":"2023-10-16","created":1686089970,"data":{{"object":{{"id":"cus_9s6XKzkNRiz8i3","object":"customer","note":""#
    );
    let tail = r#""}},"livemode":false,"pending_webhooks":1,"type":"customer.created"}"#;
    let pad = SIZE.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

/// `body` as hyper hands a request's body over: a chunk split off the
/// connection's read buffer (`read_buf.split_to(n).freeze()` in hyper's
/// `proto::h1::io`), so reference-counted. A clone of it (the layer keeps
/// one for the event type it reads later) is a count; a clone of a
/// `Bytes` made from a `Vec` would allocate the shared header first.
pub(crate) fn received(body: &[u8]) -> Bytes {
    // The head was read into the same buffer, before the body.
    const HEAD: usize = 256;
    let mut buf = BytesMut::with_capacity(HEAD + body.len());
    buf.resize(HEAD, b' ');
    buf.extend_from_slice(body);
    drop(buf.split_to(HEAD));
    buf.split_to(body.len()).freeze()
}

/// A JSON delivery of `body` to `path` carrying `headers`, from `peer` if
/// given; the body as hyper would hand it over ([`received`]).
pub(crate) fn delivery(
    path: &str,
    body: &[u8],
    headers: HeaderMap,
    peer: Option<SocketAddr>,
) -> Request<Full<Bytes>> {
    let mut req = Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(received(body)))
        .expect("request");
    req.headers_mut().extend(headers);
    if let Some(peer) = peer {
        req.extensions_mut().insert(ClientAddr(peer));
    }
    req
}

/// A Stripe delivery of `body` signed with `secret` at `at`.
pub(crate) fn stripe(
    secret: &str,
    body: &str,
    at: SystemTime,
    peer: Option<SocketAddr>,
) -> Request<Full<Bytes>> {
    let headers = testing::stripe(secret, testing::unix(at), body.as_bytes());
    delivery("/webhooks/stripe", body.as_bytes(), headers, peer)
}

/// A service that collects the body and answers 200 (the bare baseline,
/// and the handler behind the layer).
pub(crate) async fn collect(
    req: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req.into_body().collect().await.map(|c| c.to_bytes());
    black_box(body.map(|b| b.len()).unwrap_or(0));
    Ok(Response::new(Full::new(Bytes::new())))
}
