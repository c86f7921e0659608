//! Reconcile over the admin API (CONTRACT §11):
//!
//! | endpoint | |
//! |---|---|
//! | `GET /reconcile` | per route: source, last run, result, cursor, lag, recovered count |
//! | `POST /reconcile/{route}/run` | runs it now and answers with the run's summary |
//!
//! A run-now waits for a run already in progress on this instance, then runs; if another
//! instance holds the route's lease it is `409 reconcile_running`. A run that takes longer
//! than the answer may wait is answered `202 {"status":"running"}` and goes on.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};

use super::query::{no_storage, rfc3339, unavailable};
use super::reply;
use crate::gateway::Gateway;
use crate::reconcile::NotRun;
use crate::respond::HttpResponse;

/// How long `POST /reconcile/{route}/run` waits for the run before answering `202`.
const RUN_ANSWER_WAIT: Duration = Duration::from_secs(30);

/// `GET /reconcile`.
pub(super) async fn overview(gateway: &Gateway) -> HttpResponse {
    let Some(storage) = gateway.storage() else {
        return no_storage();
    };
    let states = match storage.reconcile_states().await {
        Ok(s) => s,
        Err(e) => return unavailable(&e),
    };
    let live = gateway.live();
    let now_secs = gateway.shared.clock.unix_now() as i64;
    let now_us = crate::reconcile::now_micros();
    let routes: Vec<Value> = live
        .routes
        .iter()
        .filter_map(|route| {
            let config = route.config.reconcile.as_ref()?;
            let source = config.source.name();
            // A row from another source (the config changed) is not this route's state.
            let state = states
                .iter()
                .find(|s| s.route == route.config.name && s.source == source);
            let position = state.map(|s| &s.position);
            Some(json!({
                "route": route.config.name,
                "source": source,
                "every_seconds": config.every.as_secs(),
                "last_run": state.and_then(|s| s.last_run).map(rfc3339),
                "result": state.and_then(|s| s.result.clone()),
                "error": state.and_then(|s| s.error.clone()),
                "cursor": position.and_then(|p| p.cursor.clone()),
                "lag_seconds": position
                    .and_then(|p| p.newest_seen)
                    .map(|newest| (now_secs - newest).max(0)),
                "recovered": state.map_or(0, |s| s.recovered),
                "running": state
                    .and_then(|s| s.lease.as_ref())
                    .is_some_and(|(_, until)| *until > now_us),
            }))
        })
        .collect();
    reply::json(StatusCode::OK, json!({ "routes": routes }))
}

/// `POST /reconcile/{route}/run`.
pub(super) async fn run(gateway: &Arc<Gateway>, route: &str) -> HttpResponse {
    let gw = gateway.clone();
    let name = route.to_owned();
    let task = tokio::spawn(async move { gw.reconcile_route(&name, true).await });
    let result = match tokio::time::timeout(RUN_ANSWER_WAIT, task).await {
        Err(_) => {
            return reply::json(
                StatusCode::ACCEPTED,
                json!({ "status": "running", "route": route }),
            )
        }
        Ok(Err(_)) => return reply::error(StatusCode::INTERNAL_SERVER_ERROR, "run_failed"),
        Ok(Ok(result)) => result,
    };
    match result {
        Ok(summary) => reply::json(
            StatusCode::OK,
            serde_json::to_value(&summary).unwrap_or(Value::Null),
        ),
        Err(NotRun::NoRoute(_)) => reply::error(StatusCode::NOT_FOUND, "not_found"),
        Err(NotRun::NoStorage) => no_storage(),
        Err(NotRun::Storage(e)) => unavailable(&e),
        Err(e @ (NotRun::Busy { .. } | NotRun::Running(_))) => reply::json(
            StatusCode::CONFLICT,
            json!({ "error": "reconcile_running", "detail": e.to_string() }),
        ),
    }
}
