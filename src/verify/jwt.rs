//! Signed tokens (JWT / compact JWS) in a header: Netlify (HS256 with the shared secret,
//! `sha256` claim = the body's SHA-256), Plaid (ES256 with a key fetched by `kid`,
//! `request_body_sha256` claim), Google Pub/Sub push and Google Chat (RS256 with Google's
//! published keys, `iss`/`aud`/`email` claims).
//!
//! The signature itself is checked by `jsonwebtoken` (never by hand), with the algorithm
//! pinned by the preset: a token whose header names another algorithm is refused before any
//! key is tried, so an `HS256` token cannot be "verified" with an RSA public key, nor an
//! `alg: none` one at all. Claims are then checked here: issuer, audience, the service
//! account email (with `email_verified`), and the body digest in constant time. Times are
//! *not* compared with the clock here: `iat`/`exp` are handed to the timestamp layer as the
//! signed timestamp, which owns the clock and the window (and reports
//! `timestamp_out_of_window`).

use std::sync::Arc;

use http::HeaderName;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::fetched_keys::{KeySource, PublicKey};
use super::{Key, KeyMaterial, SignedRequest, SignedTimestamp, Verdict, MAX_SIGNATURE_HEADER_LEN};

/// How the token sits in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The whole value is the token.
    Whole,
}

/// Which keys verify the token.
#[derive(Debug, Clone)]
pub enum JwtKeys {
    /// The route's secrets, as HMAC keys (Netlify).
    Secrets,
    /// Keys fetched from the provider, by the token's `kid`.
    Fetched(Arc<KeySource>),
    /// Fetched keys from this kind of source, before the route's config says exactly
    /// where (the preset table holds this; a compiled route never does).
    Pending(PendingSource),
}

/// Where a preset's keys are published, before a route fills in the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingSource {
    /// Google's OAuth2 JWKS (Pub/Sub push tokens).
    GoogleCerts,
    /// The Google Chat service account's X.509 certificates.
    ChatCertificates,
    /// Plaid's `/webhook_verification_key/get`.
    Plaid,
}

/// Which signed times bound the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtTime {
    /// None (Netlify signs no time).
    None,
    /// `iat`, windowed by the route's tolerance (Plaid: 5 minutes).
    IssuedAt,
    /// `iat` and `exp` (Google): the token is good from issue until it expires.
    IssuedUntilExpiry,
}

/// A token scheme.
#[derive(Debug, Clone)]
pub struct JwtScheme {
    /// The header carrying the token.
    pub header: HeaderName,
    /// How it is carried.
    pub carrier: Carrier,
    /// The one algorithm accepted.
    pub algorithm: Algorithm,
    /// Where keys come from.
    pub keys: JwtKeys,
    /// Accepted `iss` values (any one); empty = not checked.
    pub issuers: Vec<String>,
    /// Required `aud`, if any.
    pub audience: Option<String>,
    /// Required `email` (with `email_verified: true`), if any.
    pub email: Option<String>,
    /// Claim holding the hex SHA-256 of the body, if the token covers the body.
    pub body_sha256_claim: Option<&'static str>,
    /// Signed times.
    pub time: JwtTime,
}

impl JwtScheme {
    /// The token in the request, if present and of a sane size.
    pub fn token<'a>(&self, req: &SignedRequest<'a>) -> Option<&'a str> {
        let value = req.headers.get(&self.header)?.to_str().ok()?;
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return None;
        }
        match self.carrier {
            Carrier::Whole => Some(value.trim()),
            Carrier::Bearer => {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            }
        }
    }

    /// The `kid` a token names, for the key layer: only for fetched keys, and only when
    /// the token's header is well formed and names the preset's algorithm (a token that
    /// will be refused anyway must not cause a fetch).
    pub fn wanted_kid(&self, req: &SignedRequest<'_>) -> Option<(Arc<KeySource>, String)> {
        let JwtKeys::Fetched(source) = &self.keys else {
            return None;
        };
        let header = jsonwebtoken::decode_header(self.token(req)?).ok()?;
        if header.alg != self.algorithm {
            return None;
        }
        let kid = header.kid.filter(|k| !k.is_empty() && k.len() <= 256)?;
        Some((source.clone(), kid))
    }

    /// Verifies with the route's keys or the cached fetched key.
    pub fn verify(&self, keys: &[Key], req: &SignedRequest<'_>) -> Verdict {
        if !req.headers.contains_key(&self.header) {
            return Verdict::Missing;
        }
        let Some(token) = self.token(req) else {
            return Verdict::Invalid;
        };
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Verdict::Invalid;
        };
        if header.alg != self.algorithm {
            return Verdict::Invalid;
        }
        let mut validation = Validation::new(self.algorithm);
        // Claims and times are checked below (times by the timestamp layer, on its clock).
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let decode = |key: &DecodingKey| {
            jsonwebtoken::decode::<Value>(token, key, &validation)
                .ok()
                .map(|t| t.claims)
        };
        let (index, claims) = match &self.keys {
            JwtKeys::Secrets => {
                let found = keys.iter().find_map(|k| match &k.material {
                    KeyMaterial::Token(secret) => {
                        decode(&DecodingKey::from_secret(secret.expose())).map(|c| (k.index, c))
                    }
                    _ => None,
                });
                match found {
                    Some(found) => found,
                    None => return Verdict::Invalid,
                }
            }
            JwtKeys::Fetched(source) => {
                let Some(kid) = header.kid.as_deref() else {
                    return Verdict::Invalid;
                };
                let claims = source.get(kid).and_then(|key| match &*key {
                    PublicKey::Jwt(k) => decode(k),
                    PublicKey::Rsa(_) => None,
                });
                match claims {
                    Some(c) => (0, c),
                    None => return Verdict::Invalid,
                }
            }
            JwtKeys::Pending(_) => return Verdict::Invalid,
        };
        if !self.claims_hold(&claims, req.body) {
            return Verdict::Invalid;
        }
        let secs = |name: &str| claims.get(name).and_then(Value::as_i64);
        let timestamp = match self.time {
            JwtTime::None => SignedTimestamp::None,
            JwtTime::IssuedAt => match secs("iat") {
                Some(iat) => SignedTimestamp::UnixMs(iat.saturating_mul(1000)),
                None => SignedTimestamp::Malformed,
            },
            JwtTime::IssuedUntilExpiry => match (secs("iat"), secs("exp")) {
                (Some(iat), Some(exp)) if exp >= iat => SignedTimestamp::Validity {
                    issued_ms: iat.saturating_mul(1000),
                    expires_ms: exp.saturating_mul(1000),
                },
                _ => SignedTimestamp::Malformed,
            },
        };
        Verdict::Valid {
            key: index,
            timestamp,
        }
    }

    /// The header a provider would send (shared-secret tokens only): the preset's issuer
    /// and the body digest, signed with `key`.
    pub fn sign_headers(
        &self,
        key: &Key,
        input: &super::SignInput<'_>,
    ) -> Result<Vec<(HeaderName, String)>, super::SignError> {
        let KeyMaterial::Token(secret) = &key.material else {
            return Err(super::SignError::WrongKey("a JWS secret"));
        };
        let mut claims = serde_json::Map::new();
        if let Some(iss) = self.issuers.first() {
            claims.insert("iss".into(), Value::from(iss.as_str()));
        }
        if let Some(c) = self.body_sha256_claim {
            claims.insert(
                c.into(),
                Value::from(hex::encode(Sha256::digest(input.body))),
            );
        }
        if self.time != JwtTime::None {
            claims.insert("iat".into(), Value::from(input.timestamp));
        }
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(self.algorithm),
            &Value::Object(claims),
            &jsonwebtoken::EncodingKey::from_secret(secret.expose()),
        )
        .map_err(|_| super::SignError::WrongKey("a JWS secret"))?;
        let value = match self.carrier {
            Carrier::Whole => token,
            Carrier::Bearer => format!("Bearer {token}"),
        };
        Ok(vec![(self.header.clone(), value)])
    }

    fn claims_hold(&self, claims: &Value, body: &[u8]) -> bool {
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if !self.issuers.is_empty()
            && !text("iss").is_some_and(|iss| self.issuers.iter().any(|i| i == iss))
        {
            return false;
        }
        if let Some(want) = &self.audience {
            let aud_ok = match claims.get("aud") {
                Some(Value::String(a)) => a == want,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(want)),
                _ => false,
            };
            if !aud_ok {
                return false;
            }
        }
        if let Some(want) = &self.email {
            let verified = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
            if !verified || text("email") != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(claim) = self.body_sha256_claim {
            let digest = hex::encode(Sha256::digest(body));
            let Some(presented) = text(claim) else {
                return false;
            };
            // Hex case does not change the digest.
            let presented = presented.to_ascii_lowercase();
            if !bool::from(presented.as_bytes().ct_eq(digest.as_bytes())) {
                return false;
            }
        }
        true
    }
}
