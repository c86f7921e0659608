//! The journal's task: drafts in, entries out, in batches.
//!
//! Each turn takes whatever drafts are queued (up to [`BATCH`]), so the batch grows with
//! the load while the previous one is being written: one transaction (one fsync on SQLite)
//! per batch, not per request. Everything the request path should not pay for happens
//! here: redaction, the body policy and cut, the body's SHA-256, the diagnosis of refused
//! signatures. A batch the storage refuses is dropped and counted, never retried into a
//! growing backlog.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::diagnosis::{diagnose, timestamp_in_other_unit, DiagnosisBudget, Hint, Refused};
use super::{redact, Draft};
use crate::config::BodyPolicy;
use crate::context::Outcome;
use crate::error::Rejection;
use crate::metrics::Metrics;
use crate::storage::journal::StoredEntry;
use crate::storage::Storage;
use crate::verify::SignedRequest;

/// Most entries written in one transaction.
pub(crate) const BATCH: usize = 512;
/// How long a batch waits for more drafts once its first has come: under a steady load
/// one commit per 20 ms, not one per handful of drafts (every commit rewrites the tail
/// pages of each index and syncs). An entry shows up in the journal this much later.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// Unix microseconds of a time.
pub(crate) fn unix_micros(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A time-ordered id (UUIDv7) for something that happened at `t`. Ids made by this process
/// only grow, even for the same millisecond (a counter), so "newest first" is the order
/// things were recorded in.
pub(crate) fn time_ordered_id(t: std::time::SystemTime) -> String {
    static CONTEXT: std::sync::Mutex<uuid::ContextV7> =
        std::sync::Mutex::new(uuid::ContextV7::new());
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let context = CONTEXT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ts = uuid::Timestamp::from_unix(&*context, since.as_secs(), since.subsec_nanos());
    uuid::Uuid::new_v7(ts).to_string()
}

/// Writes drafts until `shutdown` resolves; then takes no new ones, writes those queued,
/// and returns.
pub(crate) async fn run(
    mut rx: mpsc::Receiver<Draft>,
    storage: Arc<Storage>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut budget = DiagnosisBudget::default();
    tokio::pin!(shutdown);
    let mut stopping = false;
    loop {
        let first = if stopping {
            rx.recv().await
        } else {
            tokio::select! {
                d = rx.recv() => d,
                () = &mut shutdown => {
                    stopping = true;
                    rx.close();
                    continue;
                }
            }
        };
        let Some(first) = first else { return };
        // Unless a whole batch is already waiting, let more come first: sleeping (rather
        // than waiting on the queue) means the request path wakes nobody per draft.
        if !stopping && rx.len() + 1 < BATCH {
            tokio::select! {
                () = tokio::time::sleep(LINGER) => {}
                () = &mut shutdown => {
                    stopping = true;
                    rx.close();
                }
            }
        }
        let mut drafts = Vec::with_capacity(BATCH);
        drafts.push(first);
        while drafts.len() < BATCH {
            match rx.try_recv() {
                Ok(d) => drafts.push(d),
                Err(_) => break,
            }
        }
        let mut entries = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let hint = diagnosis(&draft, &mut budget, &metrics);
            if draft.store {
                entries.push(entry(draft, hint));
            }
        }
        write(&storage, &metrics, entries).await;
    }
}

async fn write(storage: &Storage, metrics: &Metrics, entries: Vec<StoredEntry>) {
    if entries.is_empty() {
        return;
    }
    match storage.append_entries(&entries).await {
        Ok(()) => {
            let mut counts: Vec<(&str, u64)> = Vec::new();
            for e in &entries {
                match counts.iter_mut().find(|(r, _)| *r == e.route) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((&e.route, 1)),
                }
            }
            for (route, n) in counts {
                metrics.journal.written(route, n);
            }
        }
        Err(e) => {
            metrics
                .journal
                .dropped("storage_error", entries.len() as u64);
            tracing::warn!(error = %e, entries = entries.len(), "journal entries dropped: storage refused the write");
        }
    }
}

/// The diagnosis of a refused signature (or of a timestamp refused in the wrong unit), if
/// this draft has one and the route's budget allows; logged and counted.
fn diagnosis(draft: &Draft, budget: &mut DiagnosisBudget, metrics: &Metrics) -> Option<Hint> {
    let route = &draft.route.config;
    let hint = match draft.outcome {
        Outcome::Rejected(Rejection::InvalidSignature) => {
            let headers = draft.refused_headers.as_ref()?;
            let body = draft.body.as_deref().unwrap_or_default();
            if !budget.allow(&route.name) {
                return None;
            }
            let refused = Refused {
                route,
                method: &draft.method,
                headers,
                body,
                query: draft.path.split_once('?').map(|(_, q)| q),
            };
            diagnose(&refused, &draft.live.config().routes)
        }
        Outcome::Rejected(Rejection::TimestampOutOfWindow) => {
            let (headers, window) = (draft.headers.as_ref()?, route.window?);
            let url = route
                .public_url
                .as_deref()
                .map(|base| match draft.path.split_once('?') {
                    Some((_, q)) => format!("{base}?{q}"),
                    None => base.to_owned(),
                });
            let verdict = route.verifier.verify(&SignedRequest {
                method: &draft.method,
                headers,
                body: draft.body.as_deref().unwrap_or_default(),
                url: url.as_deref(),
            });
            let crate::verify::Verdict::Valid { timestamp, .. } = verdict else {
                return None;
            };
            let now = unix_micros(draft.received_at) as f64 / 1e6;
            if !timestamp_in_other_unit(timestamp, window, now) || !budget.allow(&route.name) {
                return None;
            }
            Hint::TimestampUnit
        }
        _ => return None,
    };
    metrics.journal.diagnosed(&route.name, hint.as_str());
    tracing::warn!(
        request_id = %draft.request_id,
        route = %route.name,
        hint = hint.as_str(),
        "signature check failed; the likely cause is {}", hint.as_str()
    );
    Some(hint)
}

/// Whether the request passed the signature and timestamp checks (or came over the
/// provider's API).
fn verified(draft: &Draft) -> bool {
    draft.polled
        || draft.key.is_some()
            && !draft.unverified
            && !matches!(
                draft.outcome,
                Outcome::Rejected(Rejection::TimestampOutOfWindow)
            )
}

/// The stored form of a draft: redacted, body kept per policy and cut, hashed.
fn entry(draft: Draft, diagnosis: Option<Hint>) -> StoredEntry {
    let route = &draft.route.config;
    let settings = route.journal.as_ref();
    let verified = verified(&draft);
    let keep_body = match settings.map_or(BodyPolicy::None, |j| j.bodies) {
        BodyPolicy::All => true,
        BodyPolicy::Accepted => verified,
        BodyPolicy::None => false,
    };
    let max_body = draft.live.config().journal.max_stored_body;
    let received = draft.body.as_deref();
    let body_sha256 = received.map(|b| hex::encode(Sha256::digest(b)));
    let (mut body, mut body_redacted, mut truncated) = (None, false, false);
    if let (true, Some(b)) = (keep_body, draft.body.as_ref()) {
        let redacted = settings.and_then(|j| redact::json_body(b, &j.redact_json));
        body_redacted = redacted.is_some();
        // The received bytes themselves (no copy) unless redaction made new ones.
        let mut kept = redacted.map_or_else(|| b.clone(), bytes::Bytes::from);
        if kept.len() > max_body {
            kept.truncate(max_body);
            truncated = true;
        }
        body = Some(kept);
    }
    let empty = HeaderMap::new();
    let headers = redact::headers(
        draft.headers.as_ref().unwrap_or(&empty),
        &redact::credential_headers(route),
        settings.map_or(&[][..], |j| &j.redact_headers),
    );
    let (reason, upstream_status) = match draft.outcome {
        Outcome::Rejected(r) => (Some(r.reason().to_owned()), None),
        Outcome::Forwarded(s) => (None, Some(i64::from(s.as_u16()))),
        _ => (None, None),
    };
    StoredEntry {
        id: time_ordered_id(draft.received_at),
        request_id: draft.request_id.to_string(),
        received_at: unix_micros(draft.received_at),
        route: route.name.clone(),
        method: draft.method.to_string(),
        path: redact::path(route, draft.path),
        client_ip: draft.client_ip.to_string(),
        headers,
        body,
        body_size: received.map_or(0, |b| b.len() as i64),
        body_sha256,
        truncated,
        body_redacted,
        outcome: draft.outcome.label().to_owned(),
        reason,
        status: i64::from(draft.status),
        upstream_status,
        upstream_ms: draft.upstream_ms,
        dedup_id: draft.dedup_id.map(|d| d.to_string()),
        key_id: draft.key.and_then(|k| route.secret_labels.get(k).cloned()),
        diagnosis: diagnosis.map(|h| h.as_str().to_owned()),
        verified,
        attempt: draft.attempt.map(i64::from),
        target: draft.target,
        would_reject: draft.would_reject.map(|w| w.reason().to_owned()),
    }
}
