//! The Redis store against a real server: set `REDIS_URL` (CI does). Unset,
//! these tests have nothing to check; set but unreachable, they fail.
#![cfg(feature = "redis")]

use std::time::Duration;

use tower_webhook::store::RedisStore;

use crate::common;

/// A store on `REDIS_URL` with a key prefix of its own, or `None` when the
/// variable is not set. Panics when it is set and Redis does not answer.
async fn redis_store() -> Option<RedisStore> {
    let url = common::redis_url()?;
    let connect = RedisStore::connect(&url, common::unique_prefix("store"));
    let store = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .expect("REDIS_URL is set but Redis did not answer within 10 s")
        .expect("REDIS_URL is set but Redis refused the connection");
    Some(store)
}

store_conformance!(super::redis_store());

#[tokio::test]
async fn connect_to_a_closed_port_fails_quickly() {
    // Bind and drop a listener: nothing listens on that port now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let started = std::time::Instant::now();
    let err = RedisStore::connect(&format!("redis://127.0.0.1:{port}"), "x:")
        .await
        .expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.to_string().starts_with("idempotency store: redis"),
        "{err}"
    );
}

#[tokio::test]
async fn connect_rejects_a_url_that_is_not_redis() {
    let err = RedisStore::connect("http://127.0.0.1:1", "x:")
        .await
        .expect_err("not a redis URL");
    assert!(err.to_string().contains("redis"), "{err}");
}

#[tokio::test]
async fn debug_shows_the_prefix_but_never_the_url() {
    let Some(url) = common::redis_url() else {
        return;
    };
    let store = RedisStore::connect(&url, "dbg:")
        .await
        .expect("redis answers");
    let shown = format!("{store:?}");
    assert!(shown.contains("dbg:"), "{shown}");
    assert!(
        !shown.contains("127.0.0.1") && !shown.contains("redis://"),
        "{shown}"
    );
    assert_eq!(store.prefix(), "dbg:");
}
