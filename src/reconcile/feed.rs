//! One polled event, delivered as if its webhook had arrived: through the route's own dedup
//! (keyed by the event's id, so a poll and a webhook of one event meet in one id) and then
//! its upstream (sync) or its queue (buffered), with `X-Hookwall-Verified:
//! reconcile:<source>` (it came over the provider's authenticated API, not a signature).
//! Journaled like a request, with that header among its stored headers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request};
use tower::ServiceExt;

use crate::context::{Outcome, PolledId, RequestContext, RequestRecord, VerifiedBy};
use crate::gateway::{Gateway, Live};
use crate::journal::Draft;
use crate::respond;
use crate::stack::Route;

/// An event a source listed.
#[derive(Debug, Clone)]
pub(crate) struct Polled {
    /// Its id: the dedup id.
    pub id: String,
    /// When it was created, Unix seconds, if the source says.
    pub created: Option<i64>,
    /// What the cursor becomes once it (and everything before it) is delivered.
    pub position: String,
    /// The event document, the body forwarded.
    pub body: Bytes,
}

/// What delivering one polled event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Delivered (or queued) now: the webhook had not delivered it.
    Recovered,
    /// Its webhook delivered it already (dedup `duplicate`), is delivering it now
    /// (`in_flight`), or no target wants it (`ignored`).
    Known,
    /// Not delivered: the reason, for the run's error.
    Failed(String),
}

/// The polls of one route: what every polled event of it is sent with.
pub(crate) struct Feeder<'a> {
    pub gateway: &'a Gateway,
    pub live: &'a Arc<Live>,
    pub route: &'a Arc<Route>,
    /// `reconcile:<source>`.
    pub verified_by: Arc<str>,
    /// The run's trace: polled events are forwarded under it.
    pub trace: crate::telemetry::Trace,
}

/// The peer a polled event is said to come from: hookwall itself.
const SELF_PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

impl Feeder<'_> {
    /// Delivers `event` through the route's dedup and delivery.
    pub(crate) async fn feed(&self, event: &Polled) -> Fed {
        let Some(service) = self.route.polled.clone() else {
            return Fed::Failed("the route cannot take polled events".to_owned());
        };
        let request_id = self.gateway.ids.next_id();
        let record = Arc::new(RequestRecord::default());
        let _ = record.body.set(event.body.clone());
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let Ok(mut req) = Request::builder()
            .method(Method::POST)
            .uri(self.route.config.path.as_str())
            .body(event.body.clone())
        else {
            return Fed::Failed("the route's path is not a request path".to_owned());
        };
        *req.headers_mut() = headers.clone();
        let ext = req.extensions_mut();
        ext.insert(RequestContext {
            request_id: request_id.clone(),
            peer: SELF_PEER,
            client_ip: SELF_PEER.ip(),
            peer_trusted: false,
            received: tokio::time::Instant::now(),
            https: false,
            record: record.clone(),
        });
        ext.insert(VerifiedBy(self.verified_by.clone()));
        ext.insert(PolledId(event.id.as_str().into()));
        ext.insert(self.trace.clone());
        let received_at = SystemTime::now();
        let Ok(resp) = service.oneshot(req).await;
        let outcome = respond::outcome_of(&resp);
        self.journal(
            event,
            request_id,
            received_at,
            headers,
            outcome,
            &resp,
            &record,
        );
        match outcome {
            Outcome::Forwarded(s) if s.is_success() => Fed::Recovered,
            Outcome::Queued => Fed::Recovered,
            Outcome::Duplicate | Outcome::Ignored => Fed::Known,
            Outcome::Rejected(crate::error::Rejection::InFlight(_)) => Fed::Known,
            Outcome::Forwarded(s) => Fed::Failed(format!(
                "event {}: the upstream answered {}",
                event.id,
                s.as_u16()
            )),
            Outcome::Rejected(r) => Fed::Failed(format!("event {}: {}", event.id, r.reason())),
            other => Fed::Failed(format!("event {}: {}", event.id, other.label())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn journal(
        &self,
        event: &Polled,
        request_id: Arc<str>,
        received_at: SystemTime,
        mut headers: HeaderMap,
        outcome: Outcome,
        resp: &crate::respond::HttpResponse,
        record: &RequestRecord,
    ) {
        let Some(journal) = self.gateway.journal() else {
            return;
        };
        if self.route.config.journal.is_none() {
            return;
        }
        // Stored with the entry so an operator sees where it came from.
        if let Ok(v) = HeaderValue::from_str(&self.verified_by) {
            headers.insert("x-hookwall-verified", v);
        }
        journal.submit(Draft {
            received_at,
            request_id,
            route: self.route.clone(),
            live: self.live.clone(),
            method: Method::POST,
            path: self.route.config.path.clone(),
            client_ip: SELF_PEER.ip(),
            headers: Some(headers),
            body: Some(event.body.clone()),
            outcome,
            status: resp.status().as_u16(),
            upstream_ms: record.upstream_ms.get().copied(),
            dedup_id: Some(event.id.as_str().into()),
            key: None,
            refused_headers: None,
            store: true,
            attempt: None,
            target: None,
            polled: true,
            would_reject: None,
            unverified: false,
        });
    }
}
