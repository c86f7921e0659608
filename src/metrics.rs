//! Metric families (CONTRACT §5), registered once, and per-route handles resolved when a
//! route is built so the request path never formats or hashes a label.
//!
//! Labels are limited to `route`, `outcome`, `reason`, `class`, `key` and `result`: never a
//! client IP, delivery id or signature, so cardinality is bounded by the config.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub mod ip_ranges;
pub mod journal;
pub mod queue;
pub mod reconcile;

pub use ip_ranges::IpRangeMetrics;
pub use journal::JournalMetrics;
pub use queue::QueueMetrics;
pub use reconcile::ReconcileMetrics;

use crate::context::{Outcome, WouldReject, WOULD_REJECT_COUNT};
use crate::error::{Rejection, REASON_COUNT};

/// Route label for requests that match no route.
pub const UNKNOWN_ROUTE: &str = "_unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    route: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    route: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    route: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    route: String,
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~33 s: webhook upstreams answer in ms, providers give up after 1-30 s.
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

fn skew_histogram() -> Histogram {
    // Signed: negative values are timestamps ahead of our clock.
    Histogram::new([
        -300.0, -60.0, -10.0, -1.0, 0.0, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    ])
}

/// Every family of CONTRACT §5.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<OutcomeLabels, Counter>,
    rejections: Family<ReasonLabels, Counter>,
    upstream_responses: Family<ClassLabels, Counter>,
    request_duration: HistogramFamily<RouteLabel>,
    upstream_duration: HistogramFamily<RouteLabel>,
    dedup_store_errors: Family<RouteLabel, Counter>,
    config_reloads: Family<ResultLabel, Counter>,
    key_matched: Family<KeyLabels, Counter>,
    timestamp_skew: HistogramFamily<RouteLabel>,
    shadow_rejections: Family<ReasonLabels, Counter>,
    /// Requests currently being handled.
    pub in_flight: Gauge,
    last_reload_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Ids the memory store holds (set when `/metrics` is read).
    pub dedup_entries: Gauge,
    /// The journal's families.
    pub journal: JournalMetrics,
    /// The delivery queue's families.
    pub queue: QueueMetrics,
    /// Reconcile's families.
    pub reconcile: ReconcileMetrics,
    /// The provider IP lists' families.
    pub ip_ranges: IpRangeMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        let rejections = Family::default();
        let upstream_responses = Family::default();
        let request_duration =
            HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let upstream_duration =
            HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let dedup_store_errors = Family::default();
        let config_reloads: Family<ResultLabel, Counter> = Family::default();
        let key_matched = Family::default();
        let timestamp_skew =
            HistogramFamily::new_with_constructor(skew_histogram as fn() -> Histogram);
        let shadow_rejections = Family::default();
        let in_flight = Gauge::default();
        let last_reload_success = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let dedup_entries = Gauge::default();
        let build_info: Family<BuildLabels, Gauge> = Family::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "hookwall_build_info",
            "The running hookwall's version (always 1)",
            build_info,
        );
        registry.register(
            "hookwall_dedup_entries",
            "Delivery ids the memory store holds (delivered and in flight)",
            dedup_entries.clone(),
        );
        // CPU, memory, open descriptors, start time: the standard process_* set.
        if let Err(error) =
            kubert_prometheus_process::register(registry.sub_registry_with_prefix("process"))
        {
            tracing::warn!(%error, "process metrics are not available");
        }
        // Counter names are registered without `_total`; the encoder appends it.
        registry.register(
            "hookwall_requests",
            "Requests by route and outcome",
            requests.clone(),
        );
        registry.register(
            "hookwall_rejections",
            "Gateway-made non-2xx answers by reason",
            rejections.clone(),
        );
        registry.register(
            "hookwall_upstream_responses",
            "Upstream answers by status class",
            upstream_responses.clone(),
        );
        registry.register(
            "hookwall_request_duration_seconds",
            "Whole-request latency",
            request_duration.clone(),
        );
        registry.register(
            "hookwall_upstream_duration_seconds",
            "Upstream call latency",
            upstream_duration.clone(),
        );
        registry.register(
            "hookwall_dedup_store_errors",
            "Dedup store calls that failed or timed out",
            dedup_store_errors.clone(),
        );
        registry.register(
            "hookwall_config_reloads",
            "Config reloads by result",
            config_reloads.clone(),
        );
        registry.register(
            "hookwall_in_flight",
            "Requests in flight",
            in_flight.clone(),
        );
        registry.register(
            "hookwall_signature_key_matched",
            "Verified deliveries by the secret that matched",
            key_matched.clone(),
        );
        registry.register(
            "hookwall_timestamp_skew_seconds",
            "now - signed timestamp",
            timestamp_skew.clone(),
        );
        registry.register(
            "hookwall_shadow_rejections",
            "What routes in shadow mode (enforce = false) would have refused, by reason; forwarded anyway",
            shadow_rejections.clone(),
        );
        registry.register(
            "hookwall_config_last_reload_success_timestamp_seconds",
            "When the running config was last loaded successfully (start or reload), Unix seconds",
            last_reload_success.clone(),
        );
        let journal = JournalMetrics::register(&mut registry);
        let queue = QueueMetrics::register(&mut registry);
        let reconcile = ReconcileMetrics::register(&mut registry);
        let ip_ranges = IpRangeMetrics::register(&mut registry);
        for result in ["ok", "error"] {
            drop(
                config_reloads
                    .get_or_create(&ResultLabel { result })
                    .clone(),
            );
        }
        Metrics {
            registry,
            requests,
            rejections,
            upstream_responses,
            request_duration,
            upstream_duration,
            dedup_store_errors,
            config_reloads,
            key_matched,
            timestamp_skew,
            shadow_rejections,
            in_flight,
            last_reload_success,
            dedup_entries,
            journal,
            queue,
            reconcile,
            ip_ranges,
        }
    }
}

impl Metrics {
    /// Every family in the OpenMetrics text format (what Prometheus asks for).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Every family in the classic Prometheus text format (0.0.4), for clients that do not
    /// ask for OpenMetrics: the same samples, but a counter's HELP and TYPE name it with
    /// its `_total` suffix (as its samples are named), and there is no `# UNIT` or `# EOF`.
    pub fn encode_prometheus(&self) -> String {
        let open = self.encode();
        let counters: std::collections::HashSet<&str> = open
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
            .collect();
        let mut out = String::with_capacity(open.len() + 16 * counters.len());
        for line in open.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let counter_meta = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
                let (name, rest) = line.strip_prefix(prefix)?.split_once(' ')?;
                counters.contains(name).then_some((prefix, name, rest))
            });
            match counter_meta {
                Some((prefix, name, rest)) => {
                    out.push_str(&format!("{prefix}{name}_total {rest}\n"));
                }
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Counts one config reload.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.config_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
        if ok {
            self.reload_succeeded_now();
        }
    }

    /// Notes that the running config was loaded now.
    pub fn reload_succeeded_now(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_reload_success.set(now);
    }

    /// Handles for one route (or [`UNKNOWN_ROUTE`]), resolved once.
    pub fn route(&self, route: &str, key_labels: &[String]) -> Arc<RouteMetrics> {
        if route != UNKNOWN_ROUTE {
            self.journal.route_series(route);
        }
        let r = || route.to_owned();
        let outcome = |outcome| {
            self.requests
                .get_or_create(&OutcomeLabels {
                    route: r(),
                    outcome,
                })
                .clone()
        };
        let class = |class| {
            self.upstream_responses
                .get_or_create(&ClassLabels { route: r(), class })
                .clone()
        };
        Arc::new(RouteMetrics {
            requests: [
                outcome("forwarded"),
                outcome("duplicate"),
                outcome("rejected"),
                outcome("handshake"),
                outcome("queued"),
                outcome("ignored"),
            ],
            rejections: std::array::from_fn(|i| {
                self.rejections
                    .get_or_create(&ReasonLabels {
                        route: r(),
                        reason: Rejection::ALL_REASONS[i],
                    })
                    .clone()
            }),
            upstream_class: [class("2xx"), class("3xx"), class("4xx"), class("5xx")],
            request_duration: self
                .request_duration
                .get_or_create(&RouteLabel { route: r() })
                .clone(),
            upstream_duration: self
                .upstream_duration
                .get_or_create(&RouteLabel { route: r() })
                .clone(),
            dedup_store_errors: self
                .dedup_store_errors
                .get_or_create(&RouteLabel { route: r() })
                .clone(),
            key_matched: key_labels
                .iter()
                .map(|key| {
                    self.key_matched
                        .get_or_create(&KeyLabels {
                            route: r(),
                            key: key.clone(),
                        })
                        .clone()
                })
                .collect(),
            timestamp_skew: self
                .timestamp_skew
                .get_or_create(&RouteLabel { route: r() })
                .clone(),
        })
    }
}

impl Metrics {
    /// The shadow-mode handles of a route with `enforce = false`, one per reason, so every
    /// series exists (at 0) from the start.
    pub(crate) fn shadow(&self, route: &str) -> Arc<ShadowMetrics> {
        let reasons = WouldReject::all_reasons();
        Arc::new(ShadowMetrics {
            rejections: std::array::from_fn(|i| {
                self.shadow_rejections
                    .get_or_create(&ReasonLabels {
                        route: route.to_owned(),
                        reason: reasons[i],
                    })
                    .clone()
            }),
        })
    }
}

/// `hookwall_shadow_rejections_total` of one route.
#[derive(Debug)]
pub(crate) struct ShadowMetrics {
    rejections: [Counter; WOULD_REJECT_COUNT],
}

impl ShadowMetrics {
    /// Counts what a check would have answered.
    pub(crate) fn record(&self, why: WouldReject) {
        self.rejections[why.index()].inc();
    }
}

/// One route's metric handles; cloning none of them allocates.
#[derive(Debug)]
pub struct RouteMetrics {
    requests: [Counter; 6],
    rejections: [Counter; REASON_COUNT],
    upstream_class: [Counter; 4],
    /// Whole-request latency.
    pub request_duration: Histogram,
    /// Upstream call latency.
    pub upstream_duration: Histogram,
    /// Failed or timed-out store calls.
    pub dedup_store_errors: Counter,
    key_matched: Vec<Counter>,
    /// now - signed timestamp, seconds.
    pub timestamp_skew: Histogram,
}

impl RouteMetrics {
    /// Counts a finished request by its outcome.
    pub(crate) fn record(&self, outcome: Outcome) {
        let i = match outcome {
            Outcome::Forwarded(status) => {
                let class = match status.as_u16() {
                    200..=299 => 0,
                    300..=399 => 1,
                    400..=499 => 2,
                    _ => 3,
                };
                self.upstream_class[class].inc();
                0
            }
            Outcome::Duplicate => 1,
            Outcome::Rejected(r) => {
                self.rejections[r.index()].inc();
                2
            }
            Outcome::Handshake => 3,
            Outcome::Queued => 4,
            Outcome::Ignored => 5,
            // Not a request: nothing to count.
            Outcome::Discarded => return,
        };
        self.requests[i].inc();
    }

    /// Counts a verified delivery under the secret that matched.
    pub fn key_matched(&self, index: usize) {
        if let Some(c) = self.key_matched.get(index) {
            c.inc();
        }
    }
}
