//! The integration tests: one binary, one module per concern, so the crate
//! and its dependencies are linked once.
//!
//! Tests that set state of the whole process are binaries of their own:
//! `tests/log_bridge.rs` (the `log` logger), `tests/observe.rs` (a metrics
//! recorder), `tests/blackbox.rs` (the demo servers' metrics recorder) and
//! `tests/hooks.rs` (a log subscriber, which must see every call site's
//! first event).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

#[cfg(feature = "actix")]
mod actix;
mod api;
mod bad_input;
mod deferred_type;
mod endpoint;
mod exactly_once;
mod fast_ack;
mod form_json;
mod handshakes;
mod http;
mod providers_asym;
mod providers_hmac;
mod rate_limit;
mod received_at;
mod replay;
mod replay_safety;
mod rotation;
mod roundtrip;
mod roundtrip_asym;
mod roundtrip_hmac;
mod secrets;
mod spans;
mod store_memory;
mod store_redis;
mod tenants;
mod vectors;
