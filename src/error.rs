//! The closed set of answers the gateway itself gives, and config errors.
//!
//! Every gateway-made rejection is one [`Rejection`] variant with a fixed status, a fixed
//! reason string (CONTRACT §3, also the `reason` metric label) and an optional
//! `Retry-After`. `respond.rs` is the only place that turns one into an HTTP response.

use std::time::Duration;

use http::StatusCode;

/// Boxed error used where the concrete type does not matter.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request the gateway answers itself instead of forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// No route has this path.
    UnknownRoute,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// `server.max_concurrency` requests are already in flight.
    Overloaded,
    /// The client IP is not in the route's `allow_ips`.
    IpNotAllowed,
    /// The route's rate limit is exhausted; retry after the given time.
    RateLimited(Duration),
    /// The body is larger than the route's `max_body`.
    BodyTooLarge,
    /// Headers and body did not arrive within `server.read_timeout`.
    ReadTimeout,
    /// The signature header (or a signed input it needs) is absent.
    MissingSignature,
    /// No configured secret produces the presented signature.
    InvalidSignature,
    /// The authenticated timestamp is outside the route's window.
    TimestampOutOfWindow,
    /// Another attempt with the same delivery id is being forwarded; retry after the lease.
    InFlight(Duration),
    /// The route requires a delivery id and the request has none.
    MissingDedupKey,
    /// The dedup store did not answer and `on_store_error = "reject"`.
    DedupUnavailable,
    /// The upstream refused the connection (nothing was sent).
    UpstreamUnreachable,
    /// The upstream connection broke after sending, or the answer was not HTTP.
    UpstreamError,
    /// The upstream did not answer within the route's `timeout`.
    UpstreamTimeout,
}

/// Number of distinct reasons; metric handles are pre-built per route for each.
pub const REASON_COUNT: usize = 16;

impl Rejection {
    /// Every reason, in a fixed order (index = [`Rejection::index`]).
    pub const ALL_REASONS: [&'static str; REASON_COUNT] = [
        "unknown_route",
        "method_not_allowed",
        "overloaded",
        "ip_not_allowed",
        "rate_limited",
        "body_too_large",
        "read_timeout",
        "missing_signature",
        "invalid_signature",
        "timestamp_out_of_window",
        "in_flight",
        "missing_dedup_key",
        "dedup_unavailable",
        "upstream_unreachable",
        "upstream_error",
        "upstream_timeout",
    ];

    /// Position of this variant in [`Rejection::ALL_REASONS`].
    pub fn index(self) -> usize {
        match self {
            Rejection::UnknownRoute => 0,
            Rejection::MethodNotAllowed => 1,
            Rejection::Overloaded => 2,
            Rejection::IpNotAllowed => 3,
            Rejection::RateLimited(_) => 4,
            Rejection::BodyTooLarge => 5,
            Rejection::ReadTimeout => 6,
            Rejection::MissingSignature => 7,
            Rejection::InvalidSignature => 8,
            Rejection::TimestampOutOfWindow => 9,
            Rejection::InFlight(_) => 10,
            Rejection::MissingDedupKey => 11,
            Rejection::DedupUnavailable => 12,
            Rejection::UpstreamUnreachable => 13,
            Rejection::UpstreamError => 14,
            Rejection::UpstreamTimeout => 15,
        }
    }

    /// The reason string of CONTRACT §3.
    pub fn reason(self) -> &'static str {
        Self::ALL_REASONS[self.index()]
    }

    /// The status that makes the provider retry (or stop) correctly.
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::UnknownRoute => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::Overloaded | Rejection::DedupUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::IpNotAllowed => StatusCode::FORBIDDEN,
            Rejection::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Rejection::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::ReadTimeout => StatusCode::REQUEST_TIMEOUT,
            Rejection::MissingSignature
            | Rejection::InvalidSignature
            | Rejection::TimestampOutOfWindow => StatusCode::UNAUTHORIZED,
            Rejection::InFlight(_) => StatusCode::CONFLICT,
            Rejection::MissingDedupKey => StatusCode::BAD_REQUEST,
            Rejection::UpstreamUnreachable | Rejection::UpstreamError => StatusCode::BAD_GATEWAY,
            Rejection::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Seconds for the `Retry-After` header, where the contract asks for one.
    pub fn retry_after_secs(self) -> Option<u64> {
        // Round up and never say 0: "retry now" invites a hot loop.
        let ceil = |d: Duration| (d.as_millis().div_ceil(1000) as u64).max(1);
        match self {
            Rejection::Overloaded => Some(1),
            Rejection::RateLimited(wait) | Rejection::InFlight(wait) => Some(ceil(wait)),
            Rejection::DedupUnavailable => Some(5),
            _ => None,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_indexes_agree() {
        let all = [
            Rejection::UnknownRoute,
            Rejection::MethodNotAllowed,
            Rejection::Overloaded,
            Rejection::IpNotAllowed,
            Rejection::RateLimited(Duration::ZERO),
            Rejection::BodyTooLarge,
            Rejection::ReadTimeout,
            Rejection::MissingSignature,
            Rejection::InvalidSignature,
            Rejection::TimestampOutOfWindow,
            Rejection::InFlight(Duration::ZERO),
            Rejection::MissingDedupKey,
            Rejection::DedupUnavailable,
            Rejection::UpstreamUnreachable,
            Rejection::UpstreamError,
            Rejection::UpstreamTimeout,
        ];
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(
            Rejection::RateLimited(Duration::from_millis(1)).retry_after_secs(),
            Some(1)
        );
        assert_eq!(
            Rejection::RateLimited(Duration::from_millis(1001)).retry_after_secs(),
            Some(2)
        );
        assert_eq!(
            Rejection::InFlight(Duration::ZERO).retry_after_secs(),
            Some(1)
        );
        assert_eq!(Rejection::InvalidSignature.retry_after_secs(), None);
    }
}
