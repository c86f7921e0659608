//! Event filters (CONTRACT §12): where a delivery's event type is, and whether a list of
//! patterns (a route's `events`, a buffered target's) wants it. A pattern is the event type
//! itself or has `*` wildcards that match any run of characters (`invoice.*`, `*.created`,
//! `*`). Sync routes and buffered targets share this one matcher.

use http::HeaderMap;

use crate::config::EventSource;

/// The event type of a delivery, if the source finds one.
pub fn event_type(source: &EventSource, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let header = |name: &http::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let json = |pointer: &str| -> Option<String> {
        let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
        match doc.pointer(pointer)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    match source {
        EventSource::Header(name) => header(name),
        EventSource::AnyHeader(names) => names.iter().find_map(header),
        EventSource::Json(pointer) => json(pointer),
        EventSource::HeaderDotJson(name, pointer) => {
            let base = header(name)?;
            Some(match json(pointer) {
                Some(action) => format!("{base}.{action}"),
                None => base,
            })
        }
    }
}

/// Whether `patterns` (empty: every event) want `event`. A delivery without an event type
/// matches only an empty filter or `*`.
pub fn wanted(patterns: &[String], event: Option<&str>) -> bool {
    if patterns.is_empty() {
        return true;
    }
    patterns.iter().any(|p| match event {
        Some(e) => glob(p, e),
        None => p == "*",
    })
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: the whole text must have been the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_globs() {
        for (p, t, want) in [
            ("invoice.*", "invoice.paid", true),
            ("invoice.*", "invoice.", true),
            ("invoice.*", "invoices.paid", false),
            ("charge.refunded", "charge.refunded", true),
            ("charge.refunded", "charge.refunded.x", false),
            ("*.created", "customer.created", true),
            ("*.created", "customer.updated", false),
            ("*", "anything", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXcYYb", false),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(glob(p, t), want, "{p} vs {t}");
        }
    }

    #[test]
    fn an_empty_filter_wants_everything_and_no_event_only_star() {
        assert!(wanted(&[], None));
        assert!(wanted(&["*".into()], None));
        assert!(!wanted(&["invoice.*".into()], None));
        assert!(wanted(
            &["x".into(), "invoice.*".into()],
            Some("invoice.paid")
        ));
    }

    #[test]
    fn the_first_header_present_is_the_event_type() {
        let names = vec![
            http::HeaderName::from_static("x-shopify-topic"),
            http::HeaderName::from_static("shopify-topic"),
        ];
        let source = EventSource::AnyHeader(names);
        let mut headers = HeaderMap::new();
        headers.insert("shopify-topic", "orders/create".parse().unwrap());
        assert_eq!(
            event_type(&source, &headers, b""),
            Some("orders/create".into())
        );
        headers.insert("x-shopify-topic", "orders/paid".parse().unwrap());
        assert_eq!(
            event_type(&source, &headers, b""),
            Some("orders/paid".into())
        );
        assert_eq!(event_type(&source, &HeaderMap::new(), b""), None);
    }

    #[test]
    fn event_types_come_from_headers_json_or_both() {
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", "pull_request".parse().unwrap());
        let body = br#"{"action":"opened","type":"invoice.paid","n":7}"#;
        let h = http::HeaderName::from_static("x-github-event");
        assert_eq!(
            event_type(
                &EventSource::HeaderDotJson(h.clone(), "/action".into()),
                &headers,
                body
            ),
            Some("pull_request.opened".into())
        );
        assert_eq!(
            event_type(
                &EventSource::HeaderDotJson(h.clone(), "/none".into()),
                &headers,
                body
            ),
            Some("pull_request".into())
        );
        assert_eq!(
            event_type(&EventSource::Json("/type".into()), &headers, body),
            Some("invoice.paid".into())
        );
        assert_eq!(
            event_type(&EventSource::Json("/n".into()), &headers, body),
            Some("7".into())
        );
        assert_eq!(
            event_type(
                &EventSource::Header(http::HeaderName::from_static("x-none")),
                &headers,
                body
            ),
            None
        );
    }
}
