//! The journal over the admin API (CONTRACT §9):
//!
//! | endpoint | |
//! |---|---|
//! | `GET /deliveries?route=&outcome=&reason=&dedup_id=&since=&until=&limit=&before=` | newest first, `{"deliveries":[...],"next":"<cursor>"}` |
//! | `GET /deliveries/{id}` | one whole entry, with its replays |
//! | `POST /deliveries/{id}/replay[?reverify=true]` | `{"replay_id","upstream_status"}` |
//! | `POST /replays` | a bulk replay job: `202 {"job","matched"}` |
//! | `GET /replays/{job}` | its progress |
//! | `DELETE /replays/{job}` | cancels it: no more replays are sent |
//!
//! `since`/`until` take RFC 3339 or a duration ago (`"2h"`); `limit` is at most
//! [`MAX_LIMIT`], [`DEFAULT_LIMIT`] by default. The same JSON feeds the CLI and the page.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use http::StatusCode;
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::reply;
use crate::gateway::Gateway;
use crate::journal::replay::{self, JobSpec, Progress, ReplayError, DEFAULT_RATE};
use crate::respond::HttpResponse;
use crate::storage::journal::{EntryFilter, ReplayRecord, StoredEntry};
use crate::storage::StorageError;

/// Most entries one page may ask for.
pub(super) const MAX_LIMIT: i64 = 500;
/// Entries per page when the request does not say.
pub(super) const DEFAULT_LIMIT: i64 = 50;

fn rfc3339(micros: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    humantime::format_rfc3339_micros(t).to_string()
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

fn unavailable(e: &StorageError) -> HttpResponse {
    tracing::warn!(error = %e, "admin API: storage unavailable");
    reply::json(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({ "error": "storage_unavailable", "detail": e.to_string() }),
    )
}

/// The answer while no storage is attached (a gateway embedded without one).
fn no_storage() -> HttpResponse {
    reply::error(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
}

/// An entry as JSON; `whole` adds headers and body.
fn entry_json(e: &StoredEntry, whole: bool, replays: &[ReplayRecord]) -> Value {
    let mut v = json!({
        "id": e.id,
        "request_id": e.request_id,
        "received_at": rfc3339(e.received_at),
        "route": e.route,
        "method": e.method,
        "path": e.path,
        "client_ip": e.client_ip,
        "body_size": e.body_size,
        "body_sha256": e.body_sha256,
        "truncated": e.truncated,
        "redacted": e.body_redacted,
        "outcome": e.outcome,
        "reason": e.reason,
        "status": e.status,
        "upstream_status": e.upstream_status,
        "upstream_ms": e.upstream_ms,
        "dedup_id": e.dedup_id,
        "key_id": e.key_id,
        "diagnosis": e.diagnosis,
        "verified": e.verified,
    });
    // A buffered route's delivery attempt: which one, to which target.
    if e.attempt.is_some() || e.target.is_some() {
        v["attempt"] = json!(e.attempt);
        v["target"] = json!(e.target);
    }
    if whole {
        v["headers"] = json!(e
            .headers
            .iter()
            .map(|(n, val)| [n, val])
            .collect::<Vec<_>>());
        v["body_base64"] = json!(e
            .body
            .as_ref()
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b)));
        v["body_text"] = json!(e.body.as_ref().and_then(|b| std::str::from_utf8(b).ok()));
        v["replays"] = json!(replays
            .iter()
            .map(|r| json!({
                "id": r.id,
                "at": rfc3339(r.at),
                "reverified": r.reverified,
                "upstream_status": r.upstream_status,
                "error": r.error,
            }))
            .collect::<Vec<_>>());
    }
    v
}

/// The filter a query (or a bulk replay's body) asks for; an error names the bad field.
fn filter_from(get: impl Fn(&str) -> Option<String>) -> Result<EntryFilter, String> {
    let time = |key: &str| -> Result<Option<i64>, String> {
        match get(key) {
            None => Ok(None),
            Some(v) => parse_time(&v).map(Some).ok_or_else(|| {
                format!("{key}: {v:?} is neither RFC 3339 nor a duration like \"2h\"")
            }),
        }
    };
    Ok(EntryFilter {
        route: get("route"),
        outcome: get("outcome"),
        reason: get("reason"),
        dedup_id: get("dedup_id"),
        since: time("since")?,
        until: time("until")?,
        before: get("before"),
    })
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// `GET /deliveries`.
pub(super) async fn list(gateway: &Gateway, query: Option<&str>) -> HttpResponse {
    let Some(storage) = gateway.storage().cloned() else {
        return no_storage();
    };
    let pairs = query_pairs(query);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let filter = match filter_from(get) {
        Ok(f) => f,
        Err(detail) => {
            return reply::json(
                StatusCode::BAD_REQUEST,
                json!({ "error": "bad_query", "detail": detail }),
            )
        }
    };
    let limit = match get("limit").map(|l| l.parse::<i64>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return reply::json(
                StatusCode::BAD_REQUEST,
                json!({ "error": "bad_query", "detail": format!("limit must be 1 to {MAX_LIMIT}") }),
            )
        }
    };
    match storage.list_entries(&filter, limit).await {
        Ok(entries) => {
            let next = (entries.len() as i64 == limit)
                .then(|| entries.last().map(|e| e.id.clone()))
                .flatten();
            let list: Vec<Value> = entries.iter().map(|e| entry_json(e, false, &[])).collect();
            reply::json(StatusCode::OK, json!({ "deliveries": list, "next": next }))
        }
        Err(e) => unavailable(&e),
    }
}

/// `GET /deliveries/{id}`.
pub(super) async fn show(gateway: &Gateway, id: &str) -> HttpResponse {
    let Some(storage) = gateway.storage().cloned() else {
        return no_storage();
    };
    let entry = match storage.entry(id).await {
        Ok(Some(e)) => e,
        Ok(None) => return reply::error(StatusCode::NOT_FOUND, "not_found"),
        Err(e) => return unavailable(&e),
    };
    match storage.replays_of(id).await {
        Ok(replays) => reply::json(StatusCode::OK, entry_json(&entry, true, &replays)),
        Err(e) => unavailable(&e),
    }
}

/// `POST /deliveries/{id}/replay`.
pub(super) async fn replay_one(gateway: &Gateway, id: &str, query: Option<&str>) -> HttpResponse {
    let Some(storage) = gateway.storage().cloned() else {
        return no_storage();
    };
    let pairs = query_pairs(query);
    let reverify = pairs
        .iter()
        .any(|(k, v)| k == "reverify" && (v == "true" || v == "1"));
    match replay::replay(gateway, &storage, id, reverify).await {
        Ok(r) => reply::json(
            StatusCode::OK,
            json!({ "replay_id": r.replay_id, "upstream_status": r.upstream_status, "error": r.error }),
        ),
        Err(ReplayError::Storage(e)) => unavailable(&e),
        Err(e) => {
            let status = match e {
                ReplayError::NotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            let mut body = json!({ "error": e.code(), "detail": e.to_string() });
            if let ReplayError::ReverifyFailed(reason) = e {
                body["reason"] = json!(reason);
            }
            reply::json(status, body)
        }
    }
}

/// `POST /replays`.
pub(super) async fn replay_bulk(gateway: Arc<Gateway>, body: Incoming) -> HttpResponse {
    let Some(storage) = gateway.storage().cloned() else {
        return no_storage();
    };
    let bytes = match reply::body(body).await {
        Ok(b) => b,
        Err((status, reason)) => return reply::error(status, reason),
    };
    let spec: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return reply::json(
                StatusCode::BAD_REQUEST,
                json!({ "error": "bad_request", "detail": "the body must be a JSON object" }),
            )
        }
    };
    let get = |k: &str| match &spec[k] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let filter = match filter_from(get) {
        Ok(f) => f,
        Err(detail) => {
            return reply::json(
                StatusCode::BAD_REQUEST,
                json!({ "error": "bad_request", "detail": detail }),
            )
        }
    };
    let job = JobSpec {
        filter,
        reverify: spec["reverify"].as_bool().unwrap_or(false),
        dry_run: spec["dry_run"].as_bool().unwrap_or(false),
        rate: spec["rate"].as_f64().unwrap_or(DEFAULT_RATE),
    };
    let jobs = &gateway.replay_jobs;
    match jobs.start(gateway.clone(), storage, job).await {
        Ok((id, matched)) => reply::json(
            StatusCode::ACCEPTED,
            json!({ "job": id, "matched": matched }),
        ),
        Err(e) => unavailable(&e),
    }
}

/// `GET /replays/{job}`.
pub(super) fn job(gateway: &Gateway, id: &str) -> HttpResponse {
    match gateway.replay_jobs.get(id) {
        Some(p) => reply::json(StatusCode::OK, progress_json(id, &p)),
        None => reply::error(StatusCode::NOT_FOUND, "not_found"),
    }
}

/// `DELETE /replays/{job}`: sends no more of the job's replays (the one in flight
/// finishes); answers its progress.
pub(super) fn cancel_job(gateway: &Gateway, id: &str) -> HttpResponse {
    match gateway.replay_jobs.get(id) {
        Some(p) => {
            if !p.done.load(Ordering::Relaxed) {
                p.cancelled.store(true, Ordering::Relaxed);
            }
            reply::json(StatusCode::OK, progress_json(id, &p))
        }
        None => reply::error(StatusCode::NOT_FOUND, "not_found"),
    }
}

fn progress_json(id: &str, p: &Progress) -> Value {
    json!({
        "job": id,
        "matched": p.matched.load(Ordering::Relaxed),
        "sent": p.sent.load(Ordering::Relaxed),
        "succeeded": p.succeeded.load(Ordering::Relaxed),
        "failed": p.failed.load(Ordering::Relaxed),
        "done": p.done.load(Ordering::Relaxed),
        "cancelled": p.cancelled.load(Ordering::Relaxed),
    })
}
