//! The stacks the in-process pipeline benches run (`pipeline` times them,
//! `allocations` counts their heap allocations), and their deliveries.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower_layer::Layer;
use tower_webhook::providers::{StandardWebhooks, Stripe};
use tower_webhook::rate_limit::RateLimit;
use tower_webhook::store::{Claim, EventKey, IdempotencyStore};
use tower_webhook::{MemoryStore, Secret, Verifier, WebhookLayer, testing};

use super::deliveries::{self, collect, delivery, event};

pub(crate) const SECRET: &str = "whsec_pipeline_bench_secret";
pub(crate) const STD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub(crate) struct Event {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) created: i64,
    pub(crate) data: serde_json::Value,
}

/// A Stripe delivery of `body`, signed at `at`.
pub(crate) fn request(body: &str, at: SystemTime, peer: SocketAddr) -> Request<Full<Bytes>> {
    deliveries::stripe(SECRET, body, at, Some(peer))
}

/// The same 1 KiB body as a Standard Webhooks delivery with id `msg_<n>`.
pub(crate) fn standard_request(n: u64, at: SystemTime, peer: SocketAddr) -> Request<Full<Bytes>> {
    let body = event(n);
    let headers = testing::standard_webhooks(
        STD_SECRET,
        &standard_id(n),
        testing::unix(at),
        body.as_bytes(),
    );
    delivery("/webhooks/standard", body.as_bytes(), headers, Some(peer))
}

/// The event id of [`standard_request`]`(n)`.
pub(crate) fn standard_id(n: u64) -> String {
    format!("msg_{n:020}")
}

pub(crate) type Resp = Response<Full<Bytes>>;

pub(crate) async fn typed(req: Request<Full<Bytes>>) -> Result<Resp, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let event: Result<Event, _> = serde_json::from_slice(&body);
    let status = if event.is_ok() { 200 } else { 422 };
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = http::StatusCode::from_u16(status).expect("status");
    Ok(res)
}

/// The default store (100 000 ids), already full of completed ids, as a
/// server's is after its first 110 000 deliveries: each new id then evicts
/// the oldest, the steady state (the last 10 000 evicted too, so the store
/// has settled into it). A new store would time its growth instead, and a
/// run shorter than 100 000 deliveries would never leave it.
///
/// `PIPELINE_STORE_CAPACITY=<n>` fills a store of `n` ids instead (an
/// ablation: what the default store's cache misses cost, by comparison with
/// one that stays in cache). The figures are the default's.
pub(crate) fn full_store() -> MemoryStore {
    const LEASE: Duration = Duration::from_secs(60);
    let capacity = std::env::var("PIPELINE_STORE_CAPACITY")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100_000);
    let store = MemoryStore::with_capacity(capacity as usize);
    for i in 0..capacity + capacity / 10 {
        let key = EventKey::new("fill", "fill", itoa::Buffer::new().format(i));
        let Some(Ok(Claim::Fresh(token))) = store.claim(&key, LEASE).now_or_never() else {
            panic!("fill: a new id is fresh, at once");
        };
        let done = store.complete(&key, token, LEASE).now_or_never();
        assert!(matches!(done, Some(Ok(true))), "fill");
    }
    assert_eq!(store.entry_count(), capacity as usize);
    if capacity != 100_000 {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            eprintln!(
                "PIPELINE_STORE_CAPACITY: stores of {capacity} ids, not the default \
                 100 000: an ablation, the verdicts below are not the figure's"
            );
        });
    }
    store
}

/// The stack under test for `verifier`: the given pre-authentication
/// limit, a full default store, everything else the layer's defaults.
pub(crate) fn stack_for<V: Verifier>(
    verifier: V,
    pre_auth: RateLimit,
) -> WebhookLayer<V, MemoryStore> {
    WebhookLayer::builder(verifier)
        .with_store(full_store())
        .pre_auth_limit(pre_auth)
        .build()
}

pub(crate) fn layer(pre_auth: RateLimit) -> WebhookLayer<Stripe, MemoryStore> {
    stack_for(Stripe::new(Secret::text(SECRET).expect("secret")), pre_auth)
}

pub(crate) fn standard_secret() -> Secret {
    Secret::standard_webhooks(STD_SECRET).expect("secret")
}

pub(crate) type Stack<S, V> = tower_webhook::WebhookService<S, V, MemoryStore>;

/// The stacks every mode runs, each with its own store, around the
/// collecting service `C` or the typed one `T`.
pub(crate) struct Stacks<C, T> {
    /// Stripe: verify + claim + complete (`layer_collect`).
    pub(crate) stripe: Stack<C, Stripe>,
    /// The same around a typed parse of the body (`layer_typed`).
    pub(crate) typed: Stack<T, Stripe>,
    /// Standard Webhooks, whose id is a signed header (`standard_collect`).
    pub(crate) standard: Stack<C, StandardWebhooks>,
    /// One request a minute: after the first, every one is refused
    /// (`rate_limited`).
    pub(crate) strict: Stack<C, Stripe>,
}

impl<C: Clone, T> Stacks<C, T> {
    pub(crate) fn new(collect: C, typed: T, generous: RateLimit) -> Self {
        Self {
            stripe: layer(generous).layer(collect.clone()),
            typed: layer(generous).layer(typed),
            standard: stack_for(StandardWebhooks::new(standard_secret()), generous)
                .layer(collect.clone()),
            strict: layer(RateLimit::per_minute(1).expect("limit")).layer(collect),
        }
    }
}

/// A service the stacks wrap: [`collect`] or [`typed`], as `service_fn`s.
pub(crate) trait Handler:
    tower::Service<Request<Full<Bytes>>, Response = Resp, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static
{
}

impl<S> Handler for S where
    S: tower::Service<Request<Full<Bytes>>, Response = Resp, Error = Infallible, Future: Send>
        + Clone
        + Send
        + 'static
{
}

/// The stacks every mode runs, around [`collect`] and [`typed`], with a
/// pre-authentication limit that never refuses here.
pub(crate) fn bench_stacks() -> Stacks<impl Handler, impl Handler> {
    let generous = RateLimit::per_second(1_000_000)
        .and_then(|l| l.burst(1_000_000))
        .expect("limit");
    Stacks::new(
        tower::service_fn(collect),
        tower::service_fn(typed),
        generous,
    )
}

/// What every mode starts with: a current-thread runtime, the signing
/// time and the client's address.
pub(crate) struct Setup {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) at: SystemTime,
    pub(crate) peer: SocketAddr,
}

impl Setup {
    pub(crate) fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime"),
            at: SystemTime::now(),
            peer: "10.1.2.3:4000".parse().expect("addr"),
        }
    }
}
