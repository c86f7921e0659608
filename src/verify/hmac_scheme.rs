//! The HMAC family: a header carrying one or more encoded HMACs over a payload template.
//!
//! Covers the generic `[route.verify]` scheme and most presets. What varies between
//! providers is captured by [`SigFormat`] (how tags sit in the header), [`Encoding`],
//! the payload [`Template`] and an optional [`TimestampSource`].

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use super::mac::{Algorithm, MAX_MAC_LEN};
use super::template::{Part, Template};
use super::{
    Key, SignError, SignInput, SignedRequest, SignedTimestamp, Verdict, MAX_SIGNATURES,
    MAX_SIGNATURE_HEADER_LEN,
};

/// Standard base64 that accepts missing padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe base64 (RFC 4648 §5) that accepts missing padding.
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How the tag is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Hex, either case.
    Hex,
    /// Standard base64, padding optional.
    Base64,
    /// URL-safe base64 (`-` and `_`), padding optional; written unpadded (Sanity).
    Base64Url,
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

    /// Decodes a presented tag; `None` when invalid or too long to be any signature.
    pub fn decode(self, s: &[u8]) -> Option<Vec<u8>> {
        // No MAC is over 64 bytes and no signature we check over 72 (DER ECDSA): bound the
        // work before decoding.
        if s.len() > 2 * MAX_MAC_LEN + 16 {
            return None;
        }
        match self {
            Encoding::Hex => hex::decode(s).ok(),
            Encoding::Base64 => BASE64.decode(s).ok(),
            Encoding::Base64Url => BASE64_URL.decode(s).ok(),
        }
    }

    /// Encodes a tag (for signing).
    pub fn encode(self, tag: &[u8]) -> String {
        match self {
            Encoding::Hex => hex::encode(tag),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(tag),
            Encoding::Base64Url => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag),
        }
    }
}

/// How signatures sit in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigFormat {
    /// The whole value, after this prefix, is one tag (`sha256=<hex>`; empty prefix = bare).
    Prefixed(String),
    /// `key=value` items split on `sep`; every item named `sig` is a candidate tag and the
    /// item named `ts` (if any) is the signed timestamp (Stripe `t=..,v1=..`, Paddle
    /// `ts=..;h1=..`, PagerDuty `v1=..,v1=..`).
    Fields {
        /// Item separator (ASCII).
        sep: u8,
        /// Name of the signature items.
        sig: String,
        /// Name of the timestamp item.
        ts: Option<String>,
    },
    /// Space-separated `<version>,<tag>` entries; only `version` is checked (Standard
    /// Webhooks `v1,<b64> v1a,<b64>`).
    Versioned(String),
}

/// Where a signed timestamp comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampFrom {
    /// Its own header.
    Header(HeaderName),
    /// The `ts` item of a [`SigFormat::Fields`] header.
    SigField,
    /// A field of the (signed) JSON body, else a header (Linear `webhookTimestamp`).
    JsonField(String, Option<HeaderName>),
}

/// How a timestamp is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUnit {
    /// Unix seconds.
    Seconds,
    /// Unix milliseconds.
    Millis,
    /// RFC 3339 (`2019-11-16T10:11:12.634234626Z`).
    Rfc3339,
}

/// A scheme's timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampSource {
    /// Where it is.
    pub from: TimestampFrom,
    /// How it is written.
    pub unit: TimestampUnit,
}

/// RFC 3339 in unix milliseconds. humantime reads UTC (`Z`) only, so a numeric offset
/// (`2020-01-01T00:00:00-07:00`, as Box sends) is taken off here and applied.
fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (utc, offset_secs) = match b.len().checked_sub(6).map(|i| (i, &b[i..])) {
        Some((i, [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]))
            if [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
                && s[..i].contains(['T', 't', ' ']) =>
        {
            let digit = |d: &u8| i64::from(d - b'0');
            let secs = (digit(h1) * 10 + digit(h2)) * 3600 + (digit(m1) * 10 + digit(m2)) * 60;
            (&s[..i], if *sign == b'+' { secs } else { -secs })
        }
        _ => (s, 0),
    };
    let t = humantime::parse_rfc3339_weak(utc).ok()?;
    let ms = i64::try_from(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()?;
    // Local time minus the offset is UTC.
    ms.checked_sub(offset_secs * 1000)
}

impl TimestampUnit {
    /// Parses a raw timestamp into unix milliseconds.
    pub fn parse(self, raw: &[u8]) -> SignedTimestamp {
        let Ok(s) = std::str::from_utf8(raw) else {
            return SignedTimestamp::Malformed;
        };
        let s = s.trim();
        let ms = match self {
            TimestampUnit::Seconds => s.parse::<i64>().ok().and_then(|v| v.checked_mul(1000)),
            TimestampUnit::Millis => s.parse::<i64>().ok(),
            TimestampUnit::Rfc3339 => rfc3339_ms(s),
        };
        ms.map_or(SignedTimestamp::Malformed, SignedTimestamp::UnixMs)
    }

    /// Writes unix seconds in this unit (for signing).
    pub fn format(self, unix: i64) -> String {
        match self {
            TimestampUnit::Seconds => unix.to_string(),
            TimestampUnit::Millis => (unix.saturating_mul(1000)).to_string(),
            TimestampUnit::Rfc3339 => {
                // RFC 3339 stops at year 9999; clamp rather than fail (found by fuzzing).
                const LAST_RFC3339_SECOND: i64 = 253_402_300_799;
                let secs = unix.clamp(0, LAST_RFC3339_SECOND) as u64;
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
                humantime::format_rfc3339_nanos(t).to_string()
            }
        }
    }
}

/// One HMAC scheme, validated.
#[derive(Debug, Clone)]
pub struct HmacScheme {
    /// Hash behind the HMAC.
    pub algorithm: Algorithm,
    /// Header that carries the signature(s).
    pub header: HeaderName,
    /// How tags sit in it.
    pub format: SigFormat,
    /// Tag encoding.
    pub encoding: Encoding,
    /// What is signed.
    pub payload: Template,
    /// The signed timestamp, if the scheme has one.
    pub timestamp: Option<TimestampSource>,
    /// Header carrying the delivery id (`{id}` in the payload), if any.
    pub id_header: Option<HeaderName>,
}

fn header_bytes<'a>(headers: &'a HeaderMap, name: Option<&HeaderName>) -> Option<&'a [u8]> {
    name.and_then(|n| headers.get(n)).map(|v| v.as_bytes())
}

/// The tags and header-borne timestamp found in a signature header.
struct Presented<'a> {
    tags: Vec<Vec<u8>>,
    ts: Option<&'a [u8]>,
}

impl HmacScheme {
    /// Splits the header into candidate tags (at most [`MAX_SIGNATURES`]).
    fn presented<'a>(&self, value: &'a [u8]) -> Presented<'a> {
        let mut out = Presented {
            tags: Vec::new(),
            ts: None,
        };
        match &self.format {
            SigFormat::Prefixed(prefix) => {
                if let Some(tag) = value
                    .strip_prefix(prefix.as_bytes())
                    .and_then(|v| self.encoding.decode(v.trim_ascii()))
                {
                    out.tags.push(tag);
                }
            }
            SigFormat::Fields { sep, sig, ts } => {
                for item in value.split(|b| b == sep).take(4 * MAX_SIGNATURES) {
                    let item = item.trim_ascii();
                    let Some(eq) = item.iter().position(|b| *b == b'=') else {
                        continue;
                    };
                    let (k, v) = (&item[..eq], &item[eq + 1..]);
                    if ts.as_deref().is_some_and(|t| t.as_bytes() == k) {
                        out.ts = Some(v);
                    } else if k == sig.as_bytes() && out.tags.len() < MAX_SIGNATURES {
                        if let Some(tag) = self.encoding.decode(v) {
                            out.tags.push(tag);
                        }
                    }
                }
            }
            SigFormat::Versioned(version) => {
                for entry in value.split(|b| *b == b' ').take(4 * MAX_SIGNATURES) {
                    let Some(comma) = entry.iter().position(|b| *b == b',') else {
                        continue;
                    };
                    if &entry[..comma] == version.as_bytes() && out.tags.len() < MAX_SIGNATURES {
                        if let Some(tag) = self.encoding.decode(&entry[comma + 1..]) {
                            out.tags.push(tag);
                        }
                    }
                }
            }
        }
        out
    }

    /// The raw timestamp as signed, from wherever the scheme keeps it.
    fn raw_timestamp<'a>(
        &self,
        req: &SignedRequest<'a>,
        from_sig: Option<&'a [u8]>,
    ) -> Option<&'a [u8]> {
        match &self.timestamp.as_ref()?.from {
            TimestampFrom::Header(h) => header_bytes(req.headers, Some(h)),
            TimestampFrom::SigField => from_sig,
            TimestampFrom::JsonField(..) => None,
        }
    }

    /// The authenticated timestamp of a request whose signature verified.
    fn signed_timestamp(&self, req: &SignedRequest<'_>, raw: Option<&[u8]>) -> SignedTimestamp {
        let Some(source) = &self.timestamp else {
            return SignedTimestamp::None;
        };
        if let TimestampFrom::JsonField(pointer, fallback) = &source.from {
            // The body is signed, so a timestamp inside it is authentic.
            let from_body = serde_json::from_slice::<serde_json::Value>(req.body)
                .ok()
                .and_then(|v| v.pointer(pointer).map(|t| t.to_string()));
            return match (from_body, header_bytes(req.headers, fallback.as_ref())) {
                (Some(t), _) => source.unit.parse(t.trim_matches('"').as_bytes()),
                (None, Some(h)) => source.unit.parse(h),
                (None, None) => SignedTimestamp::Malformed,
            };
        }
        raw.map_or(SignedTimestamp::Malformed, |r| source.unit.parse(r))
    }

    /// Checks the request's signature(s) against every key.
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
        let presented = self.presented(value);
        let ts = self.raw_timestamp(req, presented.ts);
        let id = header_bytes(req.headers, self.id_header.as_ref());
        let Some(payload) = self.payload_parts(req, ts, id) else {
            // A signed input is absent: the signature cannot be checked.
            return Verdict::Missing;
        };
        if presented.tags.is_empty() {
            return Verdict::Invalid;
        }
        for key in keys {
            let Some(mac) = key.mac() else { continue };
            let expected = mac.compute(&payload);
            let expected = expected.as_bytes();
            // Every tag is compared, in constant time each.
            let matched = presented.tags.iter().fold(false, |acc, tag| {
                acc | (expected.len() == tag.len() && bool::from(expected.ct_eq(tag)))
            });
            if matched {
                return Verdict::Valid {
                    key: key.index,
                    timestamp: self.signed_timestamp(req, ts),
                };
            }
        }
        Verdict::Invalid
    }

    /// The signed payload as borrowed slices; `None` when a placeholder's input is absent.
    fn payload_parts<'a>(
        &'a self,
        req: &SignedRequest<'a>,
        ts: Option<&'a [u8]>,
        id: Option<&'a [u8]>,
    ) -> Option<Vec<&'a [u8]>> {
        self.payload
            .parts()
            .iter()
            .map(|part| match part {
                Part::Literal(bytes) => Some(bytes.as_slice()),
                Part::Body => Some(req.body),
                Part::Timestamp => ts,
                Part::Id => id,
                Part::Url => req.url.map(str::as_bytes),
                Part::Method => Some(req.method.as_str().as_bytes()),
            })
            .collect()
    }

    /// The headers a provider would send: signature, timestamp and id headers.
    pub fn sign_headers(
        &self,
        key: &Key,
        input: &SignInput<'_>,
    ) -> Result<Vec<(HeaderName, String)>, SignError> {
        let mac = key.mac().ok_or(SignError::WrongKey("an HMAC key"))?;
        let ts = self
            .timestamp
            .as_ref()
            .map(|t| t.unit.format(input.timestamp))
            .unwrap_or_default();
        if self.payload.uses(&Part::Url) && input.url.is_none() {
            return Err(SignError::NeedsUrl);
        }
        let headers = HeaderMap::new();
        let req = SignedRequest {
            method: input.method,
            headers: &headers,
            body: input.body,
            url: input.url,
        };
        let payload = self
            .payload_parts(&req, Some(ts.as_bytes()), Some(input.id.as_bytes()))
            .ok_or(SignError::MissingInput)?;
        let tag = self.encoding.encode(mac.compute(&payload).as_bytes());
        let value = match &self.format {
            SigFormat::Prefixed(prefix) => format!("{prefix}{tag}"),
            SigFormat::Fields {
                sep,
                sig,
                ts: Some(ts_key),
            } => format!("{ts_key}={ts}{}{sig}={tag}", char::from(*sep)),
            SigFormat::Fields { sig, ts: None, .. } => format!("{sig}={tag}"),
            SigFormat::Versioned(version) => format!("{version},{tag}"),
        };
        let mut out = vec![(self.header.clone(), value)];
        if let Some(TimestampSource {
            from: TimestampFrom::Header(h),
            ..
        }) = &self.timestamp
        {
            out.push((h.clone(), ts));
        }
        if let Some(h) = &self.id_header {
            out.push((h.clone(), input.id.to_owned()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{KeyMaterial, PreparedMac};
    use http::{HeaderValue, Method};

    fn scheme(payload: &str, encoding: Encoding, format: SigFormat) -> HmacScheme {
        HmacScheme {
            algorithm: Algorithm::Sha256,
            header: HeaderName::from_static("x-sig"),
            format,
            encoding,
            payload: Template::parse(payload).unwrap(),
            timestamp: Some(TimestampSource {
                from: TimestampFrom::Header(HeaderName::from_static("x-ts")),
                unit: TimestampUnit::Seconds,
            }),
            id_header: Some(HeaderName::from_static("x-id")),
        }
    }

    fn key(index: usize, secret: &str) -> Key {
        Key {
            index,
            label: index.to_string(),
            material: KeyMaterial::Mac(PreparedMac::new(Algorithm::Sha256, secret.as_bytes())),
        }
    }

    fn headers(pairs: &[(HeaderName, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn req<'a>(h: &'a HeaderMap, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            method: &Method::POST,
            headers: h,
            body,
            url: None,
        }
    }

    fn input(body: &[u8]) -> SignInput<'_> {
        SignInput {
            body,
            timestamp: 1_700_000_000,
            id: "msg_1",
            url: None,
            method: &Method::POST,
        }
    }

    #[test]
    fn sign_then_verify_round_trips_for_every_format() {
        for format in [
            SigFormat::Prefixed("v1,".into()),
            SigFormat::Fields {
                sep: b',',
                sig: "v1".into(),
                ts: None,
            },
            SigFormat::Versioned("v1".into()),
        ] {
            let s = scheme("{id}.{timestamp}.{body}", Encoding::Base64, format.clone());
            let k = key(1, "secret");
            let h = headers(&s.sign_headers(&k, &input(b"{\"a\": 1}")).unwrap());
            assert_eq!(
                s.verify(&[key(0, "other"), k], &req(&h, b"{\"a\": 1}")),
                Verdict::Valid {
                    key: 1,
                    timestamp: SignedTimestamp::UnixMs(1_700_000_000_000)
                },
                "{format:?}"
            );
        }
    }

    #[test]
    fn fields_format_carries_the_timestamp_and_several_tags() {
        let mut s = scheme(
            "{timestamp}.{body}",
            Encoding::Hex,
            SigFormat::Fields {
                sep: b',',
                sig: "v1".into(),
                ts: Some("t".into()),
            },
        );
        s.timestamp = Some(TimestampSource {
            from: TimestampFrom::SigField,
            unit: TimestampUnit::Seconds,
        });
        let good = key(0, "secret")
            .mac()
            .unwrap()
            .compute(&[b"1700000000.", b"x"]);
        let value = format!(
            "t=1700000000,v1={},v1={},v0=ignored",
            "ab".repeat(32),
            hex::encode(good.as_bytes())
        );
        let h = headers(&[(HeaderName::from_static("x-sig"), value)]);
        assert!(matches!(
            s.verify(&[key(0, "secret")], &req(&h, b"x")),
            Verdict::Valid { .. }
        ));
        let h = headers(&[(HeaderName::from_static("x-sig"), "t=1700000000".into())]);
        assert_eq!(
            s.verify(&[key(0, "secret")], &req(&h, b"x")),
            Verdict::Invalid
        );
        let h = headers(&[(HeaderName::from_static("x-sig"), "v1=00".into())]);
        assert_eq!(
            s.verify(&[key(0, "secret")], &req(&h, b"x")),
            Verdict::Missing,
            "no t: a signed input is absent"
        );
    }

    #[test]
    fn known_hex_vector_either_case() {
        let mut s = scheme(
            "{body}",
            Encoding::Hex,
            SigFormat::Prefixed("sha256=".into()),
        );
        s.timestamp = None;
        for sig in [
            "sha256=88aab3ede8d3adf94d26ab90d3bafd4a2083070c3bcce9c014ee04a443847c0b",
            "sha256=88AAB3EDE8D3ADF94D26AB90D3BAFD4A2083070C3BCCE9C014EE04A443847C0B",
        ] {
            let h = headers(&[(HeaderName::from_static("x-sig"), sig.into())]);
            assert!(matches!(
                s.verify(&[key(0, "secret")], &req(&h, b"hello")),
                Verdict::Valid { key: 0, .. }
            ));
        }
    }

    #[test]
    fn base64url_tags_use_the_url_alphabet_with_or_without_padding() {
        // 0xfb 0xff encodes as "+/8=" in standard base64 and "-_8" in the URL alphabet.
        let tag = [0xfb, 0xff];
        assert_eq!(Encoding::Base64Url.encode(&tag), "-_8");
        assert_eq!(
            Encoding::Base64Url.decode(b"-_8").as_deref(),
            Some(&tag[..])
        );
        assert_eq!(
            Encoding::Base64Url.decode(b"-_8=").as_deref(),
            Some(&tag[..])
        );
        assert_eq!(Encoding::Base64Url.decode(b"+/8="), None);
        assert_eq!(Encoding::Base64.decode(b"-_8"), None);
        assert_eq!(Encoding::Base64.encode(&tag), "+/8=");
    }

    #[test]
    fn missing_and_malformed_headers() {
        let s = scheme(
            "{timestamp}.{body}",
            Encoding::Hex,
            SigFormat::Prefixed(String::new()),
        );
        let k = [key(0, "secret")];
        assert_eq!(
            s.verify(&k, &req(&HeaderMap::new(), b"x")),
            Verdict::Missing
        );
        let no_ts = headers(&[(HeaderName::from_static("x-sig"), "00".into())]);
        assert_eq!(s.verify(&k, &req(&no_ts, b"x")), Verdict::Missing);
        for bad in ["zz", "0", "é", &"a".repeat(10_000)] {
            let h = headers(&[
                (HeaderName::from_static("x-sig"), bad.into()),
                (HeaderName::from_static("x-ts"), "1".into()),
            ]);
            assert_eq!(s.verify(&k, &req(&h, b"x")), Verdict::Invalid, "{bad}");
        }
    }

    #[test]
    fn timestamp_units() {
        assert_eq!(
            TimestampUnit::Seconds.parse(b"1700000000"),
            SignedTimestamp::UnixMs(1_700_000_000_000)
        );
        assert_eq!(
            TimestampUnit::Millis.parse(b"1700000000123"),
            SignedTimestamp::UnixMs(1_700_000_000_123)
        );
        assert_eq!(
            TimestampUnit::Rfc3339.parse(b"2019-11-16T10:11:12.634234626Z"),
            SignedTimestamp::UnixMs(1_573_899_072_634)
        );
        assert_eq!(
            TimestampUnit::Seconds.parse(b"soon"),
            SignedTimestamp::Malformed
        );
        assert_eq!(
            TimestampUnit::Seconds.parse(b"99999999999999999"),
            SignedTimestamp::Malformed
        );
        // Numeric offsets are applied (Box); "Z" and "+00:00" are the same instant.
        for (t, ms) in [
            ("2020-01-01T00:00:00-07:00", 1_577_862_000_000),
            ("2020-01-01T07:00:00+00:00", 1_577_862_000_000),
            ("2020-01-01T07:00:00Z", 1_577_862_000_000),
            ("2020-01-01T12:30:00.5+05:30", 1_577_862_000_500),
        ] {
            assert_eq!(
                TimestampUnit::Rfc3339.parse(t.as_bytes()),
                SignedTimestamp::UnixMs(ms),
                "{t}"
            );
        }
        assert_eq!(
            TimestampUnit::Rfc3339.parse(b"2020-01-01T00:00:00+7:00"),
            SignedTimestamp::Malformed
        );
        // Past year 9999 RFC 3339 has no spelling: clamped, never a panic.
        assert_eq!(
            TimestampUnit::Rfc3339.format(i64::MAX),
            "9999-12-31T23:59:59.000000000Z"
        );
        let t = TimestampUnit::Rfc3339.format(1_573_899_072);
        assert_eq!(
            TimestampUnit::Rfc3339.parse(t.as_bytes()),
            SignedTimestamp::UnixMs(1_573_899_072_000)
        );
    }
}
