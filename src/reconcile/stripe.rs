//! Stripe: `GET /v1/events?created[gte]=<cursor>&limit=100`, paged toward older events
//! with `starting_after=<last id>` while `has_more`. Each event document is forwarded as
//! listed (the bytes of the list's element, not a re-serialisation), keyed by its `id`,
//! which is the Stripe preset's dedup key: a webhook and a poll of one event meet there.
//! The cursor is the newest `created` delivered (Unix seconds).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::api::{Api, ApiError};
use super::feed::Polled;
use super::walk::Page;

/// Stripe's largest page.
const LIMIT: u32 = 100;

#[derive(Deserialize)]
struct List {
    data: Vec<Box<RawValue>>,
    has_more: bool,
}

#[derive(Deserialize)]
struct EventHead {
    id: String,
    created: i64,
}

/// The events page after `resume` (an event id), created at `since` or later.
pub(crate) async fn page(
    api: &Api,
    base: &str,
    since: &str,
    resume: Option<&str>,
) -> Result<Page, ApiError> {
    let mut url = format!("{base}/v1/events?created%5Bgte%5D={since}&limit={LIMIT}");
    if let Some(after) = resume {
        url.push_str("&starting_after=");
        url.extend(form_urlencoded::byte_serialize(after.as_bytes()));
    }
    let answer = api.get(&url).await?;
    let list: List = serde_json::from_slice(&answer.body)
        .map_err(|e| ApiError::Unexpected(format!("{url}: not a Stripe list of events: {e}")))?;
    let mut events = Vec::with_capacity(list.data.len());
    for raw in &list.data {
        let head: EventHead = serde_json::from_str(raw.get()).map_err(|e| {
            ApiError::Unexpected(format!("{url}: an event without id or created: {e}"))
        })?;
        events.push(Polled {
            position: head.created.to_string(),
            created: Some(head.created),
            id: head.id,
            body: Bytes::copy_from_slice(raw.get().as_bytes()),
        });
    }
    let next = if list.has_more {
        match events.last() {
            Some(last) => Some(last.id.clone()),
            None => {
                return Err(ApiError::Unexpected(format!(
                    "{url}: has_more with an empty page"
                )))
            }
        }
    } else {
        None
    };
    Ok(Page { events, next })
}
