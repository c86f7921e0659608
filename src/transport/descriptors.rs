//! File descriptors as a budget, so that a flood of connections cannot take the last ones.
//!
//! Every proxy connection holds one descriptor (the stalled-head 408 is written through the
//! connection's own stream, no duplicate handle), and a request on it may hold a second one
//! to the upstream. Without a bound, enough attacking connections exhaust the process's
//! limit: `accept` fails with `EMFILE`, and so do the admin listener, upstream connects,
//! storage and the dedup store. So the proxy listener accepts at most [`Budget::cap`]
//! connections: half of what the limit leaves after the descriptors open at start and a
//! reserve, the other half for their upstream connections. At the cap it stops accepting
//! (new connections wait in the kernel's backlog) and asks idle connections to close
//! ([`Budget::press`]), so that a legitimate sender's connection is taken in as soon as
//! an attacker's idle one is gone, and a stalled head is cut by `read_timeout` as usual.

use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Descriptors kept out of the budget: the admin listener and its clients, storage,
/// the dedup store, key fetches, logs.
const MIN_RESERVE: usize = 32;

/// The proxy listener's connection budget.
#[derive(Debug)]
pub(crate) struct Budget {
    slots: Arc<Semaphore>,
    cap: usize,
    pressure: Arc<Notify>,
}

/// One open connection's place in the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
}

/// The soft `RLIMIT_NOFILE` (Linux: from `/proc/self/limits`), `None` where unknown or
/// unlimited.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// Descriptors open right now (Linux: entries of `/proc/self/fd`).
fn open_descriptors() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// The connection cap for a process limited to `limit` descriptors with `in_use` open.
fn cap_for(limit: usize, in_use: usize) -> usize {
    let free = limit.saturating_sub(in_use);
    let reserve = MIN_RESERVE.max(free / 8);
    (free.saturating_sub(reserve) / 2).max(1)
}

/// Raises the soft open-files limit to the hard one, as nginx's `worker_rlimit_nofile`
/// and Go's runtime do: a shell's default soft limit (often 1,024) would cap a gateway at
/// a few hundred connections while the hard limit allows far more.
pub(crate) fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (now.current, now.maximum) {
        if current < maximum {
            let raised = Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(error = %e, current, maximum, "cannot raise the open-files limit");
            }
        }
    }
}

impl Budget {
    /// The budget of this process, as limited now (`None`: no limit known, no cap).
    pub(crate) fn of_this_process() -> Option<Self> {
        let cap = cap_for(open_files_limit()?, open_descriptors()?);
        Some(Budget::with_cap(cap))
    }

    pub(crate) fn with_cap(cap: usize) -> Self {
        Budget {
            slots: Arc::new(Semaphore::new(cap.min(Semaphore::MAX_PERMITS))),
            cap,
            pressure: Arc::new(Notify::new()),
        }
    }

    /// At most this many connections are open at once.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// A slot, at once if one is free.
    pub(crate) fn try_slot(&self) -> Option<Slot> {
        self.slots
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|p| Slot { _permit: p })
    }

    /// Waits for a slot.
    pub(crate) async fn slot(&self) -> Slot {
        match self.slots.clone().acquire_owned().await {
            Ok(permit) => Slot { _permit: permit },
            // The semaphore is never closed; should it be, nothing is bounded any more.
            Err(_) => std::future::pending().await,
        }
    }

    /// Asks every idle connection to close, to make room.
    pub(crate) fn press(&self) {
        self.pressure.notify_waiters();
    }

    /// What a connection listens to for [`Budget::press`].
    pub(crate) fn pressure(&self) -> Arc<Notify> {
        self.pressure.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_of_what_is_left_after_a_reserve() {
        assert_eq!(cap_for(1024, 24), (1000 - 125) / 2);
        assert_eq!(cap_for(256, 20), (236 - 32) / 2);
        // Nothing left still allows one connection, rather than none.
        assert_eq!(cap_for(16, 20), 1);
    }

    #[test]
    fn this_process_has_a_limit_on_linux() {
        if cfg!(target_os = "linux") {
            let budget = Budget::of_this_process().unwrap();
            assert!(budget.cap() >= 1);
        }
    }

    #[tokio::test]
    async fn slots_come_back_when_dropped() {
        let budget = Budget::with_cap(1);
        let slot = budget.try_slot().unwrap();
        assert!(budget.try_slot().is_none());
        drop(slot);
        let _again = budget.slot().await;
    }
}
