//! Provider IP list families: refreshes by list and result, and each list's size. Written
//! by the refresh task, never on the request path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListLabel {
    list: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListResult {
    list: String,
    result: &'static str,
}

/// The provider IP list families.
#[derive(Debug)]
pub struct IpRangeMetrics {
    refreshes: Family<ListResult, Counter>,
    networks: Family<ListLabel, Gauge>,
}

impl IpRangeMetrics {
    /// Registers the families.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = IpRangeMetrics {
            refreshes: Family::default(),
            networks: Family::default(),
        };
        registry.register(
            "hookwall_ip_range_refreshes",
            "Fetches of a provider's published IP list by list (@name) and result (ok, error; on error the last good list stays)",
            m.refreshes.clone(),
        );
        registry.register(
            "hookwall_ip_range_networks",
            "Networks in a provider's IP list as last refreshed",
            m.networks.clone(),
        );
        m
    }

    /// A refresh of list `name` ended with `result`; `networks` is the new list's size.
    pub(crate) fn refreshed(&self, name: &str, result: &'static str, networks: Option<usize>) {
        let list = format!("@{name}");
        self.refreshes
            .get_or_create(&ListResult {
                list: list.clone(),
                result,
            })
            .inc();
        if let Some(n) = networks {
            self.networks
                .get_or_create(&ListLabel { list })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}
