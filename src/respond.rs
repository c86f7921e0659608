//! The one place gateway-made answers are built.
//!
//! Rejections get `{"error":"<reason>","request_id":"<id>"}`, duplicates
//! `{"status":"duplicate","request_id":"<id>"}`; both are `application/json`. The
//! [`Outcome`] rides along in the response extensions so the server can count and log it
//! without re-deriving anything. Nothing here sees secrets or which check nearly passed.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};

use crate::context::Outcome;
use crate::error::Rejection;

mod body;

pub(crate) use body::AnswerBody;

/// The response type of every route stack.
pub(crate) type HttpResponse = Response<AnswerBody>;

fn json(status: StatusCode, body: String, outcome: Outcome) -> HttpResponse {
    let mut resp = Response::new(AnswerBody::from(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.extensions_mut().insert(outcome);
    resp
}

/// Request ids are hex we generated, but escape anyway: this is the JSON boundary.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn rejection_body(request_id: &str, rejection: Rejection) -> String {
    format!(
        "{{\"error\":\"{}\",\"request_id\":{}}}",
        rejection.reason(),
        quoted(request_id)
    )
}

/// The answer for a rejection.
pub(crate) fn rejection(request_id: &str, rejection: Rejection) -> HttpResponse {
    let body = rejection_body(request_id, rejection);
    let mut resp = json(rejection.status(), body, Outcome::Rejected(rejection));
    if let Some(secs) = rejection.retry_after_secs() {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The same answer as raw HTTP/1.1 bytes that close the connection, for a socket hyper
/// has already given up (a request head that stalled).
pub(crate) fn rejection_http1(request_id: &str, rejection: Rejection) -> Vec<u8> {
    let body = rejection_body(request_id, rejection);
    let status = rejection.status();
    let retry_after = rejection
        .retry_after_secs()
        .map(|secs| format!("retry-after: {secs}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry_after}connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
    )
    .into_bytes()
}

/// The answer for an id that was already delivered: 200 so the provider stops retrying.
pub(crate) fn duplicate(request_id: &str) -> HttpResponse {
    let body = format!(
        "{{\"status\":\"duplicate\",\"request_id\":{}}}",
        quoted(request_id)
    );
    json(StatusCode::OK, body, Outcome::Duplicate)
}

/// The answer of a buffered route once the delivery is on disk: 202, delivered later.
pub(crate) fn queued(request_id: &str, delivery_id: Option<&str>) -> HttpResponse {
    let delivery = delivery_id.map_or_else(|| "null".to_owned(), quoted);
    let body = format!(
        "{{\"status\":\"queued\",\"request_id\":{},\"delivery_id\":{delivery}}}",
        quoted(request_id)
    );
    json(StatusCode::ACCEPTED, body, Outcome::Queued)
}

/// The answer for a verified delivery no target wants (event filters): 200, so the
/// provider does not retry it.
pub(crate) fn ignored(request_id: &str) -> HttpResponse {
    let body = format!(
        "{{\"status\":\"ignored\",\"request_id\":{}}}",
        quoted(request_id)
    );
    json(StatusCode::OK, body, Outcome::Ignored)
}

/// A provider handshake answered by the gateway itself (counted as outcome `handshake`).
pub(crate) fn handshake(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let body = body.into();
    let has_body = !body.is_empty();
    let mut resp = Response::new(AnswerBody::from(body));
    *resp.status_mut() = status;
    if has_body {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    resp.extensions_mut().insert(Outcome::Handshake);
    resp
}

/// The outcome a response carries (`rejected/upstream_error` if a layer forgot to set one,
/// which would be a bug: better counted wrong than not counted).
pub(crate) fn outcome_of(resp: &HttpResponse) -> Outcome {
    resp.extensions()
        .get::<Outcome>()
        .copied()
        .unwrap_or(Outcome::Rejected(Rejection::UpstreamError))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(resp: HttpResponse) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn rejection_body_and_headers() {
        let resp = rejection(
            "abc",
            Rejection::RateLimited(std::time::Duration::from_millis(1500)),
        );
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[RETRY_AFTER], "2");
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(
            body(resp).await,
            serde_json::json!({"error": "rate_limited", "request_id": "abc"})
        );
    }

    #[tokio::test]
    async fn raw_http1_rejection_matches_the_hyper_one() {
        let r = Rejection::RateLimited(std::time::Duration::from_millis(1500));
        let raw = String::from_utf8(rejection_http1("abc", r)).unwrap();
        let (head, raw_body) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        assert_eq!(lines.next(), Some("HTTP/1.1 429 Too Many Requests"));
        let headers: Vec<&str> = lines.collect();
        assert!(
            headers.contains(&"content-type: application/json"),
            "{head}"
        );
        assert!(headers.contains(&"retry-after: 2"), "{head}");
        assert!(headers.contains(&"connection: close"), "{head}");
        let length = format!("content-length: {}", raw_body.len());
        assert!(headers.contains(&length.as_str()), "{head}");
        let parsed: serde_json::Value = serde_json::from_str(raw_body).unwrap();
        assert_eq!(parsed, body(rejection("abc", r)).await);
    }

    #[tokio::test]
    async fn duplicate_is_200() {
        let resp = duplicate("r1");
        assert_eq!(resp.status(), 200);
        assert_eq!(outcome_of(&resp), Outcome::Duplicate);
        assert_eq!(
            body(resp).await,
            serde_json::json!({"status": "duplicate", "request_id": "r1"})
        );
    }
}
