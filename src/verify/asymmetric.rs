//! Public-key schemes: the provider signs `timestamp + body` (Discord: Ed25519, hex;
//! SendGrid: ECDSA P-256/SHA-256, base64 DER), `timestamp|body` (Telnyx: Ed25519, base64)
//! or `id.timestamp.body` (Standard Webhooks `v1a`: Ed25519, base64, in the
//! `webhook-signature` list). hookwall holds only public
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
    /// `timestamp|body` (Telnyx).
    TimestampPipeBody,
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
            if self.layout == Layout::TimestampPipeBody {
                message.push(b'|');
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;
    use http::{HeaderMap, HeaderValue, Method};

    fn scheme(layout: Layout) -> AsymmetricScheme {
        AsymmetricScheme {
            signature_header: HeaderName::from_static("x-sig"),
            carrier: Carrier::Whole,
            encoding: Encoding::Base64,
            timestamp_header: HeaderName::from_static("x-ts"),
            id_header: None,
            layout,
        }
    }

    #[test]
    fn timestamp_pipe_body_signs_a_bar_between_them() {
        use base64::Engine;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let key = Key {
            index: 0,
            label: "0".into(),
            material: KeyMaterial::Ed25519(Box::new(sk.verifying_key())),
        };
        let sign =
            |msg: &[u8]| base64::engine::general_purpose::STANDARD.encode(sk.sign(msg).to_bytes());
        let check = |layout: Layout, sig: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-sig", HeaderValue::from_str(sig).unwrap());
            h.insert("x-ts", HeaderValue::from_static("1700000000"));
            scheme(layout).verify(
                std::slice::from_ref(&key),
                &SignedRequest {
                    method: &Method::POST,
                    headers: &h,
                    body: b"{}",
                    url: None,
                },
            )
        };
        let piped = sign(b"1700000000|{}");
        assert_eq!(
            check(Layout::TimestampPipeBody, &piped),
            Verdict::Valid {
                key: 0,
                timestamp: SignedTimestamp::UnixMs(1_700_000_000_000)
            }
        );
        assert_eq!(check(Layout::TimestampBody, &piped), Verdict::Invalid);
        assert_eq!(
            check(Layout::TimestampPipeBody, &sign(b"1700000000{}")),
            Verdict::Invalid
        );
    }
}
