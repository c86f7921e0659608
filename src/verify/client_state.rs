//! Microsoft Graph change notifications carry no signature: each notification in the
//! body's `value` array repeats the `clientState` the subscriber chose when it created the
//! subscription, and that shared secret is the proof. Every notification in the body must
//! carry a configured secret (compared in constant time); one without is refused, so a
//! forged notification cannot ride along with a genuine one.

use serde_json::Value;

use super::{Key, KeyMaterial, SignedRequest, SignedTimestamp, Verdict};

/// Most notifications looked at in one body (Graph batches far fewer).
const MAX_NOTIFICATIONS: usize = 1000;

/// Checks `value[*].clientState` against the route's secrets.
pub fn verify(keys: &[Key], req: &SignedRequest<'_>) -> Verdict {
    let Ok(doc) = serde_json::from_slice::<Value>(req.body) else {
        return Verdict::Missing;
    };
    let Some(items) = doc.get("value").and_then(Value::as_array) else {
        return Verdict::Missing;
    };
    if items.is_empty() || items.len() > MAX_NOTIFICATIONS {
        return Verdict::Invalid;
    }
    let mut first = None;
    for item in items {
        let Some(state) = item.get("clientState").and_then(Value::as_str) else {
            return Verdict::Invalid;
        };
        let mut matched = None;
        for key in keys {
            if let KeyMaterial::Token(secret) = &key.material {
                if secret.matches(state.as_bytes()) && matched.is_none() {
                    matched = Some(key.index);
                }
            }
        }
        match matched {
            Some(index) => {
                first.get_or_insert(index);
            }
            None => return Verdict::Invalid,
        }
    }
    match first {
        Some(key) => Verdict::Valid {
            key,
            timestamp: SignedTimestamp::None,
        },
        None => Verdict::Invalid,
    }
}
