//! Per-request facts carried in the request and response extensions: what the server
//! establishes once (request id, real client IP), the markers one layer leaves for a later
//! one (the key that verified, the delivery id, whether the upstream accepted), and what the
//! gateway decided ([`Outcome`]). Keeping them here means layers and `forward` depend on
//! this module, never on each other.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::Rejection;

/// Set by the server before the route stack runs.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    /// This request's own id (answers, logs, `X-Request-Id` upstream).
    pub request_id: Arc<str>,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The real client: the peer, or from `X-Forwarded-For` when the peer is trusted.
    pub client_ip: IpAddr,
    /// Whether the peer is a trusted proxy (its `X-Forwarded-*` headers are believed).
    pub peer_trusted: bool,
    /// When the request head was parsed; `read_timeout` for the body counts from here.
    pub received: tokio::time::Instant,
    /// Whether it arrived over TLS terminated here.
    pub https: bool,
    /// What the layers learn about the request, for the journal and the diagnosis.
    pub record: Arc<RequestRecord>,
}

/// What the layers learn about one request that the journal keeps: each is set once, by the
/// layer that knows it, and read by the front when the request is done.
#[derive(Debug, Default)]
pub(crate) struct RequestRecord {
    /// The body as received (set by the body layer).
    pub body: std::sync::OnceLock<bytes::Bytes>,
    /// The index of the secret that verified the signature.
    pub key: std::sync::OnceLock<usize>,
    /// How long the upstream took, milliseconds.
    pub upstream_ms: std::sync::OnceLock<f64>,
    /// Set when the signature was refused: the headers, for the diagnosis to try the
    /// known mistakes against (the body is in `body`).
    pub refused_headers: std::sync::OnceLock<http::HeaderMap>,
    /// Shadow mode: the first answer a check would have given instead of letting the
    /// request through (`X-Hookwall-Would-Reject` upstream, the journal's `would_reject`).
    pub would_reject: std::sync::OnceLock<WouldReject>,
    /// Shadow mode: set when the signature or the timestamp window failed (whatever was
    /// recorded first), so the upstream is not told `X-Hookwall-Verified` and the journal
    /// does not count the entry as verified.
    pub unverified: std::sync::OnceLock<()>,
}

/// What a check of a route in shadow mode (`enforce = false`) would have answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WouldReject {
    /// A rejection (its reason string, CONTRACT §3).
    Rejected(Rejection),
    /// An id already delivered (`200 duplicate`).
    Duplicate,
    /// An event the route's `events` do not want (`200 ignored`).
    Ignored,
}

/// Number of distinct [`WouldReject`] reasons (metric handles are pre-built for each).
pub(crate) const WOULD_REJECT_COUNT: usize = crate::error::REASON_COUNT + 2;

impl WouldReject {
    /// The `reason` label and `X-Hookwall-Would-Reject` value.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            WouldReject::Rejected(r) => r.reason(),
            WouldReject::Duplicate => "duplicate",
            WouldReject::Ignored => "ignored",
        }
    }

    /// Position among [`WouldReject::all_reasons`].
    pub(crate) fn index(self) -> usize {
        match self {
            WouldReject::Rejected(r) => r.index(),
            WouldReject::Duplicate => crate::error::REASON_COUNT,
            WouldReject::Ignored => crate::error::REASON_COUNT + 1,
        }
    }

    /// Every reason, in index order.
    pub(crate) fn all_reasons() -> [&'static str; WOULD_REJECT_COUNT] {
        std::array::from_fn(|i| match Rejection::ALL_REASONS.get(i) {
            Some(r) => *r,
            None if i == crate::error::REASON_COUNT => "duplicate",
            None => "ignored",
        })
    }

    /// The decision a reason string names (a queued delivery keeps it as text). Only what
    /// shadow mode records; the wait of `rate_limited`/`in_flight` is not kept.
    pub(crate) fn from_reason(reason: &str) -> Option<Self> {
        let rejection = match reason {
            "duplicate" => return Some(WouldReject::Duplicate),
            "ignored" => return Some(WouldReject::Ignored),
            "ip_not_allowed" => Rejection::IpNotAllowed,
            "rate_limited" => Rejection::RateLimited(std::time::Duration::ZERO),
            "key_unavailable" => Rejection::KeyUnavailable,
            "handshake_refused" => Rejection::HandshakeRefused,
            "missing_signature" => Rejection::MissingSignature,
            "invalid_signature" => Rejection::InvalidSignature,
            "timestamp_out_of_window" => Rejection::TimestampOutOfWindow,
            "topic_not_allowed" => Rejection::TopicNotAllowed,
            "in_flight" => Rejection::InFlight(std::time::Duration::ZERO),
            "missing_dedup_key" => Rejection::MissingDedupKey,
            "dedup_unavailable" => Rejection::DedupUnavailable,
            _ => return None,
        };
        Some(WouldReject::Rejected(rejection))
    }

    /// Whether this means the request did not pass the signature and timestamp checks.
    pub(crate) fn unverified(self) -> bool {
        matches!(
            self,
            WouldReject::Rejected(
                Rejection::MissingSignature
                    | Rejection::InvalidSignature
                    | Rejection::KeyUnavailable
                    | Rejection::TimestampOutOfWindow
            )
        )
    }
}

/// On a request of a route in shadow mode (`enforce = false`): checks record what they
/// would answer (counted here) and let the request through.
#[derive(Debug, Clone)]
pub(crate) struct Shadow(pub Arc<crate::metrics::ShadowMetrics>);

/// On a request: its event type, once the route's event filter looked for it (so a
/// buffered route's targets do not parse the body again).
#[derive(Debug, Clone)]
pub(crate) struct EventType(pub Option<Arc<str>>);

/// The index (in the route's `secrets`) of the secret that verified the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VerifiedKey(pub usize);

/// The header whose value the valid signature covered as the delivery id. Dedup takes the
/// id from it, so an unsigned look-alike header (Svix's `svix-id` beside a `webhook-*`
/// signature) cannot choose which id a delivery claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedIdHeader(pub http::HeaderName);

/// The delivery id of a request, for `X-Hookwall-Delivery-Id` upstream.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryId(pub Arc<str>);

/// On a response: the upstream said 2xx, even if its body then failed, so dedup must mark
/// the id delivered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpstreamAccepted;

/// On a gateway-made rejection: what it was judged against, for the log line's `cause`
/// (never sent to the client).
#[derive(Debug, Clone)]
pub(crate) struct RejectionCause(pub String);

/// On a replayed request: the journal entry it replays (`X-Hookwall-Replay-Of`).
#[derive(Debug, Clone)]
pub(crate) struct ReplayOf(pub String);

/// On a request that no signature vouched for, but something else did: the value of
/// `X-Hookwall-Verified` upstream (`reconcile:stripe` for an event polled from Stripe's API)
/// instead of the provider's name.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedBy(pub Arc<str>);

/// On an event polled from the provider's API (reconcile): its id, which dedup takes as
/// the delivery id instead of looking in the request (the API vouched for it).
#[derive(Debug, Clone)]
pub(crate) struct PolledId(pub Arc<str>);

/// On a queued delivery's attempt: its number, from 1 (`X-Hookwall-Attempt`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt(pub u32);

/// On a response: why the upstream gave no answer (kind and address), for the log line.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamFailure(pub String);

/// What happened to a request, attached to the response for metrics and the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The upstream answered with this status.
    Forwarded(http::StatusCode),
    /// An already-delivered id: answered 200 without calling the upstream.
    Duplicate,
    /// The gateway answered itself.
    Rejected(Rejection),
    /// A provider handshake answered by the gateway.
    Handshake,
    /// Written to a buffered route's queue: `202`, delivered later.
    Queued,
    /// Verified, but no target's event filter wanted it: `200 ignored`.
    Ignored,
    /// A dead letter an operator discarded (`DELETE /dead-letters/{id}`): journal only,
    /// never a request's outcome.
    Discarded,
}

impl Outcome {
    /// The `outcome` metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::Forwarded(_) => "forwarded",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected(_) => "rejected",
            Outcome::Handshake => "handshake",
            Outcome::Queued => "queued",
            Outcome::Ignored => "ignored",
            Outcome::Discarded => "discarded",
        }
    }
}

/// Makes request ids: a random per-process prefix and a counter, so ids are unique across
/// restarts and instances without a syscall per request.
#[derive(Debug)]
pub(crate) struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the OS once per process; good enough for a prefix.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        RequestIds {
            prefix: h.finish(),
            next: AtomicU64::new(0),
        }
    }
}

impl RequestIds {
    /// A fresh id, 32 hex characters: the process prefix and the whole 64-bit count, so
    /// ids never repeat within a process (the count does not wrap in practice: 2^64).
    pub(crate) fn next_id(&self) -> Arc<str> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // By hand rather than format!: this runs for every request (callgrind: 2,200
        // instructions through core::fmt, under 200 this way).
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&self.prefix.to_be_bytes());
        raw[8..].copy_from_slice(&n.to_be_bytes());
        let mut text = [0u8; 32];
        // Cannot fail: the output is exactly twice the input's length.
        let _ = hex::encode_to_slice(raw, &mut text);
        // Hex digits are ASCII.
        std::str::from_utf8(&text).map_or_else(|_| Arc::from(""), Arc::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadowed_reasons_read_back_from_their_text() {
        for why in [
            WouldReject::Duplicate,
            WouldReject::Ignored,
            WouldReject::Rejected(Rejection::InvalidSignature),
            WouldReject::Rejected(Rejection::RateLimited(std::time::Duration::ZERO)),
            WouldReject::Rejected(Rejection::InFlight(std::time::Duration::ZERO)),
        ] {
            assert_eq!(WouldReject::from_reason(why.reason()), Some(why));
        }
        assert_eq!(WouldReject::from_reason("upstream_error"), None);
    }

    #[test]
    fn ids_are_unique_and_fixed_length() {
        let ids = RequestIds::default();
        let a = ids.next_id();
        let b = ids.next_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }

    /// Regression: ids were the prefix and the low 32 bits of the count, so request
    /// 2^32 + 1 had the id of request 1.
    #[test]
    fn ids_do_not_repeat_after_two_to_the_32_requests() {
        let ids = RequestIds::default();
        let first = ids.next_id();
        ids.next.store(1 << 32, Ordering::Relaxed);
        assert_ne!(ids.next_id(), first);
    }

    #[test]
    fn an_id_is_the_prefix_and_the_count_in_lowercase_hex() {
        let ids = RequestIds::default();
        ids.next.store(0xab_cdef, Ordering::Relaxed);
        let expected = format!("{:016x}{:016x}", ids.prefix, 0xab_cdef);
        assert_eq!(&*ids.next_id(), expected);
    }
}
