//! Counts the queue in storage every couple of seconds: the depth and oldest-age gauges
//! per route and target, and the per-route depths `max_queued` is checked against (on a
//! fleet sharing PostgreSQL these include the other instances' deliveries).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{now_micros, Queue};
use crate::gateway::Gateway;

/// How often the queue is counted.
const EVERY: Duration = Duration::from_secs(2);

/// Counts until `stop` says so.
pub(crate) async fn run(
    gateway: Arc<Gateway>,
    queue: Arc<Queue>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        count(&gateway, &queue).await;
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One count.
pub(crate) async fn count(gateway: &Gateway, queue: &Queue) {
    let now = now_micros();
    let stats = match queue.storage.queue_stats(now).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "queue not counted");
            return;
        }
    };
    let metrics = &gateway.metrics().queue;
    let mut per_route: HashMap<String, u64> = HashMap::new();
    let mut seen = Vec::new();
    for s in &stats {
        let depth = s.queued + s.in_flight;
        let oldest = s
            .oldest_received_at
            .map_or(0.0, |t| (now - t).max(0) as f64 / 1e6);
        metrics.set_depth(&s.route, &s.target, depth, oldest);
        *per_route.entry(s.route.clone()).or_default() += depth;
        seen.push((s.route.as_str(), s.target.as_str()));
    }
    // Targets with nothing queued any more read zero, not their last value.
    let live = gateway.live();
    for route in live.routes().iter() {
        for (target, _) in &route.targets {
            if !seen.contains(&(route.config.name.as_str(), target.as_str())) {
                metrics.set_depth(&route.config.name, target, 0, 0.0);
            }
        }
    }
    queue.set_depths(per_route);
}
