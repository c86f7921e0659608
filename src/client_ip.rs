//! The real client IP, which the IP allowlist and `rate_limit.by = "ip"` key on.
//!
//! `X-Forwarded-For` is believed only when the TCP peer is in `server.trusted_proxies`;
//! then the client is the right-most address that is not itself a trusted proxy (the
//! left part of the header is whatever the client wrote and proves nothing).

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// Whether `ip` is in any of `nets` (IPv4-mapped IPv6 peers count as their IPv4 address).
pub fn is_in(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|n| n.contains(&ip))
}

/// `::ffff:1.2.3.4` → `1.2.3.4`, so IPv4 allowlists work on dual-stack listeners.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client IP for a request from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_in(trusted, peer) {
        return peer;
    }
    let mut client = peer;
    // Walk every X-Forwarded-For header right to left, hop by hop.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|v| v.to_str().unwrap_or("").rsplit(','));
    for hop in hops {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // Garbage from here leftwards: the last trusted hop is all we know.
            break;
        };
        client = canonical(ip);
        if !is_in(trusted, client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(xff: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("x-forwarded-for", xff.parse().unwrap());
        m
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_xff_is_ignored() {
        let ip = client_ip(
            "203.0.113.9".parse().unwrap(),
            &h("1.2.3.4"),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_peer_right_most_untrusted_wins() {
        let ip = client_ip(
            "10.0.0.1".parse().unwrap(),
            &h("6.6.6.6, 198.51.100.7, 10.0.0.2"),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn garbage_stops_the_walk() {
        let ip = client_ip(
            "10.0.0.1".parse().unwrap(),
            &h("1.1.1.1, nonsense"),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn mapped_ipv4_matches_ipv4_nets() {
        assert!(is_in(
            &nets(&["127.0.0.0/8"]),
            "::ffff:127.0.0.1".parse().unwrap()
        ));
    }
}
