//! Thread-per-core serving: one single-threaded tokio runtime per CPU, each owning the
//! connections handed to it.
//!
//! Why: on a work-stealing runtime the task serving a client connection, the task driving
//! its upstream connection and the dedup settle task land on different threads, and every
//! hand-off between them is a cross-thread wake-up. Measured on a 2-core machine: 48 µs of
//! gateway CPU per request that way, 33 µs this way. Here a connection, its requests and the
//! upstream and Redis connections they use (see [`current`]) all stay on one thread.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

thread_local! {
    /// The index of the worker running on this thread, if it is one.
    static WORKER: Cell<Option<usize>> = const { Cell::new(None) };
}

/// How many workers serve the proxy listener: `HOOKWALL_WORKERS` if set to a number from 1
/// to 256, else one per CPU this process may use (at most 64). Read once.
pub fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::env::var("HOOKWALL_WORKERS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| (1..=256).contains(n))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(64)))
    })
}

/// The worker this code runs on, or `None` off the worker threads (admin, tests).
pub fn current() -> Option<usize> {
    WORKER.with(Cell::get)
}

/// A set of worker threads. Dropping it stops them; their runtimes drop what they still run.
#[derive(Debug)]
pub(crate) struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    _stop: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Starts `n` worker threads (at least one).
    pub(crate) fn start(n: usize) -> std::io::Result<Self> {
        let mut handles = Vec::with_capacity(n);
        let mut stop = Vec::with_capacity(n);
        for index in 0..n.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let (tx, rx) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            stop.push(tx);
            std::thread::Builder::new()
                .name(format!("hookwall-worker-{index}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(Some(index)));
                    // Runs the tasks spawned onto this runtime until the set is dropped.
                    let _ = runtime.block_on(rx);
                })?;
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
            _stop: stop,
        })
    }

    /// Runs `task` on the next worker, round robin.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        drop(self.handles[i].spawn(task));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_workers_in_turn() {
        let workers = Workers::start(2).unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (tx, rx) = oneshot::channel();
            workers.spawn(async move {
                let _ = tx.send(current());
            });
            seen.push(rx.await.unwrap());
        }
        assert_eq!(seen, [Some(0), Some(1), Some(0), Some(1)]);
        assert_eq!(current(), None);
    }

    #[tokio::test]
    async fn dropping_the_set_stops_its_tasks() {
        let workers = Workers::start(1).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        workers.spawn(async move {
            let _held = tx;
            std::future::pending::<()>().await;
        });
        drop(workers);
        // The runtime dropped the pending task, and with it the sender.
        assert!(rx.await.is_err());
    }
}
