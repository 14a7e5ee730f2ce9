//! The demo receiver on plain hyper 1.x + hyper-util, no axum: a
//! `tower::ServiceBuilder` stack with `WebhookLayer` per route, and a
//! handler that parses the verified body with `payload::parse`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::body::RequestBody;
use tower_webhook::client::ClientAddr;
use tower_webhook::{Verified, Verifier, WebhookLayer, payload};

use crate::{DemoStore, Events, Secrets};

type Res =
    Response<http_body_util::combinators::UnsyncBoxBody<Bytes, tower_webhook::body::BoxError>>;
type Route = BoxCloneSyncService<Request<RequestBody>, Res, Infallible>;

fn json(status: StatusCode, body: String) -> Res {
    let mut res = Response::new(
        Full::new(Bytes::from(body))
            .map_err(Into::into)
            .boxed_unsync(),
    );
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// One provider's stack: the layer, then a handler that parses the verified
/// payload (400/422 rules of `payload::parse`) and records the delivery.
fn route(layer: WebhookLayer<Box<dyn Verifier>, DemoStore>, events: Events) -> Route {
    let handler = service_fn(move |req: Request<RequestBody>| {
        let events = events.clone();
        async move {
            let meta = req.extensions().get::<Verified>().cloned();
            let ct = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let res = match (meta, payload::parse::<Value>(ct.as_deref(), &bytes)) {
                (Some(meta), Ok(_)) => {
                    crate::record(&events, &meta);
                    json(StatusCode::OK, r#"{"ok":true}"#.into())
                }
                (None, _) => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"error":"misconfigured"}"#.into(),
                ),
                (_, Err(e)) => json(e.status(), format!(r#"{{"error":"{}"}}"#, e.code())),
            };
            Ok::<_, Infallible>(res)
        }
    });
    let stack = ServiceBuilder::new()
        .layer(layer)
        .service(handler)
        .map_response(|res| res.map(|b| b.boxed_unsync()));
    BoxCloneSyncService::new(stack)
}

struct Routes {
    by_path: Vec<(String, Route)>,
    events: Events,
}

impl Routes {
    async fn call(&self, req: Request<Incoming>, peer: SocketAddr) -> Res {
        let path = req.uri().path().to_owned();
        if path == "/events" && req.method() == http::Method::GET {
            return json(StatusCode::OK, crate::events_json(&self.events));
        }
        if path == "/metrics" && req.method() == http::Method::GET {
            let mut res = json(StatusCode::OK, crate::metrics_text());
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return res;
        }
        let Some((_, svc)) = self.by_path.iter().find(|(p, _)| *p == path) else {
            return json(StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#.into());
        };
        let mut req = req.map(RequestBody::new);
        req.extensions_mut().insert(ClientAddr(peer));
        match svc.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        }
    }
}

/// Serves the demo on `listener`.
///
/// # Errors
/// The store (Redis) or the settings from the environment fail, or the
/// server stops on an I/O error.
pub async fn run(
    listener: tokio::net::TcpListener,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let store = crate::store().await?;
    crate::prometheus();
    let events = Events::default();
    let mut by_path = Vec::new();
    let mut demos = Vec::new();
    for r in crate::routes()? {
        if r.secret.demo {
            demos.push((r.path.clone(), r.secret.var, r.secret.value.clone()));
        }
        let path = r.path.clone();
        by_path.push((path, route(crate::layer(r, &store)?, events.clone())));
    }
    let routes = std::sync::Arc::new(Routes { by_path, events });

    crate::banner(
        "hyper",
        listener.local_addr()?,
        &Secrets::from_env()?,
        &demos,
    );
    loop {
        let (stream, peer) = listener.accept().await?;
        let routes = routes.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let routes = routes.clone();
                async move { Ok::<_, Infallible>(routes.call(req, peer).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // A client has HEAD_TIMEOUT to send its whole request head.
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(tower_webhook::server::HEAD_TIMEOUT);
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}
