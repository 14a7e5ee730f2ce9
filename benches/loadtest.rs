//! Load test on loopback: the demo receiver's Stripe stack against a bare
//! axum handler that reads the body, each in its own server process whose
//! CPU time is read from `/proc/<pid>/stat` (Linux).
//!
//! ```text
//! cargo bench --bench loadtest
//! REPS=5 SECS=3 CONNS=16 cargo bench --bench loadtest
//! ```
//!
//! Scenarios, interleaved within each repetition (the first request of
//! `flood` is within the limit and answered 200: one "unexpected status"):
//!
//! - `demo`: signed 1 KiB Stripe deliveries, each with a new event id, to
//!   the receiver's stack (`WebhookLayer` with a pre-authentication limit
//!   that never refuses here, default store, handler taking
//!   `Webhook<serde_json::Value>` and answering JSON);
//! - `typed`: the same stack with a handler taking `Webhook<Event>`, a
//!   struct of the id, type and creation time (what a handler usually
//!   reads; parsing into `Value` builds the whole tree);
//! - `bare`: the same requests to an axum handler that reads the body and
//!   answers the same JSON;
//! - `flood`: the same requests to a route of the demo server whose
//!   pre-authentication limit (1 a minute) refuses them all (429).
//!
//! For each: requests per second, p50/p99 latency, and server CPU µs per
//! request (user + system time of the server process over the run,
//! divided by the requests it answered). The figure to compare is the CPU
//! per request; req/s varies more between runs. Medians with min–max over
//! the repetitions, and the ratios of each repetition's pair.
//!
//! Bounded: loopback only, a fixed duration per scenario, servers end when
//! this process closes their stdin.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tower_webhook::providers::Stripe;
use tower_webhook::rate_limit::RateLimit;
use tower_webhook::{Secret, Webhook, WebhookLayer, testing};

const SECRET: &str = "whsec_loadtest_secret";
const SIZE: usize = 1024;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------- servers

static HANDLED: AtomicU64 = AtomicU64::new(0);

async fn accept(hook: Webhook<Value>) -> Json<Value> {
    // The demo records each event; count instead of keeping them all.
    std::hint::black_box(&hook.payload);
    HANDLED.fetch_add(1, Ordering::Relaxed);
    Json(json!({ "ok": true }))
}

/// What a handler typically reads of a Stripe event (the rest is skipped).
#[derive(serde::Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
}

async fn accept_typed(hook: Webhook<Event>) -> Json<Value> {
    let e = &hook.payload;
    std::hint::black_box((&e.id, &e.kind, e.created));
    HANDLED.fetch_add(1, Ordering::Relaxed);
    Json(json!({ "ok": true }))
}

async fn bare(body: Bytes) -> Json<Value> {
    std::hint::black_box(body.len());
    Json(json!({ "ok": true }))
}

fn demo_app() -> Router {
    let secret = || Secret::text(SECRET).expect("secret");
    let generous = RateLimit::per_second(10_000_000)
        .and_then(|l| l.burst(10_000_000))
        .expect("limit");
    let strict = RateLimit::per_minute(1).expect("limit");
    // As the receiver builds its routes: each path its own router with the
    // layer on it, merged (no `nest`, which rewrites every request's URI).
    let stripe = Router::new()
        .route("/webhooks/stripe", post(accept))
        .route_layer(
            WebhookLayer::builder(Stripe::new(secret()))
                .pre_auth_limit(generous)
                .build(),
        );
    let typed = Router::new()
        .route("/webhooks/typed", post(accept_typed))
        .route_layer(
            WebhookLayer::builder(Stripe::new(secret()))
                .endpoint_name("typed")
                .pre_auth_limit(generous)
                .build(),
        );
    let flood = Router::new().route("/flood", post(accept)).route_layer(
        WebhookLayer::builder(Stripe::new(secret()))
            .endpoint_name("flood")
            .pre_auth_limit(strict)
            .build(),
    );
    Router::new().merge(stripe).merge(typed).merge(flood)
}

fn bare_app() -> Router {
    Router::new()
        .route("/webhooks/stripe", post(bare))
        .route("/webhooks/typed", post(bare))
        .route("/flood", post(bare))
}

/// Child mode: serve on an ephemeral loopback port, print it, and exit when
/// stdin closes.
fn serve(kind: &str) -> Result<(), Box<dyn std::error::Error>> {
    let app = match kind {
        "demo" => demo_app(),
        "bare" => bare_app(),
        other => return Err(format!("unknown server {other}").into()),
    };
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("PORT {}", listener.local_addr()?.port());
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await?;
        Ok(())
    })
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn spawn(kind: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["serve", kind])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .ok_or("server did not start")?
            .parse()?;
        Ok(Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// User + system CPU time of the server process so far.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces, in parens):
        // utime is field 14, stime 15, counting from 1.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        let ticks = f.iter().sum::<u64>();
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // the server exits on EOF
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- client

/// A signed 1 KiB Stripe event with id `evt_<n>`.
fn delivery(n: u64, ts: i64) -> (Bytes, http::HeaderMap) {
    let head = format!(
        r#"{{"id":"evt_{n:020}","object":"event","api_version":"2023-10-16","created":1686089970,"data":{{"object":{{"id":"cus_9s6XKzkNRiz8i3","object":"customer","note":""#
    );
    let tail = r#""}},"livemode":false,"pending_webhooks":1,"type":"customer.created"}"#;
    let pad = SIZE.saturating_sub(head.len() + tail.len());
    let body = format!("{head}{}{tail}", "x".repeat(pad));
    let headers = testing::stripe(SECRET, ts, body.as_bytes());
    (Bytes::from(body), headers)
}

#[derive(Default)]
struct Tally {
    ok: u64,
    other: u64,
    reconnects: u64,
    latencies_us: Vec<u32>,
}

const MAX_SAMPLES: usize = 2_000_000;

async fn connection(
    addr: SocketAddr,
    path: &'static str,
    expect: u16,
    ids: Arc<AtomicU64>,
    fixed: Option<(Bytes, http::HeaderMap)>,
    until: Instant,
) -> Result<Tally, Box<dyn std::error::Error + Send + Sync>> {
    let ts = testing::unix(SystemTime::now());
    let mut t = Tally::default();
    // A server may close a connection (say after refusing a request whose
    // body it did not read): connect again and go on.
    while Instant::now() < until {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        while Instant::now() < until {
            let (body, headers) = match &fixed {
                Some((b, h)) => (b.clone(), h.clone()),
                None => delivery(ids.fetch_add(1, Ordering::Relaxed), ts),
            };
            let mut req = http::Request::post(path)
                .header(http::header::HOST, "127.0.0.1")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body))?;
            req.headers_mut().extend(headers);
            let start = Instant::now();
            if send.ready().await.is_err() {
                t.reconnects += 1;
                break;
            }
            let Ok(res) = send.send_request(req).await else {
                t.reconnects += 1;
                break;
            };
            let status = res.status().as_u16();
            res.into_body().collect().await?;
            let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
            if t.latencies_us.len() < MAX_SAMPLES {
                t.latencies_us.push(us);
            }
            if status == expect {
                t.ok += 1;
            } else {
                t.other += 1;
            }
        }
    }
    Ok(t)
}

struct Run {
    rps: f64,
    p50_us: u32,
    p99_us: u32,
    cpu_us_per_req: f64,
    unexpected: u64,
    reconnects: u64,
}

fn run(
    rt: &tokio::runtime::Runtime,
    server: &Server,
    path: &'static str,
    expect: u16,
    fixed: bool,
    conns: u64,
    secs: u64,
) -> Result<Run, Box<dyn std::error::Error + Send + Sync>> {
    static IDS: std::sync::OnceLock<Arc<AtomicU64>> = std::sync::OnceLock::new();
    let ids = Arc::clone(IDS.get_or_init(|| Arc::new(AtomicU64::new(1))));
    let fixed = fixed.then(|| delivery(0, testing::unix(SystemTime::now())));
    let cpu0 = server.cpu();
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let tallies = rt.block_on(async {
        let tasks: Vec<_> = (0..conns)
            .map(|_| {
                tokio::spawn(connection(
                    server.addr,
                    path,
                    expect,
                    Arc::clone(&ids),
                    fixed.clone(),
                    until,
                ))
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            // A connection that hangs past the end is abandoned.
            let left = until.saturating_duration_since(Instant::now()) + Duration::from_secs(10);
            match tokio::time::timeout(left, t).await {
                Ok(Ok(Ok(tally))) => all.push(tally),
                Ok(Ok(Err(e))) => eprintln!("connection failed: {e}"),
                Ok(Err(e)) => eprintln!("connection task failed: {e}"),
                Err(_) => eprintln!("connection did not finish in time"),
            }
        }
        all
    });
    let elapsed = started.elapsed();
    let cpu = server.cpu().saturating_sub(cpu0);
    let ok: u64 = tallies.iter().map(|t| t.ok).sum();
    let unexpected: u64 = tallies.iter().map(|t| t.other).sum();
    let reconnects: u64 = tallies.iter().map(|t| t.reconnects).sum();
    let mut lat: Vec<u32> = tallies.into_iter().flat_map(|t| t.latencies_us).collect();
    lat.sort_unstable();
    let pct = |percent: usize| {
        let i = (lat.len() * percent / 100).min(lat.len().saturating_sub(1));
        lat.get(i).copied().unwrap_or(0)
    };
    let total = ok + unexpected;
    Ok(Run {
        rps: total as f64 / elapsed.as_secs_f64(),
        p50_us: pct(50),
        p99_us: pct(99),
        cpu_us_per_req: cpu.as_secs_f64() * 1e6 / total.max(1) as f64,
        unexpected,
        reconnects,
    })
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let mid = v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
    (
        mid,
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return serve(args.get(2).map_or("", String::as_str)).map_err(|e| e.to_string().into());
    }
    let reps = env("REPS", 3).clamp(1, 20);
    let secs = env("SECS", 3).clamp(1, 30);
    let conns = env("CONNS", 16).clamp(1, 256);
    let demo = Server::spawn("demo").map_err(|e| e.to_string())?;
    let bare = Server::spawn("bare").map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "loadtest: {reps} repetitions x 4 scenarios x {secs} s, {conns} connections, \
         1 KiB Stripe deliveries, nproc {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Warm both servers (allocators, connections, caches).
    run(&rt, &demo, "/webhooks/stripe", 200, false, conns, 1)?;
    run(&rt, &bare, "/webhooks/stripe", 200, false, conns, 1)?;

    type Scenario = (&'static str, usize, &'static str, u16, bool);
    let scenarios: [Scenario; 4] = [
        ("demo", 0, "/webhooks/stripe", 200, false),
        ("bare", 1, "/webhooks/stripe", 200, false),
        ("flood", 0, "/flood", 429, true),
        ("typed", 0, "/webhooks/typed", 200, false),
    ];
    let servers = [&demo, &bare];
    let mut results: Vec<Vec<Run>> = scenarios.iter().map(|_| Vec::new()).collect();
    for rep in 1..=reps {
        // Alternate the order, so that neither always runs first.
        let order: Vec<usize> = if rep % 2 == 1 {
            vec![0, 1, 3, 2]
        } else {
            vec![1, 3, 0, 2]
        };
        for i in order {
            let (name, srv, path, expect, fixed) = scenarios[i];
            let r = run(&rt, servers[srv], path, expect, fixed, conns, secs)?;
            println!(
                "rep {rep}/{reps} {name:<6} {:>9.0} req/s  p50 {:>6} µs  p99 {:>6} µs  \
                 server CPU {:>6.2} µs/req  unexpected statuses {}  reconnects {}",
                r.rps, r.p50_us, r.p99_us, r.cpu_us_per_req, r.unexpected, r.reconnects
            );
            results[i].push(r);
        }
    }

    println!("\nMedians over {reps} repetitions [min – max]:");
    println!(
        "{:<6} {:>24} {:>22} {:>22} {:>26}",
        "", "req/s", "p50 µs", "p99 µs", "server CPU µs/req"
    );
    for (i, (name, ..)) in scenarios.iter().enumerate() {
        let rs = &results[i];
        let col = |f: &dyn Fn(&Run) -> f64| {
            let (m, lo, hi) = median(rs.iter().map(f).collect());
            format!("{m:.1} [{lo:.1} – {hi:.1}]")
        };
        println!(
            "{name:<6} {:>24} {:>22} {:>22} {:>26}",
            col(&|r| r.rps),
            col(&|r| f64::from(r.p50_us)),
            col(&|r| f64::from(r.p99_us)),
            col(&|r| r.cpu_us_per_req),
        );
    }
    println!("\nRatios (per repetition, then median [min – max]):");
    let ratio = |label: &str, a: usize, b: usize, f: &dyn Fn(&Run) -> f64, target: &str| {
        let v: Vec<f64> = results[a]
            .iter()
            .zip(&results[b])
            .map(|(x, y)| f(x) / f(y))
            .collect();
        let (m, lo, hi) = median(v);
        println!("{label:<40} {m:.3} [{lo:.3} – {hi:.3}]  target {target}");
    };
    ratio(
        "server CPU/req demo / bare",
        0,
        1,
        &|r| r.cpu_us_per_req,
        "≤ 1.45",
    );
    ratio("req/s demo / bare", 0, 1, &|r| r.rps, "≥ 0.80");
    ratio(
        "server CPU/req typed / bare",
        3,
        1,
        &|r| r.cpu_us_per_req,
        "≤ 1.45",
    );
    ratio("req/s typed / bare", 3, 1, &|r| r.rps, "≥ 0.80");
    ratio(
        "server CPU/req flood (429) / demo",
        2,
        0,
        &|r| r.cpu_us_per_req,
        "≤ 0.25",
    );
    Ok(())
}
