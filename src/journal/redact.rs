//! What of a request the journal must not keep: credentials in headers (`Authorization`,
//! `Cookie`, `Proxy-Authorization`, a token scheme's header such as `X-Gitlab-Token`,
//! Asana's `X-Hook-Secret`, and the route's `redact_headers`) are stored as `[redacted]`, a
//! verify token in the query (Meta's `hub.verify_token`) too; the route's `redact_json`
//! pointers are blanked in a stored JSON body. Signature headers are MACs, not secrets: they
//! are kept, since re-verification needs them.

use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderName};

use crate::config::RouteConfig;
use crate::verify::presets::HandshakeKind;
use crate::verify::Scheme;

/// What a redacted value is stored as.
pub(crate) const REDACTED: &str = "[redacted]";

/// A redacted query value, as it is stored (percent-encoded, so the path stays a URI).
const REDACTED_IN_QUERY: &str = "%5Bredacted%5D";

/// The headers always redacted, plus the ones the route's scheme or handshake carries a
/// secret in.
pub(crate) fn credential_headers(route: &RouteConfig) -> Vec<HeaderName> {
    let mut names = vec![AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION];
    for keyed in &route.verifier.schemes {
        if let Scheme::Token(t) = &keyed.scheme {
            if !names.contains(&t.header) {
                names.push(t.header.clone());
            }
        }
    }
    if route.handshake == Some(HandshakeKind::AsanaHookSecret) {
        // The handshake hands over the route's signing secret.
        names.push(HeaderName::from_static("x-hook-secret"));
    }
    names
}

/// `path_and_query` with the values of query parameters that carry the route's secret
/// replaced (Meta's verification GET sends the configured verify token as
/// `hub.verify_token`).
pub(crate) fn path(route: &RouteConfig, path_and_query: String) -> String {
    let secret_param = match route.handshake {
        Some(HandshakeKind::MetaVerification) => "hub.verify_token",
        _ => return path_and_query,
    };
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name == secret_param => format!("{name}={REDACTED_IN_QUERY}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// The headers as stored: in arrival order, the credential ones and `extra` redacted.
pub(crate) fn headers(
    map: &HeaderMap,
    credentials: &[HeaderName],
    extra: &[HeaderName],
) -> Vec<(String, String)> {
    map.iter()
        .map(|(name, value)| {
            let value = if credentials.contains(name) || extra.contains(name) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// `body` with the values at `pointers` replaced by `"[redacted]"`, if it is JSON and any
/// of them is there; `None` (keep the body as it is) otherwise.
pub(crate) fn json_body(body: &[u8], pointers: &[String]) -> Option<Vec<u8>> {
    if pointers.is_empty() {
        return None;
    }
    let mut doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    for pointer in pointers {
        if let Some(v) = doc.pointer_mut(pointer) {
            *v = serde_json::Value::String(REDACTED.to_owned());
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    serde_json::to_vec(&doc).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_listed_headers_are_redacted_in_order() {
        let mut h = HeaderMap::new();
        h.insert("x-sig", "sha256=abc".parse().unwrap());
        h.insert("authorization", "Bearer t0ken".parse().unwrap());
        h.insert("x-api-key", "k3y".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        let stored = headers(
            &h,
            &[AUTHORIZATION],
            &[HeaderName::from_static("x-api-key")],
        );
        assert_eq!(
            stored,
            [
                ("x-sig".to_owned(), "sha256=abc".to_owned()),
                ("authorization".to_owned(), REDACTED.to_owned()),
                ("x-api-key".to_owned(), REDACTED.to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
    }

    #[test]
    fn json_pointers_are_blanked_and_order_kept() {
        let body = br#"{"id":"evt_1","customer":{"email":"a@b.c","name":"A"}}"#;
        let out = json_body(body, &["/customer/email".to_owned()]).unwrap();
        assert_eq!(
            out,
            br#"{"id":"evt_1","customer":{"email":"[redacted]","name":"A"}}"#
        );
        assert_eq!(json_body(body, &["/nope".to_owned()]), None);
        assert_eq!(json_body(b"not json", &["/a".to_owned()]), None);
    }
}
