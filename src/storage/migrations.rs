//! The schema, as numbered migrations run at start. Each is written for both engines (the
//! only SQL that differs between them: column types). The version reached is kept in
//! `hookwall_schema`; a database at a version this binary does not know was migrated by a
//! newer hookwall and is refused, since this one would misread it.
//!
//! Migrating is serialized between processes: an immediate (write-locking) transaction on
//! SQLite, an advisory lock on PostgreSQL, so a fleet starting at once migrates once.

use sqlx::Row;

use super::{with_pool, Pool, StorageError};

/// One step of the schema.
struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every migration, in order. Append only: a released step never changes.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: r"
CREATE TABLE journal (
  id TEXT PRIMARY KEY,
  request_id TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  route TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  headers TEXT NOT NULL,
  body BLOB,
  body_size BIGINT NOT NULL,
  body_sha256 TEXT,
  truncated BIGINT NOT NULL,
  body_redacted BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT,
  status BIGINT NOT NULL,
  upstream_status BIGINT,
  upstream_ms DOUBLE PRECISION,
  dedup_id TEXT,
  key_id TEXT,
  diagnosis TEXT,
  verified BIGINT NOT NULL,
  stored_bytes BIGINT NOT NULL
);
CREATE INDEX journal_route ON journal (route, id);
CREATE INDEX journal_received ON journal (received_at);
CREATE INDEX journal_dedup ON journal (dedup_id);
CREATE TABLE replays (
  id TEXT PRIMARY KEY,
  entry_id TEXT NOT NULL,
  at BIGINT NOT NULL,
  reverified BIGINT NOT NULL,
  upstream_status BIGINT,
  error TEXT
);
CREATE INDEX replays_entry ON replays (entry_id);
",
        postgres: r"
CREATE TABLE journal (
  id TEXT PRIMARY KEY,
  request_id TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  route TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  headers TEXT NOT NULL,
  body BYTEA,
  body_size BIGINT NOT NULL,
  body_sha256 TEXT,
  truncated BIGINT NOT NULL,
  body_redacted BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT,
  status BIGINT NOT NULL,
  upstream_status BIGINT,
  upstream_ms DOUBLE PRECISION,
  dedup_id TEXT,
  key_id TEXT,
  diagnosis TEXT,
  verified BIGINT NOT NULL,
  stored_bytes BIGINT NOT NULL
);
CREATE INDEX journal_route ON journal (route, id);
CREATE INDEX journal_received ON journal (received_at);
CREATE INDEX journal_dedup ON journal (dedup_id);
CREATE TABLE replays (
  id TEXT PRIMARY KEY,
  entry_id TEXT NOT NULL,
  at BIGINT NOT NULL,
  reverified BIGINT NOT NULL,
  upstream_status BIGINT,
  error TEXT
);
CREATE INDEX replays_entry ON replays (entry_id);
",
    },
    // The delivery queue of buffered routes (CONTRACT §10): one row per delivery and
    // target, deleted once delivered, kept as a dead letter when it cannot be; journal
    // entries of delivery attempts say which attempt and target they were.
    Migration {
        version: 2,
        sqlite: r"
CREATE TABLE queue (
  id TEXT PRIMARY KEY,
  route TEXT NOT NULL,
  target TEXT NOT NULL,
  delivery_id TEXT,
  request_id TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  headers TEXT NOT NULL,
  body BLOB NOT NULL,
  client_ip TEXT NOT NULL,
  peer_ip TEXT NOT NULL,
  peer_trusted BIGINT NOT NULL,
  https BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  state TEXT NOT NULL,
  attempts BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  claimed_by TEXT,
  claimed_until BIGINT,
  last_status BIGINT,
  last_error TEXT,
  dead_at BIGINT,
  dead_reason TEXT
);
CREATE INDEX queue_due ON queue (state, route, target, next_attempt_at);
CREATE INDEX queue_dead ON queue (state, dead_at);
ALTER TABLE journal ADD COLUMN attempt BIGINT;
ALTER TABLE journal ADD COLUMN target TEXT;
",
        postgres: r"
CREATE TABLE queue (
  id TEXT PRIMARY KEY,
  route TEXT NOT NULL,
  target TEXT NOT NULL,
  delivery_id TEXT,
  request_id TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  headers TEXT NOT NULL,
  body BYTEA NOT NULL,
  client_ip TEXT NOT NULL,
  peer_ip TEXT NOT NULL,
  peer_trusted BIGINT NOT NULL,
  https BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  state TEXT NOT NULL,
  attempts BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  claimed_by TEXT,
  claimed_until BIGINT,
  last_status BIGINT,
  last_error TEXT,
  dead_at BIGINT,
  dead_reason TEXT
);
CREATE INDEX queue_due ON queue (state, route, target, next_attempt_at);
CREATE INDEX queue_dead ON queue (state, dead_at);
ALTER TABLE journal ADD COLUMN attempt BIGINT;
ALTER TABLE journal ADD COLUMN target TEXT;
",
    },
    Migration {
        version: 3,
        sqlite: RECONCILE_SCHEMA,
        postgres: RECONCILE_SCHEMA,
    },
    Migration {
        version: 4,
        sqlite: SHADOW_SCHEMA,
        postgres: SHADOW_SCHEMA,
    },
];

/// Reconcile (CONTRACT §11): each route's cursor, run result and lease; the GitHub
/// deliveries already redelivered; and on queued rows, what vouched for a polled event.
/// The same text for both engines.
const RECONCILE_SCHEMA: &str = r"
CREATE TABLE reconcile (
  route TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  cursor TEXT,
  at_cursor TEXT,
  resume TEXT,
  walk_top TEXT,
  newest_seen BIGINT,
  last_run BIGINT,
  result TEXT,
  error TEXT,
  recovered BIGINT NOT NULL,
  lease_holder TEXT,
  lease_until BIGINT
);
CREATE TABLE reconcile_redelivered (
  route TEXT NOT NULL,
  guid TEXT NOT NULL,
  requested_at BIGINT NOT NULL,
  PRIMARY KEY (route, guid)
);
ALTER TABLE queue ADD COLUMN verified_by TEXT;
";

/// Shadow mode (CONTRACT §12): the reason a journal entry, or a queued delivery, would
/// have been refused; and whether a queued one failed its signature or window (its
/// attempts then carry no `X-Hookwall-Verified`). The same text for both engines.
const SHADOW_SCHEMA: &str = r"
ALTER TABLE journal ADD COLUMN would_reject TEXT;
ALTER TABLE queue ADD COLUMN would_reject TEXT;
ALTER TABLE queue ADD COLUMN unverified BIGINT;
";

/// The newest schema this binary knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// An arbitrary, fixed key for PostgreSQL's advisory lock ("hw" in ASCII, then 1).
const PG_MIGRATION_LOCK: i64 = 0x6877_0001;

/// Brings the schema to [`latest`], or refuses a newer one. Returns the version found.
pub(super) async fn run(pool: &Pool) -> Result<i64, StorageError> {
    with_pool!(pool, p => {
        let postgres = matches!(pool, Pool::Postgres(_));
        // SQLite: take the write lock at once, so a second process waits here instead of
        // reading a version that is about to change.
        let mut tx = if postgres { p.begin().await? } else { p.begin_with("BEGIN IMMEDIATE").await? };
        if postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_MIGRATION_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS hookwall_schema (version BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let found: Option<i64> = sqlx::query("SELECT MAX(version) FROM hookwall_schema")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let found = found.unwrap_or(0);
        if found > latest() {
            return Err(StorageError::SchemaTooNew {
                found,
                known: latest(),
            });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > found) {
            let sql = if postgres { m.postgres } else { m.sqlite };
            // One statement at a time, in the transaction. (`raw_sql`, which takes them
            // all at once, makes every caller's future fail to be `Send`.)
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO hookwall_schema (version) VALUES ($1)")
                .bind(m.version)
                .execute(&mut *tx)
                .await?;
            tracing::info!(version = m.version, "storage schema migrated");
        }
        tx.commit().await?;
        Ok(found)
    })
}
