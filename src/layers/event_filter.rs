//! The route's event filter (CONTRACT §12): `events = ["invoice.*", ...]` lets through only
//! the verified deliveries whose event type matches; the rest are answered
//! `200 {"status":"ignored","request_id":..}` — a 2xx, so dedup marks the id delivered and
//! the provider's retry is a `duplicate`, and the provider stops sending it.
//!
//! It runs after dedup's reserve (last before delivery): an unverified request has been
//! refused before it, and an ignored delivery must still claim its id. In shadow mode an
//! unwanted event is forwarded with `X-Hookwall-Would-Reject: ignored`. The event type it
//! finds rides along, so a buffered route's targets do not look for it again.

use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;

use super::check::{check_layer, Check};
use super::{request_id, shadowed};
use crate::config::EventSource;
use crate::context::{EventType, WouldReject};
use crate::events::{event_type, wanted};
use crate::respond::{self, HttpResponse};

/// Where a route's event type is and the patterns it wants.
#[derive(Debug, Clone)]
pub struct EventFilter {
    source: Arc<EventSource>,
    patterns: Arc<[String]>,
}

impl EventFilter {
    /// Wants the deliveries whose event type (found by `source`) matches one of `patterns`.
    pub fn new(source: EventSource, patterns: &[String]) -> Self {
        EventFilter {
            source: Arc::new(source),
            patterns: patterns.into(),
        }
    }
}

check_layer! {
    /// The route's `events`: `200 ignored` for the deliveries it does not want.
    EventFilterLayer => EventFilterService(EventFilter)
}

impl Check<Bytes> for EventFilter {
    fn check(&self, req: &mut Request<Bytes>) -> ControlFlow<HttpResponse> {
        let event = event_type(&self.source, req.headers(), req.body());
        let want = wanted(&self.patterns, event.as_deref());
        req.extensions_mut()
            .insert(EventType(event.as_deref().map(Arc::from)));
        if want || shadowed(req, WouldReject::Ignored) {
            return ControlFlow::Continue(());
        }
        tracing::debug!(request_id = %request_id(req), event = ?event, "event not wanted by the route's events; answering ignored");
        ControlFlow::Break(respond::ignored(&request_id(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Outcome;
    use crate::layers::test_support::*;
    use tower::{ServiceBuilder, ServiceExt};

    async fn outcome(patterns: &[&str], body: &'static [u8]) -> Outcome {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let svc = ServiceBuilder::new()
            .layer(EventFilterLayer::new(EventFilter::new(
                EventSource::Json("/type".into()),
                &patterns,
            )))
            .service(echo());
        let resp = svc.oneshot(request(body)).await.unwrap();
        respond::outcome_of(&resp)
    }

    #[tokio::test]
    async fn wanted_events_pass_and_others_are_ignored() {
        let forwarded = Outcome::Forwarded(http::StatusCode::OK);
        let paid = br#"{"type":"invoice.paid"}"#;
        assert_eq!(outcome(&["invoice.*"], paid).await, forwarded);
        assert_eq!(outcome(&["charge.*"], paid).await, Outcome::Ignored);
        // No event type at all: only `*` wants it.
        assert_eq!(outcome(&["*"], b"not json").await, forwarded);
        assert_eq!(outcome(&["invoice.*"], b"not json").await, Outcome::Ignored);
    }

    #[tokio::test]
    async fn ignored_is_a_200_so_dedup_commits_it() {
        let svc = ServiceBuilder::new()
            .layer(EventFilterLayer::new(EventFilter::new(
                EventSource::Json("/type".into()),
                &["x".to_owned()],
            )))
            .service(echo());
        let resp = svc.oneshot(request(br#"{"type":"y"}"#)).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
}
