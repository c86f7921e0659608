//! Twilio: base64 HMAC-SHA1 (key = Auth Token) over the URL Twilio called followed by
//! every POST parameter sorted by name, as `name + value` with no separators.
//!
//! JSON bodies are not parameters: Twilio puts `bodySHA256=<hex sha256(body)>` in the URL
//! query, signs the URL alone, and the body is checked against that hash. Twilio's signer
//! is inconsistent about default ports, so, like its SDK, the URL is also tried with the
//! port removed and with the default port added. (The SDK's fourth variant, legacy query
//! re-encoding, is not tried.)
//!
//! Accounts using Webhook Rules sign the same content with HMAC-SHA256 and a SharedKey,
//! saying so in `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256`:
//! the preset has one scheme per algorithm, and each checks only the requests that name
//! it (no settings header means HMAC-SHA1 with the Auth Token), as Twilio's SDKs do.

use http::HeaderName;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::hmac_scheme::Encoding;
use super::{
    Key, SignError, SignInput, SignedRequest, SignedTimestamp, Verdict, MAX_SIGNATURE_HEADER_LEN,
};

/// The header Twilio signs into.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Names the signing algorithm (and SharedKey) of a Webhook Rules signature.
pub const SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";

/// The Twilio scheme for one of its two algorithms.
#[derive(Debug, Clone, Default)]
pub struct TwilioScheme {
    /// HMAC-SHA256 (Webhook Rules) rather than the classic HMAC-SHA1.
    pub sha256: bool,
}

/// The `algorithm=` named by the settings header, upper-cased; `None` without one.
fn named_algorithm(req: &SignedRequest<'_>) -> Option<String> {
    let settings = req.headers.get(SETTINGS_HEADER)?.to_str().ok()?;
    settings.split(',').find_map(|field| {
        let (name, value) = field.split_once('=')?;
        let value = value.trim();
        (name.trim() == "algorithm" && !value.is_empty()).then(|| value.to_ascii_uppercase())
    })
}

/// `scheme://host[:port]/path?query` → the URL with the port removed and with the default
/// port added, besides the URL itself.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Ok(uri) = url.parse::<http::Uri>() else {
        return out;
    };
    let (Some(scheme), Some(auth)) = (uri.scheme_str(), uri.authority()) else {
        return out;
    };
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let host = auth.host();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    for v in [
        format!("{scheme}://{host}{pq}"),
        format!("{scheme}://{host}:{default_port}{pq}"),
    ] {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// `name+value` for every form parameter, sorted by name then value, duplicates dropped.
fn sorted_params(body: &[u8]) -> Vec<u8> {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    pairs.dedup();
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// The `bodySHA256` query value of a URL, if any.
fn body_sha256_param(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned())
}

/// The `bodySHA256=<hex>` query parameter Twilio adds to the URL it calls when the body
/// is JSON (for `hookwall sign`, which has a body but no Content-Type).
pub fn json_body_query(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
    Some(format!("bodySHA256={}", hex::encode(Sha256::digest(body))))
}

fn is_form(req: &SignedRequest<'_>) -> bool {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

impl TwilioScheme {
    /// Checks `X-Twilio-Signature`, if the request was signed with this scheme's algorithm.
    pub fn verify(&self, keys: &[Key], req: &SignedRequest<'_>) -> Verdict {
        let Some(value) = req.headers.get(SIGNATURE_HEADER) else {
            return Verdict::Missing;
        };
        match (named_algorithm(req).as_deref(), self.sha256) {
            (None | Some("HMAC_SHA1"), false) | (Some("HMAC_SHA256"), true) => {}
            // The other scheme's request.
            (None | Some("HMAC_SHA1"), true) | (Some("HMAC_SHA256"), false) => {
                return Verdict::Missing
            }
            // An algorithm Twilio's SDKs do not know fails, as there.
            (Some(_), _) => return Verdict::Invalid,
        }
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Verdict::Invalid;
        }
        let Some(tag) = Encoding::Base64.decode(value.as_bytes().trim_ascii()) else {
            return Verdict::Invalid;
        };
        let Some(url) = req.url else {
            return Verdict::Missing;
        };
        let params = match body_sha256_param(url) {
            Some(expected) => {
                // JSON body: the URL carries the body's hash, which must match.
                let actual = hex::encode(Sha256::digest(req.body));
                if !actual.eq_ignore_ascii_case(&expected) {
                    return Verdict::Invalid;
                }
                Vec::new()
            }
            None if is_form(req) => sorted_params(req.body),
            None => Vec::new(),
        };
        for variant in url_variants(url) {
            for key in keys {
                let Some(mac) = key.mac() else { continue };
                let expected = mac.compute(&[variant.as_bytes(), &params]);
                if expected.as_bytes().len() == tag.len()
                    && bool::from(expected.as_bytes().ct_eq(&tag))
                {
                    return Verdict::Valid {
                        key: key.index,
                        timestamp: SignedTimestamp::None,
                    };
                }
            }
        }
        Verdict::Invalid
    }

    /// `X-Twilio-Signature` for a form body (or a URL carrying `bodySHA256`).
    pub fn sign_headers(
        &self,
        key: &Key,
        input: &SignInput<'_>,
    ) -> Result<Vec<(HeaderName, String)>, SignError> {
        let mac = key.mac().ok_or(SignError::WrongKey("an HMAC key"))?;
        let url = input.url.ok_or(SignError::NeedsUrl)?;
        let params = if body_sha256_param(url).is_some() {
            Vec::new()
        } else {
            sorted_params(input.body)
        };
        let tag = mac.compute(&[url.as_bytes(), &params]);
        let mut headers = vec![(
            HeaderName::from_static(SIGNATURE_HEADER),
            Encoding::Base64.encode(tag.as_bytes()),
        )];
        if self.sha256 {
            let settings = format!("key={},algorithm=HMAC_SHA256", key.label);
            headers.push((HeaderName::from_static(SETTINGS_HEADER), settings));
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_cover_default_ports() {
        let v = url_variants("https://mycompany.com/myapp.php?foo=1&bar=2");
        assert!(v.contains(&"https://mycompany.com:443/myapp.php?foo=1&bar=2".to_owned()));
        let v = url_variants("https://mycompany.com:1234/myapp.php");
        assert!(v.contains(&"https://mycompany.com/myapp.php".to_owned()));
    }

    #[test]
    fn a_sha256_signature_names_its_algorithm_and_verifies() {
        use super::super::mac::{Algorithm, PreparedMac};
        use super::super::KeyMaterial;
        let key = Key {
            index: 0,
            label: "webhooks_sharedkey_1".into(),
            material: KeyMaterial::Mac(PreparedMac::new(Algorithm::Sha256, b"shared")),
        };
        let scheme = TwilioScheme { sha256: true };
        let url = "https://h.example/t?x=1";
        let input = SignInput {
            body: b"b=2&a=1",
            timestamp: 0,
            id: "",
            url: Some(url),
            method: &http::Method::POST,
        };
        let mut headers = http::HeaderMap::new();
        for (name, value) in scheme.sign_headers(&key, &input).unwrap() {
            headers.insert(name, value.parse().unwrap());
        }
        assert_eq!(
            headers[SETTINGS_HEADER],
            "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let req = SignedRequest {
            method: &http::Method::POST,
            headers: &headers,
            body: input.body,
            url: Some(url),
        };
        let keys = [key];
        assert!(matches!(scheme.verify(&keys, &req), Verdict::Valid { .. }));
        // The SHA-1 scheme leaves it to the scheme it names.
        let sha1 = TwilioScheme { sha256: false };
        assert_eq!(sha1.verify(&keys, &req), Verdict::Missing);
    }

    #[test]
    fn params_sorted_and_deduplicated() {
        assert_eq!(sorted_params(b"b=2&a=1&a=1&a=0"), b"a0a1b2".to_vec());
        assert_eq!(sorted_params(b"Caller=%2B1415"), b"Caller+1415".to_vec());
    }
}
