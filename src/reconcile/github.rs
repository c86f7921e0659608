//! GitHub: GitHub does not retry a failed delivery on its own, so the poller lists the
//! hook's deliveries (`GET /{repos/o/n | orgs/o}/hooks/{id}/deliveries`, newest first,
//! paged by the `Link` header's cursor) and asks GitHub to redeliver
//! (`POST .../deliveries/{id}/attempts`) every GUID that has no successful delivery. The
//! redelivery arrives signed and takes the route's normal path, dedup included. Each GUID is
//! asked for once (kept in storage); one that ever succeeded, never.
//!
//! The cursor is the newest `delivered_at` seen (Unix seconds); a run looks back to it
//! less a margin (deliveries are listed once they finish, not always in order), and never
//! further than `lookback`.

use std::collections::HashMap;

use serde::Deserialize;

use super::api::{link_next, ApiError};
use super::{Run, RunError};
use crate::storage::reconcile::Position;

/// How far before the cursor a run looks again.
const OVERLAP_SECS: i64 = 300;
/// Redelivery records are kept a little longer than GitHub lists deliveries.
const FORGET_AFTER_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, Deserialize)]
struct Delivery {
    id: u64,
    guid: String,
    delivered_at: String,
    #[serde(default)]
    status_code: u16,
}

impl Delivery {
    fn at(&self) -> Option<i64> {
        super::generic::unix_seconds(&self.delivered_at)
    }
}

/// One run for the hook at `owner` (`repos/o/n` or `orgs/o`).
pub(crate) async fn run(run: &mut Run<'_>, owner: &str, hook_id: u64) -> Result<(), RunError> {
    let base = format!("{}/{owner}/hooks/{hook_id}/deliveries", run.config.api_base);
    let stored = run.position.clone();
    let lookback_floor =
        run.now_secs - i64::try_from(run.config.lookback.as_secs()).unwrap_or(i64::MAX);
    let floor = stored
        .cursor
        .as_deref()
        .and_then(|c| c.parse::<i64>().ok())
        .map_or(lookback_floor, |c| (c - OVERLAP_SECS).max(lookback_floor));
    let (mut next, walk_top) = match &stored.resume {
        Some(resume) => (resume.clone(), stored.walk_top.clone()),
        None => (format!("{base}?per_page=100"), None),
    };

    let mut deliveries = Vec::new();
    let mut pages = 0;
    let finished = loop {
        let answer = run.api.get(&next).await?;
        let page: Vec<Delivery> = serde_json::from_slice(&answer.body).map_err(|e| {
            ApiError::Unexpected(format!("{next}: not a list of hook deliveries: {e}"))
        })?;
        pages += 1;
        let reached_floor = page.iter().any(|d| d.at().is_some_and(|t| t < floor));
        deliveries.extend(
            page.into_iter()
                .filter(|d| d.at().is_some_and(|t| t >= floor)),
        );
        run.keep_lease().await?;
        match link_next(&answer.headers) {
            Some(url) if !reached_floor => {
                if !url.starts_with(&run.config.api_base) {
                    return Err(ApiError::Unexpected(format!(
                        "the next page {url:?} is not on api_base; not following it with the token"
                    ))
                    .into());
                }
                next = url;
                if pages >= run.config.max_pages {
                    break false;
                }
            }
            _ => break true,
        }
    };
    run.listed += deliveries.len() as u64;

    // Per GUID: whether any attempt succeeded, and its newest attempt (what is redelivered).
    let mut guids: HashMap<&str, (bool, &Delivery)> = HashMap::new();
    for d in &deliveries {
        let ok = (200..300).contains(&d.status_code);
        let entry = guids.entry(d.guid.as_str()).or_insert((ok, d));
        entry.0 |= ok;
        if d.at() > entry.1.at() {
            entry.1 = d;
        }
    }
    let mut failed: Vec<&Delivery> = guids
        .values()
        .filter(|(ok, _)| !ok)
        .map(|(_, d)| *d)
        .collect();
    failed.sort_by_key(|d| d.at());
    let asked: Vec<String> = failed.iter().map(|d| d.guid.clone()).collect();
    let already = run
        .storage
        .redelivered(run.route, &asked)
        .await
        .map_err(RunError::Storage)?;

    let mut failure = None;
    for d in failed.iter().filter(|d| !already.contains(&d.guid)) {
        let url = format!("{base}/{}/attempts", d.id);
        match run.api.post(&url).await {
            Ok(_) => {
                let now = super::now_micros();
                run.storage
                    .mark_redelivered(run.route, &d.guid, now, now - FORGET_AFTER_SECS * 1_000_000)
                    .await
                    .map_err(RunError::Storage)?;
                run.recovered += 1;
                tracing::info!(route = run.route, guid = %d.guid, delivery = d.id, "GitHub asked to redeliver a failed delivery");
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        run.keep_lease().await?;
    }

    let newest = deliveries.iter().filter_map(Delivery::at).max();
    let newest_seen = newest.max(stored.newest_seen);
    let top = newest.map(|t| t.to_string());
    let newer = |a: Option<String>, b: Option<String>| match (a, b) {
        (Some(a), Some(b)) => Some(if a.parse::<i64>().ok() > b.parse::<i64>().ok() {
            a
        } else {
            b
        }),
        (a, b) => b.or(a),
    };
    let position = match (finished, &failure) {
        // A redelivery request failed: the cursor stays, so the next run lists these
        // deliveries again (the GUIDs already asked for are remembered and skipped).
        (_, Some(_)) => Position {
            cursor: stored.cursor.clone(),
            at_cursor: Vec::new(),
            resume: None,
            walk_top: None,
            newest_seen,
        },
        (true, None) => Position {
            cursor: newer(stored.cursor.clone(), newer(walk_top, top)),
            at_cursor: Vec::new(),
            resume: None,
            walk_top: None,
            newest_seen,
        },
        (false, None) => Position {
            cursor: stored.cursor.clone(),
            at_cursor: Vec::new(),
            resume: Some(next),
            walk_top: newer(walk_top, top),
            newest_seen,
        },
    };
    run.save(position).await?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
