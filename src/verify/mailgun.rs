//! Mailgun: the signature travels inside the JSON body, as
//! `{"signature": {"timestamp": "…", "token": "…", "signature": "<hex>"}, "event-data": …}`,
//! an HMAC-SHA256 (key = the webhook signing key) of `timestamp + token`.
//!
//! The body itself is **not** covered, so a captured signature could be replayed with
//! another body: the preset dedups on the token (a token is accepted once) and bounds the
//! timestamp, as Mailgun recommends.

use subtle::ConstantTimeEq;

use super::hmac_scheme::{Encoding, TimestampUnit};
use super::{Key, SignedRequest, Verdict};

/// The Mailgun scheme.
#[derive(Debug, Clone, Default)]
pub struct MailgunScheme;

impl MailgunScheme {
    /// Checks the body's `signature` object.
    pub fn verify(&self, keys: &[Key], req: &SignedRequest<'_>) -> Verdict {
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(req.body) else {
            return Verdict::Missing;
        };
        let Some(sig) = doc.get("signature").filter(|s| s.is_object()) else {
            return Verdict::Missing;
        };
        let field = |name: &str| match sig.get(name) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (Some(timestamp), Some(token), Some(signature)) =
            (field("timestamp"), field("token"), field("signature"))
        else {
            return Verdict::Missing;
        };
        let Some(tag) = Encoding::Hex.decode(signature.as_bytes()) else {
            return Verdict::Invalid;
        };
        for key in keys {
            let Some(mac) = key.mac() else { continue };
            let expected = mac.compute(&[timestamp.as_bytes(), token.as_bytes()]);
            if expected.as_bytes().len() == tag.len() && bool::from(expected.as_bytes().ct_eq(&tag))
            {
                return Verdict::Valid {
                    key: key.index,
                    timestamp: TimestampUnit::Seconds.parse(timestamp.as_bytes()),
                };
            }
        }
        Verdict::Invalid
    }
}
