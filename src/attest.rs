//! Attestation (CONTRACT §12): hookwall signs what it sends upstream with Standard Webhooks
//! headers, so the app verifies one scheme, with the official `standardwebhooks` libraries,
//! whatever the provider, and refuses a request that did not come through hookwall.
//!
//! Config: `attest = { secret = { env = "HOOKWALL_ATTEST_KEY" }, previous = [...] }` on a
//! route, or in `[server]` for every route without its own. Secrets are written as Standard
//! Webhooks writes them: `whsec_` + base64 of the key bytes.
//!
//! Every forwarded delivery, replay and queued attempt gets
//! - `webhook-id`: the delivery id (dedup id), else the request id;
//! - `webhook-timestamp`: now, in Unix seconds;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, one
//!   space-separated signature per key, current key first. The libraries accept a request
//!   when any listed signature matches, so during a rotation an app holding either the new or
//!   the old key verifies.
//!
//! A Standard Webhooks provider sends headers with these same names; hookwall's must win
//! for the app to verify them, so the provider's go upstream as
//! `X-Hookwall-Provider-Webhook-{Id,Timestamp,Signature}` instead (see `forward.rs`).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::HeaderName;

use crate::clock::Clock;
use crate::verify::mac::PreparedMac;

/// `webhook-id`.
pub(crate) const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
/// `webhook-timestamp`.
pub(crate) const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
/// `webhook-signature`.
pub(crate) const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// The signing keys of one `attest` table, current first: compiled once per config load.
#[derive(Debug, Clone)]
pub struct AttestKeys {
    keys: Vec<PreparedMac>,
}

impl AttestKeys {
    /// Keys already decoded from their `whsec_` form (HMAC-SHA256). `keys` is not empty
    /// (config compile requires `secret`).
    pub fn new(keys: Vec<PreparedMac>) -> Self {
        AttestKeys { keys }
    }

    /// How many keys sign (2 during a rotation).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none (never, after config compile).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `webhook-signature` value for one message: `v1,<b64>` per key, space-separated.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let ts = timestamp.to_string();
        let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
        let mut out = String::with_capacity(48 * self.keys.len());
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str("v1,");
            STANDARD.encode_string(key.compute(&parts).as_bytes(), &mut out);
        }
        out
    }
}

/// A route's attestation: its keys and the clock `webhook-timestamp` is read from.
#[derive(Debug, Clone)]
pub(crate) struct Attestor {
    keys: Arc<AttestKeys>,
    clock: Arc<dyn Clock>,
}

/// The three headers of one attested message.
#[derive(Debug)]
pub(crate) struct Attested {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

impl Attestor {
    pub(crate) fn new(keys: Arc<AttestKeys>, clock: Arc<dyn Clock>) -> Self {
        Attestor { keys, clock }
    }

    /// Signs `body` as message `id`, sent now.
    pub(crate) fn attest(&self, id: &str, body: &[u8]) -> Attested {
        let timestamp = self.clock.unix_now().floor() as i64;
        Attested {
            id: id.to_owned(),
            timestamp,
            signature: self.keys.signature(id, timestamp, body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::verify::keys::{material, KeyFormat};
    use crate::verify::mac::Algorithm;
    use crate::verify::KeyMaterial;

    fn keys(secrets: &[&str]) -> AttestKeys {
        AttestKeys::new(
            secrets
                .iter()
                .map(|s| {
                    match material(KeyFormat::WhsecBase64, Algorithm::Sha256, &Secret::new(*s)) {
                        Ok(KeyMaterial::Mac(m)) => m,
                        other => panic!("not a MAC key: {other:?}"),
                    }
                })
                .collect(),
        )
    }

    // Frozen with the official Python library (standardwebhooks 1.1.0):
    //   Webhook(KEY).sign("req-0001", datetime.fromtimestamp(1800000000, utc), BODY)
    const CURRENT: &str = "whsec_aG9va3dhbGwtYXR0ZXN0LWN1cnJlbnQta2V5LTAwMDE=";
    const PREVIOUS: &str = "whsec_aG9va3dhbGwtYXR0ZXN0LXByZXZpb3VzLWtleS0wMDI=";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    const CURRENT_SIG: &str = "v1,EY87NzTuTHDQ0Q+lQkMn2pvSAUoH87kOeWpD9ivH8TU=";
    const PREVIOUS_SIG: &str = "v1,o+1i5m3VPy7UfMahDEFGU22BnYhCL5HRlCopT5v62Sk=";

    #[test]
    fn signature_matches_the_official_library() {
        let sig = keys(&[CURRENT]).signature("req-0001", 1_800_000_000, BODY);
        assert_eq!(sig, CURRENT_SIG);
    }

    #[test]
    fn rotation_signs_with_every_key_current_first() {
        let sig = keys(&[CURRENT, PREVIOUS]).signature("req-0001", 1_800_000_000, BODY);
        assert_eq!(sig, format!("{CURRENT_SIG} {PREVIOUS_SIG}"));
    }

    #[test]
    fn id_timestamp_and_body_are_all_covered() {
        let k = keys(&[CURRENT]);
        assert_ne!(k.signature("req-0002", 1_800_000_000, BODY), CURRENT_SIG);
        assert_ne!(k.signature("req-0001", 1_800_000_001, BODY), CURRENT_SIG);
        assert_ne!(k.signature("req-0001", 1_800_000_000, b"{}"), CURRENT_SIG);
    }

    #[test]
    fn timestamp_is_the_clock_in_whole_seconds() {
        let clock = Arc::new(crate::clock::FakeClock::at(1_800_000_000));
        let a = Attestor::new(Arc::new(keys(&[CURRENT])), clock).attest("req-0001", BODY);
        assert_eq!(a.timestamp, 1_800_000_000);
        assert_eq!(a.signature, CURRENT_SIG);
    }
}
