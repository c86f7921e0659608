//! Amazon SNS: the JSON message signs itself. Its `Signature` (base64 RSA PKCS#1 v1.5,
//! SHA-1 for `SignatureVersion` 1, SHA-256 for 2) covers a canonical string built from the
//! message's fields, `Name\nvalue\n` each, in a fixed order that depends on `Type`
//! (AWS's "Verifying the signatures of Amazon SNS messages" and the SDK validators):
//!
//! - `Notification`: Message, MessageId, Subject (only if present), Timestamp, TopicArn,
//!   Type;
//! - `SubscriptionConfirmation`, `UnsubscribeConfirmation`: Message, MessageId,
//!   SubscribeURL, Timestamp, Token, TopicArn, Type.
//!
//! The public key is the one in the certificate at `SigningCertURL`, which must be an
//! https URL on an allowed host (by default `sns.<region>.amazonaws.com` and
//! `sns.<region>.amazonaws.com.cn`); the certificate is fetched and cached by
//! [`super::fetched_keys`], never from any other host. RSA is verified by `ring`.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value};

use super::fetched_keys::{HostAllowlist, KeySource, PublicKey};
use super::{SignedRequest, SignedTimestamp, Verdict};

/// The SNS scheme of one route.
#[derive(Debug, Clone)]
pub struct SnsScheme {
    /// Hosts `SigningCertURL` may name.
    pub hosts: HostAllowlist,
    /// The certificate cache (set when the route is compiled).
    pub source: Option<Arc<KeySource>>,
}

/// The JSON object of an SNS message, if the body is one.
pub fn message(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The string SNS signed for `msg`, or `None` for a type it does not sign this way or a
/// missing field.
pub fn canonical(msg: &Map<String, Value>) -> Option<Vec<u8>> {
    let fields: &[&str] = match msg.get("Type")?.as_str()? {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        _ => return None,
    };
    let mut out = Vec::with_capacity(512);
    for name in fields {
        let value = match msg.get(*name) {
            Some(Value::String(s)) => s,
            // Subject is the one optional field; an absent one is not signed.
            None | Some(Value::Null) if *name == "Subject" => continue,
            _ => return None,
        };
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    Some(out)
}

impl SnsScheme {
    /// The certificate a message names, if its URL is allowed (only then may it be
    /// fetched).
    pub fn wanted_cert(&self, req: &SignedRequest<'_>) -> Option<(Arc<KeySource>, String)> {
        let source = self.source.clone()?;
        let msg = message(req.body)?;
        let url = msg.get("SigningCertURL")?.as_str()?;
        (url.len() <= 2048 && self.hosts.allows(url)).then(|| (source, url.to_owned()))
    }

    /// Verifies the message's own signature.
    pub fn verify(&self, req: &SignedRequest<'_>) -> Verdict {
        let Some(msg) = message(req.body) else {
            return Verdict::Missing;
        };
        let Some(signature) = msg.get("Signature").and_then(Value::as_str) else {
            return Verdict::Missing;
        };
        let algorithm: &dyn ring::signature::VerificationAlgorithm =
            match msg.get("SignatureVersion").and_then(Value::as_str) {
                Some("1") => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                Some("2") => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                _ => return Verdict::Invalid,
            };
        let Some(url) = msg.get("SigningCertURL").and_then(Value::as_str) else {
            return Verdict::Invalid;
        };
        if !self.hosts.allows(url) {
            return Verdict::Invalid;
        }
        let Some(key) = self.source.as_ref().and_then(|s| s.get(url)) else {
            return Verdict::Invalid;
        };
        let PublicKey::Rsa(der) = &*key else {
            return Verdict::Invalid;
        };
        let (Some(text), Ok(sig)) = (
            canonical(&msg),
            base64::engine::general_purpose::STANDARD.decode(signature),
        ) else {
            return Verdict::Invalid;
        };
        let key = ring::signature::UnparsedPublicKey::new(algorithm, der);
        match key.verify(&text, &sig) {
            // The SDKs do not window SNS's Timestamp; replays are stopped by MessageId dedup.
            Ok(()) => Verdict::Valid {
                key: 0,
                timestamp: SignedTimestamp::None,
            },
            Err(_) => Verdict::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_strings_follow_the_type() {
        let n = message(br#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Message":"hi\nthere","Timestamp":"2012-05-02T00:54:06.655Z","SignatureVersion":"1"}"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical(&n).unwrap()).unwrap(),
            "Message\nhi\nthere\nMessageId\nm\nTimestamp\n2012-05-02T00:54:06.655Z\nTopicArn\nt\nType\nNotification\n"
        );
        let c = message(br#"{"Type":"SubscriptionConfirmation","MessageId":"m","Token":"tok","TopicArn":"t","Message":"x","SubscribeURL":"https://s","Timestamp":"ts"}"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical(&c).unwrap()).unwrap(),
            "Message\nx\nMessageId\nm\nSubscribeURL\nhttps://s\nTimestamp\nts\nToken\ntok\nTopicArn\nt\nType\nSubscriptionConfirmation\n"
        );
        let missing = message(br#"{"Type":"SubscriptionConfirmation","MessageId":"m"}"#).unwrap();
        assert!(canonical(&missing).is_none());
        let other = message(br#"{"Type":"Other"}"#).unwrap();
        assert!(canonical(&other).is_none());
    }
}
