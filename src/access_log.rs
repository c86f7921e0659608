//! One log line per request at `info`: request id, route, outcome, status, latency and
//! client IP, and where they apply the reason, the upstream's status, the delivery id and,
//! for upstream failures, the cause (connection refused / reset / timeout, and the
//! upstream's address) — never a secret or a signature. A field that does not apply is
//! left out rather than written empty.
//!
//! Lines for *rejected* requests pass through a rate limiter (100 a second, bursts of 200)
//! so a flood of forged or oversized requests cannot fill the disk; the next line that
//! gets through says how many were suppressed, and metrics still count every one.
//! Forwarded and duplicate deliveries are always logged.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::context::Outcome;

/// Rejection lines allowed per second (and the burst).
const REJECTIONS_PER_SECOND: u32 = 100;
const REJECTION_BURST: u32 = 200;

/// The request log.
#[derive(Debug)]
pub(crate) struct AccessLog {
    rejections: DefaultDirectRateLimiter,
    suppressed: AtomicU64,
}

impl Default for AccessLog {
    fn default() -> Self {
        let rate = NonZeroU32::new(REJECTIONS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(REJECTION_BURST).unwrap_or(NonZeroU32::MIN);
        AccessLog {
            rejections: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            suppressed: AtomicU64::new(0),
        }
    }
}

/// One finished request, as logged.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    /// This request's id.
    pub request_id: &'a str,
    /// Route name or `_unknown`.
    pub route: &'a str,
    /// What happened.
    pub outcome: Outcome,
    /// Status sent to the provider.
    pub status: u16,
    /// Whole-request latency.
    pub latency: Duration,
    /// The real client IP.
    pub client: IpAddr,
    /// The delivery id, when dedup found one.
    pub dedup_id: Option<&'a str>,
    /// Why the upstream gave no answer, for upstream failures.
    pub cause: Option<&'a str>,
}

impl AccessLog {
    /// Logs `entry` (rejections only while under the rate).
    pub(crate) fn record(&self, entry: &Entry<'_>) {
        // `None` fields are not written at all (tracing skips them).
        let (reason, upstream_status) = match entry.outcome {
            Outcome::Rejected(r) => (Some(r.reason()), None),
            Outcome::Forwarded(s) => (None, Some(s.as_u16())),
            _ => (None, None),
        };
        let mut suppressed = None;
        if matches!(entry.outcome, Outcome::Rejected(_)) {
            if self.rejections.check().is_err() {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            suppressed = Some(self.suppressed.swap(0, Ordering::Relaxed)).filter(|n| *n > 0);
        }
        tracing::info!(
            request_id = entry.request_id,
            route = entry.route,
            outcome = entry.outcome.label(),
            reason,
            status = entry.status,
            upstream_status,
            latency_ms = entry.latency.as_secs_f64() * 1000.0,
            client_ip = %entry.client,
            dedup_id = entry.dedup_id,
            cause = entry.cause,
            suppressed_rejection_lines = suppressed,
            "request finished"
        );
    }

    /// Rejection lines suppressed since the last one that was written.
    #[cfg(test)]
    fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Rejection;

    #[test]
    fn a_flood_of_rejections_is_capped_but_deliveries_are_not() {
        let log = AccessLog::default();
        let entry = |outcome| Entry {
            request_id: "r",
            route: "x",
            outcome,
            status: 401,
            latency: Duration::ZERO,
            client: IpAddr::from([127, 0, 0, 1]),
            dedup_id: None,
            cause: None,
        };
        for _ in 0..1000 {
            log.record(&entry(Outcome::Rejected(Rejection::InvalidSignature)));
        }
        // The burst passes; the rest (minus what refilled meanwhile) is suppressed.
        assert!(log.suppressed() >= 700, "{}", log.suppressed());
        let before = log.suppressed();
        log.record(&entry(Outcome::Forwarded(http::StatusCode::OK)));
        assert_eq!(
            log.suppressed(),
            before,
            "deliveries are always logged and never count"
        );
    }
}
