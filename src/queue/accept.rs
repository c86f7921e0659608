//! Acceptance: the innermost service of a buffered route. Once checks 1–8 have passed (the
//! delivery is authentic, fresh and reserved by dedup), it writes one queue row per target
//! that wants the delivery and answers `202 queued` only when the rows are committed — a
//! `202` is a promise that the delivery is on disk. Dedup then marks the id delivered.
//! A write that fails or does not finish in time answers `503 queue_unavailable` (dedup
//! releases the id, the provider retries); a full queue `503 queue_full`.
//!
//! Group commit: requests hand their rows to one committer task, which writes everything
//! that arrived while the previous transaction was committing in one transaction — one
//! fsync for many deliveries under load, no waiting when there is no load.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Request;
use tokio::sync::{mpsc, oneshot};
use tower::Service;

use super::{now_micros, Queue, QueueSlot};
use crate::config::{Buffered, EventSource};
use crate::context::{DeliveryId, EventType, RequestContext, UpstreamAccepted, VerifiedBy};
use crate::error::Rejection;
use crate::events::{event_type, wanted};
use crate::journal::writer::time_ordered_id;
use crate::layers::request_id;
use crate::respond::{self, HttpResponse};
use crate::storage::queue::QueuedDelivery;
use crate::storage::{Storage, StorageError};

/// Most rows the committer writes in one transaction.
const MAX_COMMIT_ROWS: usize = 2048;
/// Acceptances waiting for the committer; beyond this they are refused at once
/// (`queue_unavailable`) rather than piling up behind a storage that does not keep up.
const PENDING_COMMITS: usize = 8192;
/// How long an acceptance waits for its commit. Providers give 1–30 s for an answer; a
/// commit this slow means the storage is in trouble, and a 503 makes the provider retry.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows to commit and who waits for the result.
pub(super) struct Commit {
    rows: Vec<QueuedDelivery>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The committer's inbox.
pub(super) fn channel() -> (mpsc::Sender<Commit>, mpsc::Receiver<Commit>) {
    mpsc::channel(PENDING_COMMITS)
}

/// The committer: writes what is waiting in one transaction, answers each waiter, repeats.
/// Ends when every sender is gone.
pub(super) async fn commit_loop(mut inbox: mpsc::Receiver<Commit>, storage: Arc<Storage>) {
    while let Some(first) = inbox.recv().await {
        let mut rows = first.rows;
        let mut waiters = vec![first.done];
        while rows.len() < MAX_COMMIT_ROWS {
            match inbox.try_recv() {
                Ok(c) => {
                    rows.extend(c.rows);
                    waiters.push(c.done);
                }
                Err(_) => break,
            }
        }
        let result = storage
            .enqueue(&rows, now_micros())
            .await
            .map_err(|e: StorageError| e.to_string());
        for done in waiters {
            let _ = done.send(result.clone());
        }
    }
}

/// The acceptance service of one buffered route.
#[derive(Clone)]
pub(crate) struct Accept {
    route: Arc<str>,
    buffered: Arc<Buffered>,
    event: Option<Arc<EventSource>>,
    queue: QueueSlot,
}

impl std::fmt::Debug for Accept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accept")
            .field("route", &self.route)
            .finish()
    }
}

impl Accept {
    /// Accepts deliveries of `route` into the queue `queue` holds (once storage is attached).
    pub(crate) fn new(
        route: &str,
        buffered: Arc<Buffered>,
        event: Option<EventSource>,
        queue: QueueSlot,
    ) -> Self {
        Accept {
            route: route.into(),
            buffered,
            event: event.map(Arc::new),
            queue,
        }
    }
}

/// The queue rows for a delivery: one per target whose events want it.
fn rows_for(
    route: &str,
    buffered: &Buffered,
    event: Option<&EventSource>,
    req: &Request<Bytes>,
) -> Vec<QueuedDelivery> {
    // Finding the event type may parse the body: only when a target filters on it.
    let filtered = buffered.targets.iter().any(|t| !t.events.is_empty());
    // The route's own filter may have found it already.
    let event = match req.extensions().get::<EventType>() {
        Some(EventType(found)) => found.as_deref().map(str::to_owned),
        None => event
            .filter(|_| filtered)
            .and_then(|s| event_type(s, req.headers(), req.body())),
    };
    let ctx = req.extensions().get::<RequestContext>();
    let delivery_id = req
        .extensions()
        .get::<DeliveryId>()
        .map(|d| d.0.to_string());
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let now = SystemTime::now();
    // Each row is the same delivery for another target.
    let request_id = ctx.map_or_else(|| "-".to_owned(), |c| c.request_id.to_string());
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    let client_ip = ctx.map_or_else(String::new, |c| c.client_ip.to_string());
    let verified_by = req
        .extensions()
        .get::<VerifiedBy>()
        .map(|v| v.0.to_string());
    let peer_ip = ctx.map_or_else(String::new, |c| c.peer.ip().to_string());
    // Shadow mode: what the checks would have answered goes with every attempt.
    let would_reject = ctx
        .and_then(|c| c.record.would_reject.get())
        .map(|w| w.reason().to_owned());
    let unverified = ctx.is_some_and(|c| c.record.unverified.get().is_some());
    buffered
        .targets
        .iter()
        .filter(|t| wanted(&t.events, event.as_deref()))
        .map(|t| QueuedDelivery {
            id: time_ordered_id(now),
            route: route.to_owned(),
            target: t.name.clone(),
            delivery_id: delivery_id.clone(),
            request_id: request_id.clone(),
            method: method.clone(),
            path: path.clone(),
            headers: headers.clone(),
            body: req.body().clone(),
            client_ip: client_ip.clone(),
            peer_ip: peer_ip.clone(),
            peer_trusted: ctx.is_some_and(|c| c.peer_trusted),
            https: ctx.is_some_and(|c| c.https),
            received_at: super::micros(now),
            attempts: 0,
            verified_by: verified_by.clone(),
            would_reject: would_reject.clone(),
            unverified,
        })
        .collect()
}

/// An answer dedup counts as taken (the id is marked delivered).
fn taken(mut resp: HttpResponse) -> HttpResponse {
    resp.extensions_mut().insert(UpstreamAccepted);
    resp
}

async fn accept(
    route: Arc<str>,
    buffered: Arc<Buffered>,
    event: Option<Arc<EventSource>>,
    queue: Option<Arc<Queue>>,
    req: Request<Bytes>,
) -> HttpResponse {
    let rid = request_id(&req);
    let rows = rows_for(&route, &buffered, event.as_deref(), &req);
    if rows.is_empty() {
        // Verified, but no target wants this event: the provider must not retry it.
        return taken(respond::ignored(&rid));
    }
    let Some(queue) = queue else {
        return respond::rejection(&rid, Rejection::QueueUnavailable);
    };
    let n = rows.len() as u64;
    if !queue.has_room(&route, n, buffered.max_queued) {
        return respond::rejection(&rid, Rejection::QueueFull);
    }
    let delivery_id = rows[0].delivery_id.clone();
    let (done, committed) = oneshot::channel();
    if queue.commits.try_send(Commit { rows, done }).is_err() {
        tracing::warn!(request_id = %rid, route = %route, "queue committer is backed up; answering 503");
        return respond::rejection(&rid, Rejection::QueueUnavailable);
    }
    match tokio::time::timeout(COMMIT_TIMEOUT, committed).await {
        Ok(Ok(Ok(()))) => {
            queue.added(&route, n);
            taken(respond::queued(&rid, delivery_id.as_deref()))
        }
        Ok(Ok(Err(e))) => {
            tracing::warn!(request_id = %rid, route = %route, error = %e, "delivery not queued: storage refused the write");
            respond::rejection(&rid, Rejection::QueueUnavailable)
        }
        Ok(Err(_)) | Err(_) => {
            tracing::warn!(request_id = %rid, route = %route, "delivery not queued: the commit did not finish in time");
            respond::rejection(&rid, Rejection::QueueUnavailable)
        }
    }
}

impl Service<Request<Bytes>> for Accept {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = crate::layers::ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let (route, buffered, event) = (
            self.route.clone(),
            self.buffered.clone(),
            self.event.clone(),
        );
        let queue = self.queue.get().cloned();
        Box::pin(async move { Ok(accept(route, buffered, event, queue, req).await) })
    }
}
