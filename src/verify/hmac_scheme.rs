//! The generic HMAC scheme (`[route.verify]`): one header carrying an optionally prefixed,
//! hex- or base64-encoded HMAC over a payload template.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use super::mac::{Algorithm, MAX_MAC_LEN};
use super::template::{Part, Template};
use super::{Key, SignedRequest, SignedTimestamp, Verdict, MAX_SIGNATURE_HEADER_LEN};

/// How the tag is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lower- or upper-case hex.
    Hex,
    /// Standard base64, padding optional.
    Base64,
}

impl Encoding {
    /// Parses the config spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hex" => Some(Encoding::Hex),
            "base64" => Some(Encoding::Base64),
            _ => None,
        }
    }

    /// Decodes a presented tag; `None` when it is not valid in this encoding or too long
    /// to be any MAC.
    fn decode(self, s: &[u8]) -> Option<Vec<u8>> {
        const BASE64: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        // Bound the work: no MAC is longer than 64 bytes, so no valid tag is longer than 128
        // hex / 88 base64 characters.
        if s.len() > 2 * MAX_MAC_LEN {
            return None;
        }
        match self {
            Encoding::Hex => hex::decode(s).ok(),
            Encoding::Base64 => BASE64.decode(s).ok(),
        }
    }

    /// Encodes a tag (for signing).
    pub fn encode(self, tag: &[u8]) -> String {
        match self {
            Encoding::Hex => hex::encode(tag),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(tag),
        }
    }
}

/// The generic scheme's settings, validated.
#[derive(Debug, Clone)]
pub struct HmacScheme {
    /// Hash behind the HMAC.
    pub algorithm: Algorithm,
    /// Header that carries the signature.
    pub header: HeaderName,
    /// Stripped from the header value before decoding (e.g. `sha256=`).
    pub prefix: String,
    /// Tag encoding.
    pub encoding: Encoding,
    /// What is signed.
    pub payload: Template,
    /// Header carrying unix seconds, if the scheme has a timestamp.
    pub timestamp_header: Option<HeaderName>,
    /// Header carrying the delivery id, if any.
    pub id_header: Option<HeaderName>,
}

/// The signed inputs taken from one request.
struct Inputs<'a> {
    timestamp: Option<&'a [u8]>,
    id: Option<&'a [u8]>,
}

fn header_bytes<'a>(headers: &'a HeaderMap, name: Option<&HeaderName>) -> Option<&'a [u8]> {
    name.and_then(|n| headers.get(n)).map(|v| v.as_bytes())
}

impl HmacScheme {
    /// Checks the request's signature against every key.
    pub fn verify(&self, keys: &[Key], req: &SignedRequest<'_>) -> Verdict {
        let Some(value) = req.headers.get(&self.header) else {
            return Verdict::Missing;
        };
        let value = value.as_bytes();
        if value.is_empty() {
            return Verdict::Missing;
        }
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Verdict::Invalid;
        }
        let inputs = Inputs {
            timestamp: header_bytes(req.headers, self.timestamp_header.as_ref()),
            id: header_bytes(req.headers, self.id_header.as_ref()),
        };
        let Some(payload) = self.payload_parts(&inputs, req) else {
            // A signed input is absent: the signature cannot be checked.
            return Verdict::Missing;
        };
        let Some(tag) = value
            .strip_prefix(self.prefix.as_bytes())
            .and_then(|v| self.encoding.decode(v.trim_ascii()))
        else {
            return Verdict::Invalid;
        };
        let slices: Vec<&[u8]> = payload.iter().map(|p| p.as_ref()).collect();
        for (index, key) in keys.iter().enumerate() {
            let expected = key.mac.compute(&slices);
            let expected = expected.as_bytes();
            if expected.len() == tag.len() && bool::from(expected.ct_eq(&tag)) {
                return Verdict::Valid {
                    key: index,
                    timestamp: parse_timestamp(inputs.timestamp),
                };
            }
        }
        Verdict::Invalid
    }

    /// The header value a provider would send for these inputs (for `hookwall sign`).
    pub fn sign(
        &self,
        key: &Key,
        body: &[u8],
        timestamp: Option<&str>,
        id: Option<&str>,
        url: Option<&str>,
    ) -> Option<String> {
        let headers = HeaderMap::new();
        let req = SignedRequest {
            headers: &headers,
            body,
            url,
        };
        let inputs = Inputs {
            timestamp: timestamp.map(str::as_bytes),
            id: id.map(str::as_bytes),
        };
        let payload = self.payload_parts(&inputs, &req)?;
        let slices: Vec<&[u8]> = payload.iter().map(|p| p.as_ref()).collect();
        let tag = key.mac.compute(&slices);
        Some(format!(
            "{}{}",
            self.prefix,
            self.encoding.encode(tag.as_bytes())
        ))
    }

    /// The payload as borrowed slices; `None` when a placeholder's input is absent.
    fn payload_parts<'a>(
        &'a self,
        inputs: &Inputs<'a>,
        req: &SignedRequest<'a>,
    ) -> Option<Vec<&'a [u8]>> {
        self.payload
            .parts()
            .iter()
            .map(|part| match part {
                Part::Literal(bytes) => Some(bytes.as_slice()),
                Part::Body => Some(req.body),
                Part::Timestamp => inputs.timestamp,
                Part::Id => inputs.id,
                Part::Url => req.url.map(str::as_bytes),
            })
            .collect()
    }
}

/// Unix seconds from a header value; anything else is `Malformed`.
fn parse_timestamp(raw: Option<&[u8]>) -> SignedTimestamp {
    match raw {
        None => SignedTimestamp::None,
        Some(raw) => std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map_or(SignedTimestamp::Malformed, SignedTimestamp::Unix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::PreparedMac;
    use http::HeaderValue;

    fn scheme(payload: &str, encoding: Encoding, prefix: &str) -> HmacScheme {
        HmacScheme {
            algorithm: Algorithm::Sha256,
            header: HeaderName::from_static("x-sig"),
            prefix: prefix.into(),
            encoding,
            payload: Template::parse(payload).unwrap(),
            timestamp_header: Some(HeaderName::from_static("x-ts")),
            id_header: Some(HeaderName::from_static("x-id")),
        }
    }

    fn key(secret: &str) -> Key {
        Key {
            label: "0".into(),
            mac: PreparedMac::new(Algorithm::Sha256, secret.as_bytes()),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let s = scheme("{id}.{timestamp}.{body}", Encoding::Base64, "v1,");
        let k = key("secret");
        let sig = s
            .sign(&k, b"{\"a\": 1}", Some("1700000000"), Some("msg_1"), None)
            .unwrap();
        let h = headers(&[("x-sig", &sig), ("x-ts", "1700000000"), ("x-id", "msg_1")]);
        let req = SignedRequest {
            headers: &h,
            body: b"{\"a\": 1}",
            url: None,
        };
        assert_eq!(
            s.verify(&[key("other"), k], &req),
            Verdict::Valid {
                key: 1,
                timestamp: SignedTimestamp::Unix(1_700_000_000)
            }
        );
    }

    #[test]
    fn known_hex_vector() {
        // HMAC-SHA256("secret", "hello") computed independently.
        let s = scheme("{body}", Encoding::Hex, "sha256=");
        let h = headers(&[(
            "x-sig",
            "sha256=88AAB3EDE8D3ADF94D26AB90D3BAFD4A2083070C3BCCE9C014EE04A443847C0B",
        )]);
        let req = SignedRequest {
            headers: &h,
            body: b"hello",
            url: None,
        };
        assert!(matches!(
            s.verify(&[key("secret")], &req),
            Verdict::Valid { key: 0, .. }
        ));
    }

    #[test]
    fn missing_and_malformed_headers() {
        let s = scheme("{timestamp}.{body}", Encoding::Hex, "");
        let k = [key("secret")];
        let none = headers(&[]);
        let req = SignedRequest {
            headers: &none,
            body: b"x",
            url: None,
        };
        assert_eq!(s.verify(&k, &req), Verdict::Missing);
        let no_ts = headers(&[("x-sig", "00")]);
        let req = SignedRequest {
            headers: &no_ts,
            body: b"x",
            url: None,
        };
        assert_eq!(s.verify(&k, &req), Verdict::Missing);
        for bad in ["zz", "0", "é", &"a".repeat(10_000)] {
            let h = headers(&[("x-sig", bad), ("x-ts", "1")]);
            let req = SignedRequest {
                headers: &h,
                body: b"x",
                url: None,
            };
            assert_eq!(s.verify(&k, &req), Verdict::Invalid, "{bad}");
        }
    }

    #[test]
    fn wrong_prefix_is_invalid() {
        let s = scheme("{body}", Encoding::Hex, "sha256=");
        let h = headers(&[("x-sig", "sha1=00")]);
        let req = SignedRequest {
            headers: &h,
            body: b"",
            url: None,
        };
        assert_eq!(s.verify(&[key("k")], &req), Verdict::Invalid);
    }
}
