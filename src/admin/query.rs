//! What the listing endpoints share: query strings, times (`since`/`until`), page sizes,
//! and the answers when storage is missing or failing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde_json::json;

use super::reply;
use crate::respond::HttpResponse;
use crate::storage::StorageError;

/// Most rows one page may ask for.
pub(super) const MAX_LIMIT: i64 = 500;
/// Rows per page when the request does not say.
pub(super) const DEFAULT_LIMIT: i64 = 50;

/// A query string's pairs, percent-decoded; empty values count as absent.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn parse(query: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        )
    }

    /// The first value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// `limit`, checked: [`DEFAULT_LIMIT`] when absent, 1 to [`MAX_LIMIT`] otherwise.
    /// The error is the `detail` for [`bad_query`].
    pub(super) fn limit(&self) -> Result<i64, String> {
        match self.get("limit").map(|l| l.parse::<i64>()) {
            None => Ok(DEFAULT_LIMIT),
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(format!("limit must be 1 to {MAX_LIMIT}")),
        }
    }
}

/// A bulk endpoint's JSON object body (`{"route":..,"since":..}`); empty strings count as
/// absent, as in a query.
pub(super) struct JsonBody(serde_json::Value);

impl JsonBody {
    /// `bytes` as a JSON object; with `empty_is_object`, an empty body is `{}`. The error
    /// is the `detail` for [`bad_request`].
    pub(super) fn parse(bytes: &[u8], empty_is_object: bool) -> Result<Self, String> {
        if empty_is_object && bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(json!({})));
        }
        match serde_json::from_slice(bytes) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(JsonBody(v)),
            _ => Err("the body must be a JSON object".to_owned()),
        }
    }

    /// The string under `key`.
    pub(super) fn get(&self, key: &str) -> Option<String> {
        match &self.0[key] {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    /// The value under `key` (`Null` when absent).
    pub(super) fn value(&self, key: &str) -> &serde_json::Value {
        &self.0[key]
    }
}

/// The cursor of the next page: the last row's id when the page came back full.
pub(super) fn next_cursor(rows: usize, limit: i64, last_id: Option<&str>) -> Option<String> {
    (rows as i64 == limit).then(|| last_id.map(str::to_owned))?
}

/// `400 {"error":"bad_request","detail":..}`: a body the endpoint cannot use.
pub(super) fn bad_request(detail: String) -> HttpResponse {
    reply::json(
        StatusCode::BAD_REQUEST,
        json!({ "error": "bad_request", "detail": detail }),
    )
}

/// `400 {"error":"bad_query","detail":..}`.
pub(super) fn bad_query(detail: String) -> HttpResponse {
    reply::json(
        StatusCode::BAD_REQUEST,
        json!({ "error": "bad_query", "detail": detail }),
    )
}

/// A time from a query: RFC 3339, or a duration ago (`2h`), as Unix µs.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(s).ok().or_else(|| {
        let ago = humantime::parse_duration(s).ok()?;
        SystemTime::now().checked_sub(ago)
    })?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_micros()).ok()
}

/// The time under `key`, if given; an error names the key and the bad value.
pub(super) fn time_field(key: &str, value: Option<String>) -> Result<Option<i64>, String> {
    match value {
        None => Ok(None),
        Some(v) => parse_time(&v)
            .map(Some)
            .ok_or_else(|| format!("{key}: {v:?} is neither RFC 3339 nor a duration like \"2h\"")),
    }
}

/// Unix µs as RFC 3339.
pub(super) fn rfc3339(micros: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    humantime::format_rfc3339_micros(t).to_string()
}

/// `503 storage_unavailable` with what failed.
pub(super) fn unavailable(e: &StorageError) -> HttpResponse {
    tracing::warn!(error = %e, "admin API: storage unavailable");
    reply::json(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({ "error": "storage_unavailable", "detail": e.to_string() }),
    )
}

/// The answer while no storage is attached (a gateway embedded without one).
pub(super) fn no_storage() -> HttpResponse {
    reply::error(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_absent_and_values_are_decoded() {
        let q = Query::parse(Some("route=&reason=bad%20sig&route=acme"));
        assert_eq!(q.get("route").as_deref(), Some("acme"));
        assert_eq!(q.get("reason").as_deref(), Some("bad sig"));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn bodies_are_json_objects_and_empty_only_where_allowed() {
        let b = JsonBody::parse(br#"{"route":"acme","since":"","rate":2}"#, false).unwrap();
        assert_eq!(b.get("route").as_deref(), Some("acme"));
        assert_eq!(b.get("since"), None, "empty strings are absent");
        assert_eq!(b.get("rate"), None, "not a string");
        assert_eq!(b.value("rate"), &serde_json::json!(2));
        assert!(JsonBody::parse(b"[1]", false).is_err());
        assert!(JsonBody::parse(b"", false).is_err());
        assert!(JsonBody::parse(b" \n", true).is_ok());
    }

    #[test]
    fn a_full_page_has_a_cursor() {
        assert_eq!(next_cursor(2, 2, Some("b")).as_deref(), Some("b"));
        assert_eq!(next_cursor(1, 2, Some("a")), None);
        assert_eq!(next_cursor(0, 2, None), None);
    }

    #[test]
    fn limit_is_bounded() {
        assert_eq!(Query::parse(None).limit().ok(), Some(DEFAULT_LIMIT));
        assert_eq!(Query::parse(Some("limit=7")).limit().ok(), Some(7));
        assert!(Query::parse(Some("limit=0")).limit().is_err());
        assert!(Query::parse(Some("limit=501")).limit().is_err());
        assert!(Query::parse(Some("limit=x")).limit().is_err());
    }

    #[test]
    fn times_are_rfc3339_or_an_age() {
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000_000)
        );
        let hour_ago = parse_time("1h").unwrap();
        let now = parse_time("0s").unwrap();
        assert!((now - hour_ago - 3_600_000_000).abs() < 5_000_000);
        assert!(time_field("since", Some("yesterday".into())).is_err());
        assert_eq!(time_field("since", None), Ok(None));
    }
}
