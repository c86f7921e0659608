//! The delivery journal (CONTRACT §9): one entry per request that matched a route,
//! rejected ones included, kept in storage, searchable, replayable.
//!
//! Off the request path by construction: the front hands a [`Draft`] (what it already
//! has: the head, the body bytes, the answer) to a bounded queue with `try_send`, which
//! never waits; the journal's own task ([`writer`]) turns drafts into entries — redaction
//! ([`redact`]), the body policy, the body's hash, the signature-failure diagnosis
//! ([`diagnosis`]) — and writes them in batches, one transaction each. A full queue, a slow
//! or a failed storage drops entries and counts them in `hookwall_journal_dropped_total`;
//! it never delays or changes an answer. [`retention`] deletes by age and size in the
//! background; [`replay`] sends stored deliveries again.

pub(crate) mod diagnosis;
pub(crate) mod redact;
pub(crate) mod replay;
pub(crate) mod retention;
pub(crate) mod writer;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method};
use tokio::sync::mpsc;

use crate::context::{Outcome, WouldReject};
use crate::gateway::Live;
use crate::metrics::Metrics;
use crate::stack::Route;

/// Drafts the queue holds before the writer takes them; beyond this they are dropped.
pub(crate) const QUEUE_CAPACITY: usize = 16 * 1024;

/// What the front knows of a finished request, handed to the journal as is.
#[derive(Debug)]
pub(crate) struct Draft {
    /// When the head arrived.
    pub received_at: SystemTime,
    /// The request's own id.
    pub request_id: Arc<str>,
    /// The route it matched, as built (config, verifier).
    pub route: Arc<Route>,
    /// The table it ran on (other routes' secrets, for the diagnosis).
    pub live: Arc<Live>,
    /// Request method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// The real client IP.
    pub client_ip: IpAddr,
    /// Request headers; `None` when only the diagnosis wants this draft.
    pub headers: Option<HeaderMap>,
    /// The body, if it was read.
    pub body: Option<Bytes>,
    /// What happened.
    pub outcome: Outcome,
    /// What the client was answered.
    pub status: u16,
    /// How long the upstream took.
    pub upstream_ms: Option<f64>,
    /// The delivery id dedup used.
    pub dedup_id: Option<Arc<str>>,
    /// The index of the secret that verified the signature.
    pub key: Option<usize>,
    /// The headers of a request refused for its signature (for the diagnosis).
    pub refused_headers: Option<HeaderMap>,
    /// Whether to store it (`false`: only diagnose it, the route is not journaled).
    pub store: bool,
    /// A buffered route's delivery attempt: its number (from 1).
    pub attempt: Option<u32>,
    /// And the target it went to.
    pub target: Option<String>,
    /// Polled from the provider's API (reconcile): vouched for by the API, not a signature.
    pub polled: bool,
    /// Shadow mode: what hookwall would have answered instead of forwarding.
    pub would_reject: Option<WouldReject>,
    /// Shadow mode: forwarded although the signature or timestamp check failed.
    pub unverified: bool,
}

/// The handle the front submits drafts through.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    tx: mpsc::Sender<Draft>,
    metrics: Arc<Metrics>,
}

impl Journal {
    /// A journal whose drafts `rx` receives (see [`writer::run`]).
    pub(crate) fn channel(metrics: Arc<Metrics>) -> (Self, mpsc::Receiver<Draft>) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        (Journal { tx, metrics }, rx)
    }

    /// Queues a draft without waiting; a full or stopped journal drops it and counts it.
    pub(crate) fn submit(&self, draft: Draft) {
        let store = draft.store;
        match self.tx.try_send(draft) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) if store => {
                self.metrics.journal.dropped("queue_full", 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) if store => {
                self.metrics.journal.dropped("stopped", 1);
            }
            Err(_) => {}
        }
    }
}
