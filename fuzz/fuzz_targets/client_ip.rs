//! Fuzzes client-IP extraction from `X-Forwarded-For`.
//!
//! Input layout: `mode` byte, 16 address bytes, then the X-Forwarded-For value(s), one
//! header per `\n`-separated piece (each kept only if `HeaderValue::from_bytes` accepts it).
//!
//! Properties: `client_ip` never panics; an untrusted peer's headers are ignored (the
//! result is the peer itself, IPv4-mapped peers as their IPv4 address); the result is
//! never an IPv4-mapped IPv6 address; a trusted peer yields either itself or an address
//! written in the header.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

use hookwall::client_ip::{canonical, client_ip, is_in};

fn trusted() -> &'static [IpNet] {
    static NETS: OnceLock<Vec<IpNet>> = OnceLock::new();
    NETS.get_or_init(|| {
        ["10.0.0.0/8", "::1/128"]
            .iter()
            .map(|n| n.parse().expect("valid CIDR"))
            .collect()
    })
}

fn peer(mode: u8, b: &[u8; 16]) -> IpAddr {
    let v4 = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let ten = Ipv4Addr::new(10, b[1], b[2], b[3]);
    match mode % 6 {
        0 => IpAddr::V4(v4),
        1 => IpAddr::V4(ten),
        2 => IpAddr::V6(Ipv6Addr::from(*b)),
        3 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        4 => IpAddr::V6(v4.to_ipv6_mapped()),
        _ => IpAddr::V6(ten.to_ipv6_mapped()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if rest.len() < 16 {
        return;
    }
    let (addr, xff) = rest.split_at(16);
    let peer = peer(mode, addr.try_into().unwrap());

    let mut headers = HeaderMap::new();
    for piece in xff.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(piece) {
            headers.append("x-forwarded-for", value);
        }
    }

    let trusted = trusted();
    let got = client_ip(peer, &headers, trusted);

    if !is_in(trusted, peer) {
        assert_eq!(
            got,
            canonical(peer),
            "untrusted peer {peer}: header was believed"
        );
    }
    assert_eq!(got, canonical(got), "result {got} is not canonical");
    if got != canonical(peer) {
        // Must come from the header: some hop, trimmed, parses to it.
        let from_header = headers.get_all("x-forwarded-for").iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
                    .any(|ip| canonical(ip) == got)
            })
        });
        assert!(
            from_header,
            "result {got} neither the peer {peer} nor in the header"
        );
    }
});
