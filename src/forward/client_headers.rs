//! The headers that name the client, as the upstream receives them.
//!
//! An upstream that logs or trusts a client address must only ever see one the gateway
//! vouches for. So `X-Forwarded-For` from a trusted proxy keeps every header's entries in
//! order with the peer appended, and from anyone else is replaced by the peer; the other
//! client-IP headers proxies and CDNs set (`Forwarded`, `X-Real-IP`, ...) pass only from
//! a trusted proxy and are removed otherwise, since a client can write them freely.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Client-IP headers other than `X-Forwarded-For`: believed from a trusted proxy only.
const OTHER_CLIENT_IP_HEADERS: [HeaderName; 5] = [
    http::header::FORWARDED,
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("cf-connecting-ip"),
    HeaderName::from_static("x-client-ip"),
];

/// Rewrites the client-identifying headers for a request from `peer`.
pub(super) fn rewrite(headers: &mut HeaderMap, peer: IpAddr, peer_trusted: bool) {
    let peer = peer.to_string();
    let mut chain = Vec::new();
    if peer_trusted {
        // Several headers are one list (RFC 9110 §5.3): join them, first to last, as bytes,
        // so that nothing a proxy wrote is dropped.
        for prior in headers.get_all(&X_FORWARDED_FOR) {
            let prior = prior.as_bytes().trim_ascii();
            if !prior.is_empty() {
                chain.extend_from_slice(prior);
                chain.extend_from_slice(b", ");
            }
        }
    }
    chain.extend_from_slice(peer.as_bytes());
    // Joined valid values are a valid value; the fallback to the peer alone is belt and braces.
    let value = HeaderValue::from_bytes(&chain)
        .or_else(|_| HeaderValue::from_str(&peer))
        .ok();
    headers.remove(&X_FORWARDED_FOR);
    if let Some(v) = value {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !peer_trusted {
        for name in &OTHER_CLIENT_IP_HEADERS {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn all(h: &HeaderMap, name: &str) -> Vec<String> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    const PEER: &str = "10.0.0.1";

    #[test]
    fn trusted_proxy_keeps_every_header_in_order_and_appends_the_peer() {
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "10.9.9.9, 10.8.8.8"),
        ]);
        rewrite(&mut h, PEER.parse().unwrap(), true);
        assert_eq!(
            all(&h, "x-forwarded-for"),
            ["1.2.3.4, 10.9.9.9, 10.8.8.8, 10.0.0.1"]
        );
    }

    #[test]
    fn untrusted_peer_replaces_every_header() {
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
        ]);
        rewrite(&mut h, PEER.parse().unwrap(), false);
        assert_eq!(all(&h, "x-forwarded-for"), [PEER]);
    }

    #[test]
    fn no_header_is_the_peer_alone() {
        for trusted in [true, false] {
            let mut h = HeaderMap::new();
            rewrite(&mut h, PEER.parse().unwrap(), trusted);
            assert_eq!(all(&h, "x-forwarded-for"), [PEER]);
        }
    }

    #[test]
    fn other_client_ip_headers_pass_only_from_a_trusted_proxy() {
        let sent = [
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("true-client-ip", "1.2.3.4"),
            ("cf-connecting-ip", "1.2.3.4"),
            ("x-client-ip", "1.2.3.4"),
            ("x-custom", "kept"),
        ];
        let mut untrusted = headers(&sent);
        rewrite(&mut untrusted, PEER.parse().unwrap(), false);
        for (name, _) in &sent[..5] {
            assert!(!untrusted.contains_key(*name), "{name} passed");
        }
        assert_eq!(all(&untrusted, "x-custom"), ["kept"]);

        let mut trusted = headers(&sent);
        rewrite(&mut trusted, PEER.parse().unwrap(), true);
        for (name, value) in &sent {
            assert_eq!(all(&trusted, name), [*value], "{name}");
        }
    }
}
