//! Configured secrets → key material, per the provider's secret format.
//!
//! Same prefix, different rules (providers.md §1): Stripe's `whsec_…` is used verbatim,
//! Standard Webhooks' `whsec_…` is prefix-stripped and base64-decoded. A secret in the
//! wrong form for its preset is a `check` error naming the route, never a silent mismatch.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::mac::{Algorithm, PreparedMac};
use super::KeyMaterial;
use crate::secret::Secret;

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How a preset reads its secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// The secret's bytes are the HMAC key as they are.
    Raw,
    /// `whsec_` + base64 (Standard Webhooks / Svix): the decoded bytes are the key.
    WhsecBase64,
    /// WooCommerce: HTML special characters decoded first (`wp_specialchars_decode`).
    HtmlEntities,
    /// An Ed25519 public key in hex (Discord).
    Ed25519Hex,
    /// `whpk_` + base64 Ed25519 public key (Standard Webhooks `v1a`).
    WhpkBase64,
    /// An Ed25519 public key in standard base64 (Telnyx).
    Ed25519Base64,
    /// A base64 DER SubjectPublicKeyInfo P-256 key (SendGrid).
    P256Der,
    /// Compared whole (GitLab token, Basic credentials).
    Token,
    /// Base64 text whose decoded bytes are the HMAC key (Microsoft Teams' security token).
    Base64Key,
    /// The shared secret a JWS/JWT is signed with (HS256), used as it is.
    JwtSecret,
}

/// Why a secret cannot be the key its preset needs (never showing the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not text, where text is needed.
    #[error("is not valid UTF-8")]
    NotUtf8,
    /// Not `whsec_` + base64.
    #[error("must be \"whsec_\" followed by base64 (the signing secret as shown by the provider)")]
    NotWhsec,
    /// Decodes to nothing.
    #[error("decodes to an empty key")]
    Empty,
    /// Not a hex public key.
    #[error("must be the application's public key in hex")]
    NotHexPublicKey,
    /// Not a base64 public key.
    #[error("must be the provider's Ed25519 public key in base64")]
    NotBase64PublicKey,
    /// Not `whpk_` + base64.
    #[error("must be \"whpk_\" followed by base64 (an Ed25519 public key)")]
    NotWhpk,
    /// `whpk_` followed by something that is not base64.
    #[error("whpk_ key is not valid base64")]
    WhpkNotBase64,
    /// Not base64 DER.
    #[error("must be the verification key as shown by the provider (base64 DER)")]
    NotBase64Der,
    /// Base64 DER, but not a P-256 key.
    #[error("is not a P-256 public key (base64 DER SubjectPublicKeyInfo)")]
    NotP256,
    /// The wrong length for Ed25519.
    #[error("an Ed25519 public key is 32 bytes, this one is {0}")]
    Ed25519Length(usize),
    /// 32 bytes, but not a point on the curve.
    #[error("is not a valid Ed25519 public key")]
    NotEd25519,
    /// Not base64.
    #[error("must be the security token as the provider shows it (base64)")]
    NotBase64Key,
}

/// Key material for `secret` in `format`, or why it cannot be one.
pub fn material(
    format: KeyFormat,
    algorithm: Algorithm,
    secret: &Secret,
) -> Result<KeyMaterial, KeyError> {
    let bytes = secret.expose();
    let text = || {
        std::str::from_utf8(bytes)
            .map(str::trim)
            .map_err(|_| KeyError::NotUtf8)
    };
    match format {
        KeyFormat::Raw => Ok(KeyMaterial::Mac(PreparedMac::new(algorithm, bytes))),
        KeyFormat::WhsecBase64 => {
            let t = text()?;
            let b64 = t.strip_prefix("whsec_").unwrap_or(t);
            let key = BASE64.decode(b64).map_err(|_| KeyError::NotWhsec)?;
            if key.is_empty() {
                return Err(KeyError::Empty);
            }
            Ok(KeyMaterial::Mac(PreparedMac::new(algorithm, &key)))
        }
        KeyFormat::HtmlEntities => {
            let decoded = html_specialchars_decode(&String::from_utf8_lossy(bytes));
            Ok(KeyMaterial::Mac(PreparedMac::new(
                algorithm,
                decoded.as_bytes(),
            )))
        }
        KeyFormat::Ed25519Hex => {
            let raw = hex::decode(text()?).map_err(|_| KeyError::NotHexPublicKey)?;
            ed25519(&raw)
        }
        KeyFormat::WhpkBase64 => {
            let t = text()?;
            let b64 = t.strip_prefix("whpk_").ok_or(KeyError::NotWhpk)?;
            let raw = BASE64.decode(b64).map_err(|_| KeyError::WhpkNotBase64)?;
            ed25519(&raw)
        }
        KeyFormat::Ed25519Base64 => {
            let raw = BASE64
                .decode(text()?)
                .map_err(|_| KeyError::NotBase64PublicKey)?;
            ed25519(&raw)
        }
        KeyFormat::P256Der => {
            use p256::pkcs8::DecodePublicKey;
            let t = text()?;
            let der = BASE64.decode(t).map_err(|_| KeyError::NotBase64Der)?;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(&der)
                .map_err(|_| KeyError::NotP256)?;
            Ok(KeyMaterial::P256(Box::new(key)))
        }
        KeyFormat::Token | KeyFormat::JwtSecret => Ok(KeyMaterial::Token(secret.clone())),
        KeyFormat::Base64Key => {
            let key = BASE64.decode(text()?).map_err(|_| KeyError::NotBase64Key)?;
            if key.is_empty() {
                return Err(KeyError::Empty);
            }
            Ok(KeyMaterial::Mac(PreparedMac::new(algorithm, &key)))
        }
    }
}

fn ed25519(raw: &[u8]) -> Result<KeyMaterial, KeyError> {
    let arr: [u8; 32] = raw
        .try_into()
        .map_err(|_| KeyError::Ed25519Length(raw.len()))?;
    ed25519_dalek::VerifyingKey::from_bytes(&arr)
        .map(|k| KeyMaterial::Ed25519(Box::new(k)))
        .map_err(|_| KeyError::NotEd25519)
}

/// PHP's `wp_specialchars_decode($s, ENT_QUOTES)`: the five special characters only.
fn html_specialchars_decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#039;", "'")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_is_base64_decoded_and_checked() {
        let ok = material(
            KeyFormat::WhsecBase64,
            Algorithm::Sha256,
            &Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        );
        assert!(ok.is_ok());
        let bad = material(
            KeyFormat::WhsecBase64,
            Algorithm::Sha256,
            &Secret::new("whsec_not base64!"),
        );
        assert_eq!(bad.unwrap_err(), KeyError::NotWhsec);
    }

    #[test]
    fn html_entities() {
        assert_eq!(
            html_specialchars_decode("a&amp;b&#039;c&quot;&lt;&gt;"),
            "a&b'c\"<>"
        );
        assert_eq!(html_specialchars_decode("&amp;lt;"), "&lt;");
    }

    #[test]
    fn public_keys_are_validated() {
        let discord = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
        assert!(material(
            KeyFormat::Ed25519Hex,
            Algorithm::Sha256,
            &Secret::new(discord)
        )
        .is_ok());
        assert!(material(
            KeyFormat::Ed25519Hex,
            Algorithm::Sha256,
            &Secret::new("abcd")
        )
        .is_err());
        let sendgrid = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
        assert!(material(
            KeyFormat::P256Der,
            Algorithm::Sha256,
            &Secret::new(sendgrid)
        )
        .is_ok());
        assert!(material(
            KeyFormat::P256Der,
            Algorithm::Sha256,
            &Secret::new("aGVsbG8=")
        )
        .is_err());
        // The Discord key above in base64 (the form Telnyx shows its key in).
        let b64 = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
        assert!(material(
            KeyFormat::Ed25519Base64,
            Algorithm::Sha256,
            &Secret::new(b64)
        )
        .is_ok());
        assert!(material(
            KeyFormat::Ed25519Base64,
            Algorithm::Sha256,
            &Secret::new(discord)
        )
        .unwrap_err()
        .to_string()
        .contains("32 bytes"));
        assert!(material(
            KeyFormat::WhpkBase64,
            Algorithm::Sha256,
            &Secret::new("whsec_abc")
        )
        .is_err());
    }
}
