//! Fuzzes the HMAC scheme family (`[route.verify]` and the HMAC presets) with
//! attacker-controlled header values and body.
//!
//! Input layout:
//! - byte 0 (`shape`): bits 0-1 algorithm (sha1, sha256, sha512, sha512), bits 2-4 payload
//!   template (index into `TEMPLATES`), bits 5-7 signature format (index into `formats()`);
//! - byte 1 (`opts`): bits 0-2 timestamp source (none, header seconds / millis / RFC 3339,
//!   signature field, JSON body field), bit 3 send the timestamp header, bit 4 send the id
//!   header, bit 5 the route has a public URL, bit 6 method GET instead of POST;
//! - bytes 2..10: the unix seconds used for the signing round trip (i64, little endian);
//! - the rest: `signature \n timestamp \n id \n body` (the body may contain newlines;
//!   missing pieces are empty).
//!
//! Every input is checked against a hex and a base64 verifier. Properties:
//! - `Verifier::verify` never panics, whatever the header bytes;
//! - when the fuzzed id is a valid header value, the headers `sign_headers` produces for the
//!   fuzzed body / timestamp / id (signed with the route's second secret) verify as `Valid`
//!   for that secret, with the timestamp that was signed.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

use hookwall::verify::{
    Algorithm, Encoding, HmacScheme, Key, KeyMaterial, Keyed, Part, PreparedMac, Scheme, SigFormat,
    SignInput, SignedRequest, SignedTimestamp, Template, TimestampFrom, TimestampSource,
    TimestampUnit, Verdict, Verifier,
};

const TEMPLATES: [&str; 8] = [
    "{body}",
    "{timestamp}.{body}",
    "{id}.{timestamp}.{body}",
    "v0:{timestamp}:{body}",
    "{method} {url}\n{body}",
    "{id}",
    "",
    "{body}{body}{timestamp}{id}",
];

const SIG: HeaderName = HeaderName::from_static("x-fuzz-signature");
const TS: HeaderName = HeaderName::from_static("x-fuzz-timestamp");
const ID: HeaderName = HeaderName::from_static("x-fuzz-id");
const URL: &str = "https://hooks.example.test/webhooks/fuzz?a=1";
/// Positions of the two keys in the route's `secrets` (not 0 and 1, so a verdict that
/// reported the position in `keys` instead of the secret's index would be caught).
const KEY_INDEXES: [usize; 2] = [2, 5];

fn formats(i: u8) -> SigFormat {
    match i & 0b111 {
        0 => SigFormat::Prefixed("sha256=".into()),
        1 => SigFormat::Prefixed(String::new()),
        2 => SigFormat::Fields {
            sep: b',',
            sig: "v1".into(),
            ts: Some("t".into()),
        },
        3 => SigFormat::Fields {
            sep: b';',
            sig: "h1".into(),
            ts: Some("ts".into()),
        },
        4 => SigFormat::Fields {
            sep: b',',
            sig: "v1".into(),
            ts: None,
        },
        5 => SigFormat::Versioned("v1".into()),
        6 => SigFormat::Prefixed("v1,".into()),
        _ => SigFormat::Versioned("v1a".into()),
    }
}

fn timestamp_source(i: u8) -> Option<TimestampSource> {
    let header = |unit| {
        Some(TimestampSource {
            from: TimestampFrom::Header(TS),
            unit,
        })
    };
    match i & 0b111 {
        0 => None,
        1 => header(TimestampUnit::Seconds),
        2 => header(TimestampUnit::Millis),
        3 => header(TimestampUnit::Rfc3339),
        4 | 5 => Some(TimestampSource {
            from: TimestampFrom::SigField,
            unit: TimestampUnit::Seconds,
        }),
        _ => Some(TimestampSource {
            from: TimestampFrom::JsonField("/ts".into(), Some(TS)),
            unit: TimestampUnit::Millis,
        }),
    }
}

fn verifier(
    algorithm: Algorithm,
    encoding: Encoding,
    format: SigFormat,
    template: &str,
    timestamp: Option<TimestampSource>,
) -> Verifier {
    let scheme = HmacScheme {
        algorithm,
        header: SIG,
        format,
        encoding,
        payload: Template::parse(template).expect("built-in template parses"),
        timestamp,
        id_header: Some(ID),
    };
    // Two keys, as during rotation; the round trip signs with the second one.
    let keys = [&b"old-secret"[..], &b"current-secret"[..]]
        .iter()
        .zip(KEY_INDEXES)
        .map(|(secret, index)| Key {
            index,
            label: index.to_string(),
            material: KeyMaterial::Mac(PreparedMac::new(algorithm, secret)),
        })
        .collect();
    Verifier {
        schemes: vec![Keyed {
            scheme: Scheme::Hmac(scheme),
            keys,
            format: hookwall::verify::keys::KeyFormat::Raw,
        }],
    }
}

/// The timestamp `verify` should vouch for after signing `unix` seconds (an independent
/// oracle, not a call to the scheme's own formatting and parsing).
fn expected_timestamp(source: &Option<TimestampSource>, unix: i64) -> Option<SignedTimestamp> {
    let Some(source) = source else {
        return Some(SignedTimestamp::None);
    };
    if let TimestampFrom::JsonField(..) = source.from {
        return None; // depends on the body; not predicted here
    }
    Some(match source.unit {
        TimestampUnit::Seconds => unix
            .checked_mul(1000)
            .map_or(SignedTimestamp::Malformed, SignedTimestamp::UnixMs),
        TimestampUnit::Millis => SignedTimestamp::UnixMs(unix.saturating_mul(1000)),
        // RFC 3339 ends at year 9999: signing clamps to its range.
        TimestampUnit::Rfc3339 => SignedTimestamp::UnixMs(unix.clamp(0, 253_402_300_799) * 1000),
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let (shape, opts) = (data[0], data[1]);
    let sign_unix = i64::from_le_bytes(data[2..10].try_into().unwrap());
    let rest = &data[10..];

    let algorithm = match shape & 0b11 {
        0 => Algorithm::Sha1,
        1 => Algorithm::Sha256,
        _ => Algorithm::Sha512,
    };
    let template = TEMPLATES[usize::from((shape >> 2) & 0b111)];
    let format = formats(shape >> 5);
    let timestamp = timestamp_source(opts);
    let send_ts = opts & (1 << 3) != 0;
    let send_id = opts & (1 << 4) != 0;
    let url = (opts & (1 << 5) != 0).then_some(URL);
    let method = if opts & (1 << 6) != 0 {
        Method::GET
    } else {
        Method::POST
    };

    let mut pieces = rest.splitn(4, |b| *b == b'\n');
    let sig = pieces.next().unwrap_or_default();
    let ts = pieces.next().unwrap_or_default();
    let id = pieces.next().unwrap_or_default();
    let body = pieces.next().unwrap_or_default();

    // Header values as a client could send them (HeaderValue refuses what HTTP parsing
    // would never produce: control characters, newlines).
    let ts_value = HeaderValue::from_bytes(ts).ok().filter(|_| send_ts);
    let id_value = HeaderValue::from_bytes(id).ok();

    for encoding in [Encoding::Hex, Encoding::Base64] {
        let v = verifier(
            algorithm,
            encoding,
            format.clone(),
            template,
            timestamp.clone(),
        );

        // 1. Arbitrary signature header: must not panic.
        let mut headers = HeaderMap::new();
        if let Some(t) = &ts_value {
            headers.insert(TS, t.clone());
        }
        if let Some(i) = id_value.as_ref().filter(|_| send_id) {
            headers.insert(ID, i.clone());
        }
        if let Ok(s) = HeaderValue::from_bytes(sig) {
            headers.insert(SIG, s);
        }
        let req = SignedRequest {
            method: &method,
            headers: &headers,
            body,
            url,
        };
        if let Verdict::Valid { key, .. } = v.verify(&req) {
            assert!(KEY_INDEXES.contains(&key), "unknown key index {key}");
        }

        // 2. Round trip: sign the fuzzed body / timestamp / id, then verify. The id must be a
        //    header value (and `&str`) to be sent at all.
        let Some(id_str) = id_value
            .as_ref()
            .and_then(|i| std::str::from_utf8(i.as_bytes()).ok())
        else {
            continue;
        };
        let Scheme::Hmac(scheme) = &v.schemes[0].scheme else {
            unreachable!()
        };
        let signing_key = &v.schemes[0].keys[1];
        let input = SignInput {
            body,
            timestamp: sign_unix,
            id: id_str,
            url,
            method: &method,
        };
        let signed = match scheme.sign_headers(signing_key, &input) {
            Ok(signed) => signed,
            Err(e) => {
                assert!(
                    scheme.payload.uses(&Part::Url) && url.is_none(),
                    "sign_headers failed unexpectedly: {e}"
                );
                continue;
            }
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &signed {
            let value = HeaderValue::from_str(value).unwrap_or_else(|e| {
                panic!("sign_headers produced an invalid {name} value {value:?}: {e}")
            });
            headers.insert(name.clone(), value);
        }
        let req = SignedRequest {
            method: &method,
            headers: &headers,
            body,
            url,
        };
        let verdict = v.verify(&req);

        // A template that signs `{timestamp}` can only be checked when the verifier finds
        // the timestamp where the signer put it.
        let ts_findable = match timestamp.as_ref().map(|t| &t.from) {
            None | Some(TimestampFrom::JsonField(..)) => false,
            Some(TimestampFrom::Header(_)) => true,
            Some(TimestampFrom::SigField) => {
                matches!(&format, SigFormat::Fields { ts: Some(_), .. })
            }
        };
        if scheme.payload.uses(&Part::Timestamp) && !ts_findable {
            assert_eq!(
                verdict,
                Verdict::Missing,
                "signed timestamp cannot be found"
            );
            continue;
        }
        let Verdict::Valid {
            key,
            timestamp: got,
        } = verdict
        else {
            panic!(
                "round trip failed: {verdict:?} for {signed:?} (encoding {encoding:?}, \
                 format {format:?}, template {template:?}, timestamp {timestamp:?})"
            );
        };
        assert_eq!(key, KEY_INDEXES[1], "wrong key reported");
        if let Some(expected) = expected_timestamp(&timestamp, sign_unix) {
            // A timestamp source whose value the signer could not place is Malformed.
            let expected = if ts_findable {
                expected
            } else if timestamp.is_some() {
                SignedTimestamp::Malformed
            } else {
                SignedTimestamp::None
            };
            assert_eq!(got, expected, "wrong timestamp for {signed:?}");
        }
    }
});
