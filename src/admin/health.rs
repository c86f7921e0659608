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

pub(super) async fn readyz(gateway: &Gateway) -> HttpResponse {
    let timeout = gateway.live().config().dedup.call_timeout;
    match with_timeout(timeout, gateway.store().ping()).await {
        Ok(()) => reply::json(StatusCode::OK, json!({ "status": "ready", "dedup": "ok" })),
        Err(e) => reply::json(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "not_ready",
                "dedup": "unreachable",
                "reason": format!("dedup store unreachable: {e}"),
            }),
        ),
    }
}
