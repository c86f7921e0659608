//! Buffered delivery (CONTRACT §10): a buffered route answers `202` once the delivery is
//! committed to the queue in storage, and delivers it to each of its targets later, with
//! retries, until the upstream takes it or it becomes a dead letter.
//!
//! [`accept`] is the end of a buffered route's stack (group commit, then `202`);
//! [`worker`] claims due deliveries and attempts them; [`backoff`] decides when a failed
//! attempt is tried again, or not; [`stats`] keeps the depth gauges (and the `max_queued`
//! check) current. Which targets want a delivery is [`crate::events`].

pub(crate) mod accept;
pub(crate) mod backoff;
pub(crate) mod stats;
pub(crate) mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, Notify};

use crate::storage::Storage;

/// Where a buffered route's stack finds the queue: empty until storage is attached (the
/// routes are built first), then set once.
pub(crate) type QueueSlot = Arc<OnceLock<Arc<Queue>>>;

/// Unix µs of a time.
pub(crate) fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Unix µs now. The queue runs on the system clock: its times are stored and compared
/// across restarts and instances.
pub(crate) fn now_micros() -> i64 {
    micros(SystemTime::now())
}

/// The running queue of this instance.
#[derive(Debug)]
pub(crate) struct Queue {
    /// The storage the rows live in.
    pub storage: Arc<Storage>,
    /// This instance's name on the rows it claims.
    pub claimer: String,
    /// Wakes the dispatcher: a delivery was queued, an attempt finished.
    pub wake: Notify,
    commits: mpsc::Sender<accept::Commit>,
    /// Attempt results waiting to be written (see [`worker::settle_loop`]).
    settles: mpsc::UnboundedSender<worker::AttemptEnd>,
    /// How many: shutdown waits for them before giving claims back.
    pending_settles: AtomicUsize,
    /// Deliveries queued per route (waiting or in flight), as last counted plus what this
    /// instance queued since: for `max_queued`.
    depth: Mutex<HashMap<String, u64>>,
    /// Attempts in flight per route and target, on this instance.
    in_flight: Mutex<HashMap<(String, String), Arc<AtomicUsize>>>,
}

impl Queue {
    /// A queue on `storage`; its committer task is spawned on the calling runtime.
    pub(crate) fn start(storage: Arc<Storage>) -> Arc<Self> {
        let (commits, inbox) = accept::channel();
        tokio::spawn(accept::commit_loop(inbox, storage.clone()));
        let (settles, results) = mpsc::unbounded_channel();
        let queue = Arc::new(Queue {
            storage,
            claimer: crate::journal::writer::time_ordered_id(SystemTime::now()),
            wake: Notify::new(),
            commits,
            settles,
            pending_settles: AtomicUsize::new(0),
            depth: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        });
        tokio::spawn(worker::settle_loop(results, Arc::downgrade(&queue)));
        queue
    }

    /// Hands an attempt's result to the settler. The attempt's slot (`in_flight`) is
    /// given back once the result is written: until then the row is still claimed, and
    /// claims outstanding must stay within `upstream_concurrency` (they are what a crash
    /// repeats).
    pub(crate) fn settle(&self, result: worker::AttemptEnd) {
        self.pending_settles.fetch_add(1, Ordering::Relaxed);
        if let Err(unsent) = self.settles.send(result) {
            self.pending_settles.fetch_sub(1, Ordering::Relaxed);
            unsent.0.slot.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Attempt results not written yet.
    pub(crate) fn settles_pending(&self) -> usize {
        self.pending_settles.load(Ordering::Relaxed)
    }

    /// Whether `n` more deliveries fit under `max` for `route`.
    fn has_room(&self, route: &str, n: u64, max: u64) -> bool {
        let depth = self
            .depth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        depth.get(route).copied().unwrap_or(0) + n <= max
    }

    /// `n` deliveries of `route` were queued here.
    fn added(&self, route: &str, n: u64) {
        let mut depth = self
            .depth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *depth.entry(route.to_owned()).or_default() += n;
        drop(depth);
        self.wake.notify_one();
    }

    /// Dead letters were put back in the queue: the dispatcher looks at once (the depth
    /// estimate catches up at the next count).
    pub(crate) fn requeued(&self) {
        self.wake.notify_one();
    }

    /// The depths counted in storage, replacing the running estimate.
    pub(crate) fn set_depths(&self, counted: HashMap<String, u64>) {
        *self
            .depth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = counted;
    }

    /// The in-flight counter of one route and target.
    pub(crate) fn in_flight(&self, route: &str, target: &str) -> Arc<AtomicUsize> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((route.to_owned(), target.to_owned()))
            .or_default()
            .clone()
    }

    /// Attempts in flight on this instance, all targets.
    pub(crate) fn attempts_in_flight(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }
}
