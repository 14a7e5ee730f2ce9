//! One black-box suite, three servers: the demo receivers on axum, plain
//! hyper and actix-web (the `demo` crate, which the examples run) get the
//! same requests over real loopback HTTP and must give the same statuses,
//! the same duplicate marker, the same error bodies, and the same
//! `GET /events` afterwards.
//!
//! The servers run in-process (each one's `run(listener)`), with the
//! environment they would see from `cargo run --example`: demo secrets
//! unless set, Redis when `REDIS_URL` is. Every event id carries a fresh
//! nonce per server and run, so a shared Redis never turns a first delivery
//! into a duplicate.
//!
//! A test binary of its own: the demo installs the process's metrics
//! recorder, whose counts the suite checks.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use tower_webhook::testing;

fn std_listener() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.set_nonblocking(true).expect("non-blocking");
    l
}

/// Starts the three servers; they run until the test process ends.
fn start_servers() -> Vec<(&'static str, SocketAddr)> {
    let mut servers = Vec::new();

    let l = std_listener();
    servers.push(("axum", l.local_addr().expect("addr")));
    tokio::spawn(async move {
        let l = tokio::net::TcpListener::from_std(l).expect("tokio listener");
        demo::axum_server::run(l).await.expect("axum demo runs");
    });

    let l = std_listener();
    servers.push(("hyper", l.local_addr().expect("addr")));
    tokio::spawn(async move {
        let l = tokio::net::TcpListener::from_std(l).expect("tokio listener");
        demo::hyper_server::run(l).await.expect("hyper demo runs");
    });

    let l = std_listener();
    servers.push(("actix", l.local_addr().expect("addr")));
    std::thread::spawn(move || {
        actix_web::rt::System::new()
            .block_on(demo::actix_server::run(l))
            .expect("actix demo runs");
    });
    servers
}

/// Waits until `GET /events` answers (the servers set up their routes and
/// store after binding).
async fn ready(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let req = http::Request::get(format!("http://{addr}/events"))
            .body(http_body_util::Full::new(Bytes::new()))
            .expect("request");
        let answer =
            tokio::time::timeout(Duration::from_secs(2), common::client().request(req)).await;
        if answer.is_ok_and(|r| r.is_ok_and(|res| res.status() == StatusCode::OK)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server at {addr} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request of the suite and what every server must answer.
struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    headers: HeaderMap,
    body: Bytes,
    status: StatusCode,
    duplicate: bool,
    /// Whether the body must be the same on every server (a 404 comes
    /// from each server's router: hyper's demo answers JSON, axum and actix
    /// an empty body).
    same_body: bool,
}

fn json_headers(mut h: HeaderMap) -> HeaderMap {
    h.entry(http::header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    h
}

fn case(
    name: &'static str,
    path: &'static str,
    headers: HeaderMap,
    body: impl Into<Bytes>,
    status: StatusCode,
) -> Case {
    Case {
        name,
        method: Method::POST,
        path,
        headers: json_headers(headers),
        body: body.into(),
        status,
        duplicate: false,
        same_body: true,
    }
}

/// The suite for one server; `n` makes its event ids unique. Returns the
/// cases and the `(provider, id)` of each delivery that must be accepted,
/// in order.
fn suite(n: &str, addr: SocketAddr) -> (Vec<Case>, Vec<(&'static str, String)>) {
    let s = demo::Secrets::from_env().expect("demo secrets");
    let now = common::now();
    let mut cases = Vec::new();
    let mut accepted = Vec::new();

    // GitHub: accepted, then the same delivery again.
    let gh_body = format!(r#"{{"zen":"{n}"}}"#);
    let gh_id = format!("{n}-gh-1");
    let gh = testing::github(&s.github.value, &gh_id, "ping", gh_body.as_bytes());
    cases.push(case(
        "github accepted",
        "/webhooks/github",
        gh.clone(),
        gh_body.clone(),
        StatusCode::OK,
    ));
    accepted.push(("github", gh_id));
    cases.push(Case {
        duplicate: true,
        ..case(
            "github duplicate",
            "/webhooks/github",
            gh,
            gh_body,
            StatusCode::OK,
        )
    });

    // Stripe: accepted, duplicate, and the refusals.
    let st_id = format!("evt_{n}_1");
    let st_body = format!(r#"{{"id":"{st_id}","type":"charge.succeeded"}}"#);
    let st = testing::stripe(&s.stripe.value, now, st_body.as_bytes());
    cases.push(case(
        "stripe accepted",
        "/webhooks/stripe",
        st.clone(),
        st_body.clone(),
        StatusCode::OK,
    ));
    accepted.push(("stripe", st_id));
    cases.push(Case {
        duplicate: true,
        ..case(
            "stripe duplicate",
            "/webhooks/stripe",
            st.clone(),
            st_body.clone(),
            StatusCode::OK,
        )
    });
    let tampered = st_body.replace("charge.succeeded", "charge.refunded");
    cases.push(case(
        "stripe tampered body",
        "/webhooks/stripe",
        st.clone(),
        tampered,
        StatusCode::UNAUTHORIZED,
    ));
    cases.push(case(
        "stripe missing signature",
        "/webhooks/stripe",
        HeaderMap::new(),
        st_body.clone(),
        StatusCode::UNAUTHORIZED,
    ));
    let stale = testing::stripe(&s.stripe.value, now - 3600, st_body.as_bytes());
    cases.push(case(
        "stripe stale timestamp",
        "/webhooks/stripe",
        stale,
        st_body.clone(),
        StatusCode::UNAUTHORIZED,
    ));
    let big = vec![b' '; 1024 * 1024 + 1];
    cases.push(case(
        "stripe oversize body",
        "/webhooks/stripe",
        st.clone(),
        big,
        StatusCode::PAYLOAD_TOO_LARGE,
    ));
    cases.push(Case {
        method: Method::GET,
        ..case(
            "stripe wrong method",
            "/webhooks/stripe",
            HeaderMap::new(),
            Bytes::new(),
            StatusCode::METHOD_NOT_ALLOWED,
        )
    });

    let mut text_plain = st.clone();
    text_plain.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    cases.push(case(
        "stripe unsupported media type",
        "/webhooks/stripe",
        text_plain,
        st_body.clone(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    ));

    // Twilio signs the URL the sender used (here the `Host` the client
    // sends, with the query) and a form body: the request head must reach
    // the verifier intact on every server.
    let tw_token = demo::routes()
        .expect("demo routes")
        .into_iter()
        .find(|r| r.path == "/webhooks/twilio")
        .expect("a twilio route")
        .secret
        .value;
    let tw_body = format!("MessageSid=SM{n}&Body=hello+there");
    let tw_url = format!("http://{addr}/webhooks/twilio?tenant=a%20b");
    let mut tw = testing::twilio(&tw_token, &tw_url, tw_body.as_bytes());
    let tw_id = format!("{n}-tw-1");
    tw.insert(
        "i-twilio-idempotency-token",
        HeaderValue::from_str(&tw_id).expect("visible"),
    );
    tw.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    cases.push(case(
        "twilio form body accepted",
        "/webhooks/twilio?tenant=a%20b",
        tw.clone(),
        tw_body.clone(),
        StatusCode::OK,
    ));
    accepted.push(("twilio", tw_id));
    cases.push(case(
        "twilio signed for another query",
        "/webhooks/twilio?tenant=c",
        tw,
        tw_body,
        StatusCode::UNAUTHORIZED,
    ));

    // Standard Webhooks: malformed header, invalid JSON, its corrected
    // retry (the claim was released), then a second event.
    let sw_id = format!("msg_{n}_1");
    let bad_json = br#"{"type":"invoice.paid","data":"#.to_vec();
    let mut malformed = testing::standard_webhooks(&s.standard.value, &sw_id, now, &bad_json);
    malformed.insert("webhook-timestamp", HeaderValue::from_static("yesterday"));
    cases.push(case(
        "standard malformed timestamp header",
        "/webhooks/standard",
        malformed,
        bad_json.clone(),
        StatusCode::BAD_REQUEST,
    ));
    let sw = testing::standard_webhooks(&s.standard.value, &sw_id, now, &bad_json);
    cases.push(case(
        "standard invalid JSON",
        "/webhooks/standard",
        sw,
        bad_json,
        StatusCode::BAD_REQUEST,
    ));
    let good = br#"{"type":"invoice.paid","data":{}}"#;
    let sw = testing::standard_webhooks(&s.standard.value, &sw_id, now, good);
    cases.push(case(
        "standard corrected retry accepted",
        "/webhooks/standard",
        sw,
        &good[..],
        StatusCode::OK,
    ));
    accepted.push(("standard-webhooks", sw_id));

    // Slack: the url_verification handshake never reaches the handler.
    let hs = format!(r#"{{"token":"t","challenge":"c-{n}","type":"url_verification"}}"#);
    let sl = testing::slack(&s.slack.value, now, hs.as_bytes());
    cases.push(case(
        "slack url_verification handshake",
        "/webhooks/slack",
        sl,
        hs,
        StatusCode::OK,
    ));

    // Shopify: accepted; a second topic under a fresh id too.
    let sh_id = format!("{n}-shop-1");
    // Shopify's id is not signed: the signature is claimed too, so the body
    // carries the nonce as well.
    let sh_body = format!(r#"{{"id":1,"note":"{n}"}}"#);
    let sh = testing::shopify(
        &s.shopify.value,
        &sh_id,
        "orders/create",
        sh_body.as_bytes(),
    );
    cases.push(case(
        "shopify accepted",
        "/webhooks/shopify",
        sh,
        sh_body,
        StatusCode::OK,
    ));
    accepted.push(("shopify", sh_id));
    cases.push(Case {
        same_body: false,
        ..case(
            "unknown path",
            "/webhooks/nobody",
            HeaderMap::new(),
            "{}",
            StatusCode::NOT_FOUND,
        )
    });
    (cases, accepted)
}

/// What a server answered to one case, for comparing servers.
#[derive(Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    duplicate: bool,
    body: Option<Bytes>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_hyper_and_actix_demos_answer_the_same_requests_alike() {
    let servers = start_servers();
    for (_, addr) in &servers {
        ready(*addr).await;
    }
    let run = tower_webhook::store::ClaimToken::random().as_u128();
    let mut answers: Vec<(&str, Vec<Answer>)> = Vec::new();
    let mut events: Vec<(&str, Value)> = Vec::new();
    let mut accepted_total = 0;
    for (name, addr) in &servers {
        let nonce = format!("{run:x}{name}");
        let (cases, accepted) = suite(&nonce, *addr);
        let mut got = Vec::new();
        for c in &cases {
            // A body the server refuses unread goes over raw TCP: see `send_raw`.
            let r = if c.body.len() > 64 * 1024 {
                common::send_raw(*addr, &c.method, c.path, &c.headers, &c.body).await
            } else {
                common::send(*addr, c.method.clone(), c.path, &c.headers, c.body.clone()).await
            };
            let duplicate = r
                .headers
                .get(tower_webhook::middleware::DUPLICATE_HEADER)
                .is_some_and(|v| v == "true");
            assert_eq!(
                (r.status, duplicate),
                (c.status, c.duplicate),
                "{name}: {}: {}",
                c.name,
                r.text()
            );
            if c.name.contains("handshake") {
                let body: Value = serde_json::from_slice(&r.body).expect("challenge JSON");
                assert_eq!(body, json!({ "challenge": format!("c-{nonce}") }), "{name}");
            }
            got.push(Answer {
                status: r.status,
                duplicate,
                // the handshake echoes the nonce: compare it without
                body: (c.same_body && !c.name.contains("handshake")).then(|| r.body.clone()),
            });
        }

        let list = common::send(*addr, Method::GET, "/events", &HeaderMap::new(), "").await;
        assert_eq!(list.status, StatusCode::OK, "{name}: /events");
        let listed: Value = serde_json::from_slice(&list.body).expect("events JSON");
        let listed = listed.as_array().expect("an array").clone();
        let pairs: Vec<(String, String)> = listed
            .iter()
            .map(|e| {
                (
                    e["provider"].as_str().unwrap_or_default().to_owned(),
                    e["id"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = accepted
            .iter()
            .map(|(p, id)| ((*p).to_owned(), id.clone()))
            .collect();
        assert_eq!(pairs, want, "{name}: each accepted event once, in order");
        accepted_total += want.len();
        // Same entries on every server once the nonce is taken out.
        let normal = Value::Array(listed).to_string().replace(&nonce, "N");
        events.push((name, serde_json::from_str(&normal).expect("JSON")));
        answers.push((name, got));
    }

    let (first, first_answers) = &answers[0];
    for (name, got) in &answers[1..] {
        assert_eq!(got, first_answers, "{name} differs from {first}");
    }
    let (first, first_events) = &events[0];
    for (name, listed) in &events[1..] {
        assert_eq!(
            listed, first_events,
            "{name}'s /events differs from {first}'s"
        );
    }

    // The three servers are one process with one recorder: each one's
    // /metrics counts the deliveries of all three.
    for (name, addr) in &servers {
        let metrics = common::send(*addr, Method::GET, "/metrics", &HeaderMap::new(), "").await;
        assert_eq!(metrics.status, StatusCode::OK, "{name}: /metrics");
        let text = metrics.text();
        assert!(
            text.contains("# TYPE webhook_deliveries_total counter"),
            "{name}: /metrics holds no recorder's counts:\n{text}"
        );
        let accepted_sum: f64 = text
            .lines()
            .filter(|l| {
                l.starts_with("webhook_deliveries_total{") && l.contains(r#"outcome="accepted""#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(accepted_sum, accepted_total as f64, "{name}: {text}");
        for needle in [
            r#"outcome="duplicate""#,
            r#"outcome="invalid_signature""#,
            "webhook_verify_duration_seconds",
            "webhook_handling_duration_seconds",
        ] {
            assert!(
                text.contains(needle),
                "{name}: /metrics lacks {needle}:\n{text}"
            );
        }
    }

    // An early refusal (415, before the body is read) says it closes the
    // connection, on every server.
    for (name, addr) in &servers {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let r = common::send(*addr, Method::POST, "/webhooks/github", &h, "x".repeat(100)).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}");
        assert_eq!(
            r.headers
                .get("connection")
                .map(|v| v.as_bytes().to_ascii_lowercase()),
            Some(b"close".to_vec()),
            "{name}: a 415 with the body unread keeps the connection"
        );
    }

    // A request head sent one byte at a time is cut off within the head
    // timeout (5 s on all three), all three servers at once.
    let slow = servers.iter().map(|(name, addr)| async move {
        let (closed, took) = send_head_slowly(*addr).await;
        assert!(
            closed,
            "{name}: a trickled head kept its connection for {took:?}"
        );
        assert!(
            took < Duration::from_secs(9),
            "{name}: the trickled head was cut only after {took:?}"
        );
    });
    futures_util::future::join_all(slow).await;
}

/// Sends a request head that never ends, one byte every 100 ms, for at
/// most 15 s. Whether the server closed the connection, and when.
async fn send_head_slowly(addr: SocketAddr) -> (bool, Duration) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let start = tokio::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = b"POST /webhooks/github HTTP/1.1\r\nhost: demo\r\nx-padding: ";
    let bytes = head.iter().copied().chain(std::iter::repeat(b'a'));
    let mut buf = [0u8; 512];
    for byte in bytes.take(150) {
        if stream.write_all(&[byte]).await.is_err() {
            return (true, start.elapsed());
        }
        // A server that gives up may answer first (actix: 408), then close.
        let read = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            return (true, start.elapsed());
        }
    }
    (false, start.elapsed())
}

#[test]
fn a_secret_variable_set_but_empty_stops_the_demo() {
    use std::env::VarError;
    for empty in ["", "  "] {
        let err = demo::secret_from("GITHUB_WEBHOOK_SECRET", Ok(empty.into()), "public-demo")
            .expect_err("an empty secret is refused");
        assert!(
            err.to_string()
                .contains("GITHUB_WEBHOOK_SECRET is set but empty"),
            "{err}"
        );
    }
    let unset = demo::secret_from(
        "GITHUB_WEBHOOK_SECRET",
        Err(VarError::NotPresent),
        "public-demo",
    )
    .expect("unset: the demo value");
    assert!(unset.demo && unset.value == "public-demo");
    let set =
        demo::secret_from("GITHUB_WEBHOOK_SECRET", Ok("real".into()), "public-demo").expect("set");
    assert!(!set.demo && set.value == "real");
}
