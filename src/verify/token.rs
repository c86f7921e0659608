//! Shared-token schemes: GitLab's `X-Gitlab-Token` (the secret itself, in clear) and
//! HTTP Basic credentials (Postmark). Compared in constant time; no timestamp.

use base64::Engine;
use http::HeaderName;

use super::{Key, KeyMaterial, SignError, SignedRequest, Verdict, MAX_SIGNATURE_HEADER_LEN};

/// How the token is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStyle {
    /// The header value is the token.
    Plain,
    /// `Authorization: Basic base64(user:pass)`; the secret is `user:pass`.
    Basic,
}

/// A token scheme.
#[derive(Debug, Clone)]
pub struct TokenScheme {
    /// Header carrying the token.
    pub header: HeaderName,
    /// How.
    pub style: TokenStyle,
}

impl TokenScheme {
    /// Compares the presented token with every configured one.
    pub fn verify(&self, keys: &[Key], req: &SignedRequest<'_>) -> Verdict {
        let Some(value) = req.headers.get(&self.header) else {
            return Verdict::Missing;
        };
        let value = value.as_bytes();
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Verdict::Invalid;
        }
        let presented = match self.style {
            TokenStyle::Plain => value.to_vec(),
            TokenStyle::Basic => {
                let Some(b64) = value.strip_prefix(b"Basic ") else {
                    return Verdict::Invalid;
                };
                match base64::engine::general_purpose::STANDARD.decode(b64.trim_ascii()) {
                    Ok(creds) => creds,
                    Err(_) => return Verdict::Invalid,
                }
            }
        };
        let mut found = None;
        for key in keys {
            if let KeyMaterial::Token(secret) = &key.material {
                if secret.matches(&presented) && found.is_none() {
                    found = Some(key.index);
                }
            }
        }
        match found {
            Some(key) => Verdict::Valid {
                key,
                timestamp: super::SignedTimestamp::None,
            },
            None => Verdict::Invalid,
        }
    }

    /// The header a provider would send.
    pub fn sign_headers(&self, key: &Key) -> Result<Vec<(HeaderName, String)>, SignError> {
        let KeyMaterial::Token(secret) = &key.material else {
            return Err(SignError::WrongKey("a token"));
        };
        let raw = String::from_utf8_lossy(secret.expose()).into_owned();
        let value = match self.style {
            TokenStyle::Plain => raw,
            TokenStyle::Basic => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ),
        };
        Ok(vec![(self.header.clone(), value)])
    }
}
