//! Replays (CONTRACT §9): a stored delivery sent again, its exact bytes and headers, to the
//! route's *current* upstream, with `X-Hookwall-Replay-Of: <entry id>` and the original
//! `X-Hookwall-Delivery-Id`. Replays skip dedup (an operator asked for it), but a 2xx
//! replay of an id never delivered marks it delivered, so the provider's late retry is
//! answered `duplicate`.
//!
//! An entry that failed verification is replayed only with `reverify`, which runs the
//! stored request through the route's current signature check and its timestamp window as
//! judged when the request arrived: the fix for "we had the wrong secret for an hour".
//! Bulk replays ([`Jobs`]) go through the same path, paced, with their progress kept in
//! memory on the instance that runs them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request};

use super::redact::REDACTED;
use super::writer::{time_ordered_id, unix_micros};
use crate::context::{
    DeliveryId, Outcome, ReplayOf, RequestContext, RequestRecord, SignedIdHeader,
};
use crate::dedup::{with_timeout, Reservation};
use crate::gateway::Gateway;
use crate::layers::dedup::{extract_id, webhook_keys, Binding};
use crate::respond;
use crate::storage::journal::{EntryFilter, ReplayRecord, StoredEntry};
use crate::storage::{Storage, StorageError};
use crate::verify::{SignedRequest, SignedTimestamp, Verdict};

/// Why a replay was not sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplayError {
    /// No such entry.
    #[error("no journal entry with this id")]
    NotFound,
    /// The entry failed verification and `reverify` was not asked for.
    #[error("the delivery did not pass verification; replay it with reverify=true")]
    NotVerified,
    /// The body was not kept (by the `bodies` policy).
    #[error("the delivery's body was not kept (journal bodies policy)")]
    BodyNotStored,
    /// The kept body is not the one received (cut at `max_stored_body`, or redacted).
    #[error("the kept body is not the exact one received (cut or redacted)")]
    BodyNotExact,
    /// The route is not in the live config any more.
    #[error("route {0:?} is not configured any more")]
    RouteGone(String),
    /// Re-verification refused it.
    #[error("re-verification refused the delivery: {0}")]
    ReverifyFailed(&'static str),
    /// The stored method or path is not a request this hookwall can send.
    #[error("the stored method or path cannot be sent again")]
    Unreadable,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ReplayError {
    /// The `error` string of the admin answer.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ReplayError::NotFound => "not_found",
            ReplayError::NotVerified => "not_verified",
            ReplayError::BodyNotStored => "body_not_stored",
            ReplayError::BodyNotExact => "body_not_exact",
            ReplayError::RouteGone(_) => "route_gone",
            ReplayError::ReverifyFailed(_) => "reverify_failed",
            ReplayError::Unreadable => "unreadable",
            ReplayError::Storage(_) => "storage_unavailable",
        }
    }
}

/// What one replay did.
#[derive(Debug, Clone)]
pub(crate) struct Replayed {
    /// Its id.
    pub replay_id: String,
    /// The upstream's status, if it answered.
    pub upstream_status: Option<u16>,
    /// Why it did not answer.
    pub error: Option<&'static str>,
}

/// Headers for a replay: as stored, minus the redacted ones (their values are gone).
fn headers(entry: &StoredEntry) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in &entry.headers {
        if value == REDACTED {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(n, v);
        }
    }
    map
}

/// Runs the stored request through the route's current checks, the window judged at the
/// time the request arrived. Returns the header whose id the signature covered, if the
/// scheme names one (the dedup id is read from it, as on the request path).
fn reverify(
    route: &crate::config::RouteConfig,
    entry: &StoredEntry,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<HeaderName>, ReplayError> {
    let url = route
        .public_url
        .as_deref()
        .map(|base| match entry.path.split_once('?') {
            Some((_, q)) => format!("{base}?{q}"),
            None => base.to_owned(),
        });
    let method = entry
        .method
        .parse::<http::Method>()
        .unwrap_or(http::Method::POST);
    let (verdict, scheme) = route.verifier.verify_by(&SignedRequest {
        method: &method,
        headers,
        body,
        url: url.as_deref(),
    });
    let signed_id = scheme.and_then(|s| s.signed_id_header()).cloned();
    let timestamp = match verdict {
        Verdict::Valid { timestamp, .. } => timestamp,
        Verdict::Missing => return Err(ReplayError::ReverifyFailed("missing_signature")),
        Verdict::Invalid => return Err(ReplayError::ReverifyFailed("invalid_signature")),
    };
    let Some(window) = route.window else {
        return Ok(signed_id);
    };
    let SignedTimestamp::UnixMs(ms) = timestamp else {
        return Err(ReplayError::ReverifyFailed("timestamp_out_of_window"));
    };
    let skew = entry.received_at as f64 / 1e6 - ms as f64 / 1000.0;
    let within = if skew >= 0.0 {
        skew <= window.past.as_secs_f64()
    } else {
        -skew <= window.future.as_secs_f64()
    };
    if within {
        Ok(signed_id)
    } else {
        Err(ReplayError::ReverifyFailed("timestamp_out_of_window"))
    }
}

/// Replays entry `id`.
pub(crate) async fn replay(
    gateway: &Gateway,
    storage: &Storage,
    id: &str,
    reverify_first: bool,
) -> Result<Replayed, ReplayError> {
    let entry = storage.entry(id).await?.ok_or(ReplayError::NotFound)?;
    replay_entry(gateway, storage, &entry, reverify_first).await
}

async fn replay_entry(
    gateway: &Gateway,
    storage: &Storage,
    entry: &StoredEntry,
    reverify_first: bool,
) -> Result<Replayed, ReplayError> {
    let live = gateway.live();
    let route = live
        .routes()
        .by_name(&entry.route)
        .cloned()
        .ok_or_else(|| ReplayError::RouteGone(entry.route.clone()))?;
    if !entry.verified && !reverify_first {
        return Err(ReplayError::NotVerified);
    }
    let body = entry.body.as_deref().ok_or(ReplayError::BodyNotStored)?;
    if entry.truncated || entry.body_redacted {
        return Err(ReplayError::BodyNotExact);
    }
    let headers = headers(entry);
    let signed_id = if reverify_first {
        reverify(&route.config, entry, &headers, body)?
    } else {
        None
    };

    let client_ip: IpAddr = entry
        .client_ip
        .parse()
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let request_id = gateway.ids.next_id();
    let mut req = Request::builder()
        .method(entry.method.as_str())
        .uri(entry.path.as_str())
        .body(Bytes::copy_from_slice(body))
        .map_err(|_| ReplayError::Unreadable)?;
    *req.headers_mut() = headers;
    req.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        peer: SocketAddr::new(client_ip, 0),
        client_ip,
        peer_trusted: false,
        received: tokio::time::Instant::now(),
        https: false,
        record: Arc::new(RequestRecord::default()),
    });
    if let Some(h) = signed_id {
        req.extensions_mut().insert(SignedIdHeader(h));
    }
    // A delivery refused at the signature or timestamp check never reached dedup, so it
    // has no id yet: read it now, the way the route would have, so that the replay carries
    // it and a 2xx marks it delivered (the provider's own retry is then a duplicate).
    let dedup_id = entry.dedup_id.clone().or_else(|| {
        let key = route.config.dedup.as_ref()?;
        extract_id(&key.source, &req)
    });
    if let Some(d) = &dedup_id {
        req.extensions_mut().insert(DeliveryId(d.as_str().into()));
    }
    req.extensions_mut().insert(ReplayOf(entry.id.clone()));

    let resp = route.upstream.clone().send(req).await;
    let (upstream_status, error) = match respond::outcome_of(&resp) {
        Outcome::Forwarded(s) => (Some(s.as_u16()), None),
        Outcome::Rejected(r) => (None, Some(r.reason())),
        _ => (None, Some("upstream_error")),
    };
    let ok = upstream_status.is_some_and(|s| (200..300).contains(&s));
    if let (true, Some(id)) = (ok, &dedup_id) {
        mark_delivered(gateway, &route.config, id, body).await;
    }
    let result = match (ok, upstream_status) {
        (true, _) => "ok",
        (false, Some(_)) => "failed",
        (false, None) => "error",
    };
    gateway.metrics().journal.replayed(&entry.route, result);
    let now = SystemTime::now();
    let record = ReplayRecord {
        id: time_ordered_id(now),
        entry_id: entry.id.clone(),
        at: unix_micros(now),
        reverified: reverify_first,
        upstream_status: upstream_status.map(i64::from),
        error: error.map(str::to_owned),
    };
    if let Err(e) = storage.add_replay(&record).await {
        tracing::warn!(error = %e, entry = %entry.id, "replay sent, but not recorded");
    }
    tracing::info!(
        request_id = %request_id,
        route = %entry.route,
        replay_of = %entry.id,
        upstream_status,
        error,
        "delivery replayed"
    );
    Ok(Replayed {
        replay_id: record.id,
        upstream_status,
        error,
    })
}

/// After a 2xx replay: an id nobody delivered yet is marked delivered (under the key a live
/// delivery of these bytes uses); one delivered or in flight is left as it is.
async fn mark_delivered(
    gateway: &Gateway,
    route: &crate::config::RouteConfig,
    id: &str,
    body: &[u8],
) {
    if route.dedup.is_none() {
        return;
    }
    let live = gateway.live();
    let dedup = &live.config().dedup;
    let binding = Binding {
        id_signed: route.id_signed(),
        reconciled: route.reconcile.is_some(),
    };
    // The key a live delivery of these bytes is settled under, and the mark a poll of a
    // reconciled route looks for.
    let keys = webhook_keys(&route.name, id, body, binding);
    let store = gateway.store();
    for key in keys {
        let reserved = with_timeout(dedup.call_timeout, store.reserve(&key, dedup.lease)).await;
        if let Ok(Reservation::Acquired(token)) = reserved {
            let committed = store.commit(&key, token, dedup.ttl);
            if let Err(e) = with_timeout(dedup.call_timeout, committed).await {
                tracing::warn!(error = %e, "a replayed delivery could not be marked delivered");
            }
        }
    }
}

/// What a bulk replay asks for.
#[derive(Debug, Clone)]
pub(crate) struct JobSpec {
    /// Which entries.
    pub filter: EntryFilter,
    /// Re-verify each first.
    pub reverify: bool,
    /// Only count them.
    pub dry_run: bool,
    /// Replays per second.
    pub rate: f64,
}

/// A bulk replay's progress.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Entries the filter matched.
    pub matched: AtomicU64,
    /// Replays sent.
    pub sent: AtomicU64,
    /// Of which the upstream answered 2xx.
    pub succeeded: AtomicU64,
    /// Not sent, or not answered 2xx.
    pub failed: AtomicU64,
    /// Finished.
    pub done: AtomicBool,
    /// Asked to stop (`DELETE /replays/{job}`): no more replays are sent.
    pub cancelled: AtomicBool,
}

/// Bulk replays of this instance.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Progress>>>,
}

/// Entries read per page while a job collects its list.
const JOB_PAGE: i64 = 500;
/// Replays per second when the request does not say.
pub(crate) const DEFAULT_RATE: f64 = 10.0;

impl Jobs {
    /// The progress of job `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Progress>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Starts a job; returns its id and how many entries it matched.
    pub(crate) async fn start(
        &self,
        gateway: Arc<Gateway>,
        storage: Arc<Storage>,
        spec: JobSpec,
    ) -> Result<(String, u64), StorageError> {
        let matched = u64::try_from(storage.count_entries(&spec.filter).await?).unwrap_or(0);
        let id = time_ordered_id(SystemTime::now());
        let progress = Arc::new(Progress::default());
        progress.matched.store(matched, Ordering::Relaxed);
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), progress.clone());
        if spec.dry_run || matched == 0 {
            progress.done.store(true, Ordering::Relaxed);
        } else {
            tokio::spawn(run_job(gateway, storage, spec, progress));
        }
        Ok((id, matched))
    }
}

async fn run_job(
    gateway: Arc<Gateway>,
    storage: Arc<Storage>,
    spec: JobSpec,
    progress: Arc<Progress>,
) {
    // The matching ids, oldest first: deliveries go again in the order they came.
    let mut ids = Vec::new();
    let mut filter = spec.filter.clone();
    loop {
        match storage.list_entries(&filter, JOB_PAGE).await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => {
                filter.before = page.last().map(|e| e.id.clone());
                ids.extend(page.into_iter().map(|e| e.id));
            }
            Err(e) => {
                tracing::warn!(error = %e, "bulk replay could not list its entries");
                break;
            }
        }
    }
    ids.reverse();
    let rate = if spec.rate.is_finite() && spec.rate > 0.0 {
        spec.rate
    } else {
        DEFAULT_RATE
    };
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for id in ids {
        pace.tick().await;
        if progress.cancelled.load(Ordering::Relaxed) {
            break;
        }
        match replay(&gateway, &storage, &id, spec.reverify).await {
            Ok(r) => {
                progress.sent.fetch_add(1, Ordering::Relaxed);
                let ok = r.upstream_status.is_some_and(|s| (200..300).contains(&s));
                let counter = if ok {
                    &progress.succeeded
                } else {
                    &progress.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                progress.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, entry = %id, "bulk replay skipped an entry");
            }
        }
    }
    progress.done.store(true, Ordering::Relaxed);
}
