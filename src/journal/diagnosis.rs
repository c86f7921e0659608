//! Why a signature did not match (CONTRACT §9): a bounded set of known mistakes is tried
//! against the refused request, and the first that would have produced the presented
//! signature is the hint. It goes to the journal entry, a warn log line and
//! `hookwall_signature_diagnosis_total{route,hint}` — never into the client's answer —
//! and is computed in the journal's task, at most [`PER_ROUTE_PER_SECOND`] times a second
//! per route, so a flood of forgeries stays cheap.
//!
//! The mistakes, in the order tried:
//! - `trailing_newline_added` / `trailing_newline_removed`: a newline at the end of the
//!   body was added or removed on the way;
//! - `crlf_to_lf`: line ends were changed from CRLF to LF;
//! - `body_reserialized_json`: something between the provider and hookwall re-serialised
//!   the JSON body (compact, pretty, sorted keys, Python's separators) after it was signed;
//! - `secret_encoding`: the secret is configured in the wrong form (base64-decoded vs raw,
//!   `whsec_` kept vs stripped);
//! - `other_route_secret`: another route's secret matches — the provider was pointed at the
//!   wrong path;
//! - `public_url_mismatch`: for URL-signing schemes, the provider signed another URL
//!   (http vs https, a port, a trailing slash);
//! - `timestamp_unit`: the timestamp was sent in milliseconds where seconds were signed
//!   (or the other way round);
//! - `unknown`: none of the above.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderMap, HeaderValue, Method};

use crate::config::RouteConfig;
use crate::verify::hmac_scheme::{TimestampFrom, TimestampUnit};
use crate::verify::keys::material;
use crate::verify::{
    Algorithm, Key, KeyMaterial, Keyed, PreparedMac, Scheme, SignedRequest, SignedTimestamp,
    Verdict, Verifier,
};

/// Diagnoses per route and second, at most.
pub(crate) const PER_ROUTE_PER_SECOND: u32 = 20;

/// A known mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// The JSON body was re-serialised after signing.
    BodyReserializedJson,
    /// A newline was added at the end of the body.
    TrailingNewlineAdded,
    /// A newline at the end of the body was removed.
    TrailingNewlineRemoved,
    /// CRLF line ends became LF.
    CrlfToLf,
    /// The secret is in the wrong form.
    SecretEncoding,
    /// Another route's secret matches.
    OtherRouteSecret,
    /// The provider signed another URL.
    PublicUrlMismatch,
    /// Milliseconds for seconds, or the reverse.
    TimestampUnit,
    /// None of the known mistakes.
    Unknown,
}

impl Hint {
    /// The hint as stored and labelled.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Hint::BodyReserializedJson => "body_reserialized_json",
            Hint::TrailingNewlineAdded => "trailing_newline_added",
            Hint::TrailingNewlineRemoved => "trailing_newline_removed",
            Hint::CrlfToLf => "crlf_to_lf",
            Hint::SecretEncoding => "secret_encoding",
            Hint::OtherRouteSecret => "other_route_secret",
            Hint::PublicUrlMismatch => "public_url_mismatch",
            Hint::TimestampUnit => "timestamp_unit",
            Hint::Unknown => "unknown",
        }
    }
}

/// A request refused for its signature, as received.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refused<'a> {
    /// Its route.
    pub route: &'a RouteConfig,
    /// Method.
    pub method: &'a Method,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// Body.
    pub body: &'a [u8],
    /// Its query string, for URL-signing schemes.
    pub query: Option<&'a str>,
}

impl Refused<'_> {
    fn url_with(&self, base: &str) -> String {
        match self.query {
            Some(q) => format!("{base}?{q}"),
            None => base.to_owned(),
        }
    }

    fn url(&self) -> Option<String> {
        self.route.public_url.as_deref().map(|u| self.url_with(u))
    }

    /// Whether `verifier` accepts the request changed as given.
    fn passes(
        &self,
        verifier: &Verifier,
        headers: &HeaderMap,
        body: &[u8],
        url: Option<&str>,
    ) -> bool {
        matches!(
            verifier.verify(&SignedRequest {
                method: self.method,
                headers,
                body,
                url,
            }),
            Verdict::Valid { .. }
        )
    }

    fn body_passes(&self, body: &[u8]) -> bool {
        let url = self.url();
        self.passes(&self.route.verifier, self.headers, body, url.as_deref())
    }
}

/// The first known mistake that explains the refused signature.
pub(crate) fn diagnose(refused: &Refused<'_>, others: &[Arc<RouteConfig>]) -> Hint {
    let body = refused.body;
    if let Some(trimmed) = body
        .strip_suffix(b"\r\n")
        .or_else(|| body.strip_suffix(b"\n"))
    {
        if refused.body_passes(trimmed) {
            return Hint::TrailingNewlineAdded;
        }
    }
    for end in [&b"\n"[..], b"\r\n"] {
        if refused.body_passes(&[body, end].concat()) {
            return Hint::TrailingNewlineRemoved;
        }
    }
    if body.contains(&b'\n') && !body.windows(2).any(|w| w == b"\r\n") {
        let crlf: Vec<u8> = body
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        if refused.body_passes(&crlf) {
            return Hint::CrlfToLf;
        }
    }
    // After the byte-level changes: a trailing newline also re-serialises away.
    if json_variants(body).iter().any(|b| refused.body_passes(b)) {
        return Hint::BodyReserializedJson;
    }
    if secret_forms(refused) {
        return Hint::SecretEncoding;
    }
    if other_routes_secrets(refused, others) {
        return Hint::OtherRouteSecret;
    }
    if url_variants(refused) {
        return Hint::PublicUrlMismatch;
    }
    if timestamp_units(refused) {
        return Hint::TimestampUnit;
    }
    Hint::Unknown
}

/// Whether a signed timestamp refused as out of window would have been in it in the other
/// unit (milliseconds read as seconds, or the reverse), judged at `now` (Unix seconds).
pub(crate) fn timestamp_in_other_unit(
    signed: SignedTimestamp,
    window: crate::config::Window,
    now: f64,
) -> bool {
    let SignedTimestamp::UnixMs(ms) = signed else {
        return false;
    };
    let within = |secs: f64| {
        let skew = now - secs;
        (skew >= 0.0 && skew <= window.past.as_secs_f64())
            || (skew < 0.0 && -skew <= window.future.as_secs_f64())
    };
    let as_sent = ms as f64 / 1000.0;
    within(as_sent / 1000.0) || within(as_sent * 1000.0)
}

/// The body re-serialised the usual ways, each that differs from it.
fn json_variants(body: &[u8]) -> Vec<Vec<u8>> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |v: Option<Vec<u8>>| {
        if let Some(v) = v.filter(|v| v.as_slice() != body && !out.contains(v)) {
            out.push(v);
        }
    };
    push(serde_json::to_vec(&doc).ok());
    push(serde_json::to_vec_pretty(&doc).ok());
    push(serde_json::to_vec(&sorted(&doc)).ok());
    push(serde_json::to_vec_pretty(&sorted(&doc)).ok());
    push(python_dumps(&doc));
    out
}

/// `doc` with every object's keys in sorted order (what many JSON libraries write).
fn sorted(doc: &serde_json::Value) -> serde_json::Value {
    match doc {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            serde_json::Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sorted).collect())
        }
        other => other.clone(),
    }
}

/// What Python's `json.dumps(doc)` writes: `", "` and `": "` between items.
fn python_dumps(doc: &serde_json::Value) -> Option<Vec<u8>> {
    use serde::Serialize;
    struct Spaced;
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Spaced);
    doc.serialize(&mut ser).ok()?;
    Some(out)
}

/// The MAC algorithm a scheme keys, for the schemes whose key is a shared secret.
fn mac_algorithm(scheme: &Scheme) -> Option<Algorithm> {
    match scheme {
        Scheme::Hmac(s) => Some(s.algorithm),
        Scheme::Twilio(t) => Some(if t.sha256 {
            Algorithm::Sha256
        } else {
            Algorithm::Sha1
        }),
        _ => None,
    }
}

/// A verifier of one scheme with the given keys.
fn with_keys(keyed: &Keyed, keys: Vec<KeyMaterial>) -> Verifier {
    Verifier {
        schemes: vec![Keyed {
            scheme: keyed.scheme.clone(),
            keys: keys
                .into_iter()
                .enumerate()
                .map(|(index, material)| Key {
                    index,
                    label: String::new(),
                    material,
                })
                .collect(),
            format: keyed.format,
        }],
    }
}

/// The other forms a secret is commonly meant in: as written, without `whsec_`, and
/// base64-decoded (either way).
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![secret.to_vec()];
    let text = std::str::from_utf8(secret).unwrap_or_default().trim();
    let bare = text.strip_prefix("whsec_").unwrap_or(text);
    out.push(bare.as_bytes().to_vec());
    for b64 in [text, bare] {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64) {
            out.push(decoded);
        }
    }
    out.dedup();
    out
}

fn secret_forms(refused: &Refused<'_>) -> bool {
    let route = refused.route;
    let url = refused.url();
    route.verifier.schemes.iter().any(|keyed| {
        let Some(algorithm) = mac_algorithm(&keyed.scheme) else {
            return false;
        };
        let keys: Vec<KeyMaterial> = route
            .secrets
            .iter()
            .flat_map(|s| forms(s.expose()))
            .map(|bytes| KeyMaterial::Mac(PreparedMac::new(algorithm, &bytes)))
            .collect();
        let v = with_keys(keyed, keys);
        refused.passes(&v, refused.headers, refused.body, url.as_deref())
    })
}

fn other_routes_secrets(refused: &Refused<'_>, others: &[Arc<RouteConfig>]) -> bool {
    let route = refused.route;
    let url = refused.url();
    route.verifier.schemes.iter().any(|keyed| {
        let algorithm = mac_algorithm(&keyed.scheme).unwrap_or(Algorithm::Sha256);
        let keys: Vec<KeyMaterial> = others
            .iter()
            .filter(|o| o.name != route.name)
            .flat_map(|o| o.secrets.iter())
            .filter_map(|s| material(keyed.format, algorithm, s).ok())
            .collect();
        !keys.is_empty()
            && refused.passes(
                &with_keys(keyed, keys),
                refused.headers,
                refused.body,
                url.as_deref(),
            )
    })
}

/// The URLs a provider is commonly configured with instead of `public_url`.
fn url_variants(refused: &Refused<'_>) -> bool {
    let Some(base) = refused.route.public_url.as_deref() else {
        return false;
    };
    let Ok(uri) = base.parse::<http::Uri>() else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    let path = uri.path();
    let other_scheme = if scheme == "https" { "http" } else { "https" };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let hosts = match authority.port_u16() {
        Some(_) => vec![authority.host().to_owned()],
        None => vec![format!("{}:{default_port}", authority.host())],
    };
    let toggled = match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p.to_owned(),
        _ => format!("{path}/"),
    };
    let mut candidates = vec![
        format!("{other_scheme}://{authority}{path}"),
        format!("{scheme}://{authority}{toggled}"),
    ];
    for host in &hosts {
        candidates.push(format!("{scheme}://{host}{path}"));
    }
    candidates.iter().any(|c| {
        let url = refused.url_with(c);
        refused.passes(
            &refused.route.verifier,
            refused.headers,
            refused.body,
            Some(&url),
        )
    })
}

/// The timestamp header in the other unit.
fn timestamp_units(refused: &Refused<'_>) -> bool {
    let url = refused.url();
    refused.route.verifier.schemes.iter().any(|keyed| {
        let Scheme::Hmac(s) = &keyed.scheme else {
            return false;
        };
        let Some(ts) = &s.timestamp else {
            return false;
        };
        let (TimestampFrom::Header(name), TimestampUnit::Seconds | TimestampUnit::Millis) =
            (&ts.from, ts.unit)
        else {
            return false;
        };
        let Some(sent) = refused
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
        else {
            return false;
        };
        [sent / 1000, sent.saturating_mul(1000)].iter().any(|alt| {
            let mut headers = refused.headers.clone();
            headers.insert(name.clone(), HeaderValue::from(*alt));
            refused.passes(
                &refused.route.verifier,
                &headers,
                refused.body,
                url.as_deref(),
            )
        })
    })
}

/// At most [`PER_ROUTE_PER_SECOND`] diagnoses a second per route.
#[derive(Debug, Default)]
pub(crate) struct DiagnosisBudget {
    windows: HashMap<String, (Instant, u32)>,
}

impl DiagnosisBudget {
    /// Whether one more diagnosis of `route` fits in this second.
    pub(crate) fn allow(&mut self, route: &str) -> bool {
        let now = Instant::now();
        let (start, used) = self.windows.entry(route.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= Duration::from_secs(1) {
            *start = now;
            *used = 0;
        }
        *used += 1;
        *used <= PER_ROUTE_PER_SECOND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flood of forgeries costs at most 20 diagnoses a second per route.
    #[test]
    fn the_budget_allows_twenty_a_second_per_route() {
        let mut budget = DiagnosisBudget::default();
        let allowed = (0..100).filter(|_| budget.allow("flooded")).count();
        assert_eq!(allowed, PER_ROUTE_PER_SECOND as usize);
        assert!(budget.allow("another"), "routes have budgets of their own");
    }

    #[test]
    fn reserialisations_differ_from_the_body_and_each_other() {
        let body = br#"{"b":1,"a":[1,2]}"#;
        let variants = json_variants(body);
        assert!(variants.iter().all(|v| v.as_slice() != body));
        assert!(
            variants.contains(&br#"{"a":[1,2],"b":1}"#.to_vec()),
            "sorted keys"
        );
        assert!(
            variants.contains(&br#"{"b": 1, "a": [1, 2]}"#.to_vec()),
            "python"
        );
        assert!(json_variants(b"not json").is_empty());
    }
}
