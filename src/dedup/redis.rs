//! The Redis store: the same two-phase contract as the memory store, shared by every
//! hookwall instance that points at the same Redis (or Redis Cluster).
//!
//! Two keys per id, under one Cluster hash tag so they share a slot:
//! `hookwall:dedup:{<route>:<id>}` holds `d` once the id is delivered, and
//! `hookwall:dedup:{<route>:<id>}:lease` holds the token of the attempt in flight. Only
//! releasing a failed attempt needs a script; the hot path is plain commands:
//! - reserve, one pipelined round trip: `SET lease <token> NX GET PX lease`, then `GET
//!   key`. `d` means delivered (whatever the lease says); otherwise a nil or our own token
//!   (the call sent again after a dropped connection) from the `SET` means ours, anything
//!   else in flight (then one `PTTL` for Retry-After). The order matters: a commit writes
//!   the delivered key *before* it deletes the lease, so a reserve that got the lease also
//!   sees the delivered key. A script does both on Redis before 7.0 (no `SET NX GET`);
//! - commit, one `MULTI`: `SET key d PX ttl`, `DEL lease`. Once the delivered key is
//!   written no reserve can take the id, so removing the lease (even a retry's, after our
//!   own lease expired) lets nothing through: the upstream accepted the delivery and every
//!   later attempt is a duplicate;
//! - release, a script: `DEL lease` only if it still holds our token, so an attempt whose
//!   lease expired and was taken over by a retry cannot free the retry's reservation.
//!
//! A reservation made by a hookwall from before this layout (the token in the delivered
//! key itself) reads as in flight until it settles or expires. An old instance does not
//! see a new one's lease, so during a rolling upgrade one id could be forwarded by both:
//! replace every instance within one lease.
//!
//! The connection is `redis_client.rs`'s (shared with the rate limiter), made lazily so
//! hookwall starts while Redis is down; the per-call timeout is applied by the callers
//! (`dedup::with_timeout`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{Script, Value};

use super::{DedupStore, Reservation, StoreError, StoreFuture, Token};
use crate::redis_client::{backend_error, Conn, RedisClient, RedisConfigError};
use crate::secret::Secret;

/// The value of a delivered id.
const DELIVERED: &[u8] = b"d";

/// Reserve for Redis before 7.0, which refuses `SET NX GET`: the same decisions as the
/// pipelined reserve, in one atomic step. KEYS: delivered key, lease key.
const RESERVE: &str = r"
local v = redis.call('GET', KEYS[1])
if v == 'd' then
  return {2, 0}
end
if v then
  return {3, redis.call('PTTL', KEYS[1])}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  return {1, 0}
end
return {3, redis.call('PTTL', KEYS[2])}
";

/// Frees a lease only while it is still ours. KEYS: lease key.
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

/// The two keys of one route-namespaced id.
struct Keys {
    delivered: String,
    lease: String,
}

impl Keys {
    fn of(id: &str) -> Self {
        let delivered = format!("hookwall:dedup:{{{id}}}");
        let lease = format!("{delivered}:lease");
        Keys { delivered, lease }
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

    fn token_value(&self, token: Token) -> String {
        format!("{:016x}{token:016x}", self.token_prefix)
    }

    async fn run_reserve(&self, id: &str, lease: Duration) -> Result<Reservation, StoreError> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let mut pending = PendingReserve {
            conn: self.client.conn().await?,
            keys: Keys::of(id),
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
            let mut pipe = redis::pipe();
            pipe.cmd("SET")
                .arg(&p.keys.lease)
                .arg(&p.token)
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(lease_ms)
                .cmd("GET")
                .arg(&p.keys.delivered);
            let replies: redis::RedisResult<ReserveReplies> =
                RedisClient::twice(&p.conn, |mut c| {
                    let pipe = &pipe;
                    async move { pipe.query_async(&mut c).await }
                })
                .await;
            match replies {
                Ok((lease_was, delivered)) => {
                    let ours = lease_was.as_deref().is_none_or(|v| v == p.token.as_bytes());
                    return match delivered.as_deref() {
                        Some(DELIVERED) => {
                            if ours {
                                // The lease we just took guards nothing: drop it (safe
                                // unconditionally, the id is delivered).
                                self.drop_lease(&p.conn, &p.keys.lease).await;
                            }
                            Ok(Found::Delivered)
                        }
                        // A reservation in the older layout; ours guards nothing either.
                        Some(_) => {
                            if ours {
                                self.release_lease(&p.conn, &p.keys.lease, &p.token).await;
                            }
                            self.held_for(&p.conn, &p.keys.delivered, p.lease).await
                        }
                        None if ours => Ok(Found::Free),
                        None => self.held_for(&p.conn, &p.keys.lease, p.lease).await,
                    };
                }
                // Redis before 7.0 refuses NX together with GET: use the script from now on.
                Err(e) if e.code() == Some("ERR") => {
                    tracing::info!(error = %e, "Redis refused SET NX GET; reserving with a script");
                    self.reserve_by_script.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(backend_error(e)),
            }
        }
        let mut call = self.reserve.key(&p.keys.delivered);
        call.key(&p.keys.lease).arg(&p.token).arg(lease_ms);
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

    /// How long the reservation in `key` has left, for Retry-After: at most one lease (the
    /// owner may have committed meanwhile).
    async fn held_for(&self, conn: &Conn, key: &str, lease: Duration) -> Result<Found, StoreError> {
        let mut pttl = redis::cmd("PTTL");
        pttl.arg(key);
        let left: i64 = RedisClient::twice(conn, |mut c| {
            let pttl = &pttl;
            async move { pttl.query_async(&mut c).await }
        })
        .await
        .map_err(backend_error)?;
        let left = Duration::from_millis(left.max(0) as u64);
        Ok(Found::Held(left.min(lease)))
    }

    /// Deletes a lease that guards an id already delivered. Best effort: one left behind
    /// expires with its lease.
    async fn drop_lease(&self, conn: &Conn, lease_key: &str) {
        let mut del = redis::cmd("DEL");
        del.arg(lease_key);
        let mut conn = conn.clone();
        let _ = tokio::time::timeout(self.call_timeout, del.query_async::<Value>(&mut conn)).await;
    }

    /// Frees our lease if it is still ours. Best effort, as [`Self::drop_lease`].
    async fn release_lease(&self, conn: &Conn, lease_key: &str, token: &str) {
        let mut call = self.release.key(lease_key);
        call.arg(token);
        let mut conn = conn.clone();
        let _ =
            tokio::time::timeout(self.call_timeout, call.invoke_async::<Value>(&mut conn)).await;
    }

    async fn run_commit(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        let conn = self.client.conn().await?;
        let keys = Keys::of(id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&keys.delivered)
            .arg(DELIVERED)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .ignore()
            .cmd("DEL")
            .arg(&keys.lease)
            .ignore();
        RedisClient::twice(&conn, |mut c| {
            let pipe = &pipe;
            async move { pipe.query_async::<()>(&mut c).await }
        })
        .await
        .map_err(backend_error)
    }

    async fn run_release(&self, id: &str, token: Token) -> Result<(), StoreError> {
        let conn = self.client.conn().await?;
        let keys = Keys::of(id);
        let mut call = self.release.key(&keys.lease);
        call.arg(self.token_value(token));
        let _: i64 = RedisClient::twice(&conn, |mut c| {
            let call = &call;
            async move { call.invoke_async(&mut c).await }
        })
        .await
        .map_err(backend_error)?;
        Ok(())
    }
}

/// The pipelined reserve's replies: the lease's previous value, the delivered key's.
type ReserveReplies = (Option<Vec<u8>>, Option<Vec<u8>>);

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
    keys: Keys,
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
            .arg(std::mem::take(&mut self.keys.lease))
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
            let release = release.query_async::<Value>(&mut conn);
            let _ = tokio::time::timeout(within, release).await;
        }));
    }
}

impl DedupStore for RedisStore {
    fn reserve<'a>(&'a self, key: &'a str, lease: Duration) -> StoreFuture<'a, Reservation> {
        Box::pin(self.run_reserve(key, lease))
    }

    fn commit<'a>(&'a self, key: &'a str, _token: Token, ttl: Duration) -> StoreFuture<'a, ()> {
        // Unconditional by design: see the module docs.
        Box::pin(self.run_commit(key, ttl))
    }

    fn release<'a>(&'a self, key: &'a str, token: Token) -> StoreFuture<'a, ()> {
        Box::pin(self.run_release(key, token))
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.client.ping())
    }
}
