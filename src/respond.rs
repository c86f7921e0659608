//! The one place gateway-made answers are built.
//!
//! Rejections get `{"error":"<reason>","request_id":"<id>"}`, duplicates
//! `{"status":"duplicate","request_id":"<id>"}`; both are `application/json`. The
//! [`Outcome`] rides along in the response extensions so the server can count and log it
//! without re-deriving anything. Nothing here sees secrets or which check nearly passed.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::context::Outcome;
use crate::error::Rejection;

/// The response type of every route stack.
pub type HttpResponse = Response<Full<Bytes>>;

fn json(status: StatusCode, body: String, outcome: Outcome) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
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

/// The answer for a rejection.
pub fn rejection(request_id: &str, rejection: Rejection) -> HttpResponse {
    let body = format!(
        "{{\"error\":\"{}\",\"request_id\":{}}}",
        rejection.reason(),
        quoted(request_id)
    );
    let mut resp = json(rejection.status(), body, Outcome::Rejected(rejection));
    if let Some(secs) = rejection.retry_after_secs() {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The answer for an id that was already delivered: 200 so the provider stops retrying.
pub fn duplicate(request_id: &str) -> HttpResponse {
    let body = format!(
        "{{\"status\":\"duplicate\",\"request_id\":{}}}",
        quoted(request_id)
    );
    json(StatusCode::OK, body, Outcome::Duplicate)
}

/// A provider handshake answered by the gateway itself (counted as outcome `handshake`).
pub fn handshake(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let body = body.into();
    let has_body = !body.is_empty();
    let mut resp = Response::new(Full::new(body));
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
pub fn outcome_of(resp: &HttpResponse) -> Outcome {
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
