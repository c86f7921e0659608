//! Opening the embedded store: one SQLite file in WAL mode (readers never wait for the
//! writer), every commit fsynced (`synchronous = FULL`: a write an answer depends on
//! survives a crash or power loss), space given back after deletes (incremental vacuum).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

/// Connections in the pool: WAL lets readers (the admin API) run beside the one writer.
const CONNECTIONS: u32 = 4;
/// Page size of a new database file.
const PAGE_SIZE: u32 = 16 * 1024;
/// How long a writer waits for another to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The one writing connection to the database at `path` (created if missing). Every
/// commit is synced unless a statement says otherwise ([`relaxed`]).
pub(super) async fn open_writer(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    open_with(path, SqliteSynchronous::Full, 1).await
}

/// The reading connections (WAL: readers never wait for the writer).
pub(super) async fn open_readers(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    open_with(path, SqliteSynchronous::Full, CONNECTIONS).await
}

/// Whether a connection's next commits are synced: the queue's bookkeeping (claims,
/// attempt results) commits relaxed on SQLite; WAL order makes it durable with the next
/// synced commit, and losing one to a power cut only repeats a claim or an attempt, which
/// at-least-once allows. Acceptances set it back to synced before they commit.
/// PostgreSQL syncs every commit (its own setting, not changed here).
pub(crate) trait Synced {
    /// Sets it.
    async fn set_synced(&mut self, synced: bool) -> Result<(), sqlx::Error>;
}

impl Synced for sqlx::SqliteConnection {
    async fn set_synced(&mut self, synced: bool) -> Result<(), sqlx::Error> {
        let pragma = if synced {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        sqlx::query(pragma).execute(self).await.map(drop)
    }
}

impl Synced for sqlx::PgConnection {
    async fn set_synced(&mut self, _synced: bool) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

async fn open_with(
    path: &Path,
    synchronous: SqliteSynchronous,
    connections: u32,
) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        // These two only take effect on a new database, which is when they matter.
        .auto_vacuum(SqliteAutoVacuum::Incremental)
        // Journal rows are ~1.5 KiB and more: 16 KiB pages hold ten of them, not two,
        // so there is less B-tree upkeep per entry (measured: ~15 % more entries/s,
        // ~13 % fewer bytes on disk than 4 KiB pages).
        .page_size(PAGE_SIZE)
        .busy_timeout(BUSY_TIMEOUT)
        // No commit runs a checkpoint (an acceptance would wait for it):
        // [`checkpoint_loop`] does, beside them.
        .pragma("wal_autocheckpoint", "0")
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await
}

/// How often the WAL is copied back into the database file. Often, so each checkpoint is
/// small: a checkpoint's writes and sync slow the commits running beside it, and on the
/// benchmark machine one every 10 s stalled acceptances ~430 ms, one every 200 ms ~35 ms.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Checkpoints the WAL in the background, for as long as the pool is open: `PASSIVE`
/// (never blocks a writer) every [`CHECKPOINT_EVERY`]; `RESTART` when the WAL has grown
/// past [`WAL_LIMIT`] pages under a steady load, so the next commit writes it from the
/// start again instead of growing it; `TRUNCATE` once writes have stopped, to give the
/// disk back.
///
/// Under load `RESTART`, not `TRUNCATE`: both hold new writers back while they finish,
/// but truncating a 64 MiB file stalled the acceptances beside it another ~25 ms
/// (measured: p99 of buffered acceptance 45–54 ms with `TRUNCATE`, 14–18 ms with
/// `RESTART`, at ~10 % more deliveries/s).
pub(super) async fn checkpoint_loop(pool: SqlitePool) {
    use sqlx::Row;
    let mut last_frames = 0;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if pool.is_closed() {
            return;
        }
        let passive = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await;
        // (busy, frames in the WAL, frames copied back into the database)
        let (frames, copied) = match passive {
            Ok(row) => (
                row.try_get::<i64, _>(1).unwrap_or(0),
                row.try_get::<i64, _>(2).unwrap_or(0),
            ),
            Err(e) => {
                tracing::debug!(error = %e, "WAL checkpoint failed");
                continue;
            }
        };
        let idle = frames > 0 && frames == copied && frames == last_frames;
        last_frames = frames;
        let mode = if frames > WAL_LIMIT {
            "PRAGMA wal_checkpoint(RESTART)"
        } else if idle {
            "PRAGMA wal_checkpoint(TRUNCATE)"
        } else {
            continue;
        };
        if let Err(e) = sqlx::query(mode).execute(&pool).await {
            tracing::debug!(error = %e, mode, "WAL checkpoint failed");
        }
    }
}

/// WAL pages (16 KiB) past which the checkpoint restarts it: 64 MiB (the file stays at
/// about this size under load, and is truncated when the load stops).
const WAL_LIMIT: i64 = 4096;
