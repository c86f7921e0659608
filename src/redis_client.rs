//! The connection to Redis (one server or a cluster), shared by the dedup store and the
//! shared rate limiter.
//!
//! One server: one multiplexed, auto-reconnecting connection (`ConnectionManager`) per
//! worker thread, made lazily on that thread, so a request's Redis round trips are driven
//! where the request runs (see `transport::workers`) and hookwall starts while Redis is
//! down. A cluster: the cluster client's own connection. Callers bound every call with
//! their `call_timeout` (`dedup::with_timeout`); a call that finds its connection dropped is
//! made once more ([`RedisClient::twice`]), so the first requests after a Redis restart are
//! served rather than refused.

use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::Script;
use tokio::sync::Mutex;

use crate::dedup::StoreError;
use crate::secret::Secret;
use crate::transport::workers;

/// Shortest connect timeout, whatever `call_timeout` says: a TCP (or TLS) connect to a
/// healthy Redis can take longer than one command.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the cluster client retries a command that hit a moved slot or a failover.
const CLUSTER_RETRIES: u32 = 2;

/// Why a Redis client could not be made from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum RedisConfigError {
    /// The URL does not parse (the URL itself is never repeated: it may hold a password).
    #[error("invalid Redis URL ({0})")]
    Url(String),
    /// The cluster seeds do not make a client.
    #[error("invalid Redis Cluster configuration ({0})")]
    Cluster(String),
}

/// The connection: one Redis or a cluster.
// One per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    /// One lazily made connection per worker thread (slot 0: off the workers).
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

/// A Redis (or Redis Cluster) to run commands and scripts on.
pub struct RedisClient {
    backend: Backend,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the URL: it may carry a password.
        f.debug_struct("RedisClient")
            .field("backend", &self.kind())
            .finish_non_exhaustive()
    }
}

fn url_text(url: &Secret) -> String {
    String::from_utf8_lossy(url.expose()).into_owned()
}

/// A Redis error as a store error.
pub(crate) fn backend_error(e: redis::RedisError) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedisClient {
    /// A client for one Redis; does not connect until first used. Must run inside tokio.
    pub fn single(url: &Secret, call_timeout: Duration) -> Result<Self, RedisConfigError> {
        let client = redis::Client::open(url_text(url).as_str())
            .map_err(|e| RedisConfigError::Url(e.category().to_owned()))?;
        // No response timeout here: every call already runs under the caller's timeout, and
        // a second timer per command only costs CPU.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(call_timeout.max(MIN_CONNECT_TIMEOUT)))
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
            .map_err(|e| RedisConfigError::Url(e.to_string()))?;
        let _ = managers[0].set(first);
        Ok(RedisClient {
            backend: Backend::Single {
                client,
                config,
                managers,
            },
        })
    }

    /// A client for a Redis Cluster given by seed nodes.
    pub fn cluster(urls: &[Secret], call_timeout: Duration) -> Result<Self, RedisConfigError> {
        let nodes: Vec<String> = urls.iter().map(url_text).collect();
        let client = ClusterClient::builder(nodes)
            .connection_timeout(call_timeout.max(MIN_CONNECT_TIMEOUT))
            .response_timeout(call_timeout)
            .retries(CLUSTER_RETRIES)
            .build()
            .map_err(|e| RedisConfigError::Cluster(e.category().to_owned()))?;
        Ok(RedisClient {
            backend: Backend::Cluster {
                client,
                conn: Mutex::new(None),
            },
        })
    }

    /// `"single"` or `"cluster"`.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Single { .. } => "single",
            Backend::Cluster { .. } => "cluster",
        }
    }

    /// A connection handle (a cheap clone of the multiplexed connection).
    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
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

    /// Runs a call, and once more if it failed because the connection had dropped (Redis
    /// restarted): the connection manager reconnects on such an error and the second call
    /// waits for that. Only for calls that are safe to repeat: a reserve recognises its own
    /// token, commit and release compare it, PING reads (a shared rate limit may count that
    /// one request twice).
    pub(crate) async fn twice<T, Fut>(
        conn: &Conn,
        call: impl Fn(Conn) -> Fut,
    ) -> redis::RedisResult<T>
    where
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match call(conn.clone()).await {
            Err(e) if e.is_unrecoverable_error() => call(conn.clone()).await,
            done => done,
        }
    }

    /// Runs a command (safe to repeat, see [`Self::twice`]).
    pub(crate) async fn query<T: redis::FromRedisValue + Send>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let conn = self.conn().await?;
        Self::twice(&conn, |mut c| async move { cmd.query_async(&mut c).await })
            .await
            .map_err(backend_error)
    }

    /// Runs a script with string keys and integer arguments (safe to repeat).
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
        Self::twice(&conn, |mut c| {
            let call = &call;
            async move { call.invoke_async(&mut c).await }
        })
        .await
        .map_err(backend_error)
    }

    /// Whether Redis answers `PING` with `PONG` (for `/readyz`).
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Backend(format!(
                "unexpected PING reply {pong:?}"
            )))
        }
    }
}

/// Either connection, as one `ConnectionLike` for commands and scripts.
#[derive(Clone)]
pub(crate) enum Conn {
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
