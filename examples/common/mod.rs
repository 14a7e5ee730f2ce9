//! What the demo servers (axum, hyper) share: secrets from the environment,
//! the start banner, and the `/events` record.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Value, json};
use tower_webhook::{Verified, testing};

/// One provider's secret: from its environment variable, or a demo value.
pub struct Demo {
    pub var: &'static str,
    pub value: String,
    pub demo: bool,
}

fn secret(var: &'static str, demo: &str) -> Demo {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Demo {
            var,
            value: v,
            demo: false,
        },
        _ => Demo {
            var,
            value: demo.to_owned(),
            demo: true,
        },
    }
}

/// The secrets of the demo's routes.
pub struct Secrets {
    pub standard: Demo,
    pub stripe: Demo,
    pub github: Demo,
    pub slack: Demo,
    pub shopify: Demo,
}

impl Secrets {
    pub fn from_env() -> Self {
        Self {
            standard: secret(
                "STANDARD_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
            stripe: secret("STRIPE_WEBHOOK_SECRET", "whsec_demo_stripe_secret"),
            github: secret("GITHUB_WEBHOOK_SECRET", "demo-github-secret"),
            slack: secret("SLACK_SIGNING_SECRET", "demo-slack-signing-secret"),
            shopify: secret("SHOPIFY_WEBHOOK_SECRET", "demo-shopify-secret"),
        }
    }
}

/// The address to listen on: `BIND`, else `127.0.0.1:3000`.
pub fn bind() -> String {
    std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into())
}

/// The accepted deliveries, in order.
pub type Events = Arc<Mutex<Vec<Value>>>;

/// Records an accepted delivery for `GET /events`.
pub fn record(events: &Events, meta: &Verified) {
    let entry = json!({
        "provider": meta.provider(),
        "id": meta.event_id(),
        "type": meta.event_type(),
    });
    tracing::info!(%entry, "accepted");
    events
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(entry);
}

/// `GET /events` as JSON text.
pub fn events_json(events: &Events) -> String {
    let events = events
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Value::Array(events.clone()).to_string()
}

fn curl(addr: SocketAddr, path: &str, headers: &http::HeaderMap, body: &str) -> String {
    let mut cmd = format!("curl -i http://{addr}{path} -H 'content-type: application/json'");
    for (k, v) in headers {
        cmd.push_str(&format!(" -H '{}: {}'", k, v.to_str().unwrap_or_default()));
    }
    cmd.push_str(&format!(" -d '{body}'"));
    cmd
}

/// Prints the `listening on` line, the demo secrets in use, and ready-to-run
/// `curl` commands that send signed deliveries.
pub fn banner(name: &str, addr: SocketAddr, s: &Secrets) {
    println!("tower-webhook demo receiver ({name}) listening on http://{addr}");
    for d in [&s.standard, &s.stripe, &s.github, &s.slack, &s.shopify] {
        if d.demo {
            println!("  {} not set: using the demo secret {:?}", d.var, d.value);
        }
    }
    if s.standard.demo {
        let body = r#"{"type":"demo.ping","data":{"hello":"world"}}"#;
        let ts = testing::unix(SystemTime::now());
        let headers =
            testing::standard_webhooks(&s.standard.value, "msg_demo_1", ts, body.as_bytes());
        println!("\nSend a signed Standard Webhooks delivery (valid for 5 minutes):");
        println!("  {}", curl(addr, "/webhooks/standard", &headers, body));
    }
    if s.github.demo {
        let body = r#"{"zen":"Keep it logically awesome."}"#;
        let headers = testing::github(&s.github.value, "demo-delivery-1", "ping", body.as_bytes());
        println!("\nSend a signed GitHub delivery:");
        println!("  {}", curl(addr, "/webhooks/github", &headers, body));
    }
    println!("\nThen: curl http://{addr}/events\n");
}

/// Logs to stderr, `RUST_LOG` or `info`.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}
