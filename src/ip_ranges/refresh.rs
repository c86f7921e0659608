//! The refresh task: with `[ip_ranges] refresh` set, fetches every provider list a route
//! uses, at start and then on that interval, keeping the last good list on failure.
//! Reload-aware: each round reads the live config (a reload that turns refresh on is
//! picked up within [`IDLE_RECHECK`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::Gateway;
use crate::outbound::http::HttpClient;

/// How often the task looks again at a config without `refresh`.
const IDLE_RECHECK: Duration = Duration::from_secs(30);

/// Runs until `stop` turns true.
pub(crate) async fn run(gateway: Arc<Gateway>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let client = match crate::outbound::tls::client_config(&Default::default()) {
        // Plain http only to loopback: a URL override pointed at a local mirror or a test.
        Ok(tls) => HttpClient::allowing_loopback_http(tls),
        Err(e) => {
            tracing::error!(error = %e, "provider IP ranges are not refreshed: no TLS client settings");
            return;
        }
    };
    loop {
        let live = gateway.live();
        let config = live.config();
        let wait = match config.ip_ranges.refresh {
            None => IDLE_RECHECK,
            Some(every) => {
                let used: BTreeSet<&str> = config
                    .routes
                    .iter()
                    .flat_map(|r| r.allow_lists.iter().map(String::as_str))
                    .collect();
                for name in used {
                    refresh_one(&gateway, &client, name, config.ip_ranges.url(name)).await;
                }
                every
            }
        };
        drop(live);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn refresh_one(gateway: &Gateway, client: &HttpClient, name: &str, url: Option<&str>) {
    let Some(url) = url else { return };
    let metrics = &gateway.metrics().ip_ranges;
    match gateway.shared.ip_ranges.refresh(client, name, url).await {
        Ok(count) => {
            metrics.refreshed(name, "ok", Some(count));
            tracing::info!(list = %format!("@{name}"), url, networks = count, "provider IP list refreshed");
        }
        Err(error) => {
            metrics.refreshed(name, "error", None);
            let kept = gateway
                .shared
                .ip_ranges
                .list(name)
                .map(|l| l.load().to_string())
                .unwrap_or_default();
            tracing::warn!(list = %format!("@{name}"), url, %error, kept = %kept, "provider IP list not refreshed; the last good list stays in use");
        }
    }
}
