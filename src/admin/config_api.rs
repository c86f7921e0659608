//! The config as it runs: `GET /routes` (the live route table, secrets redacted, and
//! what the last reload did),
//! `POST /reload` (re-read the file; apply it whole or refuse it whole) and
//! `POST /config/check` (what a reload of the posted file would do, for
//! `hookwall check --against-running`).

use http::StatusCode;
use hyper::body::Incoming;
use serde_json::json;

use super::reply;
use crate::config::units::format_size;
use crate::config::{RateLimitBy, RouteConfig};
use crate::gateway::{Gateway, ReloadError};
use crate::respond::HttpResponse;
use crate::stack::checks;

fn duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// One route as JSON, in the units the config file uses, secrets redacted.
fn route_json(cfg: &RouteConfig) -> serde_json::Value {
    let dedup = cfg
        .dedup
        .as_ref()
        .map(|d| json!({ "key": d.source.to_string(), "required": d.required }));
    let rate_limit = cfg.rate_limit.as_ref().map(|r| {
        json!({
            "per_second": 1.0 / r.period.as_secs_f64(),
            "burst": r.burst.get(),
            "by": match r.by { RateLimitBy::Route => "route", RateLimitBy::Ip => "ip" },
            "shared": r.shared,
        })
    });
    let delivery = match cfg.delivery.buffered() {
        None => json!("sync"),
        Some(b) => json!({
            "mode": "buffered",
            "targets": b.targets.iter().map(|t| json!({
                "name": t.name,
                "upstream": t.upstream.to_string(),
                "events": t.events,
            })).collect::<Vec<_>>(),
            "upstream_concurrency": b.upstream_concurrency,
            "max_queued": b.max_queued,
            "retry": {
                "initial": duration(b.retry.initial),
                "max_delay": duration(b.retry.max_delay),
                "multiplier": b.retry.multiplier,
                "max_attempts": b.retry.max_attempts,
                "max_age": duration(b.retry.max_age),
            },
        }),
    };
    json!({
        "name": cfg.name,
        "path": cfg.path,
        "methods": cfg.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "provider": cfg.provider,
        "upstream": cfg.upstream.to_string(),
        "checks": checks(cfg),
        "allow_ips": cfg
            .allow_lists
            .iter()
            .map(|l| format!("@{l}"))
            .chain(cfg.allow_ips.iter().map(|n| n.to_string()))
            .collect::<Vec<_>>(),
        "rate_limit": rate_limit,
        "dedup": dedup,
        "tolerance": cfg.window.map(|w| duration(w.past)),
        "future_tolerance": cfg.window.map(|w| duration(w.future)),
        "timeout": duration(cfg.timeout),
        "max_body": format_size(cfg.max_body),
        "secrets": cfg.secret_labels.iter().map(|l| json!({ "id": l, "value": "[redacted]" })).collect::<Vec<_>>(),
        "delivery": delivery,
        "event": cfg.event.as_ref().map(ToString::to_string),
        "events": cfg.events,
        "enforce": cfg.enforce,
        // How many keys sign forwarded deliveries (2 during a rotation); never the keys.
        "attest": cfg.attest.as_ref().map(|k| json!({ "keys": k.len() })),
    })
}

pub(super) fn routes(gateway: &Gateway) -> HttpResponse {
    let live = gateway.live();
    let list: Vec<_> = live
        .routes()
        .in_order()
        .iter()
        .map(|r| route_json(&r.config))
        .collect();
    let last_reload = gateway.last_reload().map(|r| {
        json!({
            "at": humantime::format_rfc3339_seconds(r.at).to_string(),
            "result": if r.ok { "ok" } else { "error" },
            "details": r.details,
        })
    });
    reply::json(
        StatusCode::OK,
        json!({ "routes": list, "last_reload": last_reload }),
    )
}

/// A refused reload or check: 400 with every problem listed.
fn refused(e: &ReloadError) -> HttpResponse {
    let error = match e {
        ReloadError::Invalid(_) | ReloadError::Build(_) => "invalid_config",
        ReloadError::RestartRequired(_) => "restart_required",
    };
    let mut body = json!({ "error": error, "details": e.details() });
    if let ReloadError::RestartRequired(changes) = e {
        body["restart_required"] = changes
            .iter()
            .map(
                |c| json!({ "setting": c.setting, "running": c.running, "requested": c.requested }),
            )
            .collect();
    }
    reply::json(StatusCode::BAD_REQUEST, body)
}

pub(super) fn reload(gateway: &Gateway) -> HttpResponse {
    match gateway.reload() {
        Ok(()) => reply::json(StatusCode::OK, json!({ "result": "ok" })),
        Err(e) => refused(&e),
    }
}

pub(super) async fn check(gateway: &Gateway, body: Incoming) -> HttpResponse {
    let bytes = match reply::body(body).await {
        Ok(b) => b,
        Err((status, reason)) => return reply::error(status, reason),
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return reply::json(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_config", "details": ["the config is not UTF-8 text"] }),
        );
    };
    match gateway.check_candidate(text) {
        Ok(()) => reply::json(StatusCode::OK, json!({ "result": "ok" })),
        Err(e) => refused(&e),
    }
}
