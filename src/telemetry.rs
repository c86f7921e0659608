//! Tracing (CONTRACT §13): W3C trace context continued or started, passed upstream, and
//! spans exported over OTLP/HTTP when `[telemetry] otlp_endpoint` is set.
//!
//! Every request that reaches a route's stack gets a [`Trace`]: the provider's
//! `traceparent` when it sent a valid one, else a fresh trace id. The upstream always
//! receives a `traceparent` of that trace (see `forward.rs`), so the app's own tracing
//! joins it, export or not.
//!
//! With export on, the spans are, for one delivery:
//! - `receive` (server, the root, or a child of the provider's span): route, method, path,
//!   request id, status, outcome, reason, dedup id;
//! - `verify` (signature and timestamp window) and `dedup` (the reservation), children of
//!   `receive` (`layer.rs`);
//! - `forward` (client): the upstream's address, status or failure; its span id is the
//!   parent in the upstream's `traceparent`;
//! - `queue attempt` (the root of each buffered attempt, continuing the trace the provider
//!   sent, with the attempt number) and `reconcile run` (the root of a run, with its
//!   result), the parents of their `forward` spans.
//!
//! With export off nothing is allocated for spans: the trace is two ids on the request, and
//! the layers that time `verify` and `dedup` are not in the stack at all.
//!
//! Export goes through the `opentelemetry` SDK's batch processor (its own thread, sending
//! every `export_interval`) and `opentelemetry-otlp`'s protobuf-over-HTTP exporter, over
//! the project's own hyper client (`export.rs`).

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::config::TelemetryConfig;
use crate::context::{DeliveryId, Outcome};
use crate::respond::{self, HttpResponse};

pub(crate) mod export;
pub(crate) mod layer;

/// `traceparent`.
pub(crate) const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// The process's tracer, when spans are exported.
#[derive(Debug, Default)]
pub struct Telemetry {
    exporting: Option<(SdkTracerProvider, SdkTracer)>,
}

impl Telemetry {
    /// Starts export per `cfg` (nothing when it has no endpoint). Must run inside a tokio
    /// runtime: the exporter sends its requests on it.
    pub fn start(cfg: &TelemetryConfig) -> Result<Self, String> {
        let Some(url) = &cfg.traces_url else {
            return Ok(Telemetry::default());
        };
        let provider = export::provider(url, &cfg.service_name, cfg.export_interval)?;
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "hookwall");
        Ok(Telemetry {
            exporting: Some((provider, tracer)),
        })
    }

    /// Whether spans are exported (the span layers are built only then).
    pub(crate) fn exporting(&self) -> bool {
        self.exporting.is_some()
    }

    /// Sends the spans still buffered and stops the exporter (at exit; blocks at most
    /// `grace`).
    pub fn shutdown(&self, grace: Duration) {
        if let Some((provider, _)) = &self.exporting {
            if let Err(e) = provider.shutdown_with_timeout(grace) {
                tracing::warn!(error = %e, "spans not all exported at exit");
            }
        }
    }

    /// The `receive` span of a request with these headers: continuing the provider's
    /// trace, or starting one.
    pub(crate) fn receive(
        &self,
        headers: &HeaderMap,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Trace {
        self.root("receive", SpanKind::Server, Some(headers), attributes)
    }

    /// A root span (`queue attempt`, `reconcile run`, `receive`), under the trace context
    /// in `headers` when they carry a valid one.
    pub(crate) fn root(
        &self,
        name: &'static str,
        kind: SpanKind,
        headers: Option<&HeaderMap>,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Trace {
        let provider = headers.and_then(provider_context);
        let Some((_, tracer)) = &self.exporting else {
            return Trace {
                parent: provider.unwrap_or_else(fresh_context),
                cx: None,
            };
        };
        // Without the provider's context the span is a root: the SDK picks the trace id.
        let parent_cx = match &provider {
            Some(sc) => Context::new().with_remote_span_context(sc.clone()),
            None => Context::new(),
        };
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes())
            .start_with_context(tracer, &parent_cx);
        let cx = parent_cx.with_span(span);
        Trace {
            parent: provider.unwrap_or_else(|| cx.span().span_context().clone()),
            cx: Some(cx),
        }
    }

    /// A span under `parent`'s current one (none when not exporting).
    pub(crate) fn child(
        &self,
        parent: &Trace,
        name: &'static str,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Trace {
        match (&self.exporting, &parent.cx) {
            (Some((_, tracer)), Some(cx)) => {
                let span = tracer
                    .span_builder(name)
                    .with_kind(kind)
                    .with_attributes(attributes())
                    .start_with_context(tracer, cx);
                Trace {
                    parent: parent.parent.clone(),
                    cx: Some(cx.with_span(span)),
                }
            }
            _ => parent.clone(),
        }
    }
}

/// The `receive` span's attributes (built only when exporting).
pub(crate) fn receive_attributes<B>(
    route: &str,
    req: &http::Request<B>,
    request_id: &str,
) -> Vec<KeyValue> {
    vec![
        KeyValue::new("hookwall.route", route.to_owned()),
        KeyValue::new("http.request.method", req.method().as_str().to_owned()),
        KeyValue::new("url.path", req.uri().path().to_owned()),
        KeyValue::new("hookwall.request_id", request_id.to_owned()),
    ]
}

/// Where a request is in its trace: on the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    /// The span hookwall's spans hang under: the provider's, or a fresh id.
    parent: SpanContext,
    /// With export on: the context whose span is the current hookwall span.
    cx: Option<Context>,
}

impl Trace {
    /// The trace id (32 hex digits).
    #[cfg(test)]
    pub(crate) fn trace_id(&self) -> TraceId {
        self.parent.trace_id()
    }

    /// The `traceparent` for the next hop: the current hookwall span when exporting, else
    /// a fresh span id in the same trace (so the app's spans still join it).
    pub(crate) fn traceparent(&self) -> Option<HeaderValue> {
        let (trace, span, flags) = match &self.cx {
            Some(cx) => {
                let sc = cx.span().span_context().clone();
                (sc.trace_id(), sc.span_id(), sc.trace_flags())
            }
            None => (
                self.parent.trace_id(),
                random_span_id(),
                self.parent.trace_flags(),
            ),
        };
        HeaderValue::from_str(&format!("00-{trace}-{span}-{:02x}", flags.to_u8())).ok()
    }

    /// Adds attributes to the current span.
    pub(crate) fn set(&self, attributes: Vec<KeyValue>) {
        if let Some(cx) = &self.cx {
            cx.span().set_attributes(attributes);
        }
    }

    /// Ends the current span as `error` (with the reason) or ok.
    pub(crate) fn end(&self, error: Option<&'static str>) {
        if let Some(cx) = &self.cx {
            let span = cx.span();
            if let Some(reason) = error {
                span.set_status(Status::error(reason));
            }
            span.end();
        }
    }

    /// Ends the current span with what `resp` says: status, outcome, reason, dedup id.
    pub(crate) fn end_with(&self, resp: &HttpResponse) {
        if self.cx.is_none() {
            return;
        }
        let outcome = respond::outcome_of(resp);
        let mut attributes = vec![
            KeyValue::new(
                "http.response.status_code",
                i64::from(resp.status().as_u16()),
            ),
            KeyValue::new("hookwall.outcome", outcome.label()),
        ];
        let reason = match outcome {
            Outcome::Rejected(r) => Some(r.reason()),
            _ => None,
        };
        if let Some(reason) = reason {
            attributes.push(KeyValue::new("hookwall.reason", reason));
        }
        if let Some(DeliveryId(id)) = resp.extensions().get::<DeliveryId>() {
            attributes.push(KeyValue::new("hookwall.dedup_id", id.to_string()));
        }
        self.set(attributes);
        self.end(reason);
    }
}

/// The provider's trace context, when `traceparent` is valid.
fn provider_context(headers: &HeaderMap) -> Option<SpanContext> {
    // Cheap when absent: one lookup, no allocation.
    headers.get(&TRACEPARENT)?;
    let cx = TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// A new trace, sampled.
fn fresh_context() -> SpanContext {
    let trace = loop {
        let id = TraceId::from_bytes(rand::random());
        if id != TraceId::INVALID {
            break id;
        }
    };
    SpanContext::new(
        trace,
        random_span_id(),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    )
}

fn random_span_id() -> SpanId {
    loop {
        let id = SpanId::from_bytes(rand::random());
        if id != SpanId::INVALID {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_providers_traceparent_is_continued() {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let trace = Telemetry::default().receive(&h, Vec::new);
        assert_eq!(
            trace.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let next = trace.traceparent().unwrap();
        let next = next.to_str().unwrap();
        assert!(
            next.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{next}"
        );
        assert!(next.ends_with("-01"), "{next}");
        assert!(
            !next.contains("00f067aa0ba902b7"),
            "a hop of its own: {next}"
        );
    }

    #[test]
    fn without_one_or_with_a_broken_one_a_trace_starts() {
        let mut h = HeaderMap::new();
        let a = Telemetry::default().receive(&h, Vec::new);
        h.insert(TRACEPARENT, "00-zz-yy-01".parse().unwrap());
        let b = Telemetry::default().receive(&h, Vec::new);
        assert_ne!(a.trace_id(), TraceId::INVALID);
        assert_ne!(a.trace_id(), b.trace_id());
        let tp = a.traceparent().unwrap();
        assert_eq!(tp.len(), 55, "{tp:?}");
    }
}
