//! Shared test helpers: a real HTTP server on loopback and a real client.
#![allow(dead_code, unreachable_pub)]

pub mod cases;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Serves `app` on `127.0.0.1:0` (with `ConnectInfo<SocketAddr>`) and
/// returns its address. The server runs until the test's runtime ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server runs");
    });
    addr
}

/// A plain HTTP/1 client (no TLS).
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("<binary>")
    }
}

/// Sends `method path` with `headers` and `body` to `addr`.
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: impl Into<Bytes>,
) -> Reply {
    send_with(&client(), addr, method, path, headers, body).await
}

/// A client whose connections come from `local` (on Linux any
/// `127.0.0.0/8` address works: two clients, two loopback addresses).
pub fn client_from(local: std::net::IpAddr) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(local));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// [`send`] through a given client.
pub async fn send_with(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: impl Into<Bytes>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req.body(Full::new(body.into())).expect("request builds");
    let res = client.request(req).await.expect("server answers");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("body reads").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// POSTs JSON to `addr`.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    headers: HeaderMap,
    body: impl Into<Bytes>,
) -> Reply {
    let mut headers = headers;
    headers
        .entry(http::header::CONTENT_TYPE)
        .or_insert(http::HeaderValue::from_static("application/json"));
    send(addr, Method::POST, path, &headers, body).await
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
