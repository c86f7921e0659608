//! The journal's statements: append batches of entries, list them newest first with
//! filters and a cursor, read one whole, record replays, and prune by age and size.
//!
//! Entry ids are UUIDv7 strings: ordered by time, so "newest first" is `ORDER BY id DESC`
//! and the cursor is the last id of a page (`id < cursor` for the next one). Entries are
//! never updated, so a page boundary never moves: paging while new entries arrive neither
//! skips nor repeats any entry that was there when paging began.

use sqlx::{QueryBuilder, Row};

use super::{timed, with_pool, Storage, StorageError};

/// One journal entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// Time-ordered id (UUIDv7).
    pub id: String,
    /// The request's own id.
    pub request_id: String,
    /// When the request head arrived, Unix microseconds.
    pub received_at: i64,
    /// Route name.
    pub route: String,
    /// Request method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The real client IP.
    pub client_ip: String,
    /// Request headers in arrival order, credentials redacted (JSON `[[name, value]]`).
    pub headers: Vec<(String, String)>,
    /// The body as kept (`None` when not kept).
    pub body: Option<bytes::Bytes>,
    /// Size of the body received.
    pub body_size: i64,
    /// SHA-256 of the body received (before any redaction or cut), hex.
    pub body_sha256: Option<String>,
    /// The kept body was cut at `max_stored_body`.
    pub truncated: bool,
    /// `redact_json` blanked fields of the kept body.
    pub body_redacted: bool,
    /// forwarded | duplicate | rejected | handshake | ...
    pub outcome: String,
    /// The rejection reason, if any.
    pub reason: Option<String>,
    /// What hookwall answered the client.
    pub status: i64,
    /// What the upstream answered, if it was called.
    pub upstream_status: Option<i64>,
    /// How long the upstream took, milliseconds.
    pub upstream_ms: Option<f64>,
    /// The delivery id dedup used.
    pub dedup_id: Option<String>,
    /// The id (or index) of the secret that verified the signature.
    pub key_id: Option<String>,
    /// A signature-failure diagnosis hint.
    pub diagnosis: Option<String>,
    /// The request passed the signature and timestamp checks (replays need this, or
    /// `reverify`).
    pub verified: bool,
    /// A buffered route's delivery attempt: its number (from 1).
    pub attempt: Option<i64>,
    /// And the target it went to.
    pub target: Option<String>,
    /// Shadow mode: the reason hookwall would have answered instead of forwarding.
    pub would_reject: Option<String>,
}

impl StoredEntry {
    /// Roughly what the entry takes in storage, for `max_size`.
    pub fn stored_bytes(&self) -> i64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 8)
            .sum();
        let fixed = 160 + self.id.len() + self.request_id.len() + self.route.len();
        let body = self.body.as_ref().map_or(0, bytes::Bytes::len);
        i64::try_from(fixed + self.path.len() + headers + body).unwrap_or(i64::MAX)
    }
}

/// Which entries a listing wants.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// Route name.
    pub route: Option<String>,
    /// Outcome label.
    pub outcome: Option<String>,
    /// Rejection reason.
    pub reason: Option<String>,
    /// Delivery id.
    pub dedup_id: Option<String>,
    /// Received at or after (Unix µs).
    pub since: Option<i64>,
    /// Received before (Unix µs).
    pub until: Option<i64>,
    /// Only ids older than this (the cursor).
    pub before: Option<String>,
}

/// One replay of an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRecord {
    /// The replay's id (UUIDv7).
    pub id: String,
    /// The entry replayed.
    pub entry_id: String,
    /// When, Unix µs.
    pub at: i64,
    /// Whether it was re-verified first.
    pub reverified: bool,
    /// What the upstream answered, if it answered.
    pub upstream_status: Option<i64>,
    /// Why it got no answer.
    pub error: Option<String>,
}

/// What a prune removed and what remains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries older than `retain`.
    pub expired: u64,
    /// Entries removed to get under `max_size`, oldest first.
    pub over_size: u64,
    /// What the journal holds after it.
    pub bytes: u64,
}

/// Every column, in the order [`entry!`] reads them.
const COLUMNS: &str =
    "id, request_id, received_at, route, method, path, client_ip, headers, body, \
     body_size, body_sha256, truncated, body_redacted, outcome, reason, status, upstream_status, \
     upstream_ms, dedup_id, key_id, diagnosis, verified, attempt, target, would_reject";
/// The same without headers and body, for listings.
const LIST_COLUMNS: &str = "id, request_id, received_at, route, method, path, client_ip, \
     '[]' AS headers, NULL AS body, body_size, body_sha256, truncated, body_redacted, outcome, \
     reason, status, upstream_status, upstream_ms, dedup_id, key_id, diagnosis, verified, \
     attempt, target, would_reject";
/// Rows per `INSERT` statement: 26 parameters each, well under both engines' limits
/// (SQLite 32 766, PostgreSQL 65 535).
const ROWS_PER_INSERT: usize = 256;
/// How many expired entries one prune statement removes (bounded work per statement).
const PRUNE_CHUNK: i64 = 5000;

/// A [`StoredEntry`] from a row of [`COLUMNS`] (on either backend).
macro_rules! entry {
    ($row:expr) => {{
        let row = $row;
        let headers: String = row.try_get("headers")?;
        StoredEntry {
            id: row.try_get("id")?,
            request_id: row.try_get("request_id")?,
            received_at: row.try_get("received_at")?,
            route: row.try_get("route")?,
            method: row.try_get("method")?,
            path: row.try_get("path")?,
            client_ip: row.try_get("client_ip")?,
            headers: serde_json::from_str(&headers)
                .map_err(|e| StorageError::Corrupt(format!("headers: {e}")))?,
            body: row
                .try_get::<Option<Vec<u8>>, _>("body")?
                .map(bytes::Bytes::from),
            body_size: row.try_get("body_size")?,
            body_sha256: row.try_get("body_sha256")?,
            truncated: row.try_get::<i64, _>("truncated")? != 0,
            body_redacted: row.try_get::<i64, _>("body_redacted")? != 0,
            outcome: row.try_get("outcome")?,
            reason: row.try_get("reason")?,
            status: row.try_get("status")?,
            upstream_status: row.try_get("upstream_status")?,
            upstream_ms: row.try_get("upstream_ms")?,
            dedup_id: row.try_get("dedup_id")?,
            key_id: row.try_get("key_id")?,
            diagnosis: row.try_get("diagnosis")?,
            verified: row.try_get::<i64, _>("verified")? != 0,
            attempt: row.try_get("attempt")?,
            target: row.try_get("target")?,
            would_reject: row.try_get("would_reject")?,
        }
    }};
}

/// `WHERE` clauses for a filter (on either backend's query builder).
macro_rules! filtered {
    ($q:expr, $f:expr) => {{
        let (q, f) = ($q, $f);
        q.push(" WHERE 1 = 1");
        if let Some(v) = &f.route {
            q.push(" AND route = ").push_bind(v.clone());
        }
        if let Some(v) = &f.outcome {
            q.push(" AND outcome = ").push_bind(v.clone());
        }
        if let Some(v) = &f.reason {
            q.push(" AND reason = ").push_bind(v.clone());
        }
        if let Some(v) = &f.dedup_id {
            q.push(" AND dedup_id = ").push_bind(v.clone());
        }
        if let Some(v) = f.since {
            q.push(" AND received_at >= ").push_bind(v);
        }
        if let Some(v) = f.until {
            q.push(" AND received_at < ").push_bind(v);
        }
        if let Some(v) = &f.before {
            q.push(" AND id < ").push_bind(v.clone());
        }
    }};
}

impl Storage {
    /// Writes `entries` in one transaction (one commit, one fsync on SQLite).
    pub async fn append_entries(&self, entries: &[StoredEntry]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        timed(async {
            // The headers as stored (JSON), made once: both engines' statements borrow them.
            let headers = entries
                .iter()
                .map(|e| serde_json::to_string(&e.headers))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| StorageError::Corrupt(err.to_string()))?;
            let rows: Vec<_> = entries.iter().zip(&headers).collect();
            with_pool!(self.writer(), p => {
                let mut tx = p.begin().await?;
                // Many rows per statement: the statement, not the row, is what costs.
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO journal (id, request_id, received_at, route, method, path, \
                         client_ip, headers, body, body_size, body_sha256, truncated, body_redacted, \
                         outcome, reason, status, upstream_status, upstream_ms, dedup_id, key_id, \
                         diagnosis, verified, stored_bytes, attempt, target, would_reject) ",
                    );
                    insert.push_values(chunk, |mut row, (e, headers)| {
                        row.push_bind(&e.id)
                            .push_bind(&e.request_id)
                            .push_bind(e.received_at)
                            .push_bind(&e.route)
                            .push_bind(&e.method)
                            .push_bind(&e.path)
                            .push_bind(&e.client_ip)
                            .push_bind(headers.as_str())
                            .push_bind(e.body.as_deref())
                            .push_bind(e.body_size)
                            .push_bind(&e.body_sha256)
                            .push_bind(i64::from(e.truncated))
                            .push_bind(i64::from(e.body_redacted))
                            .push_bind(&e.outcome)
                            .push_bind(&e.reason)
                            .push_bind(e.status)
                            .push_bind(e.upstream_status)
                            .push_bind(e.upstream_ms)
                            .push_bind(&e.dedup_id)
                            .push_bind(&e.key_id)
                            .push_bind(&e.diagnosis)
                            .push_bind(i64::from(e.verified))
                            .push_bind(e.stored_bytes())
                            .push_bind(e.attempt)
                            .push_bind(&e.target)
                            .push_bind(&e.would_reject);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    /// Entries matching `filter`, newest first, at most `limit`, without headers and body.
    pub async fn list_entries(
        &self,
        filter: &EntryFilter,
        limit: i64,
    ) -> Result<Vec<StoredEntry>, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let mut q = QueryBuilder::new(format!("SELECT {LIST_COLUMNS} FROM journal"));
                filtered!(&mut q, filter);
                q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
                let rows = q.build().fetch_all(p).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(entry!(row));
                }
                Ok(out)
            })
        })
        .await
    }

    /// How many entries match `filter` (for a bulk replay's `matched`).
    pub async fn count_entries(&self, filter: &EntryFilter) -> Result<i64, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let mut q = QueryBuilder::new("SELECT COUNT(*) FROM journal");
                filtered!(&mut q, filter);
                Ok(q.build().fetch_one(p).await?.try_get(0)?)
            })
        })
        .await
    }

    /// One whole entry.
    pub async fn entry(&self, id: &str) -> Result<Option<StoredEntry>, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let sql = format!("SELECT {COLUMNS} FROM journal WHERE id = $1");
                match sqlx::query(&sql).bind(id).fetch_optional(p).await? {
                    Some(row) => Ok(Some(entry!(&row))),
                    None => Ok(None),
                }
            })
        })
        .await
    }

    /// Records a replay of an entry.
    pub async fn add_replay(&self, r: &ReplayRecord) -> Result<(), StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                sqlx::query(
                    "INSERT INTO replays (id, entry_id, at, reverified, upstream_status, error) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&r.id)
                .bind(&r.entry_id)
                .bind(r.at)
                .bind(i64::from(r.reverified))
                .bind(r.upstream_status)
                .bind(&r.error)
                .execute(p)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// The replays made of an entry, oldest first.
    pub async fn replays_of(&self, entry_id: &str) -> Result<Vec<ReplayRecord>, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let rows = sqlx::query(
                    "SELECT id, entry_id, at, reverified, upstream_status, error FROM replays \
                     WHERE entry_id = $1 ORDER BY id",
                )
                .bind(entry_id)
                .fetch_all(p)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(ReplayRecord {
                        id: row.try_get("id")?,
                        entry_id: row.try_get("entry_id")?,
                        at: row.try_get("at")?,
                        reverified: row.try_get::<i64, _>("reverified")? != 0,
                        upstream_status: row.try_get("upstream_status")?,
                        error: row.try_get("error")?,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// What the journal holds, by [`StoredEntry::stored_bytes`].
    pub async fn journal_bytes(&self) -> Result<u64, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let bytes: Option<i64> = sqlx::query("SELECT CAST(SUM(stored_bytes) AS BIGINT) FROM journal")
                    .fetch_one(p)
                    .await?
                    .try_get(0)?;
                Ok(u64::try_from(bytes.unwrap_or(0)).unwrap_or(0))
            })
        })
        .await
    }

    /// Deletes entries received before `older_than` (Unix µs), then the oldest until the
    /// journal is under `max_bytes`. Work is done in bounded chunks.
    pub async fn prune(&self, older_than: i64, max_bytes: u64) -> Result<Pruned, StorageError> {
        self.ready().await?;
        let mut pruned = Pruned::default();
        loop {
            let n = timed(async {
                with_pool!(self.writer(), p => {
                    let done = sqlx::query(
                        "DELETE FROM journal WHERE id IN (SELECT id FROM journal \
                         WHERE received_at < $1 ORDER BY id LIMIT $2)",
                    )
                    .bind(older_than)
                    .bind(PRUNE_CHUNK)
                    .execute(p)
                    .await?;
                    Ok(done.rows_affected())
                })
            })
            .await?;
            pruned.expired += n;
            if n < PRUNE_CHUNK as u64 {
                break;
            }
        }
        let mut bytes = self.journal_bytes().await?;
        while bytes > max_bytes {
            // The oldest entries whose sizes add up to what is over, at least one.
            let over = i64::try_from(bytes - max_bytes).unwrap_or(i64::MAX);
            let n = timed(async {
                with_pool!(self.writer(), p => {
                    let rows = sqlx::query(
                        "SELECT id, stored_bytes FROM journal ORDER BY id LIMIT $1",
                    )
                    .bind(PRUNE_CHUNK)
                    .fetch_all(p)
                    .await?;
                    let mut sum = 0i64;
                    let mut last = None;
                    for row in &rows {
                        let id: String = row.try_get("id")?;
                        sum += row.try_get::<i64, _>("stored_bytes")?;
                        last = Some(id);
                        if sum >= over {
                            break;
                        }
                    }
                    let Some(last) = last else { return Ok(0) };
                    let done = sqlx::query("DELETE FROM journal WHERE id <= $1")
                        .bind(last)
                        .execute(p)
                        .await?;
                    Ok(done.rows_affected())
                })
            })
            .await?;
            if n == 0 {
                break;
            }
            pruned.over_size += n;
            bytes = self.journal_bytes().await?;
        }
        pruned.bytes = bytes;
        if pruned.expired + pruned.over_size > 0 {
            // An entry's replays go with it.
            timed(async {
                with_pool!(self.writer(), p => {
                    sqlx::query(
                        "DELETE FROM replays WHERE NOT EXISTS \
                         (SELECT 1 FROM journal WHERE journal.id = replays.entry_id)",
                    )
                    .execute(p)
                    .await?;
                    Ok(())
                })
            })
            .await?;
            self.reclaim_space().await;
        }
        Ok(pruned)
    }

    /// Gives freed pages back to the file system (SQLite; PostgreSQL's autovacuum does it).
    async fn reclaim_space(&self) {
        if let super::Pool::Sqlite(p) = self.writer() {
            if let Err(e) = sqlx::query("PRAGMA incremental_vacuum").execute(p).await {
                tracing::debug!(error = %e, "incremental vacuum failed");
            }
        }
    }
}
