//! Public-key schemes: the provider signs `timestamp + body` (Discord: Ed25519, hex;
//! SendGrid: ECDSA P-256/SHA-256, base64 DER) or `id.timestamp.body` (Standard Webhooks
//! `v1a`: Ed25519, base64, in the `webhook-signature` list). hookwall holds only public
//! keys, so these schemes verify but cannot sign.

use http::HeaderName;

use super::hmac_scheme::{Encoding, TimestampUnit};
use super::{
    Key, KeyMaterial, SignedRequest, SignedTimestamp, Verdict, MAX_SIGNATURES,
    MAX_SIGNATURE_HEADER_LEN,
};

/// Which signed message layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `timestamp` immediately followed by the body (Discord, SendGrid).
    TimestampBody,
    /// `id.timestamp.body` (Standard Webhooks).
    IdTimestampBody,
}

/// How signatures sit in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carrier {
    /// The whole value is one signature.
    Whole,
    /// Space-separated `<version>,<sig>` entries; only this version is checked.
    Versioned(String),
}

/// An asymmetric scheme.
#[derive(Debug, Clone)]
pub struct AsymmetricScheme {
    /// Header with the signature(s).
    pub signature_header: HeaderName,
    /// How they sit in it.
    pub carrier: Carrier,
    /// Signature encoding.
    pub encoding: Encoding,
    /// Header with the timestamp (unix seconds).
    pub timestamp_header: HeaderName,
    /// Header with the id, for [`Layout::IdTimestampBody`].
    pub id_header: Option<HeaderName>,
    /// Message layout.
    pub layout: Layout,
}

impl AsymmetricScheme {
    fn signatures(&self, value: &[u8]) -> Vec<Vec<u8>> {
        match &self.carrier {
            Carrier::Whole => self
                .encoding
                .decode(value.trim_ascii())
                .into_iter()
                .collect(),
            Carrier::Versioned(version) => value
                .split(|b| *b == b' ')
                .take(4 * MAX_SIGNATURES)
                .filter_map(|entry| {
                    let comma = entry.iter().position(|b| *b == b',')?;
                    (&entry[..comma] == version.as_bytes())
                        .then(|| self.encoding.decode(&entry[comma + 1..]))?
                })
                .take(MAX_SIGNATURES)
                .collect(),
        }
    }

    /// Verifies with every public key.
    pub fn verify(&self, keys: &[Key], req: &SignedRequest<'_>) -> Verdict {
        let Some(value) = req.headers.get(&self.signature_header) else {
            return Verdict::Missing;
        };
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Verdict::Invalid;
        }
        let Some(ts) = req
            .headers
            .get(&self.timestamp_header)
            .map(|v| v.as_bytes())
        else {
            return Verdict::Missing;
        };
        let mut message = Vec::with_capacity(ts.len() + req.body.len() + 64);
        if self.layout == Layout::IdTimestampBody {
            let Some(id) = self.id_header.as_ref().and_then(|h| req.headers.get(h)) else {
                return Verdict::Missing;
            };
            message.extend_from_slice(id.as_bytes());
            message.push(b'.');
            message.extend_from_slice(ts);
            message.push(b'.');
        } else {
            message.extend_from_slice(ts);
        }
        message.extend_from_slice(req.body);
        let signatures = self.signatures(value.as_bytes());
        if signatures.is_empty() {
            // A versioned header without our version is someone else's scheme.
            return match self.carrier {
                Carrier::Whole => Verdict::Invalid,
                Carrier::Versioned(_) => Verdict::Missing,
            };
        }
        for key in keys {
            let ok = signatures.iter().any(|sig| match &key.material {
                KeyMaterial::Ed25519(pk) => ed25519_dalek::Signature::from_slice(sig)
                    .is_ok_and(|s| pk.verify_strict(&message, &s).is_ok()),
                KeyMaterial::P256(pk) => {
                    use p256::ecdsa::signature::Verifier as _;
                    p256::ecdsa::DerSignature::from_bytes(sig)
                        .is_ok_and(|s| pk.verify(&message, &s).is_ok())
                }
                _ => false,
            });
            if ok {
                let timestamp: SignedTimestamp = TimestampUnit::Seconds.parse(ts);
                return Verdict::Valid {
                    key: key.index,
                    timestamp,
                };
            }
        }
        Verdict::Invalid
    }
}
