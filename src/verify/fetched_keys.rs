//! Public keys and certificates that hookwall fetches from the provider instead of reading
//! them from the config: Google's JWKS and the Chat service account's certificates, Plaid's
//! webhook verification keys, Amazon SNS signing certificates. One [`KeySource`] per place
//! keys come from; every preset that fetches keys goes through it.
//!
//! # Mechanism
//!
//! Verification stays synchronous: the signature check only ever *reads* this cache
//! ([`KeySource::get`]). Filling it is the job of the async key layer
//! (`layers/keys.rs`), which runs just before the signature check, asks each scheme which
//! key the request names (a JWT `kid`, an SNS `SigningCertURL`) and calls
//! [`KeySource::ensure`] for it:
//!
//! - a key in the cache and fresh: nothing to do (the common case, no lock awaited);
//! - otherwise one fetch, under the source's fetch lock: at most one fetch is in flight per
//!   source, and requests arriving meanwhile wait for it, then find the key in the cache
//!   instead of fetching again;
//! - an id the source does not have (an unknown `kid`) refreshes the source once (a key
//!   published since the last fetch is found that way); the same id asked again within
//!   [`REFETCH_AFTER`] is not fetched again, and a flood of made-up ids costs at most
//!   [`MAX_MISS_FETCHES`] fetches a minute (past that, `503`); the signature then fails
//!   (`401`);
//! - a failed fetch (network, timeout, 5xx, a body that is not keys) answers `503
//!   key_unavailable` with `Retry-After`, never `401`: the provider retries, nothing is
//!   lost. A key already cached is kept and used while its source is down, and failures
//!   back off for [`FAILURE_BACKOFF`] so a dead key server is not hammered.
//!
//! Freshness follows the answer's `Cache-Control: max-age` (Google sends one), bounded to
//! [`MIN_TTL`]..[`MAX_TTL`]; without one, [`DEFAULT_TTL`]. Fetches are HTTPS only (the
//! client refuses anything else), bounded in size and time (`outbound/http.rs`).
//! Certificate URLs taken from a request (SNS) must match the route's host allowlist
//! ([`HostAllowlist`]) before anything is fetched.
//!
//! Sources are shared process-wide by what they fetch (URL, credentials, trust roots), so a
//! reload keeps its cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use http::Uri;
use jsonwebtoken::DecodingKey;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::outbound::http::{Call, FetchError, Fetched, HttpClient};
use crate::secret::Secret;

/// Shortest time a fetched key is trusted without asking again.
pub const MIN_TTL: Duration = Duration::from_secs(60);
/// Longest: a key the provider revoked is dropped within a day at most.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// When the answer says nothing about caching.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// An id the source did not have is not looked up again sooner than this.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Most fetches for unknown ids a source makes per minute.
pub const MAX_MISS_FETCHES: u32 = 10;
/// After a failed fetch, requests needing a missing key get `503` at once for this long.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// Most keys kept per source (SNS certificates are per URL; the rest are small sets).
const MAX_KEYS: usize = 256;
/// A certificate is a few KiB; AWS's SDKs refuse more than 10 KiB.
const MAX_CERT_BYTES: usize = 10 * 1024;

/// A key ready for verification.
#[derive(Clone)]
pub enum PublicKey {
    /// A JWT verification key (RSA or EC), for `jsonwebtoken`.
    Jwt(DecodingKey),
    /// An RSA public key (PKCS#1 DER) from an X.509 certificate, for `ring`.
    Rsa(Vec<u8>),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKey::Jwt(_) => f.write_str("PublicKey::Jwt"),
            PublicKey::Rsa(k) => write!(f, "PublicKey::Rsa({} bytes)", k.len()),
        }
    }
}

/// Where keys come from, and in which form.
#[derive(Clone)]
pub enum SourceKind {
    /// A JWKS document (`{"keys": [...]}`), keyed by `kid` (Google OAuth2 certs).
    Jwks {
        /// Its URL.
        url: String,
    },
    /// A JSON object of `kid` → PEM X.509 certificate (Google service account metadata).
    X509Map {
        /// Its URL.
        url: String,
    },
    /// Plaid's `/webhook_verification_key/get`, one key per `kid`.
    Plaid {
        /// `https://production.plaid.com` unless the route says otherwise.
        api_base: String,
        /// The Plaid client id.
        client_id: Secret,
        /// The Plaid API secret.
        secret: Secret,
    },
    /// SNS signing certificates, one per `SigningCertURL` (the id is the URL).
    SnsCertificate {
        /// Hosts a certificate URL may name.
        hosts: HostAllowlist,
    },
}

impl std::fmt::Debug for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceKind::Jwks { url } => write!(f, "Jwks({url})"),
            SourceKind::X509Map { url } => write!(f, "X509Map({url})"),
            SourceKind::Plaid { api_base, .. } => write!(f, "Plaid({api_base})"),
            SourceKind::SnsCertificate { hosts } => write!(f, "SnsCertificate({hosts})"),
        }
    }
}

impl SourceKind {
    /// What identifies the source for sharing: never a secret itself, only its digest.
    fn identity(&self) -> String {
        match self {
            SourceKind::Jwks { url } => format!("jwks {url}"),
            SourceKind::X509Map { url } => format!("x509 {url}"),
            SourceKind::Plaid {
                api_base,
                client_id,
                secret,
            } => {
                let mut h = Sha256::new();
                h.update(client_id.expose());
                h.update([0]);
                h.update(secret.expose());
                format!("plaid {api_base} {}", hex::encode(h.finalize()))
            }
            SourceKind::SnsCertificate { hosts } => format!("sns {hosts}"),
        }
    }
}

/// The source could not be reached (or answered nonsense), and the key is not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUnavailable;

/// A place keys come from, with its cache.
pub struct KeySource {
    kind: SourceKind,
    client: HttpClient,
    state: Mutex<State>,
    /// Held for the whole of a fetch: one fetch in flight per source.
    fetch_lock: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySource({:?})", self.kind)
    }
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Entry>,
    /// Set sources: when the whole set was fetched, and until when it is fresh.
    set_fetched: Option<Instant>,
    set_fresh_until: Option<Instant>,
    /// Per-id sources: ids looked up that the source did not have.
    misses: HashMap<String, Instant>,
    /// Fetches for unknown ids in the current minute.
    miss_window: Option<(Instant, u32)>,
    failed_until: Option<Instant>,
}

struct Entry {
    key: Arc<PublicKey>,
    fresh_until: Instant,
}

enum Next {
    Ready,
    Unavailable,
    Fetch,
}

/// What one fetch found.
enum Found {
    /// The whole set (replaces what was cached).
    Set(Vec<(String, PublicKey)>, Duration),
    /// The one key asked for.
    One(PublicKey, Duration),
    /// The source has no such key.
    Missing,
}

fn registry() -> &'static Mutex<HashMap<String, Weak<KeySource>>> {
    static SOURCES: OnceLock<Mutex<HashMap<String, Weak<KeySource>>>> = OnceLock::new();
    SOURCES.get_or_init(Default::default)
}

impl KeySource {
    /// The source for `kind` fetched through `tls`: the existing one if a route (before or
    /// after a reload) already uses the same source with the same trust roots (`tls_id`
    /// names them), so its cache survives reloads.
    pub fn shared(kind: SourceKind, tls: Arc<rustls::ClientConfig>, tls_id: &str) -> Arc<Self> {
        let id = format!("{} via {tls_id}", kind.identity());
        let mut sources = registry().lock().unwrap_or_else(|e| e.into_inner());
        sources.retain(|_, weak| weak.strong_count() > 0);
        if let Some(existing) = sources.get(&id).and_then(Weak::upgrade) {
            return existing;
        }
        let source = Arc::new(KeySource {
            kind,
            client: HttpClient::new(tls),
            state: Mutex::new(State::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        });
        sources.insert(id, Arc::downgrade(&source));
        source
    }

    /// What this source fetches.
    pub fn kind(&self) -> &SourceKind {
        &self.kind
    }

    /// How many fetches this source has made (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The cached key `id`, fresh or not (freshness is [`Self::ensure`]'s business; a key
    /// kept while its source is down is still the provider's key).
    pub fn get(&self, id: &str) -> Option<Arc<PublicKey>> {
        self.lock().keys.get(id).map(|e| e.key.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_set(&self) -> bool {
        matches!(
            self.kind,
            SourceKind::Jwks { .. } | SourceKind::X509Map { .. }
        )
    }

    /// Makes sure key `id` is cached if the source has it: `Ok` once it is (or once the
    /// source said it has no such key, which verification then reports), `Err` when the
    /// source cannot be reached and nothing usable is cached.
    pub async fn ensure(&self, id: &str) -> Result<(), KeyUnavailable> {
        if matches!(self.next(id, Instant::now(), false), Next::Ready) {
            return Ok(());
        }
        // Whoever held the lock may have fetched what we need: decide again under it.
        let _one_fetch = self.fetch_lock.lock().await;
        match self.next(id, Instant::now(), true) {
            Next::Ready => return Ok(()),
            Next::Unavailable => return Err(KeyUnavailable),
            Next::Fetch => {}
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let found = self.fetch(id).await;
        let now = Instant::now();
        let mut st = self.lock();
        match found {
            Ok(Found::Set(keys, ttl)) => {
                let fresh_until = now + ttl;
                st.keys = keys
                    .into_iter()
                    .take(MAX_KEYS)
                    .map(|(kid, key)| {
                        let entry = Entry {
                            key: Arc::new(key),
                            fresh_until,
                        };
                        (kid, entry)
                    })
                    .collect();
                st.set_fetched = Some(now);
                st.set_fresh_until = Some(fresh_until);
                st.failed_until = None;
                if !st.keys.contains_key(id) {
                    record_miss(&mut st, id, now);
                }
                Ok(())
            }
            Ok(Found::One(key, ttl)) => {
                if st.keys.len() >= MAX_KEYS {
                    // The entry closest to going stale makes room.
                    if let Some(oldest) = st
                        .keys
                        .iter()
                        .min_by_key(|(_, e)| e.fresh_until)
                        .map(|(k, _)| k.clone())
                    {
                        st.keys.remove(&oldest);
                    }
                }
                st.keys.insert(
                    id.to_owned(),
                    Entry {
                        key: Arc::new(key),
                        fresh_until: now + ttl,
                    },
                );
                st.misses.remove(id);
                st.failed_until = None;
                Ok(())
            }
            Ok(Found::Missing) => {
                record_miss(&mut st, id, now);
                // A stale key the source no longer has is revoked: drop it.
                st.keys.remove(id);
                st.failed_until = None;
                Ok(())
            }
            Err(why) => {
                tracing::warn!(source = ?self.kind, error = %why, "fetching provider keys failed");
                st.failed_until = Some(now + FAILURE_BACKOFF);
                if st.keys.contains_key(id) {
                    Ok(())
                } else {
                    Err(KeyUnavailable)
                }
            }
        }
    }

    /// What to do for `id` now; `locked` when called under the fetch lock (only then may a
    /// miss fetch be counted against the budget).
    fn next(&self, id: &str, now: Instant, locked: bool) -> Next {
        let mut st = self.lock();
        let set_fresh = st.set_fresh_until.is_some_and(|t| t > now);
        if let Some(e) = st.keys.get(id) {
            let fresh = if self.is_set() {
                set_fresh
            } else {
                e.fresh_until > now
            };
            if fresh || st.failed_until.is_some_and(|t| t > now) {
                return Next::Ready;
            }
            return Next::Fetch;
        }
        if st.failed_until.is_some_and(|t| t > now) {
            return Next::Unavailable;
        }
        // Unknown id: was this one looked up recently? (A key published just after the
        // last fetch is found by one refresh; asking again for it would not help.)
        let asked_recently = st
            .misses
            .get(id)
            .is_some_and(|t| now.duration_since(*t) < REFETCH_AFTER);
        if asked_recently {
            return Next::Ready;
        }
        if !locked {
            return Next::Fetch;
        }
        // A first fetch of a set is not a miss; every other unknown id spends the budget.
        if self.is_set() && st.set_fetched.is_none() {
            return Next::Fetch;
        }
        let (start, count) = st.miss_window.get_or_insert((now, 0));
        if now.duration_since(*start) >= Duration::from_secs(60) {
            *start = now;
            *count = 0;
        }
        if *count >= MAX_MISS_FETCHES {
            // Made-up ids are flooding in: a real new key waits a little (503, retried)
            // rather than letting anyone turn requests into fetches.
            return Next::Unavailable;
        }
        *count += 1;
        Next::Fetch
    }

    async fn fetch(&self, id: &str) -> Result<Found, String> {
        match &self.kind {
            SourceKind::Jwks { url } => {
                let answer = self.ok(Call::get(url)).await?;
                let set: jsonwebtoken::jwk::JwkSet =
                    serde_json::from_slice(&answer.body).map_err(|e| format!("not a JWKS: {e}"))?;
                let keys = set
                    .keys
                    .iter()
                    .filter_map(|jwk| {
                        let kid = jwk.common.key_id.clone()?;
                        let key = DecodingKey::from_jwk(jwk).ok()?;
                        Some((kid, PublicKey::Jwt(key)))
                    })
                    .collect();
                Ok(Found::Set(keys, ttl(&answer)))
            }
            SourceKind::X509Map { url } => {
                let answer = self.ok(Call::get(url)).await?;
                let map: HashMap<String, String> = serde_json::from_slice(&answer.body)
                    .map_err(|e| format!("not a certificate map: {e}"))?;
                let keys = map
                    .into_iter()
                    .filter_map(|(kid, pem)| {
                        let rsa = rsa_key_of_pem(pem.as_bytes()).ok()?;
                        Some((kid, PublicKey::Jwt(DecodingKey::from_rsa_der(&rsa))))
                    })
                    .collect();
                Ok(Found::Set(keys, ttl(&answer)))
            }
            SourceKind::Plaid {
                api_base,
                client_id,
                secret,
            } => {
                let url = format!(
                    "{}/webhook_verification_key/get",
                    api_base.trim_end_matches('/')
                );
                let body = serde_json::json!({
                    "client_id": String::from_utf8_lossy(client_id.expose()),
                    "secret": String::from_utf8_lossy(secret.expose()),
                    "key_id": id,
                });
                let answer = self
                    .client
                    .send(Call::post_json(&url, &body))
                    .await
                    .map_err(describe)?;
                // Plaid answers 400 for a key id it never issued: that key does not exist.
                if answer.status == http::StatusCode::BAD_REQUEST {
                    return Ok(Found::Missing);
                }
                if !answer.status.is_success() {
                    return Err(format!("status {}", answer.status));
                }
                plaid_key(&answer.body).map(|k| match k {
                    Some(key) => Found::One(PublicKey::Jwt(key), ttl(&answer)),
                    None => Found::Missing,
                })
            }
            SourceKind::SnsCertificate { hosts } => {
                // The key layer checked already; checked again because a fetch to a host
                // outside the allowlist must be impossible, not merely unlikely.
                if !hosts.allows(id) {
                    return Ok(Found::Missing);
                }
                let answer = self
                    .client
                    .send(Call {
                        max_body: MAX_CERT_BYTES,
                        ..Call::get(id)
                    })
                    .await
                    .map_err(describe)?;
                if answer.status.is_client_error() {
                    return Ok(Found::Missing);
                }
                if !answer.status.is_success() {
                    return Err(format!("status {}", answer.status));
                }
                match rsa_key_of_pem(&answer.body) {
                    Ok(key) => Ok(Found::One(PublicKey::Rsa(key), ttl(&answer))),
                    Err(why) => Err(format!("certificate refused: {why}")),
                }
            }
        }
    }

    async fn ok(&self, call: Call<'_>) -> Result<Fetched, String> {
        let answer = self.client.send(call).await.map_err(describe)?;
        if !answer.status.is_success() {
            return Err(format!("status {}", answer.status));
        }
        Ok(answer)
    }
}

/// Remembers that the source has no key `id` (bounded: old misses make room).
fn record_miss(st: &mut State, id: &str, now: Instant) {
    if st.misses.len() >= MAX_KEYS {
        st.misses
            .retain(|_, at| now.duration_since(*at) < REFETCH_AFTER);
    }
    if st.misses.len() < MAX_KEYS {
        st.misses.insert(id.to_owned(), now);
    }
}

fn describe(e: FetchError) -> String {
    e.to_string()
}

fn ttl(answer: &Fetched) -> Duration {
    answer
        .max_age()
        .unwrap_or(DEFAULT_TTL)
        .clamp(MIN_TTL, MAX_TTL)
}

/// The RSA public key (PKCS#1 DER) of a PEM certificate that is valid now.
pub fn rsa_key_of_pem(pem: &[u8]) -> Result<Vec<u8>, String> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !cert.validity().is_valid() {
        return Err("outside its validity period".to_owned());
    }
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(_)) => Ok(spki.subject_public_key.data.to_vec()),
        _ => Err("not an RSA key".to_owned()),
    }
}

/// The key of a `/webhook_verification_key/get` answer; `None` for an expired key (Plaid
/// sets `expired_at` once a key is retired, and a retired key verifies nothing).
fn plaid_key(body: &[u8]) -> Result<Option<DecodingKey>, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        key: Jwk,
    }
    #[derive(serde::Deserialize)]
    struct Jwk {
        kty: String,
        crv: String,
        x: String,
        y: String,
        #[serde(default)]
        expired_at: Option<serde_json::Value>,
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("not a verification key: {e}"))?;
    let k = answer.key;
    if k.expired_at.is_some_and(|v| !v.is_null()) {
        return Ok(None);
    }
    if k.kty != "EC" || k.crv != "P-256" {
        return Err(format!("unexpected key type {} {}", k.kty, k.crv));
    }
    DecodingKey::from_ec_components(&k.x, &k.y)
        .map(Some)
        .map_err(|e| format!("bad EC key: {e}"))
}

/// Hosts a URL taken from a request may name, as patterns: `sns.*.amazonaws.com` (`*` is
/// exactly one DNS label), optionally with `:port` (without one, only the default port
/// 443 matches). The scheme must be `https`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAllowlist(Vec<String>);

impl std::fmt::Display for HostAllowlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl HostAllowlist {
    /// From patterns, or why one is not a host pattern.
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        for p in patterns {
            let (host, port) = match p.rsplit_once(':') {
                Some((h, port)) => (h, Some(port)),
                None => (p.as_str(), None),
            };
            let label_ok = |l: &str| {
                l == "*"
                    || (!l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            };
            if host.is_empty() || !host.split('.').all(label_ok) {
                return Err(format!("{p:?} is not a host pattern (labels of letters, digits and '-', or '*' for one label)"));
            }
            if port.is_some_and(|p| p.parse::<u16>().is_err()) {
                return Err(format!("{p:?} has an invalid port"));
            }
        }
        Ok(HostAllowlist(
            patterns.iter().map(|p| p.to_ascii_lowercase()).collect(),
        ))
    }

    /// Whether `url` is an https URL on an allowed host.
    pub fn allows(&self, url: &str) -> bool {
        let Ok(uri) = url.parse::<Uri>() else {
            return false;
        };
        let (Some("https"), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        // userinfo ("a@b") is how a URL hides its real host from a sloppy check.
        if authority.as_str().contains('@') {
            return false;
        }
        let host = authority.host().to_ascii_lowercase();
        let port = authority.port_u16();
        self.0.iter().any(|pattern| {
            let (p_host, p_port) = match pattern.rsplit_once(':') {
                Some((h, port)) => (h, port.parse::<u16>().ok()),
                None => (pattern.as_str(), None),
            };
            let port_ok = match p_port {
                Some(want) => port == Some(want),
                None => port.is_none() || port == Some(443),
            };
            let p_labels: Vec<&str> = p_host.split('.').collect();
            let labels: Vec<&str> = host.split('.').collect();
            port_ok
                && p_labels.len() == labels.len()
                && p_labels.iter().zip(&labels).all(|(p, l)| {
                    if *p == "*" {
                        !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    } else {
                        p == l
                    }
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sns() -> HostAllowlist {
        HostAllowlist::new(&[
            "sns.*.amazonaws.com".to_owned(),
            "sns.*.amazonaws.com.cn".to_owned(),
        ])
        .unwrap()
    }

    #[test]
    fn sns_hosts_match_one_region_label_over_https_only() {
        let a = sns();
        assert!(a.allows("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"));
        assert!(a.allows("https://sns.cn-north-1.amazonaws.com.cn/x.pem"));
        assert!(a.allows("https://SNS.eu-west-1.AMAZONAWS.com:443/x.pem"));
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
            "https://sns.a.b.amazonaws.com/x.pem",
            "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "not a url",
        ] {
            assert!(!a.allows(bad), "{bad}");
        }
    }

    #[test]
    fn host_patterns_with_ports_and_bad_patterns() {
        let a = HostAllowlist::new(&["127.0.0.1:8443".to_owned()]).unwrap();
        assert!(a.allows("https://127.0.0.1:8443/cert.pem"));
        assert!(!a.allows("https://127.0.0.1/cert.pem"));
        assert!(!a.allows("https://127.0.0.1:8444/cert.pem"));
        assert!(HostAllowlist::new(&["sns.*.amazon aws.com".to_owned()]).is_err());
        assert!(HostAllowlist::new(&["".to_owned()]).is_err());
        assert!(HostAllowlist::new(&["h:99999".to_owned()]).is_err());
    }

    #[test]
    fn plaid_key_answers() {
        use base64::Engine;
        let point = p256::ecdsa::SigningKey::from_slice(&[7u8; 32])
            .unwrap()
            .verifying_key()
            .to_encoded_point(false);
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        // The fields of Plaid's /webhook_verification_key/get answer.
        let answer = |expired: &str| {
            format!(
                r#"{{"key":{{"alg":"ES256","created_at":1560466150,"crv":"P-256","expired_at":{expired},"kid":"k1","kty":"EC","use":"sig","x":"{}","y":"{}"}},"request_id":"r"}}"#,
                b64(point.x().unwrap()),
                b64(point.y().unwrap())
            )
        };
        assert!(plaid_key(answer("null").as_bytes()).unwrap().is_some());
        assert!(plaid_key(answer("1600000000").as_bytes())
            .unwrap()
            .is_none());
        assert!(plaid_key(b"{}").is_err());
    }
}
