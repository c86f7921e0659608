//! Storage (CONTRACT §8): where the delivery journal lives (and, in later sections, the
//! delivery queue and the reconcile cursors). One embedded default and one shared engine:
//!
//! - **SQLite** (`backend = "sqlite"`, the default): one file next to the config, WAL mode,
//!   no server to run. A commit is fsynced (`synchronous = FULL`) before it returns, so a
//!   write an answer depends on is durable.
//! - **PostgreSQL** (`backend = "postgres"`): one database every instance of a fleet reads
//!   and writes, so any instance can show or replay anything.
//!
//! One [`Storage`] serves both with the same SQL (sqlx, with a pool per backend): the
//! statements are written once, in [`journal`] and [`migrations`], in the syntax both
//! engines read; [`sqlite`] and [`postgres`] only open and tune connections. The schema is
//! created and migrated by hookwall at start ([`migrations`]); a schema newer than the
//! binary is refused. PostgreSQL is opened lazily, so hookwall starts while the database is
//! down; the journal counts what it cannot write and `/readyz` reports the storage.

pub mod journal;
pub mod migrations;
pub mod postgres;
pub mod queue;
pub mod reconcile;
pub mod sqlite;

use std::time::Duration;

use sqlx::{PgPool, SqlitePool};
use tokio::sync::OnceCell;

use crate::config::StorageBackend;

/// How long one storage call may take before it counts as failed.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why storage could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database answered with an error, or could not be reached.
    #[error("storage: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite file could not be opened or created.
    #[error("cannot open the SQLite database {}: {source} (is its folder writable by this user? set [storage] path to a writable place)", path.display())]
    CannotOpen {
        /// The file.
        path: std::path::PathBuf,
        /// What SQLite said.
        source: sqlx::Error,
    },
    /// No answer in time.
    #[error(
        "storage did not answer within {}",
        humantime::format_duration(CALL_TIMEOUT)
    )]
    Timeout,
    /// The database's schema is newer than this binary knows.
    #[error("the database schema is version {found}, newer than this hookwall knows ({known}): run a newer hookwall, or point this one at another database")]
    SchemaTooNew {
        /// In the database.
        found: i64,
        /// The newest this binary has.
        known: i64,
    },
    /// A stored value that cannot be what it should be (a bug or a hand-edited row).
    #[error("storage holds an unreadable value: {0}")]
    Corrupt(String),
}

/// The pool of one backend. Statements run on either through [`with_pool!`].
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same statement code on whichever backend `$pool` is: `$p` is the concrete pool
/// in `$body`, which is written once and compiled for both.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::storage::Pool::Sqlite($p) => $body,
            $crate::storage::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The open storage.
#[derive(Debug)]
pub struct Storage {
    /// Reads.
    pool: Pool,
    /// Writes. SQLite: one connection, so writers queue in the pool (in order, without
    /// SQLite's sleeping busy handler) instead of contending for the file's write lock;
    /// PostgreSQL: the same pool as `pool`.
    writer: Pool,
    /// The schema version found before migrating, set once the schema is known to be
    /// current (at once for SQLite; on the first successful connection for a PostgreSQL
    /// that was down at start).
    migrated: OnceCell<i64>,
}

/// Runs a storage call with [`CALL_TIMEOUT`].
pub(crate) async fn timed<T>(
    call: impl std::future::Future<Output = Result<T, StorageError>>,
) -> Result<T, StorageError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or(Err(StorageError::Timeout))
}

impl Storage {
    /// Opens the configured backend and brings its schema up to date. SQLite must open
    /// (the file is created if missing); PostgreSQL may be down, and is migrated when it
    /// first answers.
    pub async fn open(backend: &StorageBackend) -> Result<Self, StorageError> {
        let storage = match backend {
            StorageBackend::Sqlite { path } => {
                let cannot = |source| StorageError::CannotOpen {
                    path: path.clone(),
                    source,
                };
                let writer = sqlite::open_writer(path).await.map_err(cannot)?;
                let pool = sqlite::open_readers(path).await.map_err(cannot)?;
                // Beside the writer, not on its one connection: writes go on meanwhile.
                tokio::spawn(sqlite::checkpoint_loop(pool.clone()));
                Storage {
                    pool: Pool::Sqlite(pool),
                    writer: Pool::Sqlite(writer),
                    migrated: OnceCell::new(),
                }
            }
            StorageBackend::Postgres { url } => {
                let pool = Pool::Postgres(postgres::open_lazy(url)?);
                Storage {
                    writer: pool.clone(),
                    pool,
                    migrated: OnceCell::new(),
                }
            }
        };
        match storage.ready().await {
            Ok(()) => {}
            // A PostgreSQL that is down now is migrated once it answers.
            Err(StorageError::Database(e)) if matches!(storage.pool, Pool::Postgres(_)) => {
                tracing::warn!(error = %e, "PostgreSQL does not answer yet; the journal drops entries until it does");
            }
            Err(StorageError::Timeout) if matches!(storage.pool, Pool::Postgres(_)) => {
                tracing::warn!(
                    "PostgreSQL does not answer yet; the journal drops entries until it does"
                );
            }
            Err(e) => return Err(e),
        }
        Ok(storage)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Makes sure the schema is current, migrating it the first time this succeeds.
    pub(crate) async fn ready(&self) -> Result<(), StorageError> {
        self.migrated
            .get_or_try_init(|| timed(migrations::run(&self.writer)))
            .await
            .map(drop)
    }

    /// Whether the storage answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(&self.pool, p => sqlx::query("SELECT 1").execute(p).await.map(drop))?;
            Ok(())
        })
        .await
    }

    /// The pool, for the statements of the submodules.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The pool for writes.
    pub(crate) fn writer(&self) -> &Pool {
        &self.writer
    }
}
