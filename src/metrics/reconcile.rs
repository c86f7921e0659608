//! Reconcile's families (CONTRACT §11): runs by result, events recovered (the headline:
//! deliveries the webhooks had missed), and the lag (now − newest event seen). Written by
//! the runs, never on the request path.

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
struct RouteResult {
    route: String,
    result: &'static str,
}

/// The reconcile metric families.
#[derive(Debug)]
pub struct ReconcileMetrics {
    runs: Family<RouteResult, Counter>,
    recovered: Family<RouteLabel, Counter>,
    lag: Family<RouteLabel, Gauge>,
}

impl ReconcileMetrics {
    /// Registers the families.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = ReconcileMetrics {
            runs: Family::default(),
            recovered: Family::default(),
            lag: Family::default(),
        };
        registry.register(
            "hookwall_reconcile_runs",
            "Reconcile runs by route and result (ok, error)",
            m.runs.clone(),
        );
        registry.register(
            "hookwall_reconcile_recovered",
            "Events the webhooks had not delivered, delivered by reconcile (GitHub: redeliveries asked for)",
            m.recovered.clone(),
        );
        registry.register(
            "hookwall_reconcile_lag_seconds",
            "Now minus the creation time of the newest event reconcile has seen",
            m.lag.clone(),
        );
        m
    }

    /// A route that reconciles: its series exist (at zero) before its first run.
    pub(crate) fn route_series(&self, route: &str) {
        for result in ["ok", "error"] {
            let _ = self.runs.get_or_create(&RouteResult {
                route: route.to_owned(),
                result,
            });
        }
        let _ = self.recovered.get_or_create(&RouteLabel {
            route: route.to_owned(),
        });
    }

    /// A run ended with `result`, having recovered `recovered` events.
    pub(crate) fn ran(&self, route: &str, result: &'static str, recovered: u64) {
        self.runs
            .get_or_create(&RouteResult {
                route: route.to_owned(),
                result,
            })
            .inc();
        self.recovered
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .inc_by(recovered);
    }

    /// The lag after a run, seconds.
    pub fn lag(&self, route: &str, seconds: i64) {
        self.lag
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .set(seconds);
    }
}
