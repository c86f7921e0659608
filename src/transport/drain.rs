//! Graceful shutdown for open connections: one signal to every connection, then a wait,
//! bounded by the grace period, until the last one has finished.

use std::time::Duration;

use tokio::sync::watch;

/// The shutdown signal and the count of connections still open (its watchers).
#[derive(Debug)]
pub(crate) struct Drain {
    signal: watch::Sender<bool>,
}

/// Held by each open connection until it ends.
#[derive(Debug, Clone)]
pub(crate) struct Watcher {
    signal: watch::Receiver<bool>,
}

impl Drain {
    pub(crate) fn new() -> Self {
        Drain {
            signal: watch::channel(false).0,
        }
    }

    /// A watcher for one more connection.
    pub(crate) fn watcher(&self) -> Watcher {
        Watcher {
            signal: self.signal.subscribe(),
        }
    }

    /// Tells every connection to finish, then waits up to `grace` for all of them to end.
    /// `true` when they all did.
    pub(crate) async fn finish(self, grace: Duration) -> bool {
        let _ = self.signal.send(true);
        tokio::time::timeout(grace, self.signal.closed())
            .await
            .is_ok()
    }
}

impl Watcher {
    /// Resolves once shutdown has begun.
    pub(crate) async fn shutting_down(&mut self) {
        // An error means the drain itself is gone: shutting down all the same.
        let _ = self.signal.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn finish_waits_for_watchers_within_the_grace() {
        let drain = Drain::new();
        let mut w = drain.watcher();
        let conn = tokio::spawn(async move {
            w.shutting_down().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(w);
        });
        assert!(drain.finish(Duration::from_secs(5)).await);
        conn.await.unwrap();

        let drain = Drain::new();
        let _stuck = drain.watcher();
        assert!(!drain.finish(Duration::from_secs(5)).await);
    }
}
