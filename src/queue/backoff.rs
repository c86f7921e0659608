//! When a failed attempt is tried again: exponential backoff with full jitter, an
//! upstream's `Retry-After` honoured (capped at `max_delay`), and when it is not tried
//! again at all (`retry_on`, `max_attempts`, `max_age`).

use std::time::Duration;

use http::HeaderMap;

use crate::config::{RetryOn, RetryPolicy};

/// What an attempt came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttemptResult {
    /// The upstream answered with this status (and maybe a `Retry-After`).
    Status(u16, Option<Duration>),
    /// No answer: `upstream_unreachable`, `upstream_timeout` or `upstream_error`.
    Failed(&'static str),
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Try again after this long.
    RetryIn(Duration),
    /// Do not: a dead letter, for this reason.
    DeadLetter(&'static str),
}

/// The longest delay the cap grows to before jitter: `initial * multiplier^(n-1)`, at
/// most `max_delay`.
fn cap(policy: &RetryPolicy, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(64) as i32;
    let grown = policy.initial.as_secs_f64() * policy.multiplier.powi(exponent);
    Duration::from_secs_f64(grown.min(policy.max_delay.as_secs_f64()).max(0.0))
}

/// After attempt number `attempts` (from 1) of a delivery `age` old failed with `result`:
/// try again when, or dead-letter why. `random` is uniform in [0, 1): full jitter picks the
/// delay uniformly between zero and the cap, so retries of many deliveries spread out.
pub(crate) fn next(
    policy: &RetryPolicy,
    retry_on: &RetryOn,
    attempts: u32,
    age: Duration,
    result: &AttemptResult,
    random: f64,
) -> Next {
    let (retryable, retry_after) = match result {
        AttemptResult::Status(status, after) => (retry_on.status(*status), *after),
        AttemptResult::Failed(reason) => (retry_on.failure(reason), None),
    };
    if !retryable {
        return Next::DeadLetter("status");
    }
    if attempts >= policy.max_attempts {
        return Next::DeadLetter("max_attempts");
    }
    let jittered = cap(policy, attempts).mul_f64(random.clamp(0.0, 1.0));
    let delay = match retry_after {
        // The upstream said when; never sooner than that, never later than max_delay.
        Some(after) => after
            .min(policy.max_delay)
            .max(jittered.min(policy.max_delay)),
        None => jittered,
    };
    if age + delay > policy.max_age {
        return Next::DeadLetter("max_age");
    }
    Next::RetryIn(delay)
}

/// An upstream's `Retry-After` on 429 and 503, in seconds (an HTTP date is read too).
pub(crate) fn retry_after(status: u16, headers: &HeaderMap) -> Option<Duration> {
    if status != 429 && status != 503 {
        return None;
    }
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate_to_system_time(value)?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send.
fn httpdate_to_system_time(s: &str) -> Option<std::time::SystemTime> {
    let rfc3339 = {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
            return None;
        };
        let month = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .iter()
        .position(|m| m == month)?
            + 1;
        format!("{year}-{month:02}-{day:0>2}T{time}Z")
    };
    humantime::parse_rfc3339(&rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
            multiplier: 2.0,
            max_attempts: 25,
            max_age: Duration::from_secs(72 * 3600),
        }
    }

    fn retry_on() -> RetryOn {
        RetryOn {
            classes: vec![5],
            statuses: vec![429, 408],
            failures: vec!["upstream_unreachable".into(), "upstream_timeout".into()],
        }
    }

    fn delay(n: Next) -> Duration {
        match n {
            Next::RetryIn(d) => d,
            Next::DeadLetter(why) => panic!("dead-lettered: {why}"),
        }
    }

    #[test]
    fn caps_grow_exponentially_to_max_delay_and_jitter_spans_zero_to_the_cap() {
        let p = policy();
        let on = retry_on();
        let r = AttemptResult::Status(500, None);
        let top = |n| delay(next(&p, &on, n, Duration::ZERO, &r, 0.999_999));
        assert!(top(1) <= Duration::from_secs(1) && top(1) > Duration::from_millis(999));
        assert!(top(2) > Duration::from_millis(1999) && top(2) <= Duration::from_secs(2));
        assert!(top(5) > Duration::from_millis(15_999));
        assert_eq!(top(20).as_secs(), 599, "capped at max_delay");
        assert_eq!(
            delay(next(&p, &on, 5, Duration::ZERO, &r, 0.0)),
            Duration::ZERO
        );
        assert_eq!(
            delay(next(&p, &on, 5, Duration::ZERO, &r, 0.5)),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = policy();
        let on = retry_on();
        let said = AttemptResult::Status(429, Some(Duration::from_secs(30)));
        assert_eq!(
            delay(next(&p, &on, 1, Duration::ZERO, &said, 0.1)),
            Duration::from_secs(30)
        );
        let too_long = AttemptResult::Status(429, Some(Duration::from_secs(86_400)));
        assert_eq!(
            delay(next(&p, &on, 1, Duration::ZERO, &too_long, 0.1)),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn statuses_outside_retry_on_attempts_and_age_dead_letter() {
        let p = policy();
        let on = retry_on();
        let gone = AttemptResult::Status(410, None);
        assert_eq!(
            next(&p, &on, 1, Duration::ZERO, &gone, 0.5),
            Next::DeadLetter("status")
        );
        let refused = AttemptResult::Failed("upstream_error");
        assert_eq!(
            next(&p, &on, 1, Duration::ZERO, &refused, 0.5),
            Next::DeadLetter("status")
        );
        let down = AttemptResult::Failed("upstream_unreachable");
        assert_eq!(
            next(&p, &on, 25, Duration::ZERO, &down, 0.5),
            Next::DeadLetter("max_attempts")
        );
        let old = Duration::from_secs(72 * 3600 - 1);
        assert_eq!(
            next(&p, &on, 3, old, &down, 0.9),
            Next::DeadLetter("max_age")
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_on_429_and_503_only() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "12".parse().unwrap());
        assert_eq!(retry_after(429, &h), Some(Duration::from_secs(12)));
        assert_eq!(retry_after(503, &h), Some(Duration::from_secs(12)));
        assert_eq!(retry_after(500, &h), None);
        h.insert(
            "retry-after",
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(429, &h),
            Some(Duration::ZERO),
            "a date in the past: now"
        );
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(429, &h), None);
    }
}
