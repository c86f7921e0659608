//! The build step: a compiled [`Config`] becomes a [`Live`] table, the routes' stacks
//! built, the load shedder and connection settings made. Shared by start, reload and
//! `check`, so a config that `check` accepts is one that starts.

use std::sync::Arc;

use crate::config::Config;
use crate::redis_client::RedisConfigError;
use crate::router::Routes;
use crate::shedding::Shedder;
use crate::stack::Shared;
use crate::transport::tls::TlsError;
use crate::transport::ConnectionSettings;

/// Why a compiled config could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A route's upstream cannot be used.
    #[error("route {route:?}: upstream {url} is not usable")]
    Upstream {
        /// The route.
        route: String,
        /// The upstream as configured.
        url: String,
    },
    /// The TLS listener's certificate or key.
    #[error("TLS listener: {0}")]
    Tls(#[from] TlsError),
    /// The dedup store's connection settings.
    #[error("dedup store: {0}")]
    Store(#[from] RedisConfigError),
}

/// What a config is served with, swapped whole on reload.
#[derive(Debug)]
pub struct Live {
    /// The routes, and the config they were built from.
    pub(crate) routes: Routes,
    /// Requests in flight beyond `max_concurrency` (or `max_concurrency_per_ip` from one
    /// client) are shed.
    pub(crate) shedder: Arc<Shedder>,
    /// How connections accepted from now on are served.
    pub(crate) connections: Arc<ConnectionSettings>,
}

impl Live {
    /// The config this table was built from.
    pub fn config(&self) -> &Arc<Config> {
        &self.routes.config
    }

    /// The routes.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }
}

/// Builds `config`. `previous` is the table it replaces: unchanged rate limits keep their
/// state, an unchanged `max_concurrency` keeps its shedder (and the permits in use).
pub(crate) fn live(
    config: Config,
    shared: &Shared,
    previous: Option<&Live>,
) -> Result<Live, BuildError> {
    let config = Arc::new(config);
    let routes = Routes::build(config.clone(), shared, previous.map(|p| &p.routes))?;
    let limits = |c: &Config| (c.server.max_concurrency, c.server.max_concurrency_per_ip);
    let shedder = match previous {
        Some(p) if limits(p.config()) == limits(&config) => p.shedder.clone(),
        // A new limit starts a new count: requests already in flight hold the old one's
        // permits, so for as long as they run the two limits add up.
        _ => {
            let (total, per_client) = limits(&config);
            Shedder::new(total, per_client)
        }
    };
    Ok(Live {
        connections: Arc::new(ConnectionSettings::new(&config.server)),
        routes,
        shedder,
    })
}
