//! Admin answers: JSON (or text) with a status, and a bounded read of a request body.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use hyper::body::Incoming;

use crate::layers::body_limit::{read_capped, ReadError};
use crate::respond::{AnswerBody, HttpResponse};

/// Largest request body an admin endpoint reads (a config file, a bulk-replay filter).
pub(crate) const MAX_ADMIN_BODY: usize = 1024 * 1024;

/// An answer with a body of the given type.
pub(crate) fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let mut resp = Response::new(AnswerBody::from(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> HttpResponse {
    reply(status, "application/json", value.to_string())
}

/// `{"error": reason}` with `status`.
pub(crate) fn error(status: StatusCode, reason: &str) -> HttpResponse {
    json(status, serde_json::json!({ "error": reason }))
}

/// The whole request body, up to [`MAX_ADMIN_BODY`]; the status and reason to answer
/// instead if it is larger or broke off.
pub(crate) async fn body(body: Incoming) -> Result<Bytes, (StatusCode, &'static str)> {
    match read_capped(body, MAX_ADMIN_BODY).await {
        Ok(bytes) => Ok(bytes),
        Err(ReadError::TooLarge) => Err((StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")),
        Err(ReadError::Broken(_)) => Err((StatusCode::BAD_REQUEST, "bad_request")),
    }
}
