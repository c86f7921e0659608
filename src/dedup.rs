//! Two-phase dedup stores.
//!
//! A delivery id moves through: absent → **reserved** (a lease, while one attempt is
//! forwarded) → **delivered** (remembered for `ttl`) on an upstream 2xx, or back to absent
//! (released) on anything else, so the provider's retry gets through. Every reservation
//! carries a [`Token`]: a release only frees the reservation it owns, so an attempt whose
//! lease expired and was taken over by a retry cannot let a third attempt in beside the
//! retry. A late owner's commit may be ignored (memory) or applied (Redis, where marking
//! delivered is a plain write): either is right, since the upstream accepted that attempt.

pub mod memory;
pub mod redis;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use self::redis::RedisStore;
pub use memory::MemoryStore;

use std::sync::Arc;

use crate::config::{DedupConfig, StoreKind};
use crate::redis_client::{RedisClient, RedisConfigError};

/// The configured store, and the Redis connection when there is one (shared rate limits
/// use it too).
#[derive(Debug, Clone)]
pub struct Stores {
    /// Where delivery ids are kept.
    pub dedup: Arc<dyn DedupStore>,
    /// The Redis behind it, if any.
    pub redis: Option<Arc<RedisClient>>,
}

impl Stores {
    /// Just a dedup store (tests, embedding).
    pub fn only(dedup: Arc<dyn DedupStore>) -> Self {
        Stores { dedup, redis: None }
    }
}

/// The stores `[dedup]` asks for. Redis connects lazily: this never waits for Redis.
pub fn build(cfg: &DedupConfig) -> Result<Stores, RedisConfigError> {
    let client = match &cfg.store {
        StoreKind::Memory => {
            return Ok(Stores::only(Arc::new(MemoryStore::new(cfg.max_entries))));
        }
        StoreKind::Redis(url) => RedisClient::single(url, cfg.call_timeout)?,
        StoreKind::RedisCluster(urls) => RedisClient::cluster(urls, cfg.call_timeout)?,
    };
    let client = Arc::new(client);
    Ok(Stores {
        dedup: Arc::new(RedisStore::new(client.clone(), cfg.call_timeout)),
        redis: Some(client),
    })
}

/// Identifies one reservation.
pub type Token = u64;

/// Boxed store future (the trait is used as `dyn`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What a reservation attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The id was free and is now ours until the lease ends.
    Acquired(Token),
    /// Another attempt holds it; its lease ends in this long.
    InFlight(Duration),
    /// Already delivered.
    Delivered,
}

/// The store did not answer usefully.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No answer within `call_timeout`.
    #[error("dedup store call timed out")]
    Timeout,
    /// The store answered with an error or the connection failed.
    #[error("dedup store error: {0}")]
    Backend(String),
}

/// A place to keep delivery ids. Keys are already namespaced by route.
pub trait DedupStore: Send + Sync + std::fmt::Debug + 'static {
    /// Atomically: if `key` is absent (or its lease expired), reserve it for `lease`.
    fn reserve<'a>(&'a self, key: &'a str, lease: Duration) -> StoreFuture<'a, Reservation>;
    /// Marks the id delivered for `ttl` after an upstream 2xx of the attempt holding
    /// `token` (see the module docs for a token that no longer owns the reservation).
    fn commit<'a>(&'a self, key: &'a str, token: Token, ttl: Duration) -> StoreFuture<'a, ()>;
    /// Drops our reservation. No effect if `token` no longer owns it.
    fn release<'a>(&'a self, key: &'a str, token: Token) -> StoreFuture<'a, ()>;
    /// Whether the store answers (for `/readyz`).
    fn ping(&self) -> StoreFuture<'_, ()>;
    /// How many ids the store holds, where that is cheap to know (the memory store).
    fn entries(&self) -> Option<usize> {
        None
    }
}

/// Runs a store call with the configured per-call timeout.
pub async fn with_timeout<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(StoreError::Timeout))
}
