//! When each route's reconcile runs: every `every` after the last run of any instance (the
//! time is in storage, so a fleet runs a route about once per period, and a restart does not
//! run it again at once), or soon after start when the last run is longer ago than that. A
//! run that another instance holds, or that is already running here, is skipped. The table
//! is read on every tick, so routes added or changed by a reload are picked up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{now_micros, NotRun};
use crate::gateway::Gateway;

/// How often the schedule is looked at.
const TICK: Duration = Duration::from_secs(1);
/// The first run of a route that is due waits this long after start (the listeners and
/// the queue are up by then).
const FIRST_DELAY: Duration = Duration::from_secs(2);

/// Runs due reconciles until `stop`.
pub(crate) async fn run(gateway: Arc<Gateway>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let started = Instant::now();
    let mut due: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let live = gateway.live();
        let routes: Vec<(String, Duration)> = live
            .routes
            .iter()
            .filter_map(|r| Some((r.config.name.clone(), r.config.reconcile.as_ref()?.every)))
            .collect();
        due.retain(|name, _| routes.iter().any(|(n, _)| n == name));
        for (name, every) in routes {
            let now = Instant::now();
            let when = match due.get(&name) {
                Some(when) => *when,
                None => {
                    let when = first_due(&gateway, &name, every, started + FIRST_DELAY).await;
                    due.insert(name.clone(), when);
                    when
                }
            };
            if when > now {
                continue;
            }
            due.insert(name.clone(), now + every);
            let gw = gateway.clone();
            tokio::spawn(async move {
                match gw.reconcile_route(&name, false).await {
                    Ok(_) | Err(NotRun::Busy { .. } | NotRun::Running(_)) => {}
                    Err(e) => {
                        tracing::warn!(route = %name, error = %e, "reconcile run not started")
                    }
                }
            });
        }
    }
}

/// When a route seen for the first time is due: `every` after its last run (by any
/// instance), but not before `earliest`.
async fn first_due(gateway: &Gateway, route: &str, every: Duration, earliest: Instant) -> Instant {
    let last = match gateway.storage() {
        Some(s) => s
            .reconcile_state(route)
            .await
            .ok()
            .flatten()
            .and_then(|s| s.last_run),
        None => None,
    };
    let Some(last) = last else {
        return earliest;
    };
    let since = Duration::from_micros(u64::try_from(now_micros() - last).unwrap_or(0));
    (Instant::now() + every.saturating_sub(since)).max(earliest)
}
