//! The closed set of answers the gateway itself gives, and config errors.
//!
//! Every gateway-made rejection is one [`Rejection`] variant with a fixed status, a fixed
//! reason string (CONTRACT §3, also the `reason` metric label) and an optional
//! `Retry-After`. `respond.rs` is the only place that turns one into an HTTP response.

use std::time::Duration;

use http::StatusCode;

/// Boxed error used where the concrete type does not matter.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Defines [`Rejection`] from one table: variant, reason string (CONTRACT §3, also the
/// `reason` metric label) and status, so the three can never disagree.
macro_rules! rejections {
    ($( $(#[$doc:meta])* $variant:ident $(($field:ty))? => $reason:literal, $status:ident; )*) => {
        /// A request the gateway answers itself instead of forwarding.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Rejection {
            $( $(#[$doc])* $variant $(($field))?, )*
        }

        /// Number of distinct reasons; metric handles are pre-built per route for each.
        pub(crate) const REASON_COUNT: usize = [$($reason),*].len();

        impl Rejection {
            /// Every reason, in a fixed order (index = [`Rejection::index`]).
            pub(crate) const ALL_REASONS: [&'static str; REASON_COUNT] = [$($reason),*];

            /// Position of this variant in [`Rejection::ALL_REASONS`].
            pub(crate) fn index(self) -> usize {
                let mut i = 0;
                $(
                    if matches!(self, Rejection::$variant { .. }) {
                        return i;
                    }
                    i += 1;
                )*
                unreachable!("every variant is listed ({i})")
            }

            /// The reason string of CONTRACT §3.
            pub(crate) fn reason(self) -> &'static str {
                Self::ALL_REASONS[self.index()]
            }

            /// The status that makes the provider retry (or stop) correctly.
            pub(crate) fn status(self) -> StatusCode {
                match self {
                    $( Rejection::$variant { .. } => StatusCode::$status, )*
                }
            }
        }
    };
}

rejections! {
    /// No route has this path.
    UnknownRoute => "unknown_route", NOT_FOUND;
    /// The route exists but not for this method.
    MethodNotAllowed => "method_not_allowed", METHOD_NOT_ALLOWED;
    /// `server.max_concurrency` requests are already in flight.
    Overloaded => "overloaded", SERVICE_UNAVAILABLE;
    /// The client IP is not in the route's `allow_ips`.
    IpNotAllowed => "ip_not_allowed", FORBIDDEN;
    /// The route's rate limit is exhausted; retry after the given time.
    RateLimited(Duration) => "rate_limited", TOO_MANY_REQUESTS;
    /// The body is larger than the route's `max_body`.
    BodyTooLarge => "body_too_large", PAYLOAD_TOO_LARGE;
    /// Headers and body did not arrive within `server.read_timeout`.
    ReadTimeout => "read_timeout", REQUEST_TIMEOUT;
    /// The signature header (or a signed input it needs) is absent.
    MissingSignature => "missing_signature", UNAUTHORIZED;
    /// No configured secret produces the presented signature.
    InvalidSignature => "invalid_signature", UNAUTHORIZED;
    /// The authenticated timestamp is outside the route's window.
    TimestampOutOfWindow => "timestamp_out_of_window", UNAUTHORIZED;
    /// Another attempt with the same delivery id is being forwarded; retry after this.
    InFlight(Duration) => "in_flight", CONFLICT;
    /// The route requires a delivery id and the request has none.
    MissingDedupKey => "missing_dedup_key", BAD_REQUEST;
    /// The dedup store did not answer and `on_store_error = "reject"`.
    DedupUnavailable => "dedup_unavailable", SERVICE_UNAVAILABLE;
    /// The upstream refused the connection (nothing was sent).
    UpstreamUnreachable => "upstream_unreachable", BAD_GATEWAY;
    /// The upstream connection broke after sending, or the answer was not HTTP.
    UpstreamError => "upstream_error", BAD_GATEWAY;
    /// The upstream did not answer within the route's `timeout`.
    UpstreamTimeout => "upstream_timeout", GATEWAY_TIMEOUT;
    /// The HTTP parser refused the request (or its chunked body framing).
    BadRequest => "bad_request", BAD_REQUEST;
    /// The request head is larger than the gateway accepts.
    HeadersTooLarge => "headers_too_large", REQUEST_HEADER_FIELDS_TOO_LARGE;
    /// A provider's public key or certificate could not be fetched; the provider retries.
    KeyUnavailable => "key_unavailable", SERVICE_UNAVAILABLE;
    /// A provider control request without the credentials the route requires for it (a
    /// wrong verify token, a second Asana handshake).
    HandshakeRefused => "handshake_refused", FORBIDDEN;
    /// An SNS message from a topic the route does not list.
    TopicNotAllowed => "topic_not_allowed", FORBIDDEN;
    /// The SNS subscription could not be confirmed (SubscribeURL failed); SNS retries.
    ConfirmationFailed => "confirmation_failed", BAD_GATEWAY;
    /// A buffered route could not write the delivery to its queue (storage down or slow);
    /// nothing was accepted, the provider retries.
    QueueUnavailable => "queue_unavailable", SERVICE_UNAVAILABLE;
    /// A buffered route's queue holds `max_queued` deliveries; the provider retries.
    QueueFull => "queue_full", SERVICE_UNAVAILABLE;
}

impl Rejection {
    /// Seconds for the `Retry-After` header, where the contract asks for one.
    pub(crate) fn retry_after_secs(self) -> Option<u64> {
        // Round up and never say 0: "retry now" invites a hot loop.
        let ceil = |d: Duration| (d.as_millis().div_ceil(1000) as u64).max(1);
        match self {
            Rejection::Overloaded => Some(1),
            Rejection::RateLimited(wait) | Rejection::InFlight(wait) => Some(ceil(wait)),
            Rejection::DedupUnavailable | Rejection::QueueUnavailable => Some(5),
            Rejection::QueueFull => Some(30),
            Rejection::KeyUnavailable => Some(
                crate::verify::fetched_keys::FAILURE_BACKOFF
                    .as_secs()
                    .max(1),
            ),
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
            Rejection::BadRequest,
            Rejection::HeadersTooLarge,
            Rejection::KeyUnavailable,
            Rejection::HandshakeRefused,
            Rejection::TopicNotAllowed,
            Rejection::ConfirmationFailed,
            Rejection::QueueUnavailable,
            Rejection::QueueFull,
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
