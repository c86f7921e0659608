//! The admin listener: operator endpoints on their own (loopback by default) address.
//!
//! | endpoint | module |
//! |---|---|
//! | `GET /`, `GET /ui/app.js`, `/ui/app.css`, `/ui/icon.svg` (the admin page) | [`page`] |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | [`health`] |
//! | `GET /routes`, `POST /reload`, `POST /config/check` | [`config_api`] |
//! | `GET /deliveries[/{id}]`, `POST /deliveries/{id}/replay`, `POST /replays`, `GET`/`DELETE /replays/{job}` | [`deliveries`] |
//! | `GET /queue`, `GET /dead-letters`, `POST /dead-letters[/{id}]/retry`, `DELETE /dead-letters/{id}` | [`queue`] |
//! | `GET /reconcile`, `POST /reconcile/{route}/run` | [`reconcile`] |
//!
//! With `[admin] token` set, every endpoint but `/healthz`, `/metrics` and the page's files needs
//! `Authorization: Bearer <token>` (compared in constant time). Without a token, endpoints
//! that change state answer only loopback peers. Nothing here ever prints a secret.

mod config_api;
mod deliveries;
mod health;
mod page;
mod query;
mod queue;
mod reconcile;
mod reply;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::respond::HttpResponse;

/// How long an admin client has to send its request head.
const ADMIN_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open admin connections get once shutdown begins.
const ADMIN_DRAIN: Duration = Duration::from_secs(1);

/// Whether the request carries the admin token (or none is configured).
fn authorized(gateway: &Gateway, req: &Request<Incoming>) -> bool {
    let live = gateway.live();
    let Some(token) = &live.config().admin.token else {
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

/// The refusal of a state-changing request, if it gets one: with a token configured it
/// was checked already; without one, only loopback peers may change anything.
fn state_change_refused(gateway: &Gateway, peer: SocketAddr) -> Option<HttpResponse> {
    let has_token = gateway.live().config().admin.token.is_some();
    (!has_token && !from_loopback(peer)).then(|| {
        reply::error(
            StatusCode::FORBIDDEN,
            "changing state from a non-loopback peer needs [admin] token",
        )
    })
}

/// Whether a peer is this host. A dual-stack listener sees 127.0.0.1 as
/// `::ffff:127.0.0.1`, which is loopback too.
fn from_loopback(peer: SocketAddr) -> bool {
    crate::client_ip::canonical(peer.ip()).is_loopback()
}

async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
    let path = req.uri().path().to_owned();
    if page::is_page(&path) {
        return match *req.method() {
            Method::GET | Method::HEAD => page::serve(&path),
            _ => reply::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        };
    }
    let open = matches!(path.as_str(), "/healthz" | "/metrics");
    if !open && !authorized(&gateway, &req) {
        return reply::error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let method = req.method().clone();
    if method == Method::POST || method == Method::DELETE {
        if let Some(refused) = state_change_refused(&gateway, peer) {
            return refused;
        }
    }
    let query = req.uri().query().map(str::to_owned);
    let query = query.as_deref();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["deliveries"]) => return deliveries::list(&gateway, query).await,
        (&Method::GET, ["deliveries", id]) => return deliveries::show(&gateway, id).await,
        (&Method::POST, ["deliveries", id, "replay"]) => {
            return deliveries::replay_one(&gateway, id, query).await
        }
        (&Method::POST, ["replays"]) => {
            return deliveries::replay_bulk(gateway.clone(), req.into_body()).await
        }
        (&Method::GET, ["replays", job]) => return deliveries::job(&gateway, job),
        (&Method::DELETE, ["replays", job]) => return deliveries::cancel_job(&gateway, job),
        (&Method::GET, ["queue"]) => return queue::overview(&gateway).await,
        (&Method::GET, ["dead-letters"]) => return queue::list(&gateway, query).await,
        (&Method::POST, ["dead-letters", "retry"]) => {
            return queue::retry_bulk(&gateway, req.into_body()).await
        }
        (&Method::POST, ["dead-letters", id, "retry"]) => {
            return queue::retry_one(&gateway, id).await
        }
        (&Method::DELETE, ["dead-letters", id]) => return queue::discard(&gateway, id, peer).await,
        (&Method::GET, ["reconcile"]) => return reconcile::overview(&gateway).await,
        // Route names may hold `/`: the name is everything between the two.
        (&Method::POST, ["reconcile", _, .., "run"]) => {
            let route = &path["/reconcile/".len()..path.len() - "/run".len()];
            return reconcile::run(&gateway, route).await;
        }
        (
            _,
            ["deliveries", ..]
            | ["replays", ..]
            | ["queue"]
            | ["dead-letters", ..]
            | ["reconcile"]
            | ["reconcile", _, .., "run"],
        ) => return reply::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        _ => {}
    }
    match (method, path.as_str()) {
        (Method::GET, "/healthz") => health::healthz(),
        (Method::GET, "/metrics") => health::metrics(&gateway, &req),
        (Method::GET, "/readyz") => health::readyz(&gateway).await,
        (Method::GET, "/routes") => config_api::routes(&gateway),
        (Method::POST, "/reload") => config_api::reload(&gateway),
        (Method::POST, "/config/check") => config_api::check(&gateway, req.into_body()).await,
        (_, "/healthz" | "/metrics" | "/readyz" | "/routes" | "/reload" | "/config/check") => {
            reply::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
        }
        _ => reply::error(StatusCode::NOT_FOUND, "not_found"),
    }
}

/// Serves the admin listener until `shutdown` resolves.
pub async fn run(listener: TcpListener, gateway: Arc<Gateway>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(ADMIN_HEAD_TIMEOUT);
    tokio::pin!(shutdown);
    while let Some((stream, peer)) =
        crate::transport::next_connection(&listener, shutdown.as_mut()).await
    {
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
    let _ = tokio::time::timeout(ADMIN_DRAIN, graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: on a `[::]` listener a loopback client was refused as non-loopback.
    #[test]
    fn mapped_ipv4_loopback_is_loopback() {
        let peer = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(from_loopback(peer("127.0.0.1:1")));
        assert!(from_loopback(peer("[::1]:1")));
        assert!(from_loopback(peer("[::ffff:127.0.0.1]:1")));
        assert!(!from_loopback(peer("[::ffff:10.0.0.1]:1")));
        assert!(!from_loopback(peer("192.0.2.1:1")));
    }
}
