//! The journal's families (CONTRACT §9): entries written, entries lost (and why), the
//! journal's size, replays by result, and signature-failure diagnoses by hint. Written from
//! the journal's own task and the admin API, never on the request path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteResult {
    route: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteHint {
    route: String,
    hint: &'static str,
}

/// Why journal entries were lost.
pub const DROP_REASONS: [&str; 3] = ["queue_full", "storage_error", "stopped"];

/// The journal's metric families.
#[derive(Debug)]
pub struct JournalMetrics {
    entries: Family<RouteLabel, Counter>,
    dropped: Family<ReasonLabel, Counter>,
    /// What the journal holds, bytes (updated by retention).
    pub bytes: Gauge,
    replays: Family<RouteResult, Counter>,
    diagnosis: Family<RouteHint, Counter>,
}

impl JournalMetrics {
    /// Registers the families.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = JournalMetrics {
            entries: Family::default(),
            dropped: Family::default(),
            bytes: Gauge::default(),
            replays: Family::default(),
            diagnosis: Family::default(),
        };
        registry.register(
            "hookwall_journal_entries",
            "Journal entries written, by route",
            m.entries.clone(),
        );
        registry.register(
            "hookwall_journal_dropped",
            "Journal entries lost, by reason (queue_full, storage_error, stopped)",
            m.dropped.clone(),
        );
        registry.register(
            "hookwall_journal_bytes",
            "What the journal holds, bytes",
            m.bytes.clone(),
        );
        registry.register(
            "hookwall_replays",
            "Replays by route and result (ok: 2xx, failed: another status, error: no answer)",
            m.replays.clone(),
        );
        registry.register(
            "hookwall_signature_diagnosis",
            "Signature failures by the known mistake that explains them",
            m.diagnosis.clone(),
        );
        for reason in DROP_REASONS {
            drop(m.dropped.get_or_create(&ReasonLabel { reason }).clone());
        }
        m
    }

    /// A route's series, at zero, so rates and alerts see them before the first event.
    pub(crate) fn route_series(&self, route: &str) {
        let _ = self.entries.get_or_create(&RouteLabel {
            route: route.to_owned(),
        });
        for result in ["ok", "failed", "error"] {
            let _ = self.replays.get_or_create(&RouteResult {
                route: route.to_owned(),
                result,
            });
        }
    }

    /// `n` entries of `route` written.
    pub fn written(&self, route: &str, n: u64) {
        self.entries
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .inc_by(n);
    }

    /// `n` entries lost for `reason` (one of [`DROP_REASONS`]).
    pub fn dropped(&self, reason: &'static str, n: u64) {
        self.dropped
            .get_or_create(&ReasonLabel { reason })
            .inc_by(n);
    }

    /// One replay of `route` ended with `result`.
    pub fn replayed(&self, route: &str, result: &'static str) {
        self.replays
            .get_or_create(&RouteResult {
                route: route.to_owned(),
                result,
            })
            .inc();
    }

    /// One signature failure of `route` diagnosed as `hint`.
    pub fn diagnosed(&self, route: &str, hint: &'static str) {
        self.diagnosis
            .get_or_create(&RouteHint {
                route: route.to_owned(),
                hint,
            })
            .inc();
    }
}
