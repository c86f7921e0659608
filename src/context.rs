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
}

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
        format!("{:016x}{n:016x}", self.prefix).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
