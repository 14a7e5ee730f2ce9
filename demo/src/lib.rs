//! The demo receiver of `tower-webhook`, on three servers: axum
//! ([`axum_server`]), plain hyper ([`hyper_server`]) and actix-web
//! (`actix_server`, feature `actix`). Each serves `POST /webhooks/<provider>`
//! for every provider, behind `WebhookLayer` with default settings,
//! `GET /events` listing what was accepted, and `GET /metrics` (Prometheus
//! text). The examples run one each (`cargo run --example receiver`,
//! `hyper`, `actix --features actix`); the black-box suite
//! (tests/blackbox.rs) runs the three in one process and holds them to the
//! same answers.
//!
//! The environment is the examples' contract: each provider's secret from
//! its variable (the README's provider table names them), a demo value
//! when unset; `REDIS_URL` (and `REDIS_KEY_PREFIX`) de-duplicate in Redis;
//! `RATE_LIMIT_PER_SECOND` / `RATE_LIMIT_BURST` set the pre-authentication
//! limit; `TRUSTED_PROXIES` and `PUBLIC_BASE_URL` are for running behind a
//! proxy; `BIND` is the address the examples listen on.
//!
//! This file holds what the servers share: secrets from the environment,
//! the routes and their layers, the store, the start banner and the
//! `/events` record.

#[cfg(feature = "actix")]
pub mod actix_server;
pub mod axum_server;
pub mod hyper_server;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Value, json};
use tower_webhook::client::{PublicUrl, TrustedProxies};
use tower_webhook::handshake::Handshake;
use tower_webhook::providers::{
    Adyen, Discord, GitHub, GitLab, Intercom, LemonSqueezy, Linear, Mailgun, Mandrill, Paddle,
    SendGrid, Shopify, Slack, Square, StandardWebhooks, Stripe, Svix, Twilio, Twitch, Typeform,
    Unsigned, WooCommerce, WpWebhooks, Zoom,
};
use tower_webhook::rate_limit::RateLimit;
use tower_webhook::store::{EitherStore, MemoryStore, RedisStore};
use tower_webhook::{PublicKey, Secret, Verified, Verifier, WebhookLayer, testing};

/// One provider's secret: from its environment variable, or a demo value.
pub struct Demo {
    /// The environment variable.
    pub var: &'static str,
    /// The secret (or public key) in use.
    pub value: String,
    /// Whether `value` is the public demo value (`var` is unset).
    pub demo: bool,
}

impl fmt::Debug for Demo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Demo")
            .field("var", &self.var)
            .field("value", &"***")
            .field("demo", &self.demo)
            .finish()
    }
}

/// The secret in `var`, or `demo` when `var` is unset. A variable that is
/// set but empty (`GITHUB_WEBHOOK_SECRET=`) is an error, never the public
/// demo value: it is most likely a secret that failed to load.
fn secret(var: &'static str, demo: &str) -> Result<Demo, BoxError> {
    secret_from(var, std::env::var(var), demo)
}

/// [`secret`], given what the environment holds for `var`.
///
/// # Errors
/// `found` is empty (or blank), or not UTF-8.
pub fn secret_from(
    var: &'static str,
    found: Result<String, std::env::VarError>,
    demo: &str,
) -> Result<Demo, BoxError> {
    match found {
        Ok(v) if v.trim().is_empty() => Err(format!(
            "{var} is set but empty: give the real secret, or unset it to use the demo one"
        )
        .into()),
        Ok(value) => Ok(Demo {
            var,
            value,
            demo: false,
        }),
        Err(std::env::VarError::NotPresent) => Ok(Demo {
            var,
            value: demo.to_owned(),
            demo: true,
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{var} is not UTF-8").into()),
    }
}

/// The seed of the demo Ed25519 / ECDSA keys (Discord, SendGrid).
pub const DEMO_SEED: [u8; 32] = [7; 32];

/// The secrets of the demo's main routes (the banner's examples use them).
#[derive(Debug)]
pub struct Secrets {
    /// `STANDARD_WEBHOOK_SECRET`.
    pub standard: Demo,
    /// `STRIPE_WEBHOOK_SECRET`.
    pub stripe: Demo,
    /// `GITHUB_WEBHOOK_SECRET`.
    pub github: Demo,
    /// `SLACK_SIGNING_SECRET`.
    pub slack: Demo,
    /// `SHOPIFY_WEBHOOK_SECRET`.
    pub shopify: Demo,
}

impl Secrets {
    /// The secrets from the environment, or the demo values.
    ///
    /// # Errors
    /// A variable is set but empty.
    pub fn from_env() -> Result<Self, BoxError> {
        Ok(Self {
            standard: secret(
                "STANDARD_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            )?,
            stripe: secret("STRIPE_WEBHOOK_SECRET", "whsec_demo_stripe_secret")?,
            github: secret("GITHUB_WEBHOOK_SECRET", "demo-github-secret")?,
            slack: secret("SLACK_SIGNING_SECRET", "demo-slack-signing-secret")?,
            shopify: secret("SHOPIFY_WEBHOOK_SECRET", "demo-shopify-secret")?,
        })
    }
}

/// One route of the demo: `POST /webhooks/<name>` behind its verifier.
pub struct DemoRoute {
    /// `/webhooks/<name>`.
    pub path: String,
    /// The provider's verifier, holding `secret`.
    pub verifier: Box<dyn Verifier>,
    /// The provider's handshake, if it has one.
    pub handshake: Option<Handshake>,
    /// The secret or key in use, and whether it is a demo value.
    pub secret: Demo,
}

impl fmt::Debug for DemoRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoRoute")
            .field("path", &self.path)
            .field("provider", &self.verifier.provider())
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// URL-signing providers (Twilio, Mandrill, Square) need the URL the
/// sender used: `PUBLIC_BASE_URL` (e.g. `https://hooks.example.com`) plus
/// the route's path, else the request's own `Host` (or `X-Forwarded-*`
/// from `TRUSTED_PROXIES`), plain `http` as the demo listens.
fn public_url() -> Result<PublicUrl, BoxError> {
    Ok(match std::env::var("PUBLIC_BASE_URL") {
        Ok(base) if !base.is_empty() => PublicUrl::base(base.trim_end_matches('/'))?,
        _ => PublicUrl::from_request(trusted_proxies()?).default_scheme("http")?,
    })
}

/// `TRUSTED_PROXIES`: comma-separated CIDR ranges of reverse proxies.
///
/// # Errors
/// A range does not parse.
pub fn trusted_proxies() -> Result<TrustedProxies, BoxError> {
    let list = std::env::var("TRUSTED_PROXIES").unwrap_or_default();
    Ok(TrustedProxies::new(
        list.split(',').map(str::trim).filter(|s| !s.is_empty()),
    )?)
}

/// Every provider's route, its verifier built from the environment (or a
/// demo secret). The README's provider table lists the variables.
///
/// # Errors
/// A variable is set but empty, or a secret, key or URL does not parse.
pub fn routes() -> Result<Vec<DemoRoute>, BoxError> {
    let s = Secrets::from_env()?;
    let text = |d: &Demo| Secret::text(&d.value);
    let std_secret = |d: &Demo| Secret::standard_webhooks(&d.value);
    let mut r: Vec<DemoRoute> = Vec::new();
    let mut add =
        |name: &str, verifier: Box<dyn Verifier>, handshake: Option<Handshake>, secret: Demo| {
            r.push(DemoRoute {
                path: format!("/webhooks/{name}"),
                verifier,
                handshake,
                secret,
            });
        };

    let mut standard = StandardWebhooks::new(std_secret(&s.standard)?);
    if let Ok(pk) = std::env::var("STANDARD_WEBHOOK_PUBLIC_KEY") {
        standard = standard.add_public_key(PublicKey::standard_webhooks(&pk)?);
    }
    add("standard", Box::new(standard), None, s.standard);
    add(
        "stripe",
        Box::new(Stripe::new(text(&s.stripe)?)),
        None,
        s.stripe,
    );
    add(
        "github",
        Box::new(GitHub::new(text(&s.github)?)),
        None,
        s.github,
    );
    add(
        "slack",
        Box::new(Slack::new(text(&s.slack)?)),
        Some(Handshake::slack()),
        s.slack,
    );
    add(
        "shopify",
        Box::new(Shopify::new(text(&s.shopify)?)),
        None,
        s.shopify,
    );

    let d = secret("SVIX_WEBHOOK_SECRET", "whsec_c3ZpeCBkZW1vIHNlY3JldCBrZXk=")?;
    add("svix", Box::new(Svix::new(std_secret(&d)?)), None, d);
    let d = secret("TWILIO_AUTH_TOKEN", "demo-twilio-auth-token")?;
    add(
        "twilio",
        Box::new(Twilio::new(text(&d)?).public_url(public_url()?)),
        None,
        d,
    );
    let d = secret("INTERCOM_CLIENT_SECRET", "demo-intercom-secret")?;
    add("intercom", Box::new(Intercom::new(text(&d)?)), None, d);
    let d = secret("MANDRILL_WEBHOOK_KEY", "demo-mandrill-key")?;
    add(
        "mandrill",
        Box::new(Mandrill::new(text(&d)?).public_url(public_url()?)),
        None,
        d,
    );
    let d = secret("MAILCHIMP_WEBHOOK_TOKEN", "demo-mailchimp-token")?;
    add(
        "mailchimp",
        Box::new(
            Unsigned::mailchimp()
                .token_query("token", text(&d)?)
                .build()?,
        ),
        None,
        d,
    );
    let d = secret("WOOCOMMERCE_WEBHOOK_SECRET", "demo-woocommerce-secret")?;
    add(
        "woocommerce",
        Box::new(WooCommerce::new(text(&d)?)),
        None,
        d,
    );
    let d = secret("WP_WEBHOOKS_SECRET", "demo-wp-webhooks-secret")?;
    let created =
        std::env::var("WP_WEBHOOKS_DATE_CREATED").unwrap_or_else(|_| "2026-01-02 03:04:05".into());
    add(
        "wp-webhooks",
        Box::new(WpWebhooks::new(text(&d)?, &created)),
        None,
        d,
    );
    let d = secret("ZAPIER_WEBHOOK_TOKEN", "demo-zapier-token")?;
    add(
        "zapier",
        Box::new(
            Unsigned::zapier()
                .token_header("x-webhook-token", text(&d)?)?
                .build()?,
        ),
        None,
        d,
    );
    let d = secret("PAPERTRAIL_WEBHOOK_TOKEN", "demo-papertrail-token")?;
    add(
        "papertrail",
        Box::new(
            Unsigned::papertrail()
                .token_query("token", text(&d)?)
                .build()?,
        ),
        None,
        d,
    );
    let d = secret("PADDLE_WEBHOOK_SECRET", "pdl_ntfset_demo_secret")?;
    add("paddle", Box::new(Paddle::new(text(&d)?)), None, d);
    let d = secret("LINEAR_WEBHOOK_SECRET", "demo-linear-secret")?;
    add("linear", Box::new(Linear::new(text(&d)?)), None, d);
    let d = secret(
        "DISCORD_PUBLIC_KEY",
        &tower_webhook::testing::discord_public_key(&DEMO_SEED),
    )?;
    add(
        "discord",
        Box::new(Discord::new(PublicKey::hex(&d.value)?)),
        Some(Handshake::discord()),
        d,
    );
    let d = secret(
        "SENDGRID_VERIFICATION_KEY",
        &tower_webhook::testing::sendgrid_public_key(&DEMO_SEED),
    )?;
    add("sendgrid", Box::new(SendGrid::new(&d.value)?), None, d);
    let d = secret("SQUARE_SIGNATURE_KEY", "demo-square-signature-key")?;
    add(
        "square",
        Box::new(Square::new(text(&d)?).public_url(public_url()?)),
        None,
        d,
    );
    let d = secret("ZOOM_SECRET_TOKEN", "demo-zoom-secret-token")?;
    add(
        "zoom",
        Box::new(Zoom::new(text(&d)?)),
        Some(Handshake::zoom(text(&d)?)),
        d,
    );
    let d = secret("TWITCH_WEBHOOK_SECRET", "demo-twitch-secret")?;
    add(
        "twitch",
        Box::new(Twitch::new(text(&d)?)),
        Some(Handshake::twitch()),
        d,
    );
    let d = secret("GITLAB_WEBHOOK_TOKEN", "demo-gitlab-token")?;
    add("gitlab", Box::new(GitLab::token(text(&d)?)), None, d);
    let d = secret(
        "GITLAB_SIGNING_TOKEN",
        "whsec_Z2l0bGFiIGRlbW8gc2lnbmluZyB0b2tlbiEhIQ==",
    )?;
    add(
        "gitlab-signing",
        Box::new(GitLab::signing_token(std_secret(&d)?)),
        None,
        d,
    );
    let d = secret("MAILGUN_SIGNING_KEY", "demo-mailgun-signing-key")?;
    add("mailgun", Box::new(Mailgun::new(text(&d)?)), None, d);
    let d = secret(
        "ADYEN_HMAC_KEY",
        "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
    )?;
    add(
        "adyen",
        Box::new(Adyen::new(Secret::hex(&d.value)?)),
        None,
        secret("ADYEN_HMAC_KEY", &d.value)?,
    );
    add(
        "adyen-header",
        Box::new(Adyen::hmac_header(Secret::hex(&d.value)?)),
        None,
        d,
    );
    let d = secret("LEMONSQUEEZY_SIGNING_SECRET", "demo-lemonsqueezy-secret")?;
    add(
        "lemonsqueezy",
        Box::new(LemonSqueezy::new(text(&d)?)),
        None,
        d,
    );
    let d = secret("TYPEFORM_WEBHOOK_SECRET", "demo-typeform-secret")?;
    add("typeform", Box::new(Typeform::new(text(&d)?)), None, d);
    Ok(r)
}

/// The idempotency store of the demo: Redis when `REDIS_URL` is set (keys
/// prefixed with `REDIS_KEY_PREFIX`, default `tower-webhook-demo:`), else
/// in memory. One store serves every route (keys carry the endpoint).
pub type DemoStore = EitherStore<RedisStore, MemoryStore>;

/// Opens the [`DemoStore`] the environment asks for.
///
/// # Errors
/// `REDIS_URL` is set and Redis cannot be reached.
pub async fn store() -> Result<DemoStore, BoxError> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let prefix =
                std::env::var("REDIS_KEY_PREFIX").unwrap_or_else(|_| "tower-webhook-demo:".into());
            let store = RedisStore::connect(&url, prefix).await?;
            println!("  idempotency store: Redis ({:?})", store.prefix());
            Ok(EitherStore::Left(store))
        }
        _ => Ok(EitherStore::Right(MemoryStore::new())),
    }
}

/// The pre-authentication rate limit of the demo: generous by default,
/// `RATE_LIMIT_PER_SECOND` (default 200) and `RATE_LIMIT_BURST` (default
/// 400) per client address; `RATE_LIMIT_PER_SECOND=0` turns it off.
///
/// # Errors
/// A variable is not a number, or the two make no valid limit.
pub fn pre_auth_limit() -> Result<Option<RateLimit>, BoxError> {
    let num = |var: &str, default: u32| -> Result<u32, BoxError> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v.trim().parse()?),
            _ => Ok(default),
        }
    };
    let per_second = num("RATE_LIMIT_PER_SECOND", 200)?;
    if per_second == 0 {
        return Ok(None);
    }
    Ok(Some(
        RateLimit::per_second(per_second)?.burst(num("RATE_LIMIT_BURST", 400)?)?,
    ))
}

/// The layer of one demo route: default settings, plus the shared store,
/// the pre-authentication limit, trusted proxies and the handshake.
///
/// # Errors
/// `TRUSTED_PROXIES` or the rate-limit variables do not parse.
pub fn layer(
    route: DemoRoute,
    store: &DemoStore,
) -> Result<WebhookLayer<Box<dyn Verifier>, DemoStore>, BoxError> {
    let mut b = WebhookLayer::builder(route.verifier)
        .endpoint_name(&route.path)
        .with_store(store.clone())
        .trusted_proxies(trusted_proxies()?);
    if let Some(limit) = pre_auth_limit()? {
        b = b.pre_auth_limit(limit);
    }
    if let Some(h) = route.handshake {
        b = b.handshake(h);
    }
    Ok(b.build())
}

/// The Prometheus text of the layers' metrics, for `GET /metrics`. The
/// recorder is installed once per process, before the first delivery: the
/// black-box suite's three servers share it.
pub fn metrics_text() -> String {
    prometheus().render()
}

/// Installs the Prometheus recorder (once) and describes the metrics.
pub fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
        }
        tower_webhook::observe::describe();
        handle
    })
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
pub fn banner(name: &str, addr: SocketAddr, s: &Secrets, demos: &[(String, &'static str, String)]) {
    println!("tower-webhook demo receiver ({name}) listening on http://{addr}");
    for (path, var, value) in demos {
        println!("  POST {path}: {var} not set, using the demo value {value:?}");
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
