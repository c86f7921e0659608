//! The delivery workers: a dispatcher claims due deliveries for every buffered route and
//! target with free `upstream_concurrency`, and each claimed delivery gets one attempt,
//! sent through the target's upstream exactly as a sync route forwards (same headers, plus
//! `X-Hookwall-Attempt`). The attempt's end is written back: delivered (the row goes), try
//! again later (backoff), or a dead letter. Every attempt is journaled.
//!
//! At-least-once: a row is deleted only after the upstream's 2xx. An instance that dies
//! mid-attempt leaves its claim, which expires after the visibility timeout (or at once,
//! for SQLite, when the process starts again), and the delivery is attempted again.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};

use super::backoff::{self, AttemptResult, Next};
use super::{now_micros, Queue};
use crate::config::Buffered;
use crate::context::{
    Attempt, DeliveryId, Outcome, RequestContext, RequestRecord, VerifiedBy, WouldReject,
};
use crate::forward::Upstream;
use crate::gateway::{Gateway, Live};
use crate::journal::Draft;
use crate::respond;
use crate::stack::Route;
use crate::storage::queue::{QueuedDelivery, Settled};

/// How often the dispatcher looks for due deliveries when nothing wakes it (retries that
/// come due, deliveries another instance queued without a notification).
const POLL: Duration = Duration::from_millis(500);

/// Claims and attempts deliveries until `stop` says so. Attempts already started are left
/// to finish (see [`drain`]).
pub(crate) async fn dispatch(
    gateway: Arc<Gateway>,
    queue: Arc<Queue>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let live = gateway.live();
        let now = now_micros();
        let visibility = live.config().queue.visibility_timeout;
        let until = now + i64::try_from(visibility.as_micros()).unwrap_or(i64::MAX);
        let mut claim_failed = false;
        'routes: for route in live.routes().iter() {
            let Some(buffered) = route.config.delivery.buffered() else {
                continue;
            };
            for (target, upstream) in &route.targets {
                let in_flight = queue.in_flight(&route.config.name, target);
                let free = buffered
                    .upstream_concurrency
                    .saturating_sub(in_flight.load(Ordering::Relaxed));
                if free == 0 {
                    continue;
                }
                let claimed = queue
                    .storage
                    .claim(&route.config.name, target, free, now, &queue.claimer, until)
                    .await;
                match claimed {
                    Ok(items) => {
                        for item in items {
                            in_flight.fetch_add(1, Ordering::Relaxed);
                            tokio::spawn(attempt(
                                gateway.clone(),
                                live.clone(),
                                queue.clone(),
                                route.clone(),
                                buffered.clone(),
                                upstream.clone(),
                                item,
                            ));
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "the delivery queue cannot be read; deliveries wait until it can");
                        }
                        claim_failed = true;
                        break 'routes;
                    }
                }
            }
        }
        if failing && !claim_failed {
            tracing::info!("the delivery queue can be read again");
        }
        failing = claim_failed;
        tokio::select! {
            () = queue.wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Most attempt results written in one transaction.
const SETTLE_BATCH: usize = 1024;

/// One attempt's end, for the settler.
#[derive(Debug)]
pub(crate) struct AttemptEnd {
    /// The queue row.
    pub id: String,
    /// How it ended.
    pub how: Settled,
    /// The in-flight counter its slot goes back to once written.
    pub slot: Arc<std::sync::atomic::AtomicUsize>,
}

/// Writes attempt results, all that are waiting in one transaction, until the queue is
/// gone. A batch that fails is logged: its rows stay claimed until the visibility timeout
/// and are attempted again (a duplicate at worst, never a loss).
pub(crate) async fn settle_loop(
    mut results: tokio::sync::mpsc::UnboundedReceiver<AttemptEnd>,
    queue: std::sync::Weak<Queue>,
) {
    let mut batch = Vec::with_capacity(SETTLE_BATCH);
    while results.recv_many(&mut batch, SETTLE_BATCH).await > 0 {
        let Some(queue) = queue.upgrade() else {
            return;
        };
        let rows: Vec<(String, Settled)> = batch
            .iter()
            .map(|r| (r.id.clone(), r.how.clone()))
            .collect();
        if let Err(e) = queue.storage.settle(&queue.claimer, &rows).await {
            tracing::warn!(error = %e, results = rows.len(), "delivery attempts not recorded; they will be attempted again");
        }
        for r in batch.drain(..) {
            r.slot.fetch_sub(1, Ordering::Relaxed);
        }
        queue
            .pending_settles
            .fetch_sub(rows.len(), Ordering::Relaxed);
        queue.wake.notify_one();
    }
}

/// Waits (at most `grace`) for the attempts in flight to finish and their results to be
/// written, then gives back the claims of any that did not, so they are due again at once.
pub(crate) async fn drain(queue: &Queue, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    while (queue.attempts_in_flight() > 0 || queue.settles_pending() > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = queue.attempts_in_flight();
    match queue.storage.release_claims(Some(&queue.claimer)).await {
        Ok(n) if n > 0 || left > 0 => {
            tracing::info!(
                released = n,
                unfinished = left,
                "delivery attempts still in flight at shutdown are queued again"
            );
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "claims not given back at shutdown; they expire after the visibility timeout");
        }
    }
}

/// The stored request, as the route's stack had it when it accepted the delivery.
fn rebuild(item: &QueuedDelivery) -> Option<Request<Bytes>> {
    let mut headers = HeaderMap::with_capacity(item.headers.len());
    for (name, value) in &item.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_bytes(value).ok()?,
        );
    }
    let mut req = Request::builder()
        .method(item.method.parse::<Method>().ok()?)
        .uri(item.path.as_str())
        .body(item.body.clone())
        .ok()?;
    *req.headers_mut() = headers;
    let client_ip: IpAddr = item.client_ip.parse().ok()?;
    let peer: IpAddr = item.peer_ip.parse().unwrap_or(client_ip);
    // Shadow mode: the acceptance's decision, for `X-Hookwall-Would-Reject`.
    let record = RequestRecord::default();
    if let Some(why) = item
        .would_reject
        .as_deref()
        .and_then(WouldReject::from_reason)
    {
        let _ = record.would_reject.set(why);
    }
    if item.unverified {
        let _ = record.unverified.set(());
    }
    let ext = req.extensions_mut();
    ext.insert(RequestContext {
        request_id: item.request_id.as_str().into(),
        peer: SocketAddr::new(peer, 0),
        client_ip,
        peer_trusted: item.peer_trusted,
        received: tokio::time::Instant::now(),
        https: item.https,
        record: Arc::new(record),
    });
    if let Some(id) = &item.delivery_id {
        ext.insert(DeliveryId(id.as_str().into()));
    }
    ext.insert(Attempt(item.attempts));
    if let Some(by) = &item.verified_by {
        ext.insert(VerifiedBy(by.as_str().into()));
    }
    Some(req)
}

/// One attempt of one claimed delivery, settled in storage, counted and journaled.
async fn attempt(
    gateway: Arc<Gateway>,
    live: Arc<Live>,
    queue: Arc<Queue>,
    route: Arc<Route>,
    buffered: Arc<Buffered>,
    upstream: Arc<Upstream>,
    item: QueuedDelivery,
) {
    let (name, target) = (route.config.name.as_str(), item.target.as_str());
    let started = SystemTime::now();
    let (result, outcome, status, headers) = match rebuild(&item) {
        Some(mut req) => {
            let headers = req.headers().clone();
            // Each attempt is a root span, in the trace the provider's request started.
            let trace = gateway.shared.telemetry.root(
                "queue attempt",
                opentelemetry::trace::SpanKind::Internal,
                Some(&headers),
                || {
                    let mut attributes = vec![
                        opentelemetry::KeyValue::new("hookwall.route", name.to_owned()),
                        opentelemetry::KeyValue::new("hookwall.target", target.to_owned()),
                        opentelemetry::KeyValue::new("hookwall.attempt", i64::from(item.attempts)),
                    ];
                    if let Some(id) = &item.delivery_id {
                        attributes.push(opentelemetry::KeyValue::new(
                            "hookwall.dedup_id",
                            id.clone(),
                        ));
                    }
                    attributes
                },
            );
            req.extensions_mut().insert(trace.clone());
            let resp = upstream.send(req).await;
            trace.end_with(&resp);
            let outcome = respond::outcome_of(&resp);
            let result = match outcome {
                Outcome::Forwarded(s) => AttemptResult::Status(
                    s.as_u16(),
                    backoff::retry_after(s.as_u16(), resp.headers()),
                ),
                Outcome::Rejected(r) => AttemptResult::Failed(r.reason()),
                _ => AttemptResult::Failed("upstream_error"),
            };
            (result, outcome, resp.status().as_u16(), Some(headers))
        }
        // Only a hand-edited row gets here: there is nothing to send.
        None => (
            AttemptResult::Failed("unreadable"),
            Outcome::Rejected(crate::error::Rejection::UpstreamError),
            502,
            None,
        ),
    };
    let now = now_micros();
    let metrics = &gateway.metrics().queue;
    let settled = match result {
        AttemptResult::Status(s, _) if (200..300).contains(&s) => {
            metrics.attempted(name, target, "2xx");
            metrics.delivered(name, target, (now - item.received_at) as f64 / 1e6);
            Settled::Delivered
        }
        ref failed => {
            let age = Duration::from_micros(u64::try_from(now - item.received_at).unwrap_or(0));
            let (status, error) = match failed {
                AttemptResult::Status(s, _) => (Some(*s), format!("upstream answered {s}")),
                AttemptResult::Failed(reason) => (None, (*reason).to_owned()),
            };
            match backoff::next(
                &buffered.retry,
                &buffered.retry_on,
                item.attempts,
                age,
                failed,
                rand::random::<f64>(),
            ) {
                Next::RetryIn(delay) => {
                    metrics.attempted(name, target, "retry");
                    Settled::RetryAt {
                        at: now + i64::try_from(delay.as_micros()).unwrap_or(i64::MAX),
                        status,
                        error,
                    }
                }
                Next::DeadLetter(reason) => {
                    metrics.attempted(name, target, "dead_letter");
                    metrics.dead_lettered(name, target, reason);
                    tracing::warn!(
                        route = name,
                        target,
                        delivery_id = item.delivery_id.as_deref(),
                        attempts = item.attempts,
                        reason,
                        error = %error,
                        "delivery dead-lettered"
                    );
                    Settled::Dead {
                        status,
                        error,
                        reason,
                        at: now,
                    }
                }
            }
        }
    };
    journal(
        &gateway, &live, &route, &item, started, outcome, status, headers,
    );
    queue.settle(AttemptEnd {
        id: item.id.clone(),
        how: settled,
        slot: queue.in_flight(name, target),
    });
}

/// The attempt's journal entry: the delivery's headers as received, no body (the
/// acceptance's entry has it), the attempt's number and target.
#[allow(clippy::too_many_arguments)]
fn journal(
    gateway: &Gateway,
    live: &Arc<Live>,
    route: &Arc<Route>,
    item: &QueuedDelivery,
    started: SystemTime,
    outcome: Outcome,
    status: u16,
    headers: Option<HeaderMap>,
) {
    let Some(journal) = gateway.journal() else {
        return;
    };
    if route.config.journal.is_none() {
        return;
    }
    let upstream_ms = SystemTime::now()
        .duration_since(started)
        .map(|d| d.as_secs_f64() * 1000.0)
        .ok();
    journal.submit(Draft {
        received_at: started,
        request_id: item.request_id.as_str().into(),
        route: route.clone(),
        live: live.clone(),
        method: item.method.parse().unwrap_or(Method::POST),
        path: item.path.clone(),
        client_ip: item.client_ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        headers: Some(headers.unwrap_or_default()),
        body: None,
        outcome,
        status,
        upstream_ms,
        dedup_id: item.delivery_id.as_deref().map(Arc::from),
        key: None,
        refused_headers: None,
        store: true,
        attempt: Some(item.attempts),
        target: Some(item.target.clone()),
        polled: false,
        would_reject: item
            .would_reject
            .as_deref()
            .and_then(WouldReject::from_reason),
        unverified: item.unverified,
    });
}
