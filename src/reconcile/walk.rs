//! The walk of an events source (Stripe, generic): list the pages after the cursor, deliver
//! what they hold oldest first, and move the cursor only over what was delivered.
//!
//! - A run reads at most `max_pages` pages. A walk cut short keeps its place (`resume`,
//!   the next page) and the newest position it saw (`walk_top`): the next run continues it,
//!   and once it is finished the cursor jumps to `walk_top`. Stripe lists newest first, so
//!   a cut walk has not seen the oldest events yet and the cursor must not move before then.
//! - A delivery that fails stops the run. On a finished walk the cursor goes to the last
//!   event delivered before it (the next run lists from there: the failed event again, and
//!   its predecessor, which dedup answers `duplicate`); on a cut walk it stays where the walk
//!   began and the walk starts over.
//! - The first run, and a run after downtime longer than `lookback`, start `lookback` ago.

use std::collections::HashSet;

use super::api::ApiError;
use super::feed::{Fed, Polled};
use super::{generic, stripe, Run, RunError};
use crate::config::GenericSource;
use crate::storage::reconcile::Position;

/// Ids kept for the cursor's own position: more events than this in one second are sent
/// again (dedup answers `duplicate` for them while it remembers them).
const MAX_AT_CURSOR: usize = 1000;

/// One page of a listing.
#[derive(Debug)]
pub(crate) struct Page {
    /// The events on it, in the API's order.
    pub events: Vec<Polled>,
    /// Where the next page is, if there is one.
    pub next: Option<String>,
}

/// A source that lists events after a cursor.
pub(crate) enum Lister<'a> {
    /// `GET {api_base}/v1/events`.
    Stripe { api_base: &'a str },
    /// The configured template.
    Generic(&'a GenericSource),
}

impl Lister<'_> {
    async fn page(
        &self,
        run: &Run<'_>,
        cursor: &str,
        resume: Option<&str>,
    ) -> Result<Page, ApiError> {
        match self {
            Lister::Stripe { api_base } => stripe::page(&run.api, api_base, cursor, resume).await,
            Lister::Generic(source) => generic::page(&run.api, source, cursor, resume).await,
        }
    }

    /// The cursor that starts a walk at `secs`.
    fn cursor_at(&self, secs: i64) -> String {
        match self {
            Lister::Stripe { .. } => secs.to_string(),
            Lister::Generic(source) => generic::cursor_at(source.cursor_format, secs),
        }
    }

    /// The time a cursor stands for, when it is one.
    fn cursor_secs(&self, cursor: &str) -> Option<i64> {
        match self {
            Lister::Stripe { .. } => cursor.parse().ok(),
            Lister::Generic(_) => generic::unix_seconds(cursor),
        }
    }

    /// The newer of two positions (the later one when they are not times).
    fn newer(&self, a: Option<String>, b: Option<String>) -> Option<String> {
        match (a, b) {
            (Some(a), Some(b)) => match (self.cursor_secs(&a), self.cursor_secs(&b)) {
                (Some(x), Some(y)) if x > y => Some(a),
                _ => Some(b),
            },
            (a, b) => b.or(a),
        }
    }
}

/// One run of an events source.
pub(crate) async fn run(run: &mut Run<'_>, lister: Lister<'_>) -> Result<(), RunError> {
    let stored = run.position.clone();
    let floor = run.now_secs - i64::try_from(run.config.lookback.as_secs()).unwrap_or(i64::MAX);
    let start = match &stored.cursor {
        Some(c) if lister.cursor_secs(c).is_none_or(|s| s >= floor) => c.clone(),
        _ => lister.cursor_at(floor),
    };
    // An unfinished walk continues only from the cursor it began at.
    let continuing = stored.cursor.as_deref() == Some(start.as_str()) && stored.resume.is_some();
    let (mut resume, walk_top) = if continuing {
        (stored.resume.clone(), stored.walk_top.clone())
    } else {
        (None, None)
    };

    let mut events = Vec::new();
    let mut pages = 0;
    let finished = loop {
        let page = lister.page(run, &start, resume.as_deref()).await?;
        pages += 1;
        events.extend(page.events);
        run.keep_lease().await?;
        match page.next {
            None => break true,
            Some(next) => {
                resume = Some(next);
                if pages >= run.config.max_pages {
                    break false;
                }
            }
        }
    };
    // Oldest first (a stable sort: without times, the API's order); an event listed on
    // two pages (the list moved while paging) once.
    events.sort_by_key(|e| e.created.unwrap_or(i64::MIN));
    let mut seen = HashSet::new();
    events.retain(|e| seen.insert(e.id.clone()));
    run.listed += events.len() as u64;
    let newest = events.iter().filter_map(|e| e.created).max();
    let newest_seen = newest.max(stored.newest_seen);

    // Delivered by an earlier run at the position this walk starts from (or the top of
    // the walk it continues): listed again, not sent again.
    let done: HashSet<(String, String)> = stored.at_cursor.iter().cloned().collect();
    let mut delivered = 0;
    let mut failure = None;
    for event in &events {
        if done.contains(&(event.position.clone(), event.id.clone())) {
            delivered += 1;
            continue;
        }
        match run.feeder.feed(event).await {
            Fed::Recovered => run.recovered += 1,
            Fed::Known => {}
            Fed::Failed(why) => {
                failure = Some(why);
                break;
            }
        }
        delivered += 1;
        run.keep_lease().await?;
    }

    let top = events.last().map(|e| e.position.clone());
    // What has been delivered at the positions the next walk starts from or reaches.
    let mut all: Vec<(String, String)> = done.into_iter().collect();
    all.extend(
        events[..delivered]
            .iter()
            .map(|e| (e.position.clone(), e.id.clone())),
    );
    all.sort();
    all.dedup();
    let at = |positions: &[&str]| -> Vec<(String, String)> {
        let mut kept: Vec<(String, String)> = all
            .iter()
            .filter(|(p, _)| positions.contains(&p.as_str()))
            .cloned()
            .collect();
        kept.truncate(MAX_AT_CURSOR);
        kept
    };
    let position = match (finished, &failure) {
        (true, failed) => {
            let cursor = if failed.is_some() {
                // Behind the failed event: the last one delivered before it.
                delivered
                    .checked_sub(1)
                    .map_or_else(|| start.clone(), |i| events[i].position.clone())
            } else {
                lister
                    .newer(Some(start.clone()), lister.newer(walk_top, top))
                    .unwrap_or_else(|| start.clone())
            };
            Position {
                at_cursor: at(&[&cursor]),
                cursor: Some(cursor),
                resume: None,
                walk_top: None,
                newest_seen,
            }
        }
        (false, None) => {
            let walk_top = lister.newer(walk_top, top);
            Position {
                at_cursor: at(&[&start, walk_top.as_deref().unwrap_or_default()]),
                cursor: Some(start),
                resume,
                walk_top,
                newest_seen,
            }
        }
        // The walk starts over from where it began.
        (false, Some(_)) => Position {
            at_cursor: at(&[&start]),
            cursor: Some(start),
            resume: None,
            walk_top: None,
            newest_seen,
        },
    };
    run.save(position).await?;
    match failure {
        Some(why) => Err(RunError::Delivery(why)),
        None => Ok(()),
    }
}
