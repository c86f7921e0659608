//! Retention in the background: every [`EVERY`], entries older than `journal.retain` are
//! deleted, then the oldest until the journal is under `journal.max_size`; the size is
//! published as `hookwall_journal_bytes`. The settings are read from the live config each
//! turn, so a reload changes them.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::writer::unix_micros;
use crate::gateway::Gateway;
use crate::storage::Storage;

/// How often retention runs.
pub(crate) const EVERY: Duration = Duration::from_secs(60);

/// Runs until `shutdown` resolves.
pub(crate) async fn run(
    gateway: Arc<Gateway>,
    storage: Arc<Storage>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => once(&gateway, &storage).await,
            () = &mut shutdown => return,
        }
    }
}

/// One retention pass.
pub(crate) async fn once(gateway: &Gateway, storage: &Storage) {
    let journal = gateway.live().config().journal.clone();
    let retain_us = i64::try_from(journal.retain.as_micros()).unwrap_or(i64::MAX);
    let older_than = unix_micros(SystemTime::now()).saturating_sub(retain_us);
    match storage.prune(older_than, journal.max_size).await {
        Ok(pruned) => {
            let bytes = i64::try_from(pruned.bytes).unwrap_or(i64::MAX);
            gateway.metrics().journal.bytes.set(bytes);
            if pruned.expired + pruned.over_size > 0 {
                tracing::info!(
                    expired = pruned.expired,
                    over_size = pruned.over_size,
                    bytes = pruned.bytes,
                    "journal retention deleted old entries"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "journal retention could not run"),
    }
}
