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
//! use tower_webhook::net::TrustedProxies;
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

use http::{Extensions, HeaderMap};
use ipnet::IpNet;

use crate::error::ConfigError;

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
        Ok(Self { nets })
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
        for hop in forwarded_hops(headers).rev() {
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

/// The hops of `Forwarded` (its `for=` values) if present, else of every
/// `X-Forwarded-For` header, left to right; `None` for a hop that is not an
/// address (`unknown`, an obfuscated name, garbage).
fn forwarded_hops(headers: &HeaderMap) -> std::vec::IntoIter<Option<IpAddr>> {
    let mut hops = Vec::new();
    let forwarded = headers.get_all(http::header::FORWARDED);
    if forwarded.iter().next().is_some() {
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
    fn forwarded_header_is_preferred_and_parsed() {
        let p = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let h = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=https, for="[2001:db8::1]:4711""#,
            ),
            ("x-forwarded-for", "6.6.6.6"),
        ]);
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
}
