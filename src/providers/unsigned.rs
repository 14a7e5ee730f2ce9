//! Senders that do not sign: Mailchimp Marketing, Zapier (plain webhooks),
//! Papertrail. What their docs offer instead: a shared token, HTTP Basic
//! auth, a source-network allow-list.

use std::net::IpAddr;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;
use http::request::Parts;
use ipnet::IpNet;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::kit;
use crate::client::{TrustedProxies, peer_addr};
use crate::error::ConfigError;
use crate::secret::Secret;
use crate::verify::{Verified, Verifier, VerifyError};

const AUTHORIZATION: &str = "authorization";

/// A verifier for senders that **do not sign** their requests
/// (Mailchimp Marketing audience webhooks, Webhooks by Zapier, Papertrail
/// search alerts). It offers what those providers' docs offer:
///
/// * a shared token in a header ([`token_header`](UnsignedBuilder::token_header))
///   or a query parameter ([`token_query`](UnsignedBuilder::token_query));
///   several tokens may be active (rotation);
/// * HTTP Basic auth ([`basic_auth`](UnsignedBuilder::basic_auth)), several
///   credentials possible;
/// * an allow-list of source networks
///   ([`allow_networks`](UnsignedBuilder::allow_networks)), the client
///   address taken from the peer, or from `Forwarded` / `X-Forwarded-For`
///   only via [`TrustedProxies`].
///
/// Each check can be used alone or combined; every configured check must
/// pass. The network is checked first (403 `SourceNotAllowed`), then the
/// credentials (401). Tokens and passwords are compared in constant time
/// (as SHA-256 digests, so not even their length leaks).
///
/// # Security
/// This is much weaker than a signature, and cannot be made as strong:
/// * **No body integrity**: anyone who holds the token can send any body;
///   a proxy or middlebox can alter the body without detection.
/// * **Replayable**: nothing is timestamped or signed; a captured request
///   verifies forever. There is no signed event id to de-duplicate on.
/// * **The token travels with every request**: anything that sees a request
///   (TLS-terminating proxies, access logs, especially for query tokens and
///   URLs, error trackers, the sender's own dashboard) sees the credential.
///   Use HTTPS, prefer a header over a query parameter, and rotate.
/// * Source addresses are only as good as the network path and the proxy
///   configuration; providers change their ranges.
/// * A token in the URL *path* (an unguessable route) is matched by your
///   router, not in constant time; prefer a query parameter or a header
///   checked here.
///
/// ```
/// use std::time::SystemTime;
/// use tower_webhook::{providers::Unsigned, Secret, Verifier, VerifyError};
///
/// let mailchimp = Unsigned::mailchimp()
///     .token_query("token", Secret::text("Zs0hT9vK2b")?)
///     .build()?;
/// let ok = http::Request::post("/mailchimp?token=Zs0hT9vK2b").body(())?;
/// assert!(mailchimp.verify(&ok.into_parts().0, b"type=subscribe", SystemTime::now()).is_ok());
/// let bad = http::Request::post("/mailchimp?token=guess").body(())?;
/// assert_eq!(
///     mailchimp.verify(&bad.into_parts().0, b"", SystemTime::now()).unwrap_err(),
///     VerifyError::SignatureMismatch
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Unsigned {
    provider: &'static str,
    content_types: &'static [&'static str],
    tokens: Vec<(Location, [u8; 32])>,
    basic: Vec<[u8; 32]>,
    networks: Option<(Vec<IpNet>, TrustedProxies)>,
}

/// Builds an [`Unsigned`] verifier.
pub struct UnsignedBuilder {
    inner: Unsigned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Header(HeaderName),
    Query(String),
}

const FORM: &[&str] = &["application/x-www-form-urlencoded"];
const JSON_OR_FORM: &[&str] = &["application/json", "application/x-www-form-urlencoded"];

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Unsigned {
    /// A verifier reported as `provider` in logs, accepting any media type.
    pub fn builder(provider: &'static str) -> UnsignedBuilder {
        UnsignedBuilder {
            inner: Self {
                provider,
                content_types: &[],
                tokens: Vec::new(),
                basic: Vec::new(),
                networks: None,
            },
        }
    }

    /// Mailchimp Marketing audience webhooks: form-encoded
    /// (`type=…&data[email]=…`); Mailchimp documents a secret in the URL
    /// (use [`token_query`](UnsignedBuilder::token_query)) and IP
    /// allow-listing. (Its URL-validation `GET` must be answered by your
    /// router; the layer only admits `POST`.)
    pub fn mailchimp() -> UnsignedBuilder {
        let mut b = Self::builder("mailchimp");
        b.inner.content_types = FORM;
        b
    }

    /// Webhooks by Zapier / API by Zapier actions: JSON or form; the Zap can
    /// add a static header (use [`token_header`](UnsignedBuilder::token_header))
    /// or Basic auth. (Zapier's white-label connection webhooks are signed:
    /// use [`StandardWebhooks`](super::StandardWebhooks) for those.)
    pub fn zapier() -> UnsignedBuilder {
        let mut b = Self::builder("zapier");
        b.inner.content_types = JSON_OR_FORM;
        b
    }

    /// Papertrail search alerts: form-encoded with one `payload` field
    /// holding JSON; protect with a URL token and source networks.
    pub fn papertrail() -> UnsignedBuilder {
        let mut b = Self::builder("papertrail");
        b.inner.content_types = FORM;
        b
    }
}

impl UnsignedBuilder {
    /// Requires `token` in header `name` (exact value). Call again with the
    /// same name to accept another token during a rotation.
    ///
    /// # Errors
    /// [`ConfigError::InvalidHeaderName`] when `name` is not a header name;
    /// [`ConfigError::InvalidSecret`] when the token starts or ends with a
    /// space or a tab (HTTP strips them: it could never match).
    pub fn token_header(mut self, name: &str, token: Secret) -> Result<Self, ConfigError> {
        let name = HeaderName::try_from(name)
            .map_err(|_| ConfigError::InvalidHeaderName(name.to_owned()))?;
        if !super::kit::survives_header(token.expose()) {
            return Err(ConfigError::InvalidSecret(
                "a header token cannot start or end with a space or a tab",
            ));
        }
        self.inner
            .tokens
            .push((Location::Header(name), digest(token.expose())));
        Ok(self)
    }

    /// Requires `token` as the value of query parameter `name` (compared
    /// after URL-decoding). Query strings end up in access logs: prefer a
    /// header where the sender allows one.
    pub fn token_query(mut self, name: &str, token: Secret) -> Self {
        self.inner
            .tokens
            .push((Location::Query(name.to_owned()), digest(token.expose())));
        self
    }

    /// Requires HTTP Basic credentials `user` / `password`. Call again to
    /// accept other credentials (rotation).
    pub fn basic_auth(mut self, user: &str, password: Secret) -> Self {
        let mut creds =
            zeroize::Zeroizing::new(Vec::with_capacity(user.len() + 1 + password.expose().len()));
        creds.extend_from_slice(user.as_bytes());
        creds.push(b':');
        creds.extend_from_slice(password.expose());
        self.inner.basic.push(digest(&creds));
        self
    }

    /// Admits only clients in these networks (CIDR, or single addresses).
    /// The client is the peer, or behind `proxies` the address they report
    /// (see [`TrustedProxies::client_ip`]). A request whose peer address is
    /// unknown is refused.
    ///
    /// # Errors
    /// [`ConfigError::InvalidNetwork`] naming the first bad entry.
    pub fn allow_networks<'a>(
        mut self,
        cidrs: impl IntoIterator<Item = &'a str>,
        proxies: TrustedProxies,
    ) -> Result<Self, ConfigError> {
        let mut nets = Vec::new();
        for c in cidrs {
            let c = c.trim();
            let net = match c.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => c
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| ConfigError::InvalidNetwork(c.to_owned()))?,
            };
            nets.push(net);
        }
        self.inner.networks = Some((nets, proxies));
        Ok(self)
    }

    /// The verifier.
    ///
    /// # Errors
    /// [`ConfigError::NoSecret`] when no check at all was configured: an
    /// endpoint open to anyone is not what a verifier is for.
    pub fn build(self) -> Result<Unsigned, ConfigError> {
        let i = &self.inner;
        if i.tokens.is_empty() && i.basic.is_empty() && i.networks.is_none() {
            return Err(ConfigError::NoSecret);
        }
        Ok(self.inner)
    }
}

impl std::fmt::Debug for Unsigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let locations: Vec<_> = self.tokens.iter().map(|(l, _)| l).collect();
        f.debug_struct("Unsigned")
            .field("provider", &self.provider)
            .field("token_locations", &locations)
            .field("tokens", &"***")
            .field("basic_auth", &self.basic.len())
            .field("networks", &self.networks.as_ref().map(|(n, _)| n))
            .finish()
    }
}

impl std::fmt::Debug for UnsignedBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UnsignedBuilder").field(&self.inner).finish()
    }
}

impl Unsigned {
    fn check_network(&self, parts: &Parts) -> Result<(), VerifyError> {
        let Some((nets, proxies)) = &self.networks else {
            return Ok(());
        };
        let peer = peer_addr(&parts.extensions).ok_or(VerifyError::SourceNotAllowed)?;
        let client = proxies.client_ip(peer.ip(), &parts.headers);
        // IPv4-mapped IPv6 peers match IPv4 networks.
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            IpAddr::V4(_) => client,
        };
        if nets.iter().any(|n| n.contains(&client)) {
            Ok(())
        } else {
            Err(VerifyError::SourceNotAllowed)
        }
    }

    fn check_token(&self, parts: &Parts) -> Result<(), VerifyError> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        let query: Vec<(String, String)> = match parts.uri.query() {
            Some(q) => serde_urlencoded::from_str(q).unwrap_or_default(),
            None => Vec::new(),
        };
        let mut presented = false;
        let mut ok = subtle::Choice::from(0);
        for (location, want) in &self.tokens {
            let value = match location {
                // byte for byte: a token may be any text a header carries
                Location::Header(name) => kit::header_bytes(parts, name, "token header")?,
                Location::Query(name) => query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_bytes()),
            };
            if let Some(v) = value {
                presented = true;
                ok |= digest(v).ct_eq(want);
            }
        }
        if !presented {
            return Err(VerifyError::MissingSignature("token"));
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }

    fn check_basic(&self, parts: &Parts) -> Result<(), VerifyError> {
        if self.basic.is_empty() {
            return Ok(());
        }
        let header = kit::signature(parts, AUTHORIZATION)?;
        let (scheme, b64) = header
            .trim()
            .split_once(' ')
            .ok_or(VerifyError::SignatureMismatch)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(VerifyError::SignatureMismatch);
        }
        let creds = STANDARD
            .decode(b64.trim())
            .map_err(|_| VerifyError::SignatureMismatch)?;
        let got = digest(&creds);
        let mut ok = subtle::Choice::from(0);
        for want in &self.basic {
            ok |= got.ct_eq(want);
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }
}

impl Verifier for Unsigned {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn content_types(&self) -> &[&'static str] {
        self.content_types
    }

    fn verify(
        &self,
        parts: &Parts,
        _body: &[u8],
        _now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        self.check_network(parts)?;
        self.check_token(parts)?;
        self.check_basic(parts)?;
        Ok(Verified::new(self.provider))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::client::ClientAddr;

    fn tok(s: &str) -> Secret {
        Secret::text(s).unwrap()
    }

    #[test]
    fn a_header_token_http_would_trim_is_refused_when_building() {
        for bad in [" t0ken", "t0ken\t", " "] {
            let err = Unsigned::builder("test")
                .token_header("x-token", tok(bad))
                .unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidSecret(_)),
                "{bad:?}: {err:?}"
            );
        }
        // inside the token, spaces are fine
        assert!(
            Unsigned::builder("test")
                .token_header("x-token", tok("t0 ken"))
                .is_ok()
        );
    }

    fn request(uri: &str, headers: &[(&str, &str)], peer: Option<&str>) -> Parts {
        let mut b = http::Request::post(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(()).unwrap();
        if let Some(p) = peer {
            req.extensions_mut()
                .insert(ClientAddr(p.parse::<SocketAddr>().unwrap()));
        }
        req.into_parts().0
    }

    fn check(v: &Unsigned, parts: &Parts) -> Result<Verified, VerifyError> {
        v.verify(parts, b"", SystemTime::now())
    }

    #[test]
    fn header_token_accepts_any_active_token_and_rejects_others() {
        let v = Unsigned::zapier()
            .token_header("x-zap-token", tok("old-token"))
            .unwrap()
            .token_header("x-zap-token", tok("new-token"))
            .unwrap()
            .build()
            .unwrap();
        for t in ["old-token", "new-token"] {
            assert!(check(&v, &request("/z", &[("x-zap-token", t)], None)).is_ok());
        }
        for t in ["new-toke", "new-tokenX", "NEW-TOKEN", ""] {
            assert_eq!(
                check(&v, &request("/z", &[("x-zap-token", t)], None)).unwrap_err(),
                VerifyError::SignatureMismatch,
                "{t:?}"
            );
        }
        assert_eq!(
            check(&v, &request("/z", &[], None)).unwrap_err(),
            VerifyError::MissingSignature("token")
        );
        // a repeated header is malformed, not a second chance
        assert!(matches!(
            check(
                &v,
                &request(
                    "/z",
                    &[("x-zap-token", "x"), ("x-zap-token", "new-token")],
                    None
                )
            ),
            Err(VerifyError::MalformedHeader(_))
        ));
    }

    #[test]
    fn a_non_ascii_header_token_is_compared_byte_for_byte() {
        let v = Unsigned::zapier()
            .token_header("x-zap-token", tok("clé-ʓ"))
            .unwrap()
            .build()
            .unwrap();
        let parts = |t: &[u8]| {
            let mut req = http::Request::post("/z").body(()).unwrap();
            req.headers_mut()
                .insert("x-zap-token", http::HeaderValue::from_bytes(t).unwrap());
            req.into_parts().0
        };
        assert!(check(&v, &parts("clé-ʓ".as_bytes())).is_ok());
        assert_eq!(
            check(&v, &parts(b"cl\xe9")).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn query_token_is_url_decoded_and_compared_exactly() {
        let v = Unsigned::papertrail()
            .token_query("key", tok("a b+c"))
            .build()
            .unwrap();
        assert!(check(&v, &request("/p?x=1&key=a+b%2Bc", &[], None)).is_ok());
        assert!(check(&v, &request("/p?key=a+b+c", &[], None)).is_err());
        assert!(check(&v, &request("/p?other=a+b%2Bc", &[], None)).is_err());
    }

    #[test]
    fn basic_auth_checks_user_and_password() {
        let v = Unsigned::zapier()
            .basic_auth("zap", tok("pw"))
            .build()
            .unwrap();
        let good = format!("Basic {}", STANDARD.encode("zap:pw"));
        assert!(check(&v, &request("/", &[("authorization", &good)], None)).is_ok());
        for bad in [
            format!("Basic {}", STANDARD.encode("zap:pw2")),
            format!("Basic {}", STANDARD.encode("zop:pw")),
            format!("Bearer {}", STANDARD.encode("zap:pw")),
            "Basic !!!".to_owned(),
            "Basic".to_owned(),
        ] {
            assert_eq!(
                check(&v, &request("/", &[("authorization", &bad)], None)).unwrap_err(),
                VerifyError::SignatureMismatch,
                "{bad}"
            );
        }
    }

    #[test]
    fn network_allow_list_uses_the_peer_and_trusted_proxies_only() {
        let v = Unsigned::mailchimp()
            .allow_networks(
                ["203.0.113.0/24"],
                TrustedProxies::new(["10.0.0.0/8"]).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap();
        assert!(check(&v, &request("/", &[], Some("203.0.113.7:1000"))).is_ok());
        assert_eq!(
            check(&v, &request("/", &[], Some("198.51.100.1:1000"))).unwrap_err(),
            VerifyError::SourceNotAllowed
        );
        // behind the trusted proxy, the forwarded client counts
        let fwd = [("x-forwarded-for", "203.0.113.9")];
        assert!(check(&v, &request("/", &fwd, Some("10.0.0.2:1000"))).is_ok());
        // the same header from an untrusted peer is ignored
        assert_eq!(
            check(&v, &request("/", &fwd, Some("198.51.100.1:1000"))).unwrap_err(),
            VerifyError::SourceNotAllowed
        );
        // unknown peer: refused
        assert_eq!(
            check(&v, &request("/", &[], None)).unwrap_err(),
            VerifyError::SourceNotAllowed
        );
    }

    #[test]
    fn combined_checks_must_all_pass_and_network_is_checked_first() {
        let v = Unsigned::builder("in-house")
            .token_query("t", tok("s3cret"))
            .basic_auth("u", tok("p"))
            .allow_networks(["127.0.0.1"], TrustedProxies::none())
            .unwrap()
            .build()
            .unwrap();
        let auth = format!("Basic {}", STANDARD.encode("u:p"));
        let h = [("authorization", auth.as_str())];
        assert!(check(&v, &request("/?t=s3cret", &h, Some("127.0.0.1:1"))).is_ok());
        assert_eq!(
            check(&v, &request("/?t=s3cret", &h, Some("127.0.0.2:1"))).unwrap_err(),
            VerifyError::SourceNotAllowed
        );
        assert_eq!(
            check(&v, &request("/?t=wrong", &h, Some("127.0.0.1:1"))).unwrap_err(),
            VerifyError::SignatureMismatch
        );
        assert!(check(&v, &request("/?t=s3cret", &[], Some("127.0.0.1:1"))).is_err());
    }

    #[test]
    fn a_verifier_without_any_check_is_a_config_error() {
        assert!(matches!(
            Unsigned::zapier().build(),
            Err(ConfigError::NoSecret)
        ));
        assert!(
            Unsigned::zapier()
                .token_header("bad header", tok("x"))
                .is_err()
        );
        assert!(
            Unsigned::zapier()
                .allow_networks(["10.0.0.0/33"], TrustedProxies::none())
                .is_err()
        );
    }

    #[test]
    fn debug_shows_no_token() {
        let v = Unsigned::zapier()
            .token_header("x-t", tok("hunter2"))
            .unwrap()
            .build()
            .unwrap();
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
