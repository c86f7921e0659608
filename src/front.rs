//! The request front: what every request on the proxy listener goes through before its
//! route's stack (CONTRACT §3, checks 1 and 2) and after it.
//!
//! Route match (`404 unknown_route`, `405 method_not_allowed` with `Allow`), load shedding
//! (`503 overloaded` past `max_concurrency`), the request context (id, real client IP),
//! then the route's stack (`stack.rs`); and on the way out, one count and one log line per
//! request. Refusals made before a request exists (a stalled head, what the HTTP parser
//! refused) are counted here too, under the `_unknown` route.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use http::header::ALLOW;
use http::{HeaderMap, HeaderValue, Method, Request};
use hyper::body::Incoming;
use tower::ServiceExt;

use crate::access_log::Entry;
use crate::client_ip::{canonical, client_ip, is_in};
use crate::context::{
    DeliveryId, Outcome, RejectionCause, RequestContext, RequestRecord, UpstreamFailure,
};
use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::gateway::Live;
use crate::journal::{Draft, Journal};
use crate::metrics::{Metrics, RouteMetrics, UNKNOWN_ROUTE};
use crate::respond::{self, HttpResponse};
use crate::stack::Route;

impl Gateway {
    /// Handles one request on the proxy listener. Never fails: every problem is an answer.
    pub(crate) async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        https: bool,
    ) -> HttpResponse {
        let received = tokio::time::Instant::now();
        let request_id = self.ids.next_id();
        let live = self.live.load_full();
        let routes = &live.routes;
        let Some(route) = routes.get(req.uri().path()).cloned() else {
            let resp = respond::rejection(&request_id, Rejection::UnknownRoute);
            self.finish(
                &routes.unknown,
                UNKNOWN_ROUTE,
                &request_id,
                peer.ip(),
                &resp,
                received,
            );
            return resp;
        };
        let name = route.config.name.as_str();
        let trusted = &live.config().server.trusted_proxies;
        let client = client_ip(peer.ip(), req.headers(), trusted);
        let record = Arc::new(RequestRecord::default());
        // What the journal needs of the head, taken before the stack consumes it.
        let head = self.journal.get().map(|_| Head {
            // The clock timestamp windows use, so that re-verification judges a window
            // at the time the request arrived as the window check did.
            received_at: SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs_f64(self.shared.clock.unix_now().max(0.0)),
            method: req.method().clone(),
            path: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned()),
            headers: route
                .config
                .journal
                .is_some()
                .then(|| req.headers().clone()),
        });

        let resp = if !route.config.methods.contains(req.method()) {
            method_not_allowed(&request_id, &route)
        } else if let Some(_admitted) = live.shedder.admit(client) {
            let _in_flight = InFlight::count(&self.shared.metrics);
            req.extensions_mut().insert(RequestContext {
                request_id: request_id.clone(),
                peer,
                client_ip: client,
                peer_trusted: is_in(trusted, canonical(peer.ip())),
                received,
                https,
                record: record.clone(),
            });
            let trace = self.shared.telemetry.receive(req.headers(), || {
                crate::telemetry::receive_attributes(name, &req, &request_id)
            });
            req.extensions_mut().insert(trace.clone());
            let Ok(resp) = route.service.clone().oneshot(req).await;
            trace.end_with(&resp);
            resp
        } else {
            respond::rejection(&request_id, Rejection::Overloaded)
        };
        self.finish(&route.metrics, name, &request_id, client, &resp, received);
        if let (Some(journal), Some(head)) = (self.journal.get(), head) {
            journal_draft(
                journal, head, &live, &route, request_id, client, &resp, &record,
            );
        }
        resp
    }

    /// Counts and logs a refusal made before any request existed (a stalled head, a head
    /// the HTTP parser refused); returns the id it was logged under.
    pub(crate) fn connection_rejection(&self, rejection: Rejection, peer: SocketAddr) -> Arc<str> {
        let request_id = self.ids.next_id();
        self.live
            .load()
            .routes
            .unknown
            .record(Outcome::Rejected(rejection));
        self.access_log.record(&Entry {
            request_id: &request_id,
            route: UNKNOWN_ROUTE,
            outcome: Outcome::Rejected(rejection),
            status: rejection.status().as_u16(),
            latency: std::time::Duration::ZERO,
            client: peer.ip(),
            dedup_id: None,
            cause: None,
        });
        request_id
    }

    /// Counts and logs a finished request.
    fn finish(
        &self,
        metrics: &RouteMetrics,
        route: &str,
        request_id: &str,
        client: IpAddr,
        resp: &HttpResponse,
        received: tokio::time::Instant,
    ) {
        let outcome = respond::outcome_of(resp);
        let latency = received.elapsed();
        metrics.record(outcome);
        metrics.request_duration.observe(latency.as_secs_f64());
        self.access_log.record(&Entry {
            request_id,
            route,
            outcome,
            status: resp.status().as_u16(),
            latency,
            client,
            dedup_id: resp.extensions().get::<DeliveryId>().map(|d| &*d.0),
            cause: resp
                .extensions()
                .get::<UpstreamFailure>()
                .map(|f| f.0.as_str())
                .or_else(|| {
                    resp.extensions()
                        .get::<RejectionCause>()
                        .map(|c| c.0.as_str())
                }),
        });
    }
}

/// The head of a request, as the journal keeps it.
struct Head {
    received_at: SystemTime,
    method: Method,
    path: String,
    /// `None` when the route is not journaled (a draft then only feeds the diagnosis).
    headers: Option<HeaderMap>,
}

/// Hands a finished request to the journal: every request of a journaled route, and a
/// refused signature of any route (for the diagnosis).
#[allow(clippy::too_many_arguments)]
fn journal_draft(
    journal: &Journal,
    head: Head,
    live: &Arc<Live>,
    route: &Arc<Route>,
    request_id: Arc<str>,
    client: IpAddr,
    resp: &HttpResponse,
    record: &RequestRecord,
) {
    let refused_headers = record.refused_headers.get().cloned();
    let store = head.headers.is_some();
    if !store && refused_headers.is_none() {
        return;
    }
    journal.submit(Draft {
        received_at: head.received_at,
        request_id,
        route: route.clone(),
        live: live.clone(),
        method: head.method,
        path: head.path,
        client_ip: client,
        headers: head.headers,
        body: record.body.get().cloned(),
        outcome: respond::outcome_of(resp),
        status: resp.status().as_u16(),
        upstream_ms: record.upstream_ms.get().copied(),
        dedup_id: resp.extensions().get::<DeliveryId>().map(|d| d.0.clone()),
        key: record.key.get().copied(),
        refused_headers,
        store,
        attempt: None,
        target: None,
        polled: false,
        would_reject: record.would_reject.get().copied(),
        unverified: record.unverified.get().is_some(),
    });
}

/// `405` with the route's methods in `Allow`.
fn method_not_allowed(request_id: &str, route: &Route) -> HttpResponse {
    let mut resp = respond::rejection(request_id, Rejection::MethodNotAllowed);
    let allow = route
        .config
        .methods
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(v) = HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(ALLOW, v);
    }
    resp
}

/// Counts a request in `hookwall_in_flight` however it ends (including cancellation).
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn count(metrics: &'a Metrics) -> Self {
        metrics.in_flight.inc();
        InFlight(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}
