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
/// How long a writer waits for another to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if missing) the database at `path`.
pub(super) async fn open(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        // Only takes effect on a new database, which is when it matters.
        .auto_vacuum(SqliteAutoVacuum::Incremental)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(CONNECTIONS)
        .connect_with(options)
        .await
}
