//! The delivery queue's rows (CONTRACT §10): one per accepted delivery and target.
//!
//! A row is `queued` until an attempt delivers it (then it is deleted) or it cannot be
//! delivered (then it is `dead`, a dead letter, until retried or discarded). A worker
//! *claims* due rows: it writes its name and a claim deadline (now + visibility timeout)
//! in the same statement that selects them, so two workers — two instances on one
//! PostgreSQL — never take the same row, and a row whose claimer died is claimable again
//! once its deadline has passed. PostgreSQL skips rows another transaction holds
//! (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time anyway.

use base64::Engine;
use bytes::Bytes;
use sqlx::Row;

use super::sqlite::Synced;
use super::{timed, with_pool, Pool, Storage, StorageError};

/// A row's state.
const QUEUED: &str = "queued";
const DEAD: &str = "dead";

/// The PostgreSQL notification channel new deliveries are announced on.
const NOTIFY_CHANNEL: &str = "hookwall_queue";

/// Rows per `INSERT` statement (26 parameters each, under both engines' limits).
const ROWS_PER_INSERT: usize = 200;

/// One delivery to one target, as queued.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedDelivery {
    /// Time-ordered id (UUIDv7).
    pub id: String,
    /// Route name.
    pub route: String,
    /// Target name (`default` for a route's own upstream).
    pub target: String,
    /// The delivery id dedup used, if the route dedups.
    pub delivery_id: Option<String>,
    /// The request id of the accepting request.
    pub request_id: String,
    /// Request method.
    pub method: String,
    /// Path and query as received.
    pub path: String,
    /// Request headers as received, in order (values as bytes: they need not be UTF-8).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body as received.
    pub body: Bytes,
    /// The real client IP.
    pub client_ip: String,
    /// The TCP peer's IP (for `X-Forwarded-For`).
    pub peer_ip: String,
    /// Whether the peer is a trusted proxy (its `X-Forwarded-*` are kept).
    pub peer_trusted: bool,
    /// Whether the request came over TLS (`X-Forwarded-Proto`).
    pub https: bool,
    /// When the request arrived, Unix µs.
    pub received_at: i64,
    /// Attempts made so far (claiming counts one).
    pub attempts: u32,
    /// What vouched for it when it is not the route's signature: `reconcile:<source>` for
    /// an event polled from the provider's API (`X-Hookwall-Verified`).
    pub verified_by: Option<String>,
    /// Shadow mode: the reason a check would have refused it (`X-Hookwall-Would-Reject`).
    pub would_reject: Option<String>,
    /// Shadow mode: its signature or timestamp window failed.
    pub unverified: bool,
}

/// A dead letter: a delivery that will not be tried again unless retried.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The queue row's id.
    pub id: String,
    /// Route name.
    pub route: String,
    /// Target name.
    pub target: String,
    /// The delivery id.
    pub delivery_id: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's upstream status, if it answered.
    pub last_status: Option<u16>,
    /// The last attempt's failure, or why it was dead-lettered.
    pub last_error: Option<String>,
    /// Why: `status` (not in `retry_on`), `max_attempts`, `max_age`.
    pub reason: String,
    /// When, Unix µs.
    pub dead_at: i64,
    /// When the delivery arrived, Unix µs.
    pub received_at: i64,
}

/// Which dead letters.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// Route name.
    pub route: Option<String>,
    /// Dead-lettered at or after (Unix µs).
    pub since: Option<i64>,
    /// Dead-lettered before (Unix µs).
    pub until: Option<i64>,
    /// Only ids older than this (the cursor).
    pub before: Option<String>,
}

/// One route and target's share of the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Route name.
    pub route: String,
    /// Target name.
    pub target: String,
    /// Waiting for an attempt (including ones waiting for their backoff).
    pub queued: u64,
    /// Claimed by a worker now.
    pub in_flight: u64,
    /// Dead letters.
    pub dead_lettered: u64,
    /// When the oldest queued (not dead) delivery arrived, Unix µs.
    pub oldest_received_at: Option<i64>,
}

/// How an attempt ended, for the row.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// Delivered: the row goes.
    Delivered,
    /// Try again at `at` (Unix µs).
    RetryAt {
        /// When.
        at: i64,
        /// The upstream's status, if it answered.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
    /// Not again: a dead letter.
    Dead {
        /// The upstream's status, if it answered.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// Why it is not tried again.
        reason: &'static str,
        /// Now, Unix µs.
        at: i64,
    },
}

const COLUMNS: &str = "id, route, target, delivery_id, request_id, method, path, headers, body, \
     client_ip, peer_ip, peer_trusted, https, received_at, attempts, verified_by, would_reject, unverified";

fn encode_headers(headers: &[(String, Vec<u8>)]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let pairs: Vec<(&str, String)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), b64.encode(v)))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_headers(text: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let pairs: Vec<(String, String)> = serde_json::from_str(text)
        .map_err(|e| StorageError::Corrupt(format!("queue headers: {e}")))?;
    pairs
        .into_iter()
        .map(|(n, v)| {
            b64.decode(v)
                .map(|v| (n, v))
                .map_err(|e| StorageError::Corrupt(format!("queue header value: {e}")))
        })
        .collect()
}

/// A [`QueuedDelivery`] from a row of [`COLUMNS`] (either backend).
macro_rules! queued {
    ($row:expr) => {{
        let row = $row;
        let headers: String = row.try_get("headers")?;
        QueuedDelivery {
            id: row.try_get("id")?,
            route: row.try_get("route")?,
            target: row.try_get("target")?,
            delivery_id: row.try_get("delivery_id")?,
            request_id: row.try_get("request_id")?,
            method: row.try_get("method")?,
            path: row.try_get("path")?,
            headers: decode_headers(&headers)?,
            body: Bytes::from(row.try_get::<Vec<u8>, _>("body")?),
            client_ip: row.try_get("client_ip")?,
            peer_ip: row.try_get("peer_ip")?,
            peer_trusted: row.try_get::<i64, _>("peer_trusted")? != 0,
            https: row.try_get::<i64, _>("https")? != 0,
            received_at: row.try_get("received_at")?,
            attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
            verified_by: row.try_get("verified_by")?,
            would_reject: row.try_get("would_reject")?,
            unverified: row
                .try_get::<Option<i64>, _>("unverified")?
                .is_some_and(|u| u != 0),
        }
    }};
}

/// A [`DeadLetter`] from a row.
macro_rules! dead_letter {
    ($row:expr) => {{
        let row = $row;
        DeadLetter {
            id: row.try_get("id")?,
            route: row.try_get("route")?,
            target: row.try_get("target")?,
            delivery_id: row.try_get("delivery_id")?,
            attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
            last_status: row
                .try_get::<Option<i64>, _>("last_status")?
                .and_then(|s| u16::try_from(s).ok()),
            last_error: row.try_get("last_error")?,
            reason: row
                .try_get::<Option<String>, _>("dead_reason")?
                .unwrap_or_default(),
            dead_at: row.try_get::<Option<i64>, _>("dead_at")?.unwrap_or(0),
            received_at: row.try_get("received_at")?,
        }
    }};
}

/// `AND ...` clauses of a dead-letter filter (on either backend's query builder).
macro_rules! dead_filtered {
    ($q:expr, $f:expr) => {{
        let (q, f) = ($q, $f);
        if let Some(v) = &f.route {
            q.push(" AND route = ").push_bind(v.clone());
        }
        if let Some(v) = f.since {
            q.push(" AND dead_at >= ").push_bind(v);
        }
        if let Some(v) = f.until {
            q.push(" AND dead_at < ").push_bind(v);
        }
        if let Some(v) = &f.before {
            q.push(" AND id < ").push_bind(v.clone());
        }
    }};
}

impl Storage {
    /// Queues `items` in one transaction: when this returns `Ok`, they are committed (and
    /// on SQLite fsynced).
    pub async fn enqueue(&self, items: &[QueuedDelivery], now: i64) -> Result<(), StorageError> {
        if items.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        let headers: Vec<String> = items.iter().map(|i| encode_headers(&i.headers)).collect();
        let rows: Vec<_> = items.iter().zip(&headers).collect();
        let postgres = matches!(self.writer(), Pool::Postgres(_));
        timed(async {
            with_pool!(self.writer(), p => {
                let mut conn = p.acquire().await?;
                // The 202 waits for this commit: it must be on disk.
                conn.set_synced(true).await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO queue (id, route, target, delivery_id, request_id, method, \
                         path, headers, body, client_ip, peer_ip, peer_trusted, https, \
                         received_at, state, attempts, next_attempt_at, verified_by, would_reject, \
                         unverified) ",
                    );
                    insert.push_values(chunk, |mut row, (i, headers)| {
                        row.push_bind(&i.id)
                            .push_bind(&i.route)
                            .push_bind(&i.target)
                            .push_bind(&i.delivery_id)
                            .push_bind(&i.request_id)
                            .push_bind(&i.method)
                            .push_bind(&i.path)
                            .push_bind(headers.as_str())
                            .push_bind(&i.body[..])
                            .push_bind(&i.client_ip)
                            .push_bind(&i.peer_ip)
                            .push_bind(i64::from(i.peer_trusted))
                            .push_bind(i64::from(i.https))
                            .push_bind(i.received_at)
                            .push_bind(QUEUED)
                            .push_bind(i64::from(i.attempts))
                            .push_bind(now)
                            .push_bind(&i.verified_by)
                            .push_bind(&i.would_reject)
                            .push_bind(i64::from(i.unverified));
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                if postgres {
                    // Wakes every instance's dispatcher at commit (see `listen_for_queued`).
                    sqlx::query("SELECT pg_notify($1, '')")
                        .bind(NOTIFY_CHANNEL)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    /// On PostgreSQL, calls `queued` whenever any instance commits new deliveries (LISTEN
    /// on the queue's channel, reconnecting after a failure), until `stop` says so. On
    /// SQLite there is no other writer: returns at once.
    pub async fn listen_for_queued(
        &self,
        queued: impl Fn() + Send,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let Pool::Postgres(pool) = self.pool() else {
            return;
        };
        loop {
            let listening = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(NOTIFY_CHANNEL).await?;
                loop {
                    listener.recv().await?;
                    queued();
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                result = listening => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "queue notifications lost; listening again");
                    }
                }
                _ = stop.changed() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Claims up to `limit` due rows of one route and target for `claimer` until
    /// `until` (Unix µs), counting an attempt on each.
    pub async fn claim(
        &self,
        route: &str,
        target: &str,
        limit: usize,
        now: i64,
        claimer: &str,
        until: i64,
    ) -> Result<Vec<QueuedDelivery>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.ready().await?;
        let lock = match self.pool() {
            Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Pool::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE queue SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM queue WHERE state = '{QUEUED}' AND route = $3 \
             AND target = $4 AND next_attempt_at <= $5 \
             AND (claimed_until IS NULL OR claimed_until < $5) \
             ORDER BY next_attempt_at LIMIT $6{lock}) RETURNING {COLUMNS}"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        timed(async {
            with_pool!(self.writer(), p => {
                let mut conn = p.acquire().await?;
                conn.set_synced(false).await?;
                let rows = sqlx::query(&sql)
                    .bind(claimer)
                    .bind(until)
                    .bind(route)
                    .bind(target)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await;
                conn.set_synced(true).await?;
                let rows = rows?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(queued!(row));
                }
                Ok(out)
            })
        })
        .await
    }

    /// Records how attempts by `claimer` ended, in one transaction. A row claimed again
    /// by another worker meanwhile (its claim had expired) is left to that worker.
    pub async fn settle(
        &self,
        claimer: &str,
        settled: &[(String, Settled)],
    ) -> Result<(), StorageError> {
        if settled.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        let delivered: Vec<&str> = settled
            .iter()
            .filter(|(_, how)| *how == Settled::Delivered)
            .map(|(id, _)| id.as_str())
            .collect();
        timed(async {
            with_pool!(self.writer(), p => {
                let mut conn = p.acquire().await?;
                conn.set_synced(false).await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                for chunk in delivered.chunks(ROWS_PER_INSERT) {
                    let mut delete = sqlx::QueryBuilder::new("DELETE FROM queue WHERE claimed_by = ");
                    delete.push_bind(claimer).push(" AND id IN (");
                    let mut ids = delete.separated(", ");
                    for id in chunk {
                        ids.push_bind(*id);
                    }
                    delete.push(")");
                    delete.build().execute(&mut *tx).await?;
                }
                for (id, how) in settled {
                    let q = match how {
                        Settled::Delivered => continue,
                        Settled::RetryAt { at, status, error } => sqlx::query(
                            "UPDATE queue SET next_attempt_at = $3, last_status = $4, \
                             last_error = $5, claimed_by = NULL, claimed_until = NULL \
                             WHERE id = $1 AND claimed_by = $2",
                        )
                        .bind(id)
                        .bind(claimer)
                        .bind(*at)
                        .bind(status.map(i64::from))
                        .bind(error.as_str()),
                        Settled::Dead { status, error, reason, at } => sqlx::query(
                            "UPDATE queue SET state = 'dead', dead_at = $3, last_status = $4, \
                             last_error = $5, dead_reason = $6, claimed_by = NULL, \
                             claimed_until = NULL WHERE id = $1 AND claimed_by = $2",
                        )
                        .bind(id)
                        .bind(claimer)
                        .bind(*at)
                        .bind(status.map(i64::from))
                        .bind(error.as_str())
                        .bind(*reason),
                    };
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                conn.set_synced(true).await?;
                Ok(())
            })
        })
        .await
    }

    /// Gives back every claim of `claimer` (at shutdown: what it did not finish is due
    /// again at once, for whoever claims next), or of every claimer when `None` (an
    /// SQLite file has one process: its previous run's claims are void).
    pub async fn release_claims(&self, claimer: Option<&str>) -> Result<u64, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                let done = match claimer {
                    Some(c) => sqlx::query(
                        "UPDATE queue SET claimed_by = NULL, claimed_until = NULL \
                         WHERE claimed_by = $1",
                    )
                    .bind(c)
                    .execute(p)
                    .await?,
                    None => sqlx::query(
                        "UPDATE queue SET claimed_by = NULL, claimed_until = NULL \
                         WHERE claimed_by IS NOT NULL",
                    )
                    .execute(p)
                    .await?,
                };
                Ok(done.rows_affected())
            })
        })
        .await
    }

    /// Per route and target: queued, in flight, dead, and the oldest queued.
    pub async fn queue_stats(&self, now: i64) -> Result<Vec<QueueStats>, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let rows = sqlx::query(
                    "SELECT route, target, \
                     SUM(CASE WHEN state = 'queued' AND (claimed_until IS NULL OR claimed_until < $1) THEN 1 ELSE 0 END) AS queued, \
                     SUM(CASE WHEN state = 'queued' AND claimed_until >= $1 THEN 1 ELSE 0 END) AS in_flight, \
                     SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) AS dead, \
                     MIN(CASE WHEN state = 'queued' THEN received_at END) AS oldest \
                     FROM queue GROUP BY route, target ORDER BY route, target",
                )
                .bind(now)
                .fetch_all(p)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let count = |name: &str| -> Result<u64, sqlx::Error> {
                        Ok(u64::try_from(row.try_get::<Option<i64>, _>(name)?.unwrap_or(0))
                            .unwrap_or(0))
                    };
                    out.push(QueueStats {
                        route: row.try_get("route")?,
                        target: row.try_get("target")?,
                        queued: count("queued")?,
                        in_flight: count("in_flight")?,
                        dead_lettered: count("dead")?,
                        oldest_received_at: row.try_get("oldest")?,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// When the next queued, unclaimed row is due (Unix µs), if any.
    pub async fn next_due(&self) -> Result<Option<i64>, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let next: Option<i64> = sqlx::query(
                    "SELECT MIN(next_attempt_at) FROM queue WHERE state = 'queued' \
                     AND claimed_until IS NULL",
                )
                .fetch_one(p)
                .await?
                .try_get(0)?;
                Ok(next)
            })
        })
        .await
    }

    /// Dead letters matching `filter`, newest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT id, route, target, delivery_id, attempts, last_status, last_error, \
                     dead_reason, dead_at, received_at FROM queue WHERE state = ",
                );
                q.push_bind(DEAD);
                dead_filtered!(&mut q, filter);
                q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
                let rows = q.build().fetch_all(p).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(dead_letter!(row));
                }
                Ok(out)
            })
        })
        .await
    }

    /// Puts dead letters back in the queue, due now, attempts reset, aged from now. `id` alone, or every
    /// one `filter` matches. Returns how many.
    pub async fn requeue_dead(
        &self,
        id: Option<&str>,
        filter: &DeadLetterFilter,
        now: i64,
    ) -> Result<u64, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                // A redrive starts afresh: `max_age` (and the age gauges) count from now,
                // else a dead letter older than `max_age` would get one attempt only.
                let mut q = sqlx::QueryBuilder::new(
                    "UPDATE queue SET state = 'queued', attempts = 0, received_at = ",
                );
                q.push_bind(now);
                q.push(", next_attempt_at = ");
                q.push_bind(now);
                q.push(
                    ", last_status = NULL, last_error = NULL, dead_at = NULL, \
                     dead_reason = NULL, claimed_by = NULL, claimed_until = NULL \
                     WHERE state = ",
                );
                q.push_bind(DEAD);
                if let Some(id) = id {
                    q.push(" AND id = ").push_bind(id.to_owned());
                }
                dead_filtered!(&mut q, filter);
                Ok(q.build().execute(p).await?.rows_affected())
            })
        })
        .await
    }

    /// Deletes dead letter `id`; returns it, if it was one.
    pub async fn discard_dead(&self, id: &str) -> Result<Option<DeadLetter>, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                let row = sqlx::query(
                    "DELETE FROM queue WHERE id = $1 AND state = 'dead' RETURNING id, route, \
                     target, delivery_id, attempts, last_status, last_error, dead_reason, \
                     dead_at, received_at",
                )
                .bind(id)
                .fetch_optional(p)
                .await?;
                match row {
                    Some(row) => Ok(Some(dead_letter!(&row))),
                    None => Ok(None),
                }
            })
        })
        .await
    }
}
