//! The delivery queue's families (CONTRACT §10): depth and oldest age per route and
//! target (gauges, refreshed from storage), attempts by result, dead letters by reason, and
//! the time from acceptance to the upstream's 2xx. Written by the queue's own tasks, never
//! on the request path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Where {
    route: String,
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhereResult {
    route: String,
    target: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhereReason {
    route: String,
    target: String,
    reason: &'static str,
}

/// How an attempt ended, the `result` label.
pub const ATTEMPT_RESULTS: [&str; 3] = ["2xx", "retry", "dead_letter"];
/// Why a delivery was dead-lettered, the `reason` label.
pub const DEAD_LETTER_REASONS: [&str; 3] = ["status", "max_attempts", "max_age"];

fn delivery_histogram() -> Histogram {
    // From acceptance to the upstream's 2xx: milliseconds when the upstream is up, up to
    // days when it is down and the retries back off.
    Histogram::new([
        0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21_600.0, 86_400.0,
        259_200.0,
    ])
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The queue's metric families.
#[derive(Debug)]
pub struct QueueMetrics {
    depth: Family<Where, Gauge>,
    oldest: Family<Where, Gauge>,
    attempts: Family<WhereResult, Counter>,
    dead_letters: Family<WhereReason, Counter>,
    delivery_seconds: HistogramFamily<Where>,
}

impl QueueMetrics {
    /// Registers the families.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = QueueMetrics {
            depth: Family::default(),
            oldest: Family::default(),
            attempts: Family::default(),
            dead_letters: Family::default(),
            delivery_seconds: Family::new_with_constructor(delivery_histogram),
        };
        registry.register(
            "hookwall_queue_depth",
            "Deliveries queued (waiting or in flight, not dead), by route and target",
            m.depth.clone(),
        );
        registry.register(
            "hookwall_queue_oldest_seconds",
            "Age of the oldest queued delivery, by route and target",
            m.oldest.clone(),
        );
        registry.register(
            "hookwall_delivery_attempts",
            "Delivery attempts of buffered routes by result (2xx, retry, dead_letter)",
            m.attempts.clone(),
        );
        registry.register(
            "hookwall_dead_letters",
            "Deliveries dead-lettered, by reason (status, max_attempts, max_age)",
            m.dead_letters.clone(),
        );
        registry.register(
            "hookwall_queue_delivery_seconds",
            "From acceptance (202) to the upstream's 2xx",
            m.delivery_seconds.clone(),
        );
        m
    }

    fn at(route: &str, target: &str) -> Where {
        Where {
            route: route.to_owned(),
            target: target.to_owned(),
        }
    }

    /// A target's series, at zero, so rates and alerts see them before the first event.
    pub(crate) fn target_series(&self, route: &str, target: &str) {
        let _ = self.depth.get_or_create(&Self::at(route, target));
        let _ = self.oldest.get_or_create(&Self::at(route, target));
        let _ = self
            .delivery_seconds
            .get_or_create(&Self::at(route, target));
        for result in ATTEMPT_RESULTS {
            let _ = self.attempts.get_or_create(&WhereResult {
                route: route.to_owned(),
                target: target.to_owned(),
                result,
            });
        }
        for reason in DEAD_LETTER_REASONS {
            let _ = self.dead_letters.get_or_create(&WhereReason {
                route: route.to_owned(),
                target: target.to_owned(),
                reason,
            });
        }
    }

    /// The depth and oldest age of one route and target, from storage.
    pub(crate) fn set_depth(&self, route: &str, target: &str, depth: u64, oldest_seconds: f64) {
        self.depth
            .get_or_create(&Self::at(route, target))
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.oldest
            .get_or_create(&Self::at(route, target))
            .set(oldest_seconds.round() as i64);
    }

    /// One attempt ended with `result` (one of [`ATTEMPT_RESULTS`]).
    pub(crate) fn attempted(&self, route: &str, target: &str, result: &'static str) {
        self.attempts
            .get_or_create(&WhereResult {
                route: route.to_owned(),
                target: target.to_owned(),
                result,
            })
            .inc();
    }

    /// One delivery dead-lettered for `reason` (one of [`DEAD_LETTER_REASONS`]).
    pub(crate) fn dead_lettered(&self, route: &str, target: &str, reason: &'static str) {
        self.dead_letters
            .get_or_create(&WhereReason {
                route: route.to_owned(),
                target: target.to_owned(),
                reason,
            })
            .inc();
    }

    /// One delivery reached its upstream's 2xx this long after it was accepted.
    pub(crate) fn delivered(&self, route: &str, target: &str, seconds: f64) {
        self.delivery_seconds
            .get_or_create(&Self::at(route, target))
            .observe(seconds);
    }
}
