//! Which key a delivery is deduped under.
//!
//! The delivery id comes from where the route says (a header, a JSON field, the body's
//! hash). When the route's signature covers that id, the id alone is the key. When it does
//! not (GitHub's `X-GitHub-Delivery`, a generic `payload = "{body}"` with an `id_header`),
//! anyone holding one captured delivery could resend its body and signature under any id:
//! forwarded again under a new id, or, sent ahead under a predictable future id, making the
//! real delivery a `duplicate`. So such an id is bound to the body: the key is the id with
//! the body's SHA-256. The provider's retries (same id, same bytes) still dedup; a forged
//! request can no longer claim a real delivery's id. What is forwarded and journaled as the
//! delivery id stays the provider's id.
//!
//! A reconciled route also sees the same event polled from the provider's API, whose id the
//! API vouches for but whose bytes differ from the webhook's. Its polled events keep the id
//! alone as their key; a webhook of such a route is also a duplicate when that polled key
//! was delivered, and marks `<id>:webhook` delivered on success, which a poll then treats
//! as delivered. A forged webhook can at most make the poller skip an id (the safety net),
//! never make a real webhook a duplicate: webhooks never write the key they check.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName};
use http::Request;
use sha2::{Digest, Sha256};

use crate::config::DedupSource;
use crate::context::SignedIdHeader;

/// Ids longer than this are stored by their SHA-256, bounding memory per entry.
const MAX_ID_LEN: usize = 200;
/// Hex digits of the body's SHA-256 kept in a bound key: 128 bits, plenty to tell bodies
/// apart (a forger cannot choose a body anyway: the signature covers it).
const BODY_HASH_HEX: usize = 32;

/// Why a request yields no delivery id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoId {
    /// The route's id is not in the request.
    Missing,
    /// The id header is there more than once, or holds a list: which value is the id
    /// cannot be told, and `X-Id: A, B` must not become a key other than `A`'s.
    Ambiguous,
}

/// The single value of header `name`.
fn single_value(headers: &HeaderMap, name: &HeaderName) -> Result<String, NoId> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(NoId::Missing)?;
    if values.next().is_some() {
        return Err(NoId::Ambiguous);
    }
    let value = value.to_str().map_err(|_| NoId::Missing)?.trim();
    if value.contains(',') {
        return Err(NoId::Ambiguous);
    }
    Ok(value.to_owned())
}

/// The delivery id of a request.
pub(crate) fn find_id(source: &DedupSource, req: &Request<Bytes>) -> Result<String, NoId> {
    let id = match source {
        DedupSource::Header(name) => single_value(req.headers(), name)?,
        DedupSource::AnyHeader(names) => {
            // The one the signature covered, if it is one of them; else the first present.
            let signed = req
                .extensions()
                .get::<SignedIdHeader>()
                .map(|s| &s.0)
                .filter(|s| names.contains(s));
            let name = signed
                .or_else(|| names.iter().find(|n| req.headers().contains_key(*n)))
                .ok_or(NoId::Missing)?;
            single_value(req.headers(), name)?
        }
        DedupSource::JsonPointer(pointer) => {
            let doc: serde_json::Value =
                serde_json::from_slice(req.body()).map_err(|_| NoId::Missing)?;
            match doc.pointer(pointer) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => return Err(NoId::Missing),
            }
        }
        DedupSource::BodySha256 => hex::encode(Sha256::digest(req.body())),
    };
    if id.is_empty() {
        return Err(NoId::Missing);
    }
    Ok(id)
}

/// The delivery id of a request, if it has exactly one.
pub fn extract_id(source: &DedupSource, req: &Request<Bytes>) -> Option<String> {
    find_id(source, req).ok()
}

/// The key a route's delivery id is stored under: `<route>:<id>`, or the id's SHA-256 when
/// it is long (bounding memory per entry).
fn store_key(route: &str, id: &str) -> String {
    if id.len() > MAX_ID_LEN {
        format!("{route}:sha256:{}", hex::encode(Sha256::digest(id)))
    } else {
        format!("{route}:{id}")
    }
}

/// The key delivery `id` with `body` is deduped under on `route`: the id alone when the
/// route's signature covers it, else bound to the body (`<id>:<body SHA-256, 32 hex>`).
/// Live deliveries and replays both use this, so a replay marks the same key delivered.
pub(crate) fn delivery_key(route: &str, id: &str, body: &[u8], id_signed: bool) -> String {
    if id_signed {
        return store_key(route, id);
    }
    // Only the hex digits kept are encoded.
    let hash = hex::encode(&Sha256::digest(body)[..BODY_HASH_HEX / 2]);
    store_key(route, &format!("{id}:{hash}"))
}

/// The key an id the provider's API vouched for (a polled event) is stored under: the id
/// alone, whatever the route's signature covers.
pub(crate) fn vouched_key(route: &str, id: &str) -> String {
    store_key(route, id)
}

/// How a route's ids are keyed, from its config.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The route's signature covers the id.
    pub id_signed: bool,
    /// The route polls the provider's API too (`[route.reconcile]`).
    pub reconciled: bool,
}

/// The keys one delivery is deduped under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    /// Reserved, then committed on success or released.
    pub primary: String,
    /// Also means `duplicate` when delivered (written by a path at least as trusted).
    pub delivered_if: Option<String>,
    /// Also marked delivered on success, for the other path to see.
    pub mark: Option<String>,
}

/// The keys a webhook delivery that succeeded is marked delivered under (a replay's): its
/// own, and the mark a poll of a reconciled route looks for.
pub(crate) fn webhook_keys(route: &str, id: &str, body: &[u8], b: Binding) -> Vec<String> {
    let keys = keys_for(route, id, body, b, false);
    std::iter::once(keys.primary).chain(keys.mark).collect()
}

/// The keys for delivery `id` with `body`; `polled` when the provider's API vouched for
/// the id (reconcile).
pub(crate) fn keys_for(route: &str, id: &str, body: &[u8], b: Binding, polled: bool) -> Keys {
    let only = |primary| Keys {
        primary,
        delivered_if: None,
        mark: None,
    };
    let seen_by_webhook = || store_key(route, &format!("{id}:webhook"));
    match (polled, b.id_signed || !b.reconciled) {
        (true, true) => only(vouched_key(route, id)),
        (false, true) => only(delivery_key(route, id, body, b.id_signed)),
        (true, false) => Keys {
            primary: vouched_key(route, id),
            delivered_if: Some(seen_by_webhook()),
            mark: None,
        },
        (false, false) => Keys {
            primary: delivery_key(route, id, body, false),
            delivered_if: Some(vouched_key(route, id)),
            mark: Some(seen_by_webhook()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_support::request;

    fn x_id(values: &[&str]) -> Request<Bytes> {
        let mut req = request(b"{}");
        for v in values {
            req.headers_mut().append("x-id", v.parse().unwrap());
        }
        req
    }

    fn header() -> DedupSource {
        DedupSource::Header(HeaderName::from_static("x-id"))
    }

    #[test]
    fn one_header_with_one_value_is_the_id() {
        assert_eq!(find_id(&header(), &x_id(&[" evt_1 "])), Ok("evt_1".into()));
        assert_eq!(find_id(&header(), &x_id(&[])), Err(NoId::Missing));
        assert_eq!(find_id(&header(), &x_id(&[""])), Err(NoId::Missing));
    }

    #[test]
    fn several_headers_or_a_list_are_ambiguous() {
        assert_eq!(find_id(&header(), &x_id(&["A", "B"])), Err(NoId::Ambiguous));
        assert_eq!(find_id(&header(), &x_id(&["A, zzz"])), Err(NoId::Ambiguous));
        let any = DedupSource::AnyHeader(vec![HeaderName::from_static("x-id")]);
        assert_eq!(find_id(&any, &x_id(&["A", "A"])), Err(NoId::Ambiguous));
    }

    #[test]
    fn unsigned_ids_are_bound_to_the_body_and_signed_ones_are_not() {
        assert_eq!(delivery_key("r", "evt_1", b"a", true), "r:evt_1");
        let bound = delivery_key("r", "evt_1", b"a", false);
        assert_eq!(bound, "r:evt_1:ca978112ca1bbdcafac231b39a23dc4d");
        assert_eq!(bound, delivery_key("r", "evt_1", b"a", false));
        assert_ne!(bound, delivery_key("r", "evt_1", b"b", false));
        assert_ne!(bound, delivery_key("r", "evt_2", b"a", false));
        assert_eq!(vouched_key("r", "evt_1"), "r:evt_1");
    }

    #[test]
    fn a_reconciled_unsigned_route_links_polled_and_webhook_keys_one_way() {
        let b = Binding {
            id_signed: false,
            reconciled: true,
        };
        let webhook = keys_for("r", "e1", b"a", b, false);
        let polled = keys_for("r", "e1", b"other bytes", b, true);
        assert_eq!(webhook.primary, delivery_key("r", "e1", b"a", false));
        // A webhook is a duplicate of a delivered poll, and leaves a mark a poll sees...
        assert_eq!(
            webhook.delivered_if.as_deref(),
            Some(polled.primary.as_str())
        );
        assert_eq!(webhook.mark, polled.delivered_if);
        // ...but never writes what a webhook checks.
        assert_ne!(webhook.mark, webhook.delivered_if);
        assert_eq!(polled.mark, None);
        let signed = Binding {
            id_signed: true,
            reconciled: true,
        };
        assert_eq!(
            keys_for("r", "e1", b"a", signed, false),
            keys_for("r", "e1", b"b", signed, true)
        );
    }

    #[test]
    fn long_ids_are_stored_by_their_hash() {
        let long = "x".repeat(MAX_ID_LEN + 1);
        let key = delivery_key("r", &long, b"a", true);
        assert!(key.starts_with("r:sha256:"));
        assert_eq!(key.len(), "r:sha256:".len() + 64);
    }
}
