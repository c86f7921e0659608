//! A generic events API: the first page is `url` with `{cursor}` filled in, later pages
//! follow the `next` pointer (or `Link: rel="next"`). Items are found by JSON pointers;
//! each is forwarded as a JSON document, keyed by its `id`. The cursor is the newest
//! `created` delivered, written as the API wrote it (or the id, without `created`).
//!
//! The credential goes only to the template's own origin: a `next` link elsewhere ends
//! the run instead of being followed.

use bytes::Bytes;
use http::Uri;
use serde_json::Value;

use super::api::{link_next, Api, ApiError};
use super::feed::Polled;
use super::walk::Page;
use crate::config::{CursorFormat, GenericSource};

/// The page after `resume` (a next-page URL), or the first page for `cursor`.
pub(crate) async fn page(
    api: &Api,
    source: &GenericSource,
    cursor: &str,
    resume: Option<&str>,
) -> Result<Page, ApiError> {
    let url = match resume {
        Some(next) => next.to_owned(),
        None => source.url.replace(
            "{cursor}",
            &form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>(),
        ),
    };
    let answer = api.get(&url).await?;
    let doc: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| ApiError::Unexpected(format!("{url}: the answer is not JSON: {e}")))?;
    let items = doc
        .pointer(&source.items)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::Unexpected(format!(
                "{url}: no array at items = \"json:{}\"",
                source.items
            ))
        })?;
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        let id = scalar(item.pointer(&source.id)).ok_or_else(|| {
            ApiError::Unexpected(format!("{url}: an item without id at json:{}", source.id))
        })?;
        let created_raw = match &source.created {
            Some(p) => Some(scalar(item.pointer(p)).ok_or_else(|| {
                ApiError::Unexpected(format!("{url}: item {id} has no created at json:{p}"))
            })?),
            None => None,
        };
        let created = created_raw.as_deref().and_then(unix_seconds);
        events.push(Polled {
            position: created_raw.unwrap_or_else(|| id.clone()),
            created,
            body: Bytes::from(serde_json::to_vec(item).unwrap_or_default()),
            id,
        });
    }
    let next = match &source.next {
        Some(p) => doc
            .pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        None => link_next(&answer.headers),
    };
    let next = match next {
        Some(n) => Some(same_origin(&source.url, &url, &n)?),
        None => None,
    };
    Ok(Page { events, next })
}

/// A string or a number, as text.
fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A creation time as Unix seconds: a number (seconds, or milliseconds when it is that
/// large), or an RFC 3339 string.
pub(crate) fn unix_seconds(raw: &str) -> Option<i64> {
    if let Ok(n) = raw.parse::<f64>() {
        // Past the year 5138 in seconds is milliseconds.
        let secs = if n > 1e11 { n / 1000.0 } else { n };
        return Some(secs as i64);
    }
    let t = humantime::parse_rfc3339_weak(raw).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_secs()).ok()
}

/// The cursor for a point in time, written as the source's first cursor is.
pub(crate) fn cursor_at(format: CursorFormat, secs: i64) -> String {
    match format {
        CursorFormat::Unix => secs.to_string(),
        CursorFormat::Rfc3339 => {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
            humantime::format_rfc3339_seconds(t).to_string()
        }
    }
}

/// `next` resolved against the page it came from, if it stays on the template's origin.
fn same_origin(template: &str, page: &str, next: &str) -> Result<String, ApiError> {
    let origin = |u: &str| -> Option<(String, String)> {
        let u: Uri = u.replace("{cursor}", "0").parse().ok()?;
        Some((
            u.scheme_str()?.to_owned(),
            u.authority()?.as_str().to_owned(),
        ))
    };
    let absolute = if next.starts_with('/') {
        let (scheme, authority) = origin(page)
            .ok_or_else(|| ApiError::Unexpected(format!("{page}: not an absolute URL")))?;
        format!("{scheme}://{authority}{next}")
    } else {
        next.to_owned()
    };
    if origin(&absolute).is_some() && origin(&absolute) == origin(template) {
        Ok(absolute)
    } else {
        Err(ApiError::Unexpected(format!(
            "the next page {next:?} is not on the url's own origin; not following it with the credentials"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_times_are_read_in_the_common_forms() {
        assert_eq!(unix_seconds("1800000000"), Some(1_800_000_000));
        assert_eq!(unix_seconds("1800000000123"), Some(1_800_000_000));
        assert_eq!(unix_seconds("2027-01-15T08:00:00Z"), Some(1_800_000_000));
        assert_eq!(unix_seconds("yesterday"), None);
        assert_eq!(
            cursor_at(CursorFormat::Rfc3339, 1_800_000_000),
            "2027-01-15T08:00:00Z"
        );
        assert_eq!(cursor_at(CursorFormat::Unix, 5), "5");
    }

    #[test]
    fn next_pages_stay_on_the_templates_origin() {
        let t = "https://api.example.com/events?since={cursor}";
        let page = "https://api.example.com/events?since=0";
        assert_eq!(
            same_origin(t, page, "/events?after=9").unwrap(),
            "https://api.example.com/events?after=9"
        );
        assert!(same_origin(t, page, "https://api.example.com/e?x=1").is_ok());
        assert!(same_origin(t, page, "https://evil.example/e").is_err());
        assert!(same_origin(t, page, "http://api.example.com/e").is_err());
    }
}
