//! The queue and its dead letters over the admin API (CONTRACT §10):
//!
//! | endpoint | |
//! |---|---|
//! | `GET /queue` | per route and target: queued, in flight, dead-lettered, oldest age |
//! | `GET /dead-letters?route=&since=&until=&limit=&before=` | newest first, `{"dead_letters":[...],"next":"<cursor>"}` |
//! | `POST /dead-letters/{id}/retry` | back to the queue, attempts reset |
//! | `POST /dead-letters/retry` | bulk, body `{"route","since","until"}` → `{"requeued":N}` |
//! | `DELETE /dead-letters/{id}` | discards it; the journal keeps a `discarded` entry |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Method, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::query::{
    bad_query, bad_request, next_cursor, no_storage, rfc3339, time_field, unavailable, JsonBody,
    Query,
};
use super::reply;
use crate::context::Outcome;
use crate::gateway::Gateway;
use crate::journal::Draft;
use crate::queue::now_micros;
use crate::respond::HttpResponse;
use crate::storage::queue::{DeadLetter, DeadLetterFilter};

/// `GET /queue`.
pub(super) async fn overview(gateway: &Gateway) -> HttpResponse {
    let Some(storage) = gateway.storage() else {
        return no_storage();
    };
    let now = now_micros();
    match storage.queue_stats(now).await {
        Ok(stats) => {
            let routes: Vec<Value> = stats
                .iter()
                .map(|s| {
                    let oldest = s
                        .oldest_received_at
                        .map_or(0.0, |t| (now - t).max(0) as f64 / 1e6);
                    json!({
                        "route": s.route,
                        "target": s.target,
                        "queued": s.queued,
                        "in_flight": s.in_flight,
                        "dead_lettered": s.dead_lettered,
                        "oldest_seconds": oldest,
                    })
                })
                .collect();
            reply::json(StatusCode::OK, json!({ "routes": routes }))
        }
        Err(e) => unavailable(&e),
    }
}

fn dead_letter_json(d: &DeadLetter) -> Value {
    json!({
        "id": d.id,
        "route": d.route,
        "target": d.target,
        "delivery_id": d.delivery_id,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "reason": d.reason,
        "dead_lettered_at": rfc3339(d.dead_at),
        "received_at": rfc3339(d.received_at),
    })
}

/// The dead letters a query (or a bulk retry's body) picks; an error names the bad field.
fn filter_from(get: impl Fn(&str) -> Option<String>) -> Result<DeadLetterFilter, String> {
    Ok(DeadLetterFilter {
        route: get("route"),
        since: time_field("since", get("since"))?,
        until: time_field("until", get("until"))?,
        before: get("before"),
    })
}

/// `GET /dead-letters`.
pub(super) async fn list(gateway: &Gateway, query: Option<&str>) -> HttpResponse {
    let Some(storage) = gateway.storage() else {
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
    match storage.dead_letters(&filter, limit).await {
        Ok(dead) => {
            let next = next_cursor(dead.len(), limit, dead.last().map(|d| d.id.as_str()));
            let list: Vec<Value> = dead.iter().map(dead_letter_json).collect();
            reply::json(
                StatusCode::OK,
                json!({ "dead_letters": list, "next": next }),
            )
        }
        Err(e) => unavailable(&e),
    }
}

/// `POST /dead-letters/{id}/retry`.
pub(super) async fn retry_one(gateway: &Gateway, id: &str) -> HttpResponse {
    let Some(storage) = gateway.storage() else {
        return no_storage();
    };
    match storage
        .requeue_dead(Some(id), &DeadLetterFilter::default(), now_micros())
        .await
    {
        Ok(0) => reply::error(StatusCode::NOT_FOUND, "not_found"),
        Ok(n) => {
            requeued(gateway, n);
            reply::json(StatusCode::OK, json!({ "requeued": n }))
        }
        Err(e) => unavailable(&e),
    }
}

/// `POST /dead-letters/retry`: every dead letter the body's filter matches. An empty
/// object retries them all.
pub(super) async fn retry_bulk(gateway: &Gateway, body: Incoming) -> HttpResponse {
    let Some(storage) = gateway.storage() else {
        return no_storage();
    };
    let bytes = match reply::body(body).await {
        Ok(b) => b,
        Err((status, reason)) => return reply::error(status, reason),
    };
    // An empty body means no filter, like `{}`.
    let spec = match JsonBody::parse(&bytes, true) {
        Ok(spec) => spec,
        Err(detail) => return bad_request(detail),
    };
    let filter = match filter_from(|k| spec.get(k)) {
        Ok(f) => DeadLetterFilter { before: None, ..f },
        Err(detail) => return bad_request(detail),
    };
    match storage.requeue_dead(None, &filter, now_micros()).await {
        Ok(n) => {
            requeued(gateway, n);
            reply::json(StatusCode::OK, json!({ "requeued": n }))
        }
        Err(e) => unavailable(&e),
    }
}

fn requeued(gateway: &Gateway, n: u64) {
    tracing::info!(requeued = n, "dead letters put back in the queue");
    if let Some(queue) = gateway.queue() {
        queue.requeued();
    }
}

/// `DELETE /dead-letters/{id}`.
pub(super) async fn discard(gateway: &Gateway, id: &str, peer: SocketAddr) -> HttpResponse {
    let Some(storage) = gateway.storage() else {
        return no_storage();
    };
    match storage.discard_dead(id).await {
        Ok(Some(dead)) => {
            tracing::info!(
                id = dead.id,
                route = dead.route,
                target = dead.target,
                delivery_id = dead.delivery_id.as_deref(),
                attempts = dead.attempts,
                peer = %peer.ip(),
                "dead letter discarded"
            );
            journal_discard(gateway, &dead, peer);
            reply::json(
                StatusCode::OK,
                json!({ "discarded": dead_letter_json(&dead) }),
            )
        }
        Ok(None) => reply::error(StatusCode::NOT_FOUND, "not_found"),
        Err(e) => unavailable(&e),
    }
}

/// A `discarded` journal entry, so the delivery's history (search by its delivery id)
/// ends with who dropped it. Skipped when the route is gone or not journaled.
fn journal_discard(gateway: &Gateway, dead: &DeadLetter, peer: SocketAddr) {
    let Some(journal) = gateway.journal() else {
        return;
    };
    let live = gateway.live();
    let Some(route) = live.routes().by_name(&dead.route).cloned() else {
        return;
    };
    if route.config.journal.is_none() {
        return;
    }
    journal.submit(Draft {
        received_at: SystemTime::now(),
        request_id: dead.id.as_str().into(),
        path: route.config.path.clone(),
        route,
        live: live.clone(),
        method: Method::DELETE,
        client_ip: peer.ip(),
        headers: Some(HeaderMap::new()),
        body: None,
        outcome: Outcome::Discarded,
        status: StatusCode::OK.as_u16(),
        upstream_ms: None,
        dedup_id: dead.delivery_id.as_deref().map(Arc::from),
        key: None,
        refused_headers: None,
        store: true,
        attempt: Some(dead.attempts),
        target: Some(dead.target.clone()),
        polled: false,
        would_reject: None,
        unverified: false,
    });
}
