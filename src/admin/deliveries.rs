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
//! [`MAX_LIMIT`](super::query::MAX_LIMIT), [`DEFAULT_LIMIT`](super::query::DEFAULT_LIMIT) by default. The same JSON feeds the CLI and the page.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::Engine;
use http::StatusCode;
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::query::{
    bad_query, bad_request, next_cursor, no_storage, rfc3339, time_field, unavailable, JsonBody,
    Query,
};
use super::reply;
use crate::gateway::Gateway;
use crate::journal::replay::{self, JobSpec, Progress, ReplayError, DEFAULT_RATE};
use crate::respond::HttpResponse;
use crate::storage::journal::{EntryFilter, ReplayRecord, StoredEntry};

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
    // Shadow mode: forwarded, but this is what hookwall would have answered.
    if e.would_reject.is_some() {
        v["would_reject"] = json!(e.would_reject);
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
    Ok(EntryFilter {
        route: get("route"),
        outcome: get("outcome"),
        reason: get("reason"),
        dedup_id: get("dedup_id"),
        since: time_field("since", get("since"))?,
        until: time_field("until", get("until"))?,
        before: get("before"),
    })
}

/// `GET /deliveries`.
pub(super) async fn list(gateway: &Gateway, query: Option<&str>) -> HttpResponse {
    let Some(storage) = gateway.storage().cloned() else {
        return no_storage();
    };
    let query = Query::parse(query);
    let filter = match filter_from(|k| query.get(k)) {
        Ok(f) => f,
        Err(detail) => return bad_query(detail),
    };
    let limit = match query.limit() {
        Ok(n) => n,
        Err(detail) => return bad_query(detail),
    };
    match storage.list_entries(&filter, limit).await {
        Ok(entries) => {
            let next = next_cursor(entries.len(), limit, entries.last().map(|e| e.id.as_str()));
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
    let reverify = matches!(
        Query::parse(query).get("reverify").as_deref(),
        Some("true" | "1")
    );
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
    let spec = match JsonBody::parse(&bytes, false) {
        Ok(spec) => spec,
        Err(detail) => return bad_request(detail),
    };
    let filter = match filter_from(|k| spec.get(k)) {
        Ok(f) => f,
        Err(detail) => return bad_request(detail),
    };
    let job = JobSpec {
        filter,
        reverify: spec.value("reverify").as_bool().unwrap_or(false),
        dry_run: spec.value("dry_run").as_bool().unwrap_or(false),
        rate: spec.value("rate").as_f64().unwrap_or(DEFAULT_RATE),
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
