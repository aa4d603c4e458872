//! Who is calling: the client's address, and the key that per-client limits count against.
//!
//! Behind a reverse proxy the peer is the proxy, and the client's address is in
//! `X-Forwarded-For`. Each proxy *appends* the address it received the request from, so only
//! the right end of the list is trustworthy: anything to the left may have been written by the
//! client itself. The client is therefore the rightmost address that is not one of the
//! operator's trusted proxies (`PENPAL_TRUSTED_PROXIES`). With no trusted proxies configured,
//! or a peer that is not one, the header is ignored.
//!
//! Limits count per [`ClientKey`]: an IPv4 address, or an IPv6 /64 — one subscriber usually
//! holds a whole /64, so keying by the full address would hand out limits by the billion.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use super::ApiError;

/// The proxies whose `X-Forwarded-For` is believed (`PENPAL_TRUSTED_PROXIES`). A room whose
/// handlers read [`ClientIp`] gives its state a `FromRef` to this.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<[IpNet]>);

/// The client's IP address, as [`client_addr`] finds it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The key per-client limits count against.
    pub fn key(self) -> ClientKey {
        ClientKey::of(self.0)
    }
}

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let trusted = TrustedProxies::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(client_addr(peer, &parts.headers, &trusted.0)))
    }
}

/// The client's address: `peer`, or — when `peer` is a trusted proxy — the rightmost
/// `X-Forwarded-For` address that is not a trusted proxy. A malformed entry stops the walk:
/// everything left of it is the client's to invent, so the last good proxy hop is the answer.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if is_trusted(ip) => client = ip,
            Some(ip) => return ip,
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// What per-client limits are keyed by: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> ClientKey {
        match canonical(ip) {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
            v4 => ClientKey(v4),
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_network;
    use axum::http::HeaderValue;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_network(s).unwrap()).collect()
    }

    #[test]
    fn the_header_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let h = xff(&["9.9.9.9"]);
        assert_eq!(client_addr(ip("1.2.3.4"), &h, &[]), ip("1.2.3.4"));
        assert_eq!(
            client_addr(ip("1.2.3.4"), &h, &nets(&["10.0.0.0/8"])),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn a_client_cannot_choose_its_address_by_prepending_one() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client sent `X-Forwarded-For: 6.6.6.6`; the proxy appended the real address.
        let h = xff(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.7"));
        // Two proxies in a row, the header split over two lines.
        let h = xff(&["6.6.6.6, 203.0.113.7", "10.1.1.1"]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn garbage_and_all_trusted_chains_stop_at_the_last_good_hop() {
        let trusted = nets(&["10.0.0.0/8", "::1"]);
        let h = xff(&["not-an-ip, 10.1.1.1"]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &trusted), ip("10.1.1.1"));
        assert_eq!(
            client_addr(ip("::1"), &xff(&[]), &trusted),
            ip("::1"),
            "no header: the proxy itself"
        );
        let h = xff(&["[2001:db8::1]:4711", "198.51.100.1:80"]);
        assert_eq!(client_addr(ip("::1"), &h, &trusted), ip("198.51.100.1"));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_by_the_ipv4() {
        let a = ClientKey::of(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let c = ClientKey::of(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientKey::of(ip("::ffff:192.0.2.1")),
            ClientKey::of(ip("192.0.2.1"))
        );
        assert_ne!(
            ClientKey::of(ip("192.0.2.1")),
            ClientKey::of(ip("192.0.2.2"))
        );
    }

    #[test]
    fn trusted_entries_are_cidrs_or_addresses() {
        assert!(parse_network("10.0.0.0/8").is_ok());
        assert!(
            parse_network("127.0.0.1")
                .unwrap()
                .contains(&ip("127.0.0.1"))
        );
        assert!(parse_network("fd00::/8").is_ok());
        assert!(parse_network("localhost").unwrap_err().contains("CIDR"));
    }
}
