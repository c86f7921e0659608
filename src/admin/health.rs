//! `GET /healthz` (the process serves), `GET /readyz` (config loaded and stores answer),
//! `GET /metrics` (Prometheus text, or OpenMetrics when asked for).

use std::time::Duration;

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

/// How long `/readyz` waits for the storage before reporting it unavailable.
const STORAGE_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Ready when the config is loaded and the dedup store answers. The storage is reported
/// too; while it is down, sync routes still answer correctly (the journal counts what it
/// loses), so it does not make the instance unready by itself.
pub(super) async fn readyz(gateway: &Gateway) -> HttpResponse {
    let timeout = gateway.live().config().dedup.call_timeout;
    let storage_ping = async {
        let s = gateway.storage()?;
        let result = match tokio::time::timeout(STORAGE_PROBE_TIMEOUT, s.ping()).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "storage did not answer within {}",
                humantime::format_duration(STORAGE_PROBE_TIMEOUT)
            )),
        };
        Some((s.backend(), result))
    };
    // Both at once, each bounded: probes commonly give up after one second.
    let (dedup, storage) =
        tokio::join!(with_timeout(timeout, gateway.store().ping()), storage_ping);
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
                json!({ "backend": backend, "status": "unavailable", "reason": e })
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
