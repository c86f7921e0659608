//! The `verify` and `dedup` spans: a span opened where a group of checks starts and
//! closed where it ends, so that it times those checks and not the rest of the stack
//! inside them.
//!
//! [`SpanStartLayer`] opens the span (a child of the request's [`Trace`]) and leaves it on
//! the request; [`SpanEndLayer`], placed after the last check of the group, ends it when a
//! request gets through. If a check answered instead (a rejection, a duplicate), the start
//! layer ends it with that answer. Both are only in the stack while spans are exported.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use super::{Telemetry, Trace};
use crate::context::DeliveryId;
use crate::layers::ResponseFuture;
use crate::respond::HttpResponse;

/// The span a start layer opened, until its end layer (or the answer) closes it.
#[derive(Debug, Clone)]
struct OpenSpan(Arc<Mutex<Option<Trace>>>);

impl OpenSpan {
    fn take(&self) -> Option<Trace> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Opens span `name` for the checks after it.
#[derive(Debug, Clone)]
pub(crate) struct SpanStartLayer {
    telemetry: Arc<Telemetry>,
    name: &'static str,
}

impl SpanStartLayer {
    pub(crate) fn new(telemetry: Arc<Telemetry>, name: &'static str) -> Self {
        SpanStartLayer { telemetry, name }
    }
}

impl<S> Layer<S> for SpanStartLayer {
    type Service = SpanStart<S>;
    fn layer(&self, inner: S) -> SpanStart<S> {
        SpanStart {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SpanStartLayer`] builds.
#[derive(Debug, Clone)]
pub(crate) struct SpanStart<S> {
    inner: S,
    layer: SpanStartLayer,
}

impl<S, B> Service<Request<B>> for SpanStart<S>
where
    S: Service<Request<B>, Response = HttpResponse, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> ResponseFuture {
        let Some(parent) = req.extensions().get::<Trace>().cloned() else {
            return Box::pin(self.inner.call(req));
        };
        let span = self.layer.telemetry.child(
            &parent,
            self.layer.name,
            opentelemetry::trace::SpanKind::Internal,
            Vec::new,
        );
        let open = OpenSpan(Arc::new(Mutex::new(Some(span))));
        req.extensions_mut().insert(open.clone());
        let future = self.inner.call(req);
        Box::pin(async move {
            let resp = future.await?;
            // Still open: a check in the group answered.
            if let Some(span) = open.take() {
                span.end_with(&resp);
            }
            Ok(resp)
        })
    }
}

/// Closes the span the nearest [`SpanStartLayer`] opened: the request got through.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpanEndLayer;

impl<S> Layer<S> for SpanEndLayer {
    type Service = SpanEnd<S>;
    fn layer(&self, inner: S) -> SpanEnd<S> {
        SpanEnd { inner }
    }
}

/// The service [`SpanEndLayer`] builds.
#[derive(Debug, Clone)]
pub(crate) struct SpanEnd<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for SpanEnd<S>
where
    S: Service<Request<B>, Response = HttpResponse, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> ResponseFuture {
        if let Some(open) = req.extensions_mut().remove::<OpenSpan>() {
            if let Some(span) = open.take() {
                let mut attributes =
                    vec![opentelemetry::KeyValue::new("hookwall.outcome", "passed")];
                if let Some(DeliveryId(id)) = req.extensions().get::<DeliveryId>() {
                    attributes.push(opentelemetry::KeyValue::new(
                        "hookwall.dedup_id",
                        id.to_string(),
                    ));
                }
                span.set(attributes);
                span.end(None);
            }
        }
        Box::pin(self.inner.call(req))
    }
}
