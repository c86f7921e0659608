//! `GET /healthz` (the process serves), `GET /readyz` (config loaded and stores answer),
//! `GET /metrics` (Prometheus text, or OpenMetrics when asked for).

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::reply;
use crate::dedup::with_timeout;
use crate::gateway::Gateway;
use crate::respond::HttpResponse;

pub(super) fn healthz() -> HttpResponse {
    reply::json(StatusCode::OK, json!({ "status": "ok" }))
}

fn accepts_openmetrics<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

/// OpenMetrics for clients that ask for it (Prometheus does), the classic text format for
/// everyone else.
pub(super) fn metrics(gateway: &Gateway, req: &Request<Incoming>) -> HttpResponse {
    if let Some(n) = gateway.store().entries() {
        gateway
            .metrics()
            .dedup_entries
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    if accepts_openmetrics(req) {
        reply::reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            gateway.metrics().encode(),
        )
    } else {
        reply::reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            gateway.metrics().encode_prometheus(),
        )
    }
}

/// Ready when the config is loaded and the dedup store answers. The storage is reported
/// too; while it is down, sync routes still answer correctly (the journal counts what it
/// loses), so it does not make the instance unready by itself.
pub(super) async fn readyz(gateway: &Gateway) -> HttpResponse {
    let timeout = gateway.live().config().dedup.call_timeout;
    let dedup = with_timeout(timeout, gateway.store().ping()).await;
    let storage = match gateway.storage() {
        None => None,
        Some(s) => Some((s.backend(), s.ping().await)),
    };
    let mut body = match &dedup {
        Ok(()) => json!({ "status": "ready", "dedup": "ok" }),
        Err(e) => json!({
            "status": "not_ready",
            "dedup": "unreachable",
            "reason": format!("dedup store unreachable: {e}"),
        }),
    };
    if let Some((backend, result)) = storage {
        body["storage"] = match result {
            Ok(()) => json!({ "backend": backend, "status": "ok" }),
            Err(e) => {
                json!({ "backend": backend, "status": "unavailable", "reason": e.to_string() })
            }
        };
    }
    let status = if dedup.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    reply::json(status, body)
}
