//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/routes`, `POST /reload`.
//!
//! With `[admin] token` set, every endpoint but `/healthz` and `/metrics` needs
//! `Authorization: Bearer <token>` (compared in constant time). Without a token,
//! `POST /reload` answers only loopback peers. Nothing here ever prints a secret.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::{DedupSource, RateLimitBy, RouteConfig};
use crate::dedup::with_timeout;
use crate::respond::HttpResponse;
use crate::server::{Gateway, ReloadError};
use crate::stack::checks;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_reply(status: StatusCode, value: serde_json::Value) -> HttpResponse {
    reply(status, "application/json", value.to_string())
}

fn accepts_openmetrics(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

/// Whether the request carries the admin token (or none is configured).
fn authorized(gateway: &Gateway, req: &Request<Incoming>) -> bool {
    let routes = gateway.routes();
    let Some(token) = &routes.config.admin.token else {
        return true;
    };
    // The scheme name is case-insensitive (RFC 9110 §11.1); the token is not.
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| {
            let v = v.as_bytes();
            let (scheme, rest) = v.split_at_checked(7)?;
            scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
        })
        .is_some_and(|presented| token.matches(presented.trim_ascii()))
}

/// The live route table as JSON, secrets redacted.
fn route_json(cfg: &RouteConfig) -> serde_json::Value {
    let dedup = cfg.dedup.as_ref().map(|d| {
        let key = match &d.source {
            DedupSource::Header(h) => format!("header:{h}"),
            DedupSource::AnyHeader(hs) => format!(
                "header:{}",
                hs.iter().map(|h| h.as_str()).collect::<Vec<_>>().join("|")
            ),
            DedupSource::JsonPointer(p) => format!("json:{p}"),
            DedupSource::BodySha256 => "body-sha256".to_owned(),
        };
        json!({ "key": key, "required": d.required })
    });
    let rate_limit = cfg.rate_limit.as_ref().map(|r| {
        json!({
            "per_second": 1.0 / r.period.as_secs_f64(),
            "burst": r.burst.get(),
            "by": match r.by { RateLimitBy::Route => "route", RateLimitBy::Ip => "ip" },
        })
    });
    json!({
        "name": cfg.name,
        "path": cfg.path,
        "methods": cfg.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "provider": cfg.provider,
        "upstream": cfg.upstream.to_string(),
        "checks": checks(cfg),
        "allow_ips": cfg.allow_ips.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "rate_limit": rate_limit,
        "dedup": dedup,
        "tolerance": cfg.window.map(|w| humantime::format_duration(w.past).to_string()),
        "future_tolerance": cfg.window.map(|w| humantime::format_duration(w.future).to_string()),
        "timeout": humantime::format_duration(cfg.timeout).to_string(),
        "max_body": cfg.max_body,
        "secrets": cfg.secret_labels.iter().map(|l| json!({ "id": l, "value": "[redacted]" })).collect::<Vec<_>>(),
    })
}

async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
    let path = req.uri().path();
    let open = matches!(path, "/healthz" | "/metrics");
    if !open && !authorized(&gateway, &req) {
        return json_reply(StatusCode::UNAUTHORIZED, json!({ "error": "unauthorized" }));
    }
    match (req.method(), path) {
        (&Method::GET, "/healthz") => json_reply(StatusCode::OK, json!({ "status": "ok" })),
        // OpenMetrics for clients that ask for it (Prometheus does), the classic text
        // format for everyone else.
        (&Method::GET, "/metrics") if accepts_openmetrics(&req) => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            gateway.metrics().encode(),
        ),
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            gateway.metrics().encode_prometheus(),
        ),
        (&Method::GET, "/readyz") => {
            let timeout = gateway.routes().config.dedup.call_timeout;
            match with_timeout(timeout, gateway.store().ping()).await {
                Ok(()) => json_reply(StatusCode::OK, json!({ "status": "ready" })),
                Err(e) => json_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "status": "not_ready", "reason": format!("dedup store unreachable: {e}") }),
                ),
            }
        }
        (&Method::GET, "/routes") => {
            let routes = gateway.routes();
            let list: Vec<_> = routes
                .in_order()
                .iter()
                .map(|r| route_json(&r.config))
                .collect();
            json_reply(StatusCode::OK, json!({ "routes": list }))
        }
        (&Method::POST, "/reload") => {
            let has_token = gateway.routes().config.admin.token.is_some();
            if !has_token && !peer.ip().is_loopback() {
                return json_reply(
                    StatusCode::FORBIDDEN,
                    json!({ "error": "reload from a non-loopback peer needs [admin] token" }),
                );
            }
            match gateway.reload() {
                Ok(()) => json_reply(StatusCode::OK, json!({ "result": "ok" })),
                Err(ReloadError::Invalid(e)) => json_reply(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "invalid_config", "details": e.lines() }),
                ),
                Err(ReloadError::Build(e)) => json_reply(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "invalid_config", "details": [e] }),
                ),
            }
        }
        (_, "/healthz" | "/metrics" | "/readyz" | "/routes" | "/reload") => json_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "error": "method_not_allowed" }),
        ),
        _ => json_reply(StatusCode::NOT_FOUND, json!({ "error": "not_found" })),
    }
}

/// Serves the admin listener until `shutdown` resolves.
pub async fn run(listener: TcpListener, gateway: Arc<Gateway>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        let Some((stream, peer)) =
            crate::server::next_connection(&listener, shutdown.as_mut()).await
        else {
            break;
        };
        let gw = gateway.clone();
        let service = service_fn(move |req| {
            let gw = gw.clone();
            async move { Ok::<_, Infallible>(handle(gw, req, peer).await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
}
