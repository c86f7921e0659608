//! The Redis store: the same two-phase contract as the memory store, shared by every
//! hookwall instance that points at the same Redis (or Redis Cluster).
//!
//! Each step is one atomic command or Lua script, one round trip:
//! - reserve: `SET key <token> NX GET PX lease`: nil (or our own token, when the call was
//!   sent again after a dropped connection) means ours, `d` delivered, anything else in
//!   flight (then one `PTTL` for Retry-After); a script on Redis before 7.0;
//! - commit: only if the key still holds *our* token, `SET key d PX ttl`;
//! - release: only if the key still holds our token, `DEL key`.
//!
//! A lease that expired and was taken over by a retry therefore cannot be clobbered by the
//! late first attempt. Keys are `hookwall:dedup:{<route>:<id>}`: the braces are a Redis
//! Cluster hash tag, so a delivery's key lives in one slot and scripts stay atomic there.
//!
//! The connection is `redis_client.rs`'s (shared with the rate limiter), made lazily so
//! hookwall starts while Redis is down; the per-call timeout is applied by the callers
//! (`dedup::with_timeout`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use std::sync::Arc;

use redis::Script;

use super::{DedupStore, Reservation, StoreError, StoreFuture, Token};
use crate::redis_client::{backend_error, Conn, RedisClient, RedisConfigError};
use crate::secret::Secret;

/// The value of a delivered id (a reservation holds its owner's token instead).
const DELIVERED: &str = "d";

/// Reserve for Redis before 7.0, which refuses `SET NX GET`.
const RESERVE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
local v = redis.call('GET', KEYS[1])
if v == 'd' then
  return {2, 0}
end
if v == ARGV[1] then
  return {1, 0}
end
return {3, redis.call('PTTL', KEYS[1])}
";

const COMMIT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'd', 'PX', ARGV[2])
  return 1
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Two-phase dedup in Redis.
pub struct RedisStore {
    client: Arc<RedisClient>,
    reserve: Script,
    commit: Script,
    release: Script,
    /// Random per process, so tokens never collide between instances.
    token_prefix: u64,
    next: AtomicU64,
    /// Set once Redis refused `SET NX GET` (before 7.0).
    reserve_by_script: AtomicBool,
    /// The configured per-call timeout, also for clean-up calls made in the background.
    call_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on one Redis; does not connect until first used. Must run inside tokio.
    pub fn single(url: &Secret, call_timeout: Duration) -> Result<Self, RedisConfigError> {
        let client = RedisClient::single(url, call_timeout)?;
        Ok(Self::new(Arc::new(client), call_timeout))
    }

    /// A store on `client` (shared with the rate limiter).
    pub fn new(client: Arc<RedisClient>, call_timeout: Duration) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        RedisStore {
            client,
            reserve: Script::new(RESERVE),
            commit: Script::new(COMMIT),
            release: Script::new(RELEASE),
            token_prefix: h.finish(),
            next: AtomicU64::new(1),
            reserve_by_script: AtomicBool::new(false),
            call_timeout,
        }
    }

    /// Reserves with the Lua script even on Redis 7.0+, as older servers get automatically
    /// (kept so both ways stay tested).
    pub fn reserving_by_script(self) -> Self {
        self.reserve_by_script.store(true, Ordering::Relaxed);
        self
    }

    /// The Redis key of a route-namespaced id.
    fn key(id: &str) -> String {
        format!("hookwall:dedup:{{{id}}}")
    }

    fn token_value(&self, token: Token) -> String {
        format!("{:016x}{token:016x}", self.token_prefix)
    }

    async fn run_reserve(&self, key: &str, lease: Duration) -> Result<Reservation, StoreError> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let mut pending = PendingReserve {
            conn: self.client.conn().await?,
            key: Self::key(key),
            token: self.token_value(token),
            lease,
            answered: false,
            call_timeout: self.call_timeout,
        };
        let found = self.reserve_in(&mut pending).await?;
        // An answer: ours now (the dedup layer settles it) or somebody else's.
        pending.answered = true;
        Ok(match found {
            Found::Free => Reservation::Acquired(token),
            Found::Delivered => Reservation::Delivered,
            Found::Held(left) => Reservation::InFlight(left),
        })
    }

    async fn reserve_in(&self, p: &mut PendingReserve) -> Result<Found, StoreError> {
        let lease_ms = p.lease.as_millis().max(1) as u64;
        if !self.reserve_by_script.load(Ordering::Relaxed) {
            // One plain command (Redis 7.0+) costs the server half what the script does.
            let mut set = redis::cmd("SET");
            set.arg(&p.key)
                .arg(&p.token)
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(lease_ms);
            let held: redis::RedisResult<Option<Vec<u8>>> = RedisClient::twice(&p.conn, |mut c| {
                let set = &set;
                async move { set.query_async(&mut c).await }
            })
            .await;
            match held {
                Ok(None) => return Ok(Found::Free),
                // Our own SET, run before the connection dropped and sent again.
                Ok(Some(v)) if v == p.token.as_bytes() => return Ok(Found::Free),
                Ok(Some(v)) if v == DELIVERED.as_bytes() => return Ok(Found::Delivered),
                Ok(Some(_)) => {
                    let mut pttl = redis::cmd("PTTL");
                    pttl.arg(&p.key);
                    let left: i64 = RedisClient::twice(&p.conn, |mut c| {
                        let pttl = &pttl;
                        async move { pttl.query_async(&mut c).await }
                    })
                    .await
                    .map_err(backend_error)?;
                    // At most one lease: the owner may have committed meanwhile (long TTL).
                    let left = Duration::from_millis(left.max(0) as u64);
                    return Ok(Found::Held(left.min(p.lease)));
                }
                // Redis before 7.0 refuses NX together with GET: use the script from now on.
                Err(e) if e.code() == Some("ERR") => {
                    tracing::info!(error = %e, "Redis refused SET NX GET; reserving with a script");
                    self.reserve_by_script.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(backend_error(e)),
            }
        }
        let mut call = self.reserve.key(&p.key);
        call.arg(&p.token).arg(lease_ms);
        let reply: Vec<i64> = RedisClient::twice(&p.conn, |mut c| {
            let call = &call;
            async move { call.invoke_async(&mut c).await }
        })
        .await
        .map_err(backend_error)?;
        match reply.as_slice() {
            [1, _] => Ok(Found::Free),
            [2, _] => Ok(Found::Delivered),
            [3, left] => Ok(Found::Held(Duration::from_millis((*left).max(0) as u64))),
            other => Err(StoreError::Backend(format!(
                "unexpected reserve reply {other:?}"
            ))),
        }
    }

    async fn run_settle(
        &self,
        script: &Script,
        key: &str,
        token: Token,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let conn = self.client.conn().await?;
        let mut call = script.key(Self::key(key));
        call.arg(self.token_value(token));
        if let Some(ttl) = ttl {
            call.arg(ttl.as_millis().max(1) as u64);
        }
        let _: i64 = RedisClient::twice(&conn, |mut c| {
            let call = &call;
            async move { call.invoke_async(&mut c).await }
        })
        .await
        .map_err(backend_error)?;
        Ok(())
    }
}

/// What a reserve found in Redis.
enum Found {
    Free,
    Delivered,
    Held(Duration),
}

/// A reserve whose answer has not been seen yet. Dropped unanswered (the call timed out,
/// the provider hung up, the connection failed), Redis may still run the `SET` already
/// sent, and that lease would hold up the provider's retry until it expired. So dropping it
/// queues a release of our token behind the `SET` on the same connection: it removes the
/// lease if the `SET` took it and does nothing otherwise.
struct PendingReserve {
    conn: Conn,
    key: String,
    token: String,
    lease: Duration,
    answered: bool,
    call_timeout: Duration,
}

impl Drop for PendingReserve {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // EVAL, not EVALSHA: nobody reads the answer, so a NOSCRIPT would go unnoticed.
        let mut release = redis::cmd("EVAL");
        release
            .arg(RELEASE)
            .arg(1)
            .arg(std::mem::take(&mut self.key))
            .arg(std::mem::take(&mut self.token));
        let mut conn = self.conn.clone();
        if let Conn::Single(_) = conn {
            // Sent without waiting for the answer, so it is written even if this task ends
            // first (the cluster client waits for its answer instead).
            release.set_no_response(true);
        }
        let within = self.call_timeout;
        drop(runtime.spawn(async move {
            // One store call's time to be queued (or, on a cluster, answered), so a hung
            // Redis cannot pile these tasks up; a lease left behind expires on its own.
            let release = release.query_async::<redis::Value>(&mut conn);
            let _ = tokio::time::timeout(within, release).await;
        }));
    }
}

impl DedupStore for RedisStore {
    fn reserve<'a>(&'a self, key: &'a str, lease: Duration) -> StoreFuture<'a, Reservation> {
        Box::pin(self.run_reserve(key, lease))
    }

    fn commit<'a>(&'a self, key: &'a str, token: Token, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(self.run_settle(&self.commit, key, token, Some(ttl)))
    }

    fn release<'a>(&'a self, key: &'a str, token: Token) -> StoreFuture<'a, ()> {
        Box::pin(self.run_settle(&self.release, key, token, None))
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.client.ping())
    }
}
