//! Wall-clock time for the timestamp window, injectable so tests can move it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Seconds since the Unix epoch, with sub-second precision.
    fn unix_now(&self) -> f64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_now(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

/// A clock that says what it is told (tests).
#[derive(Debug, Default)]
pub struct FakeClock(AtomicI64);

impl FakeClock {
    /// A clock stopped at `unix` seconds.
    pub fn at(unix: i64) -> Self {
        FakeClock(AtomicI64::new(unix))
    }

    /// Moves the clock.
    pub fn set(&self, unix: i64) {
        self.0.store(unix, Ordering::Relaxed);
    }
}

impl Clock for FakeClock {
    fn unix_now(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64
    }
}
