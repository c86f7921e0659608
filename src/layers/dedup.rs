//! Two-phase dedup, after the signature and timestamp checks so a forged request can never
//! claim (and so block) a real delivery id.
//!
//! reserve (lease) → forward → on an upstream 2xx mark delivered (ttl), on anything else
//! release, so the provider's retry gets through. The forward and the commit run in their
//! own task: if the provider hangs up mid-request, the attempt still completes and is
//! recorded, and the provider's retry is answered `duplicate` instead of being processed
//! twice. Answers: `200 duplicate` (upstream not called), `409 in_flight` + Retry-After,
//! `400 missing_dedup_key`, `503 dedup_unavailable` + Retry-After (`on_store_error =
//! "reject"`; with `"allow"` the request is forwarded without dedup). Every store failure
//! counts in `hookwall_dedup_store_errors_total`.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use tower::{Layer, Service};

use super::{request_id, shadowed, unverified, ResponseFuture};
use crate::config::{DedupKeyConfig, OnStoreError};
use crate::context::{DeliveryId, PolledId, UpstreamAccepted, WouldReject};
use crate::dedup::{with_timeout, DedupStore, Reservation};
use crate::error::Rejection;
use crate::metrics::RouteMetrics;
use crate::respond::{self, HttpResponse};

mod key;

pub use key::extract_id;
pub(crate) use key::webhook_keys;
pub use key::Binding;
use key::{find_id, keys_for, Keys, NoId};

/// Store timings and the failure policy, from `[dedup]`.
#[derive(Debug, Clone, Copy)]
pub struct DedupTimings {
    /// Reservation lifetime.
    pub lease: Duration,
    /// Delivered-id lifetime.
    pub ttl: Duration,
    /// Per store call.
    pub call_timeout: Duration,
    /// What a store failure means for the request.
    pub on_store_error: OnStoreError,
    /// The route's upstream timeout: no attempt in flight can take longer.
    pub upstream_timeout: Duration,
}

/// Added to the route timeout in a `409`'s Retry-After: the attempt in flight has settled
/// by then (answered or timed out, and its id committed or released).
const IN_FLIGHT_MARGIN: Duration = Duration::from_secs(1);

impl DedupTimings {
    /// When to retry an id held by another attempt whose lease ends in `left`: at most
    /// the route timeout and a margin, however long the lease.
    fn retry_in_flight_after(&self, left: Duration) -> Duration {
        left.min(self.upstream_timeout + IN_FLIGHT_MARGIN)
    }
}

/// Dedups a route's deliveries in a store.
#[derive(Debug, Clone)]
pub struct DedupLayer {
    store: Arc<dyn DedupStore>,
    key: Arc<DedupKeyConfig>,
    /// Whether the route's signature covers the id (if not, the id is bound to the body),
    /// and whether it also polls.
    binding: Binding,
    namespace: Arc<str>,
    timings: DedupTimings,
    metrics: Arc<RouteMetrics>,
}

impl DedupLayer {
    /// `route` namespaces the ids so two routes never share one; `binding` says how its
    /// ids are keyed (see `key.rs`).
    pub fn new(
        store: Arc<dyn DedupStore>,
        key: DedupKeyConfig,
        binding: Binding,
        route: &str,
        timings: DedupTimings,
        metrics: Arc<RouteMetrics>,
    ) -> Self {
        DedupLayer {
            store,
            key: Arc::new(key),
            binding,
            namespace: route.into(),
            timings,
            metrics,
        }
    }
}

impl<S> Layer<S> for DedupLayer {
    type Service = Dedup<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Dedup {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`DedupLayer`].
#[derive(Debug, Clone)]
pub struct Dedup<S> {
    inner: S,
    layer: DedupLayer,
}

impl<S> Service<Request<Bytes>> for Dedup<S>
where
    S: Service<Request<Bytes>, Response = HttpResponse, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Bytes>) -> Self::Future {
        let layer = self.layer.clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let rid = request_id(&req);
        let polled = req.extensions().get::<PolledId>().map(|p| p.0.to_string());
        let is_polled = polled.is_some();
        let found = polled.map_or_else(|| find_id(&layer.key.source, &req), Ok);
        let found = found.map(|id| {
            let keys = keys_for(&layer.namespace, &id, req.body(), layer.binding, is_polled);
            (keys, id)
        });
        let (keys, id) = match found {
            Ok(found) => found,
            // Without the one id there is no key; only an absent one may pass undeduped.
            Err(NoId::Missing) if !layer.key.required => return Box::pin(inner.call(req)),
            // Shadow mode forwards it, marked, without touching the store.
            Err(NoId::Missing | NoId::Ambiguous)
                if shadowed(&req, WouldReject::Rejected(Rejection::MissingDedupKey)) =>
            {
                return Box::pin(inner.call(req));
            }
            Err(NoId::Missing | NoId::Ambiguous) => {
                return Box::pin(std::future::ready(Ok(respond::rejection(
                    &rid,
                    Rejection::MissingDedupKey,
                ))));
            }
        };
        let delivery = DeliveryId(id.into());
        req.extensions_mut().insert(delivery.clone());
        // Shadow mode let a request through whose signature or timestamp failed: it must
        // not reserve or commit an id, or a forgery could burn a real delivery's id for
        // when the route enforces.
        if unverified(&req) {
            return Box::pin(inner.call(req));
        }
        Box::pin(async move {
            let mut resp = layer.reserve_and_forward(inner, req, keys, rid).await?;
            // For the log line: which delivery this answer was about.
            resp.extensions_mut().insert(delivery);
            Ok(resp)
        })
    }
}

impl DedupLayer {
    /// Reserve, forward, settle (module docs); the answer for each way that can go.
    async fn reserve_and_forward<S>(
        self,
        mut inner: S,
        req: Request<Bytes>,
        keys: Keys,
        rid: Arc<str>,
    ) -> Result<HttpResponse, Infallible>
    where
        S: Service<Request<Bytes>, Response = HttpResponse, Error = Infallible> + Send + 'static,
        S::Future: Send + 'static,
    {
        let t = self.timings;
        let layer = self;
        let store_key = keys.primary;
        let reserved = with_timeout(t.call_timeout, layer.store.reserve(&store_key, t.lease)).await;
        // In shadow mode an id we did not reserve is forwarded without settling: the
        // reservation (or the delivered mark) belongs to another attempt, and committing or
        // releasing it is that attempt's business.
        let token = match reserved {
            Ok(Reservation::Acquired(token)) => token,
            Ok(Reservation::Delivered) if shadowed(&req, WouldReject::Duplicate) => {
                return inner.call(req).await;
            }
            Ok(Reservation::Delivered) => return Ok(respond::duplicate(&rid)),
            Ok(Reservation::InFlight(left)) => {
                let wait = Rejection::InFlight(t.retry_in_flight_after(left));
                if shadowed(&req, WouldReject::Rejected(wait)) {
                    return inner.call(req).await;
                }
                return Ok(respond::rejection(&rid, wait));
            }
            Err(e) => {
                layer.metrics.dedup_store_errors.inc();
                tracing::warn!(request_id = %rid, error = %e, "dedup store failed to reserve a delivery id");
                return match t.on_store_error {
                    OnStoreError::Reject
                        if !shadowed(&req, WouldReject::Rejected(Rejection::DedupUnavailable)) =>
                    {
                        Ok(respond::rejection(&rid, Rejection::DedupUnavailable))
                    }
                    _ => inner.call(req).await,
                };
            }
        };
        if let Some(other) = &keys.delivered_if {
            if let Some(answer) = layer.delivered_elsewhere(other, &rid).await {
                layer.release(&store_key, token, &rid).await;
                return Ok(answer);
            }
        }
        // Finish the attempt even if the provider hangs up: see the module docs.
        let task_rid = rid.clone();
        let attempt = FinishOnDrop::new(async move {
            let Ok(resp) = inner.call(req).await;
            let accepted =
                resp.status().is_success() || resp.extensions().get::<UpstreamAccepted>().is_some();
            let settled = if accepted {
                with_timeout(t.call_timeout, layer.store.commit(&store_key, token, t.ttl)).await
            } else {
                with_timeout(t.call_timeout, layer.store.release(&store_key, token)).await
            };
            if let Err(e) = settled {
                // After a 2xx the delivery was processed: its answer still goes back.
                // A failed release only delays the retry until the lease ends.
                layer.metrics.dedup_store_errors.inc();
                tracing::warn!(request_id = %task_rid, error = %e, "dedup store failed to settle a delivery id");
            }
            if let (true, Some(mark)) = (accepted, &keys.mark) {
                layer.mark_delivered(mark, &task_rid).await;
            }
            resp
        });
        match attempt.await {
            Ok(resp) => Ok(resp),
            // Only a panic in the forward path gets here; answer 502 so the provider retries.
            Err(Panicked) => Ok(respond::rejection(&rid, Rejection::UpstreamError)),
        }
    }
}

impl DedupLayer {
    /// Whether key `other` says this delivery was already made by another path: the answer
    /// (`duplicate`, or `409` while that path is delivering it), or `None` to go on. A store
    /// error goes on: the primary key is held, so at worst the upstream sees an event both
    /// polled and received, under the same `X-Hookwall-Delivery-Id`.
    async fn delivered_elsewhere(&self, other: &str, rid: &Arc<str>) -> Option<HttpResponse> {
        let t = self.timings;
        match with_timeout(t.call_timeout, self.store.reserve(other, t.lease)).await {
            Ok(Reservation::Delivered) => Some(respond::duplicate(rid)),
            Ok(Reservation::InFlight(left)) => Some(respond::rejection(
                rid,
                Rejection::InFlight(t.retry_in_flight_after(left)),
            )),
            Ok(Reservation::Acquired(token)) => {
                // Only looked at, not owned: give it back at once.
                self.release(other, token, rid).await;
                None
            }
            Err(e) => {
                self.metrics.dedup_store_errors.inc();
                tracing::warn!(request_id = %rid, error = %e, "dedup store failed to look up a delivery id");
                None
            }
        }
    }

    async fn release(&self, key: &str, token: crate::dedup::Token, rid: &Arc<str>) {
        let t = self.timings;
        if let Err(e) = with_timeout(t.call_timeout, self.store.release(key, token)).await {
            self.metrics.dedup_store_errors.inc();
            tracing::warn!(request_id = %rid, error = %e, "dedup store failed to release a delivery id");
        }
    }

    /// Marks `key` delivered unless something holds it already.
    async fn mark_delivered(&self, key: &str, rid: &Arc<str>) {
        let t = self.timings;
        let reserved = with_timeout(t.call_timeout, self.store.reserve(key, t.lease)).await;
        let committed = match reserved {
            Ok(Reservation::Acquired(token)) => {
                with_timeout(t.call_timeout, self.store.commit(key, token, t.ttl)).await
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = committed {
            self.metrics.dedup_store_errors.inc();
            tracing::warn!(request_id = %rid, error = %e, "dedup store failed to mark a delivery id");
        }
    }
}

/// The forwarded attempt panicked.
#[derive(Debug)]
struct Panicked;

/// Polls an attempt in place (no task per request); if the request future is dropped
/// first (the provider hung up), the rest of the attempt moves to its own task, so the
/// forward still completes and its dedup entry is still committed or released.
struct FinishOnDrop<F: Future + Send + 'static>
where
    F::Output: Send,
{
    attempt: Option<Pin<Box<F>>>,
}

impl<F: Future + Send + 'static> FinishOnDrop<F>
where
    F::Output: Send,
{
    fn new(attempt: F) -> Self {
        FinishOnDrop {
            attempt: Some(Box::pin(attempt)),
        }
    }
}

impl<F: Future + Send + 'static> Future for FinishOnDrop<F>
where
    F::Output: Send,
{
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(attempt) = self.attempt.as_mut() else {
            return Poll::Ready(Err(Panicked));
        };
        // A panic must not take the connection down with it: answer 502 instead.
        match std::panic::catch_unwind(AssertUnwindSafe(|| attempt.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                self.attempt = None;
                Poll::Ready(Ok(out))
            }
            Err(_) => {
                self.attempt = None;
                Poll::Ready(Err(Panicked))
            }
        }
    }
}

impl<F: Future + Send + 'static> Drop for FinishOnDrop<F>
where
    F::Output: Send,
{
    fn drop(&mut self) {
        if let Some(attempt) = self.attempt.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                drop(runtime.spawn(async move {
                    let _ = attempt.await;
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DedupSource;
    use crate::dedup::MemoryStore;
    use crate::layers::test_support::*;
    use crate::metrics::Metrics;
    use http::HeaderName;
    use tower::{ServiceBuilder, ServiceExt};

    fn layer(source: DedupSource, required: bool) -> DedupLayer {
        layer_on(Arc::new(MemoryStore::new(100)), source, required)
    }

    fn layer_on(store: Arc<dyn DedupStore>, source: DedupSource, required: bool) -> DedupLayer {
        DedupLayer::new(
            store,
            DedupKeyConfig { source, required },
            Binding {
                id_signed: true,
                reconciled: false,
            },
            "r",
            DedupTimings {
                lease: Duration::from_secs(60),
                ttl: Duration::from_secs(3600),
                call_timeout: Duration::from_millis(250),
                on_store_error: OnStoreError::Reject,
                upstream_timeout: Duration::from_secs(2),
            },
            Metrics::default().route("r", &[]),
        )
    }

    fn req_with(header: Option<&str>, body: &'static [u8]) -> Request<Bytes> {
        let mut req = request(body);
        if let Some(v) = header {
            req.headers_mut().insert("x-id", v.parse().unwrap());
        }
        req
    }

    #[tokio::test]
    async fn second_copy_is_a_duplicate() {
        let svc = ServiceBuilder::new()
            .layer(layer(
                DedupSource::Header(HeaderName::from_static("x-id")),
                true,
            ))
            .service(echo());
        let first = svc
            .clone()
            .oneshot(req_with(Some("evt_1"), b"a"))
            .await
            .unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(
            respond::outcome_of(&first),
            crate::context::Outcome::Forwarded(http::StatusCode::OK)
        );
        let second = svc.oneshot(req_with(Some("evt_1"), b"a")).await.unwrap();
        assert_eq!(
            respond::outcome_of(&second),
            crate::context::Outcome::Duplicate
        );
    }

    /// The lease is a minute, but the attempt holding the id answers within the route's
    /// 2 s timeout: the provider is told to come back then, not in a minute.
    #[tokio::test]
    async fn in_flight_retry_after_is_the_route_timeout_not_the_whole_lease() {
        let store = Arc::new(MemoryStore::new(100));
        let held = store
            .reserve("r:evt_1", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(matches!(held, Reservation::Acquired(_)));
        let svc = ServiceBuilder::new()
            .layer(layer_on(
                store,
                DedupSource::Header(HeaderName::from_static("x-id")),
                true,
            ))
            .service(echo());
        let resp = svc.oneshot(req_with(Some("evt_1"), b"a")).await.unwrap();
        assert_eq!(resp.status(), 409);
        assert_eq!(resp.headers()["retry-after"], "3");
    }

    #[tokio::test]
    async fn missing_key_required_vs_optional() {
        let required = ServiceBuilder::new()
            .layer(layer(
                DedupSource::Header(HeaderName::from_static("x-id")),
                true,
            ))
            .service(echo());
        let resp = required.oneshot(req_with(None, b"a")).await.unwrap();
        assert_eq!(
            status_reason(resp).await,
            (400, Some("missing_dedup_key".into()))
        );
        let optional = ServiceBuilder::new()
            .layer(layer(
                DedupSource::Header(HeaderName::from_static("x-id")),
                false,
            ))
            .service(echo());
        assert_eq!(
            optional
                .oneshot(req_with(None, b"a"))
                .await
                .unwrap()
                .status(),
            200
        );
    }

    #[tokio::test]
    async fn an_attempt_dropped_midway_still_finishes() {
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let attempt = FinishOnDrop::new(async move {
            let _ = gate_rx.await;
            let _ = done_tx.send("settled");
        });
        // Polled once, then dropped like a request whose client hung up.
        assert!(tokio::time::timeout(Duration::from_millis(10), attempt)
            .await
            .is_err());
        gate_tx.send(()).unwrap();
        assert_eq!(done_rx.await.unwrap(), "settled");
    }

    #[tokio::test]
    async fn a_panicking_attempt_is_an_error_not_a_crash() {
        let attempt = FinishOnDrop::new(async {
            if true {
                panic!("bug in the forward path");
            }
        });
        assert!(attempt.await.is_err());
    }

    #[test]
    fn json_pointer_and_body_hash_keys() {
        let req = request(br#"{"event": {"id": "evt_9"}, "n": 7}"#);
        assert_eq!(
            extract_id(&DedupSource::JsonPointer("/event/id".into()), &req).as_deref(),
            Some("evt_9")
        );
        assert_eq!(
            extract_id(&DedupSource::JsonPointer("/n".into()), &req).as_deref(),
            Some("7")
        );
        assert_eq!(
            extract_id(&DedupSource::JsonPointer("/missing".into()), &req),
            None
        );
        assert_eq!(
            extract_id(
                &DedupSource::JsonPointer("/id".into()),
                &request(b"not json")
            ),
            None
        );
        let h = extract_id(&DedupSource::BodySha256, &request(b"abc")).unwrap();
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
