//! Path → built route. One `HashMap` lookup per request; the table is swapped whole on
//! reload (arc-swap), so a request runs on the table it started with.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::gateway::BuildError;
use crate::metrics::{RouteMetrics, UNKNOWN_ROUTE};
use crate::stack::{build_route, Route, Shared};

/// The live route table.
#[derive(Debug)]
pub struct Routes {
    by_path: HashMap<String, Arc<Route>>,
    /// Metrics for requests that match no route.
    pub unknown: Arc<RouteMetrics>,
    /// The config this table was built from.
    pub config: Arc<Config>,
}

impl Routes {
    /// Builds every route of `config`. `previous` lends rate limiters to unchanged routes.
    pub fn build(
        config: Arc<Config>,
        shared: &Shared,
        previous: Option<&Routes>,
    ) -> Result<Self, BuildError> {
        let mut by_path = HashMap::with_capacity(config.routes.len());
        for cfg in &config.routes {
            let old = previous
                .and_then(|p| p.by_name(&cfg.name))
                .and_then(|r| r.limiter.as_ref());
            let route = build_route(cfg, &config.dedup, config.server.read_timeout, shared, old)?;
            by_path.insert(cfg.path.clone(), Arc::new(route));
        }
        Ok(Routes {
            by_path,
            unknown: shared.metrics.route(UNKNOWN_ROUTE, &[]),
            config,
        })
    }

    /// The route for an exact path.
    pub fn get(&self, path: &str) -> Option<&Arc<Route>> {
        self.by_path.get(path)
    }

    /// The route with this name.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Route>> {
        self.by_path.values().find(|r| r.config.name == name)
    }

    /// Every route, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.by_path.values()
    }

    /// Routes in config order.
    pub fn in_order(&self) -> Vec<&Arc<Route>> {
        self.config
            .routes
            .iter()
            .filter_map(|c| self.by_path.get(&c.path))
            .collect()
    }
}
