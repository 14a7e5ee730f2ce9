//! Who is the client: the peer address, and `Forwarded` /
//! `X-Forwarded-For` only from proxies you trust.
//!
//! The rate limiter keys on the client's address, and URL-signing providers
//! need the URL the sender used; both come from here, so that one setting,
//! [`TrustedProxies`], decides which headers are believed.
//!
//! # Deployment
//! Behind a reverse proxy or load balancer, every request's peer is the
//! proxy. List the proxies' networks in [`TrustedProxies`]; then the
//! right-most address in `Forwarded` (or else `X-Forwarded-For`) that is not
//! a trusted proxy is the client. A request whose peer is not trusted has
//! its forwarding headers ignored, so a client cannot spoof its address by
//! sending them.
//!
//! ```
//! use std::net::IpAddr;
//! use tower_webhook::client::TrustedProxies;
//!
//! let proxies = TrustedProxies::new(["10.0.0.0/8"])?;
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-forwarded-for", "203.0.113.7, 10.1.2.3".parse()?);
//!
//! let via_proxy: IpAddr = "10.0.0.1".parse()?;
//! assert_eq!(proxies.client_ip(via_proxy, &headers), "203.0.113.7".parse::<IpAddr>()?);
//! let direct: IpAddr = "198.51.100.9".parse()?; // not a proxy: header ignored
//! assert_eq!(proxies.client_ip(direct, &headers), direct);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{IpAddr, SocketAddr};

use http::request::Parts;
use http::{Extensions, HeaderMap};
use ipnet::IpNet;

use crate::error::ConfigError;
use crate::verify::VerifyError;

/// The address of the directly connected peer, for servers that are not
/// axum: insert it into each request's extensions (hyper's `service_fn`
/// closure knows it per connection). axum's `ConnectInfo<SocketAddr>` is
/// read as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The peer address of a request: [`ClientAddr`] or axum's `ConnectInfo`.
pub fn peer_addr(ext: &Extensions) -> Option<SocketAddr> {
    if let Some(ClientAddr(a)) = ext.get::<ClientAddr>() {
        return Some(*a);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(a)) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*a);
    }
    None
}

/// Networks of the reverse proxies whose forwarding headers are believed.
/// Empty by default: no header is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    standard: bool,
}

impl TrustedProxies {
    /// Trusts nobody: the peer address is the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts these networks, in CIDR notation (`"10.0.0.0/8"`,
    /// `"2001:db8::/32"`); a bare address means just that address.
    ///
    /// # Errors
    /// [`ConfigError::InvalidNetwork`] naming the first bad entry.
    pub fn new<'a>(cidrs: impl IntoIterator<Item = &'a str>) -> Result<Self, ConfigError> {
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
        Ok(Self {
            nets,
            standard: false,
        })
    }

    /// Reads the standard `Forwarded` header (RFC 7239) instead of
    /// `X-Forwarded-For` / `-Proto` / `-Host` (the default). Choose the one
    /// your proxy **writes**: most (nginx, AWS ALB, Heroku) write
    /// `X-Forwarded-*` and pass a client's own `Forwarded` through
    /// untouched, so believing both would let a client pick its address.
    pub fn use_forwarded(mut self) -> Self {
        self.standard = true;
        self
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The client's address: `peer` itself unless `peer` is a trusted
    /// proxy; then the right-most hop of `Forwarded` (else
    /// `X-Forwarded-For`) that is not a trusted proxy. Unparseable hops stop
    /// the walk at the last address known to be good.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_hops(headers, self.standard).rev() {
            let Some(ip) = hop else {
                return client;
            };
            client = canonical(ip);
            if !self.contains(client) {
                return client;
            }
        }
        client
    }

    /// Whether the forwarding headers of a request from `peer` are believed.
    pub fn trusts(&self, peer: Option<SocketAddr>) -> bool {
        peer.is_some_and(|p| self.contains(p.ip()))
    }
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The hops of `Forwarded` (its `for=` values) when `standard`, else of
/// every `X-Forwarded-For` header, left to right; `None` for a hop that is
/// not an address (`unknown`, an obfuscated name, garbage).
fn forwarded_hops(headers: &HeaderMap, standard: bool) -> std::vec::IntoIter<Option<IpAddr>> {
    let mut hops = Vec::new();
    let forwarded = headers.get_all(http::header::FORWARDED);
    if standard {
        for value in forwarded {
            let Ok(value) = value.to_str() else {
                hops.push(None);
                continue;
            };
            for element in value.split(',') {
                let for_ = element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
                });
                hops.push(for_.and_then(parse_node));
            }
        }
    } else {
        for value in headers.get_all("x-forwarded-for") {
            let Ok(value) = value.to_str() else {
                hops.push(None);
                continue;
            };
            hops.extend(value.split(',').map(|h| parse_node(h.trim())));
        }
    }
    hops.into_iter()
}

/// An address from a forwarding hop: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `"[2001:db8::1]:4711"`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_matches('"');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let inner = t.strip_prefix('[')?.split(']').next()?;
    inner.parse().ok()
}

/// How a URL-signing verifier (Twilio, Mandrill, Square) learns the URL
/// the sender requested: those providers sign the full URL, so the
/// receiver must rebuild it byte for byte.
///
/// Two ways, in order of preference:
///
/// * [`PublicUrl::base`]: a fixed scheme, host (and optional path prefix)
///   you configure, followed by the request's own path and query. Nothing
///   the client sends can change the scheme or host. Use this in
///   production.
/// * [`PublicUrl::from_request`]: the scheme and host come from
///   `Forwarded` (`proto=`, `host=`) or `X-Forwarded-Proto` /
///   `X-Forwarded-Host`, **only** when the connected peer is one of the
///   [`TrustedProxies`]; otherwise from the request itself (the URI's
///   authority, else the `Host` header) with the
///   [`default_scheme`](PublicUrl::default_scheme).
///
/// The path and query are taken from the request URI as received: nothing
/// is decoded, re-encoded, re-ordered, or given or stripped of a trailing
/// slash. A layer inside an axum `Router::nest` sees the URI without the
/// nest's prefix: put the prefix in the base URL, or apply the layer
/// outside the nest.
///
/// # Deployment
/// * Behind a reverse proxy the request the application sees is not the
///   one the provider sent: the scheme is often `http`, the host an
///   internal name, the port another one. Either configure
///   [`PublicUrl::base`] with the URL you registered at the provider, or
///   list the proxy in [`TrustedProxies`] and make sure it **sets**
///   (overwrites) `X-Forwarded-Proto` and `X-Forwarded-Host`, or appends
///   a `Forwarded` element.
/// * Forwarding headers from a peer that is not trusted are ignored:
///   otherwise anyone could make a URL signed for another endpoint (of
///   the same account) verify here.
/// * From a trusted peer, `X-Forwarded-Proto` / `X-Forwarded-Host` must be
///   single values: a comma list (a chain of proxies that append) is
///   refused as malformed, because which entry is genuine cannot be known.
///   `Forwarded` is walked like [`TrustedProxies::client_ip`] does: the
///   element added by the outermost trusted proxy is used.
/// * Without a base URL or a trusted proxy, the host comes from the
///   request's `Host` header, which the client chooses. The signature still
///   binds the URL, but a URL signed for another of your hosts would verify.
/// * A proxy that strips a path prefix changes the signed path: put the
///   prefix in the base URL (`https://example.com/api`).
///
/// ```
/// use tower_webhook::client::{PublicUrl, TrustedProxies};
///
/// let url = PublicUrl::base("https://hooks.example.com/api")?;
/// let req = http::Request::post("/twilio/sms?x=1").body(())?;
/// assert_eq!(url.resolve(&req.into_parts().0)?, "https://hooks.example.com/api/twilio/sms?x=1");
///
/// let behind = PublicUrl::from_request(TrustedProxies::new(["10.0.0.0/8"])?);
/// let mut req = http::Request::post("/sms")
///     .header("host", "app:8080")
///     .header("x-forwarded-proto", "https")
///     .header("x-forwarded-host", "hooks.example.com")
///     .body(())?;
/// req.extensions_mut().insert(tower_webhook::client::ClientAddr("10.0.0.5:4000".parse()?));
/// assert_eq!(behind.resolve(&req.into_parts().0)?, "https://hooks.example.com/sms");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    source: UrlSource,
    default_scheme: &'static str,
}

/// Where [`PublicUrl`] takes the scheme and host from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UrlSource {
    /// `scheme://authority` and a path prefix without a trailing slash.
    Base { origin: String, prefix: String },
    /// The request, and forwarding headers from these proxies.
    Request(TrustedProxies),
}

impl Default for PublicUrl {
    fn default() -> Self {
        Self::from_request(TrustedProxies::none())
    }
}

/// A URL rebuilt by [`PublicUrl`], split so that verifiers can try the
/// port variants a provider is known to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestUrl {
    pub(crate) scheme: String,
    pub(crate) authority: String,
    /// Prefix, path and query, exactly as they will be signed.
    pub(crate) rest: String,
}

impl RequestUrl {
    pub(crate) fn to_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.rest)
    }

    /// The query string (after `?`), if any.
    pub(crate) fn query(&self) -> Option<&str> {
        self.rest.split_once('?').map(|(_, q)| q)
    }

    /// The URL without any port, and with the port (the scheme's default
    /// when none was given): the two forms Twilio's SDKs try.
    pub(crate) fn port_variants(&self) -> [String; 2] {
        let (host, port) = split_port(&self.authority);
        let default = if self.scheme == "https" { "443" } else { "80" };
        let port = port.unwrap_or(default);
        [
            format!("{}://{}{}", self.scheme, host, self.rest),
            format!("{}://{}:{}{}", self.scheme, host, port, self.rest),
        ]
    }
}

/// `host:port` into host and port; IPv6 literals keep their brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.starts_with('[') || host.ends_with(']')) =>
        {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

fn scheme_of(text: &str) -> Option<&'static str> {
    if text.eq_ignore_ascii_case("https") {
        Some("https")
    } else if text.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// A host (with optional port) as it may appear in a URL: no user info,
/// path, or spaces.
fn valid_authority(text: &str) -> bool {
    !text.is_empty()
        && !text.contains('@')
        && text
            .parse::<http::uri::Authority>()
            .is_ok_and(|a| a.as_str() == text)
}

impl PublicUrl {
    /// Scheme and host fixed to those of `url` (`https://example.com`, or
    /// with a path prefix `https://example.com/api`); the request's path and
    /// query are appended.
    ///
    /// # Errors
    /// [`ConfigError::InvalidUrl`] when `url` is not `http`/`https` with a
    /// host, or carries user info, a query or a fragment.
    pub fn base(url: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::InvalidUrl(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = scheme_of(scheme).ok_or_else(bad)?;
        if rest.contains(['?', '#']) {
            return Err(bad());
        }
        let (authority, prefix) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if !valid_authority(authority) {
            return Err(bad());
        }
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        Ok(Self {
            source: UrlSource::Base {
                origin: format!("{scheme}://{authority}"),
                prefix: prefix.to_owned(),
            },
            default_scheme: scheme,
        })
    }

    /// Scheme and host from the request, believing forwarding headers only
    /// from `proxies`. The scheme defaults to `https` when nothing says
    /// otherwise (see [`default_scheme`](Self::default_scheme)).
    pub fn from_request(proxies: TrustedProxies) -> Self {
        Self {
            source: UrlSource::Request(proxies),
            default_scheme: "https",
        }
    }

    /// The scheme to assume when neither the request URI nor a trusted
    /// proxy names one (HTTP/1.1 requests carry none): `"https"` (the
    /// default; what the providers require of public endpoints) or
    /// `"http"`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidUrl`] for any other scheme.
    pub fn default_scheme(mut self, scheme: &str) -> Result<Self, ConfigError> {
        self.default_scheme =
            scheme_of(scheme).ok_or_else(|| ConfigError::InvalidUrl(scheme.to_owned()))?;
        Ok(self)
    }

    /// The URL the sender requested, as one string.
    ///
    /// # Errors
    /// [`VerifyError::MissingHeader`] when no host is known,
    /// [`VerifyError::MalformedHeader`] when a believed forwarding header is
    /// not a single valid value.
    pub fn resolve(&self, parts: &Parts) -> Result<String, VerifyError> {
        self.resolve_parts(parts).map(|u| u.to_url())
    }

    pub(crate) fn resolve_parts(&self, parts: &Parts) -> Result<RequestUrl, VerifyError> {
        let path = path_and_query(parts);
        match &self.source {
            UrlSource::Base { origin, prefix } => {
                let (scheme, authority) = origin.split_once("://").unwrap_or(("https", origin));
                Ok(RequestUrl {
                    scheme: scheme.to_owned(),
                    authority: authority.to_owned(),
                    rest: format!("{prefix}{path}"),
                })
            }
            UrlSource::Request(proxies) => {
                let (mut scheme, mut host) = (None, None);
                if proxies.trusts(peer_addr(&parts.extensions)) {
                    (scheme, host) = forwarded_origin(proxies, &parts.headers)?;
                }
                let scheme = match scheme.or_else(|| parts.uri.scheme_str().and_then(scheme_of)) {
                    Some(s) => s,
                    None => self.default_scheme,
                };
                let authority = match host {
                    Some(h) => h,
                    None => match parts.uri.authority() {
                        Some(a) => a.as_str().to_owned(),
                        None => {
                            let h = crate::providers::kit::header(parts, "host")?
                                .ok_or(VerifyError::MissingHeader("host"))?;
                            if !valid_authority(h) {
                                return Err(VerifyError::MalformedHeader("host"));
                            }
                            h.to_owned()
                        }
                    },
                };
                Ok(RequestUrl {
                    scheme: scheme.to_owned(),
                    authority,
                    rest: path,
                })
            }
        }
    }
}

/// Path and query of the request URI, as received.
fn path_and_query(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned()
}

/// Scheme and host from the forwarding headers of a trusted peer:
/// `Forwarded` if present, else `X-Forwarded-Proto` / `X-Forwarded-Host`.
fn forwarded_origin(
    proxies: &TrustedProxies,
    headers: &HeaderMap,
) -> Result<(Option<&'static str>, Option<String>), VerifyError> {
    const FWD: &str = "forwarded";
    if proxies.standard {
        // Elements right to left; each was added by a trusted party as long
        // as the previous one's `for=` is a trusted proxy.
        let mut elements = Vec::new();
        for value in headers.get_all(http::header::FORWARDED) {
            let value = value
                .to_str()
                .map_err(|_| VerifyError::MalformedHeader(FWD))?;
            elements.extend(value.split(','));
        }
        let mut chosen = (None, None);
        for element in elements.iter().rev() {
            let mut for_ = None;
            let (mut proto, mut host) = (None, None);
            for pair in element.split(';') {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "for" => for_ = parse_node(v),
                    "proto" => {
                        proto = Some(scheme_of(v).ok_or(VerifyError::MalformedHeader(FWD))?);
                    }
                    "host" if valid_authority(v) => host = Some(v.to_owned()),
                    "host" => return Err(VerifyError::MalformedHeader(FWD)),
                    _ => {}
                }
            }
            // Only the element added by the outermost trusted proxy counts:
            // it describes the request the provider sent.
            chosen = (proto, host);
            match for_ {
                Some(ip) if proxies.contains(ip) => {}
                _ => break,
            }
        }
        return Ok(chosen);
    }
    let single = |name: &'static str| -> Result<Option<&str>, VerifyError> {
        match headers.get_all(name).iter().count() {
            0 => Ok(None),
            1 => {
                let v = headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .ok_or(VerifyError::MalformedHeader(name))?;
                if v.contains(',') {
                    Err(VerifyError::MalformedHeader(name))
                } else {
                    Ok(Some(v))
                }
            }
            _ => Err(VerifyError::MalformedHeader(name)),
        }
    };
    let proto = match single("x-forwarded-proto")? {
        Some(p) => Some(scheme_of(p).ok_or(VerifyError::MalformedHeader("x-forwarded-proto"))?),
        None => None,
    };
    let host = match single("x-forwarded-host")? {
        Some(h) if valid_authority(h) => Some(h.to_owned()),
        Some(_) => return Err(VerifyError::MalformedHeader("x-forwarded-host")),
        None => None,
    };
    Ok((proto, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers_say() {
        let p = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(p.client_ip(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        assert_eq!(
            TrustedProxies::none().client_ip(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn right_most_untrusted_hop_is_the_client() {
        let p = TrustedProxies::new(["10.0.0.0/8", "172.16.0.1"]).unwrap();
        // the client forged the left-most entry; proxies appended the rest
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 172.16.0.1")]);
        assert_eq!(p.client_ip(ip("10.9.9.9"), &h), ip("203.0.113.5"));
        // several headers are one list
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(p.client_ip(ip("10.9.9.9"), &h), ip("203.0.113.5"));
    }

    #[test]
    fn only_the_chosen_forwarding_header_is_believed() {
        let p = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let h = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=https, for="[2001:db8::1]:4711""#,
            ),
            ("x-forwarded-for", "6.6.6.6"),
        ]);
        // by default X-Forwarded-For: a client's own `Forwarded`, passed
        // through by an X-Forwarded-For proxy, changes nothing
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("6.6.6.6"));
        let p = p.use_forwarded();
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn garbage_hop_stops_at_last_known_address() {
        let p = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.5, unknown, 10.0.0.3")]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.3"));
    }

    #[test]
    fn mapped_ipv6_peer_matches_ipv4_network() {
        let p = TrustedProxies::new(["127.0.0.0/8"]).unwrap();
        assert!(p.contains(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn bad_cidr_is_a_config_error() {
        assert_eq!(
            TrustedProxies::new(["10.0.0.0/33"]),
            Err(ConfigError::InvalidNetwork("10.0.0.0/33".into()))
        );
    }

    fn req(uri: &str, hs: &[(&'static str, &str)], peer: Option<&str>) -> Parts {
        let mut req = http::Request::post(uri).body(()).unwrap();
        *req.headers_mut() = headers(hs);
        if let Some(p) = peer {
            req.extensions_mut()
                .insert(ClientAddr(p.parse::<SocketAddr>().unwrap()));
        }
        req.into_parts().0
    }

    #[test]
    fn base_url_keeps_path_and_query_exactly_as_received() {
        let u = PublicUrl::base("https://example.com/api/").unwrap();
        let p = req("/a%2Fb/?z=1&a=%41", &[("host", "evil.example")], None);
        assert_eq!(
            u.resolve(&p).unwrap(),
            "https://example.com/api/a%2Fb/?z=1&a=%41"
        );
        // forwarding headers never matter with a base URL
        let p = req(
            "/x",
            &[
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-proto", "http"),
            ],
            Some("10.0.0.1:1"),
        );
        assert_eq!(u.resolve(&p).unwrap(), "https://example.com/api/x");
    }

    #[test]
    fn base_url_refuses_what_is_not_an_origin_with_optional_prefix() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://",
            "https://u:p@example.com",
            "https://example.com/?q=1",
            "https://example.com/#f",
            "https://exa mple.com",
        ] {
            assert!(PublicUrl::base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_host_and_default_scheme_without_trusted_proxy() {
        let u = PublicUrl::from_request(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
        let hs = [
            ("host", "app.example:8080"),
            ("x-forwarded-host", "evil.example"),
        ];
        let p = req("/h?x=1", &hs, Some("192.0.2.1:1"));
        assert_eq!(u.resolve(&p).unwrap(), "https://app.example:8080/h?x=1");
        let http = u.clone().default_scheme("http").unwrap();
        assert_eq!(http.resolve(&p).unwrap(), "http://app.example:8080/h?x=1");
        assert!(u.clone().default_scheme("gopher").is_err());
        // absolute-form / HTTP/2 URIs carry their own scheme and authority
        let p = req("http://other.example/h", &[("host", "app.example")], None);
        assert_eq!(u.resolve(&p).unwrap(), "http://other.example/h");
        // no host at all, or a bad one: clean errors
        assert_eq!(
            u.resolve(&req("/h", &[], None)),
            Err(VerifyError::MissingHeader("host"))
        );
        assert_eq!(
            u.resolve(&req("/h", &[("host", "a@b")], None)),
            Err(VerifyError::MalformedHeader("host"))
        );
    }

    #[test]
    fn x_forwarded_values_from_a_trusted_peer_must_be_single() {
        let u = PublicUrl::from_request(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
        let ok = [
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "hooks.example"),
        ];
        assert_eq!(
            u.resolve(&req("/h", &ok, Some("10.0.0.1:1"))).unwrap(),
            "https://hooks.example/h"
        );
        for bad in [
            [
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example, hooks.example"),
            ],
            [
                ("x-forwarded-proto", "https, http"),
                ("x-forwarded-host", "hooks.example"),
            ],
            [
                ("x-forwarded-proto", "ftp"),
                ("x-forwarded-host", "hooks.example"),
            ],
            [
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "u@hooks.example"),
            ],
        ] {
            assert!(
                matches!(
                    u.resolve(&req("/h", &bad, Some("10.0.0.1:1"))),
                    Err(VerifyError::MalformedHeader(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_client_forwarded_header_behind_an_x_forwarded_proxy_is_ignored() {
        let u = PublicUrl::from_request(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
        let p = req(
            "/h",
            &[
                ("forwarded", "for=6.6.6.6;host=evil.example;proto=http"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "hooks.example"),
            ],
            Some("10.0.0.2:1"),
        );
        assert_eq!(u.resolve(&p).unwrap(), "https://hooks.example/h");
    }

    #[test]
    fn forwarded_element_of_the_outermost_trusted_proxy_is_used() {
        let u =
            PublicUrl::from_request(TrustedProxies::new(["10.0.0.0/8"]).unwrap().use_forwarded());
        // client-forged element on the left, then the edge proxy's, then an
        // inner proxy's (its `for` is the edge proxy, which is trusted)
        let fwd = "for=6.6.6.6;host=evil.example;proto=http,                    for=203.0.113.5;host=hooks.example;proto=https,                    for=10.0.0.9;host=inner:8080;proto=http";
        let p = req("/h", &[("forwarded", fwd)], Some("10.0.0.2:1"));
        assert_eq!(u.resolve(&p).unwrap(), "https://hooks.example/h");
        // from an untrusted peer the header is ignored
        let p = req(
            "/h",
            &[("forwarded", fwd), ("host", "me.example")],
            Some("192.0.2.7:1"),
        );
        assert_eq!(u.resolve(&p).unwrap(), "https://me.example/h");
    }

    #[test]
    fn port_variants_drop_or_add_the_default_port() {
        let u = RequestUrl {
            scheme: "https".into(),
            authority: "a.example:1234".into(),
            rest: "/p?q".into(),
        };
        assert_eq!(
            u.port_variants(),
            [
                "https://a.example/p?q".to_owned(),
                "https://a.example:1234/p?q".to_owned()
            ]
        );
        let u = RequestUrl {
            scheme: "http".into(),
            authority: "[2001:db8::1]".into(),
            rest: "/".into(),
        };
        assert_eq!(
            u.port_variants(),
            [
                "http://[2001:db8::1]/".to_owned(),
                "http://[2001:db8::1]:80/".to_owned()
            ]
        );
    }
}
