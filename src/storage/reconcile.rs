//! Reconcile state (CONTRACT §11): per route, where the next poll starts (the cursor and an
//! unfinished walk's position), the last run's result, the recovered count, and the lease
//! that lets one instance of a fleet at a time poll a route; and, for GitHub, the delivery
//! GUIDs already redelivered, so each is asked for once.
//!
//! Every write of progress is conditional on still holding the lease: an instance whose
//! lease was taken over (it stalled past the lease) cannot move a cursor back.

use std::collections::HashSet;

use sqlx::Row;

use super::{timed, with_pool, Storage, StorageError};

/// Where a route's poll stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// Where the next walk starts (source-specific: a creation time, an id).
    pub cursor: Option<String>,
    /// Events at the cursor's (or an unfinished walk's top) position that were delivered
    /// already, as (position, id): a listing from there includes them again, and they are
    /// not sent twice.
    pub at_cursor: Vec<(String, String)>,
    /// An unfinished walk's next page (the walk hit `max_pages`).
    pub resume: Option<String>,
    /// The newest position the unfinished walk has seen: the cursor once it finishes.
    pub walk_top: Option<String>,
    /// The newest event seen, Unix seconds (for the lag).
    pub newest_seen: Option<i64>,
}

/// A route's reconcile row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileState {
    /// The route.
    pub route: String,
    /// `stripe`, `github` or `generic`.
    pub source: String,
    /// Where the poll stands.
    pub position: Position,
    /// When the last run ended, Unix µs.
    pub last_run: Option<i64>,
    /// `ok` or `error`.
    pub result: Option<String>,
    /// What went wrong in the last run.
    pub error: Option<String>,
    /// Events recovered over the route's life: polled, not delivered before, delivered now.
    pub recovered: i64,
    /// The instance running it now, if any, and until when its lease holds (Unix µs).
    pub lease: Option<(String, i64)>,
}

macro_rules! state {
    ($row:expr) => {{
        let row = $row;
        let holder: Option<String> = row.try_get("lease_holder")?;
        let until: Option<i64> = row.try_get("lease_until")?;
        ReconcileState {
            route: row.try_get("route")?,
            source: row.try_get("source")?,
            position: Position {
                cursor: row.try_get("cursor")?,
                at_cursor: split_ids(row.try_get("at_cursor")?),
                resume: row.try_get("resume")?,
                walk_top: row.try_get("walk_top")?,
                newest_seen: row.try_get("newest_seen")?,
            },
            last_run: row.try_get("last_run")?,
            result: row.try_get("result")?,
            error: row.try_get("error")?,
            recovered: row.try_get("recovered")?,
            lease: holder.zip(until),
        }
    }};
}

/// Pairs are stored one per line, tab-separated (a pair holding either is not kept).
fn join_ids(ids: &[(String, String)]) -> Option<String> {
    let plain = |s: &str| !s.contains(['\n', '\t']);
    (!ids.is_empty()).then(|| {
        ids.iter()
            .filter(|(p, i)| plain(p) && plain(i))
            .map(|(p, i)| format!("{p}\t{i}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn split_ids(text: Option<String>) -> Vec<(String, String)> {
    text.map(|t| {
        t.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(p, i)| (p.to_owned(), i.to_owned()))
            .collect()
    })
    .unwrap_or_default()
}

const COLUMNS: &str =
    "route, source, cursor, at_cursor, resume, walk_top, newest_seen, last_run, result, \
                       error, recovered, lease_holder, lease_until";

impl Storage {
    /// Every route's reconcile row, by route name.
    pub async fn reconcile_states(&self) -> Result<Vec<ReconcileState>, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM reconcile ORDER BY route"))
                    .fetch_all(p)
                    .await?;
                rows.iter().map(|row| Ok(state!(row))).collect()
            })
        })
        .await
    }

    /// One route's reconcile row.
    pub async fn reconcile_state(
        &self,
        route: &str,
    ) -> Result<Option<ReconcileState>, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let row = sqlx::query(&format!("SELECT {COLUMNS} FROM reconcile WHERE route = $1"))
                    .bind(route)
                    .fetch_optional(p)
                    .await?;
                match row {
                    Some(row) => Ok(Some(state!(&row))),
                    None => Ok(None),
                }
            })
        })
        .await
    }

    /// Takes or renews `route`'s lease for `holder` until `until` (Unix µs): `true` when
    /// `holder` has it now. Another holder's lease is taken over only once it has ended
    /// (its holder died or stalled).
    pub async fn take_reconcile_lease(
        &self,
        route: &str,
        source: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                sqlx::query(
                    "INSERT INTO reconcile (route, source, recovered) VALUES ($1, $2, 0) \
                     ON CONFLICT (route) DO NOTHING",
                )
                .bind(route)
                .bind(source)
                .execute(p)
                .await?;
                let taken = sqlx::query(
                    "UPDATE reconcile SET lease_holder = $1, lease_until = $2, source = $3 \
                     WHERE route = $4 AND (lease_holder IS NULL OR lease_holder = $1 \
                     OR lease_until < $5)",
                )
                .bind(holder)
                .bind(until)
                .bind(source)
                .bind(route)
                .bind(now)
                .execute(p)
                .await?
                .rows_affected();
                Ok(taken == 1)
            })
        })
        .await
    }

    /// Gives `route`'s lease up, if `holder` has it.
    pub async fn release_reconcile_lease(
        &self,
        route: &str,
        holder: &str,
    ) -> Result<(), StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                sqlx::query(
                    "UPDATE reconcile SET lease_holder = NULL, lease_until = NULL \
                     WHERE route = $1 AND lease_holder = $2",
                )
                .bind(route)
                .bind(holder)
                .execute(p)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Gives up every route's lease (SQLite at start: one process owns the file, so a lease
    /// left by its previous run belongs to a process that is gone).
    pub async fn release_all_reconcile_leases(&self) -> Result<u64, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                Ok(sqlx::query(
                    "UPDATE reconcile SET lease_holder = NULL, lease_until = NULL \
                     WHERE lease_holder IS NOT NULL",
                )
                .execute(p)
                .await?
                .rows_affected())
            })
        })
        .await
    }

    /// Stores where the poll stands and adds `recovered`, if `holder` still has the lease
    /// (`false`: it was taken over, and nothing was written).
    pub async fn save_reconcile_position(
        &self,
        route: &str,
        holder: &str,
        position: &Position,
        recovered: i64,
    ) -> Result<bool, StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                let saved = sqlx::query(
                    "UPDATE reconcile SET cursor = $1, resume = $2, walk_top = $3, \
                     newest_seen = $4, recovered = recovered + $5, at_cursor = $6 \
                     WHERE route = $7 AND lease_holder = $8",
                )
                .bind(&position.cursor)
                .bind(&position.resume)
                .bind(&position.walk_top)
                .bind(position.newest_seen)
                .bind(recovered)
                .bind(join_ids(&position.at_cursor))
                .bind(route)
                .bind(holder)
                .execute(p)
                .await?
                .rows_affected();
                Ok(saved == 1)
            })
        })
        .await
    }

    /// Records how a run ended.
    pub async fn finish_reconcile_run(
        &self,
        route: &str,
        holder: &str,
        at: i64,
        result: &str,
        error: Option<&str>,
    ) -> Result<(), StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                sqlx::query(
                    "UPDATE reconcile SET last_run = $1, result = $2, error = $3 \
                     WHERE route = $4 AND lease_holder = $5",
                )
                .bind(at)
                .bind(result)
                .bind(error)
                .bind(route)
                .bind(holder)
                .execute(p)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Which of `guids` were already redelivered for `route`.
    pub async fn redelivered(
        &self,
        route: &str,
        guids: &[String],
    ) -> Result<HashSet<String>, StorageError> {
        if guids.is_empty() {
            return Ok(HashSet::new());
        }
        self.ready().await?;
        timed(async {
            with_pool!(self.pool(), p => {
                let mut found = HashSet::new();
                // Bounded statements: a page of deliveries is at most 100 GUIDs.
                for chunk in guids.chunks(500) {
                    let mut q = sqlx::QueryBuilder::new(
                        "SELECT guid FROM reconcile_redelivered WHERE route = ",
                    );
                    q.push_bind(route.to_owned()).push(" AND guid IN (");
                    let mut list = q.separated(", ");
                    for g in chunk {
                        list.push_bind(g.clone());
                    }
                    q.push(")");
                    for row in q.build().fetch_all(p).await? {
                        found.insert(row.try_get::<String, _>("guid")?);
                    }
                }
                Ok(found)
            })
        })
        .await
    }

    /// Records that `guid` was redelivered, and forgets records older than `forget_before`
    /// (Unix µs; GitHub lists deliveries of the last few days only).
    pub async fn mark_redelivered(
        &self,
        route: &str,
        guid: &str,
        at: i64,
        forget_before: i64,
    ) -> Result<(), StorageError> {
        self.ready().await?;
        timed(async {
            with_pool!(self.writer(), p => {
                sqlx::query(
                    "INSERT INTO reconcile_redelivered (route, guid, requested_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (route, guid) DO NOTHING",
                )
                .bind(route)
                .bind(guid)
                .bind(at)
                .execute(p)
                .await?;
                sqlx::query(
                    "DELETE FROM reconcile_redelivered WHERE route = $1 AND requested_at < $2",
                )
                .bind(route)
                .bind(forget_before)
                .execute(p)
                .await?;
                Ok(())
            })
        })
        .await
    }
}
