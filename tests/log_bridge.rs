//! With no tracing subscriber, tracing's `log` bridge (its `log` feature,
//! which axum's default features turn on) prints the `webhook` span's
//! lines to the `log` crate's logger. The layer skips the span where that
//! bridge could print nothing, and only there. A test binary of its own:
//! it sets the process's `log` logger, and no tracing subscriber.

mod common;

use std::sync::Mutex;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tower_webhook::middleware::Admission;
use tower_webhook::providers::GitHub;
use tower_webhook::{Secret, WebhookLayer};

const SECRET: &str = "gh-log-bridge-secret";
const BODY: &[u8] = br#"{"ref":"main"}"#;

/// Every line the `log` crate was given.
struct Lines(Mutex<Vec<String>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(format!("{} {}", record.target(), record.args()));
        }
    }
    fn flush(&self) {}
}

static LINES: Lines = Lines(Mutex::new(Vec::new()));

fn taken() -> Vec<String> {
    LINES
        .0
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

fn delivery(id: &str) -> Request<Full<Bytes>> {
    common::github_push("/hooks/github", SECRET, id, BODY)
}

/// Admits `id`, runs a handler line in the ticket's span and completes:
/// whether that span is a real one (`Span::none` is not), and the lines
/// the logger got.
fn deliver(id: &str) -> (bool, Vec<String>) {
    let endpoint = WebhookLayer::new(GitHub::new(Secret::text(SECRET).expect("secret"))).endpoint();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let real = rt.block_on(async {
        let Admission::Admitted(a) = endpoint.admit(delivery(id)).await else {
            panic!("refused")
        };
        let real = !a.ticket.span().is_none();
        a.ticket.finish(true).await;
        real
    });
    (real, taken())
}

// One test: the logger and its level are the process's.
#[test]
fn the_span_is_skipped_only_where_the_log_bridge_prints_nothing() {
    log::set_logger(&LINES).expect("the only logger");

    // A logger at INFO: the span is real, and its records reach the logger
    // as the bridge prints them (`webhook;` then the fields).
    log::set_max_level(log::LevelFilter::Info);
    let (real, lines) = deliver("d-log-1");
    assert!(real, "the span was skipped while a logger takes INFO lines");
    for (what, needle) in [
        ("its opening", "webhook; provider=\"github\""),
        ("its outcome", "webhook; outcome=\"accepted\""),
        ("its entering", "-> webhook;"),
    ] {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "no line of {what} in {lines:#?}"
        );
    }

    // No logger level, no subscriber: nothing could print the span; it is
    // `Span::none`, and the delivery is handled as before.
    log::set_max_level(log::LevelFilter::Off);
    let (real, lines) = deliver("d-log-2");
    assert!(!real, "an unobservable span was kept");
    assert!(lines.is_empty(), "{lines:#?}");

    // Back at INFO: the span is real again.
    log::set_max_level(log::LevelFilter::Info);
    let (real, _) = deliver("d-log-3");
    assert!(real);
}
