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
//! The connection is a multiplexed, auto-reconnecting connection (`ConnectionManager`, one
//! per worker thread; or the cluster client's connection), created lazily so hookwall
//! starts while Redis is down; the per-call timeout is applied by the callers
//! (`dedup::with_timeout`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::Script;
use tokio::sync::Mutex;

use super::{DedupStore, Reservation, StoreError, StoreFuture, Token};
use crate::secret::Secret;
use crate::server::workers;

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

/// The connection: one Redis or a cluster.
// One per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    /// One lazily made connection per worker thread (slot 0: off the workers), so a
    /// request's Redis round trips are driven on its own thread (see `server::workers`).
    Single {
        client: redis::Client,
        config: ConnectionManagerConfig,
        managers: Box<[OnceLock<ConnectionManager>]>,
    },
    Cluster {
        client: ClusterClient,
        conn: Mutex<Option<ClusterConnection>>,
    },
}

/// Two-phase dedup in Redis.
pub struct RedisStore {
    backend: Backend,
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
        let kind = match self.backend {
            Backend::Single { .. } => "single",
            Backend::Cluster { .. } => "cluster",
        };
        // Never print the URL: it may carry a password.
        f.debug_struct("RedisStore")
            .field("backend", &kind)
            .finish_non_exhaustive()
    }
}

fn backend_error(e: redis::RedisError) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn url_text(url: &Secret) -> String {
    String::from_utf8_lossy(url.expose()).into_owned()
}

impl RedisStore {
    /// A store on one Redis; does not connect until first used. Must run inside tokio.
    pub fn single(url: &Secret, call_timeout: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url_text(url).as_str())
            .map_err(|e| format!("invalid Redis URL: {}", e.category()))?;
        // No response timeout here: every call already runs under `with_timeout`, and a
        // second timer per command only costs CPU (a timeout does not make the manager
        // reconnect either way).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(call_timeout.max(Duration::from_millis(500))))
            .set_response_timeout(None)
            // One attempt per reconnect, no backoff: every call waits for the attempt under
            // way, and a backoff sleep would outlast call_timeout, so requests (and /readyz)
            // would keep failing after Redis is back. A failed attempt is simply made again
            // by the next call, one at a time.
            .set_number_of_retries(0);
        let managers: Box<[OnceLock<ConnectionManager>]> =
            (0..=workers::count()).map(|_| OnceLock::new()).collect();
        // Made now so a bad setting shows at startup, not on the first request.
        let first = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| e.to_string())?;
        let _ = managers[0].set(first);
        Ok(Self::with(
            Backend::Single {
                client,
                config,
                managers,
            },
            call_timeout,
        ))
    }

    /// A store on a Redis Cluster given by seed nodes.
    pub fn cluster(urls: &[Secret], call_timeout: Duration) -> Result<Self, String> {
        let nodes: Vec<String> = urls.iter().map(url_text).collect();
        let client = ClusterClient::builder(nodes)
            .connection_timeout(call_timeout.max(Duration::from_millis(500)))
            .response_timeout(call_timeout)
            .retries(2)
            .build()
            .map_err(|e| format!("invalid Redis Cluster configuration: {}", e.category()))?;
        Ok(Self::with(
            Backend::Cluster {
                client,
                conn: Mutex::new(None),
            },
            call_timeout,
        ))
    }

    fn with(backend: Backend, call_timeout: Duration) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        RedisStore {
            backend,
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

    /// A connection handle (cheap clone of the multiplexed connection).
    async fn conn(&self) -> Result<Conn, StoreError> {
        match &self.backend {
            Backend::Single {
                client,
                config,
                managers,
            } => {
                let slot = &managers[workers::current().map_or(0, |w| w + 1) % managers.len()];
                if let Some(m) = slot.get() {
                    return Ok(Conn::Single(m.clone()));
                }
                // First call on this worker: its connection task starts on this thread.
                let made = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map_err(backend_error)?;
                Ok(Conn::Single(slot.get_or_init(|| made).clone()))
            }
            Backend::Cluster { client, conn } => {
                let mut guard = conn.lock().await;
                if let Some(c) = guard.as_ref() {
                    return Ok(Conn::Cluster(c.clone()));
                }
                let c = client.get_async_connection().await.map_err(backend_error)?;
                *guard = Some(c.clone());
                Ok(Conn::Cluster(c))
            }
        }
    }

    fn token_value(&self, token: Token) -> String {
        format!("{:016x}{token:016x}", self.token_prefix)
    }

    async fn run_reserve(&self, key: &str, lease: Duration) -> Result<Reservation, StoreError> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let mut pending = PendingReserve {
            conn: self.conn().await?,
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
            let held: redis::RedisResult<Option<Vec<u8>>> = twice(&p.conn, |mut c| {
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
                    let left: i64 = twice(&p.conn, |mut c| {
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
        let reply: Vec<i64> = twice(&p.conn, |mut c| {
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
        let conn = self.conn().await?;
        let mut call = script.key(Self::key(key));
        call.arg(self.token_value(token));
        if let Some(ttl) = ttl {
            call.arg(ttl.as_millis().max(1) as u64);
        }
        let _: i64 = twice(&conn, |mut c| {
            let call = &call;
            async move { call.invoke_async(&mut c).await }
        })
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    /// Runs an arbitrary script (the shared rate limiter uses this connection too).
    pub(crate) async fn eval<T: redis::FromRedisValue + Send>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[u64],
    ) -> Result<T, StoreError> {
        let conn = self.conn().await?;
        let mut call = script.prepare_invoke();
        for k in keys {
            call.key(k);
        }
        for a in args {
            call.arg(*a);
        }
        twice(&conn, |mut c| {
            let call = &call;
            async move { call.invoke_async(&mut c).await }
        })
        .await
        .map_err(backend_error)
    }
}

/// Runs a call, and once more if it failed because the connection had dropped (Redis
/// restarted): the connection manager reconnects on such an error and the second call waits
/// for that, so the first request after a restart is not refused. Every call here may run
/// twice: a reserve recognises its own token, commit and release compare it, PING reads
/// (a shared rate limit may count that one request twice).
async fn twice<T, Fut>(conn: &Conn, call: impl Fn(Conn) -> Fut) -> redis::RedisResult<T>
where
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    match call(conn.clone()).await {
        Err(e) if e.is_unrecoverable_error() => call(conn.clone()).await,
        done => done,
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

/// Either connection, as one `ConnectionLike` for scripts.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
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
        Box::pin(async move {
            let conn = self.conn().await?;
            let ping = redis::cmd("PING");
            let pong: String = twice(&conn, |mut c| {
                let ping = &ping;
                async move { ping.query_async(&mut c).await }
            })
            .await
            .map_err(backend_error)?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(StoreError::Backend(format!(
                    "unexpected PING reply {pong:?}"
                )))
            }
        })
    }
}
