//! The configuration file as written (raw serde types) and its compiled, validated form.
//!
//! Parsing is two steps, shared by `hookwall check`, `hookwall run` and reload:
//! 1. [`raw`]: TOML → plain structs. Unknown keys are collected (not fatal at the first one)
//!    so that `check` can list every problem at once.
//! 2. [`compile`]: raw structs → [`Config`], whose types can only hold valid values
//!    (parsed CIDRs, non-zero rates, loaded secrets, prepared MAC keys). Every error is
//!    collected with its key path and the offending value.

pub mod compile;
pub mod defaults;
pub mod raw;
mod suggest;
pub mod units;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};
use ipnet::IpNet;

pub use compile::{
    compile_admin, compile_file, compile_route, compile_str, CompileErrors, ConfigError,
};
pub use suggest::hint as did_you_mean;

use crate::secret::Secret;
use crate::verify::Verifier;

/// A fully validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from (for reload and messages).
    pub source: PathBuf,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[dedup]`.
    pub dedup: DedupConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[journal]`.
    pub journal: JournalConfig,
    /// `[queue]`.
    pub queue: QueueConfig,
    /// `[ip_ranges]`.
    pub ip_ranges: IpRangesConfig,
    /// `[telemetry]`.
    pub telemetry: TelemetryConfig,
    /// `[[route]]`, in file order.
    pub routes: Vec<Arc<RouteConfig>>,
    /// Things that are valid but probably not what the operator meant.
    pub warnings: Vec<String>,
}

impl Config {
    /// The file this config came from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

/// `[telemetry]`: OTLP/HTTP export of spans (CONTRACT §13), off unless an endpoint is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// Where spans are POSTed: `otlp_endpoint` + `/v1/traces`; `None`: no export.
    pub traces_url: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// How often finished spans are sent.
    pub export_interval: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            traces_url: None,
            service_name: "hookwall".to_owned(),
            export_interval: Duration::from_secs(5),
        }
    }
}

/// `[ip_ranges]`: refreshing the provider lists `allow_ips` names (`"@github"`).
#[derive(Debug, Clone, Default)]
pub struct IpRangesConfig {
    /// How often the published lists are fetched again; `None`: the shipped lists only.
    pub refresh: Option<Duration>,
    /// Lists fetched from somewhere other than the provider's published URL.
    pub urls: Vec<(&'static str, String)>,
}

impl IpRangesConfig {
    /// Where list `name` is fetched from: the override, else the provider's URL.
    pub fn url(&self, name: &str) -> Option<&str> {
        self.urls
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, u)| u.as_str())
            .or_else(|| crate::ip_ranges::source(name).map(|s| s.url))
    }
}

/// `[server]`: the proxy listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to accept provider traffic on.
    pub listen: SocketAddr,
    /// Default body cap for routes.
    pub max_body: usize,
    /// Headers and body must arrive within this.
    pub read_timeout: Duration,
    /// A write to a client may make no progress for this long.
    pub write_timeout: Duration,
    /// A keep-alive connection may sit between requests this long.
    pub idle_timeout: Duration,
    /// Requests in flight beyond this are shed with 503.
    pub max_concurrency: usize,
    /// Requests in flight from one client beyond this are shed with 503.
    pub max_concurrency_per_ip: usize,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// How long in-flight requests get after SIGTERM.
    pub shutdown_grace: Duration,
    /// TLS termination: the files and the key loaded from them when the config compiled.
    pub tls: Option<(
        crate::transport::tls::TlsFiles,
        std::sync::Arc<rustls::sign::CertifiedKey>,
    )>,
    /// `attest`: the keys every route without its own signs forwarded deliveries with.
    pub attest: Option<std::sync::Arc<crate::attest::AttestKeys>>,
}

/// `[admin]`: the operator listener.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Address of `/metrics`, `/healthz`, `/readyz`, `/routes`.
    pub listen: SocketAddr,
    /// Bearer token required by every admin endpoint but `/healthz`, `/metrics` and the
    /// admin page's files.
    pub token: Option<Secret>,
}

/// Which dedup store backs the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// Embedded, bounded, per-instance.
    Memory,
    /// One Redis (URL kept as a secret: it may carry a password).
    Redis(Secret),
    /// A Redis Cluster, by its seed nodes.
    RedisCluster(Vec<Secret>),
}

/// What to do when the dedup store does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// 503 `dedup_unavailable` + Retry-After: nothing is lost, the provider retries.
    Reject,
    /// Forward without dedup: availability over exactly-once.
    Allow,
}

/// `[dedup]`.
#[derive(Debug, Clone)]
pub struct DedupConfig {
    /// Which store.
    pub store: StoreKind,
    /// Per store call.
    pub call_timeout: Duration,
    /// How long a delivered id is remembered.
    pub ttl: Duration,
    /// How long an in-flight reservation lives.
    pub lease: Duration,
    /// Failure policy.
    pub on_store_error: OnStoreError,
    /// Memory store bound.
    pub max_entries: usize,
}

/// `[storage]`: where the journal (and later the queue and cursors) live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Which engine.
    pub backend: StorageBackend,
}

/// The storage engine and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// One file (relative paths are taken from the config file's folder).
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL shared by the fleet (the URL is a secret: it may hold a password).
    Postgres {
        /// The connection URL.
        url: Secret,
    },
}

/// Whose request bodies the journal keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPolicy {
    /// Every body read, refused requests included (needed to re-verify them later).
    All,
    /// Bodies of deliveries that passed every check of the gateway.
    Accepted,
    /// None.
    None,
}

/// `[journal]`.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// Whether anything is journaled.
    pub enabled: bool,
    /// Entries older than this are deleted.
    pub retain: Duration,
    /// The journal is kept under this many bytes, oldest first.
    pub max_size: u64,
    /// Default body policy of routes.
    pub bodies: BodyPolicy,
    /// Longer bodies are cut and marked truncated.
    pub max_stored_body: usize,
}

/// A route's journal settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteJournal {
    /// Whose bodies are kept.
    pub bodies: BodyPolicy,
    /// Headers stored as `[redacted]` (besides the credential headers always redacted).
    pub redact_headers: Vec<HeaderName>,
    /// JSON pointers blanked in stored JSON bodies.
    pub redact_json: Vec<String>,
}

/// Which client a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitBy {
    /// One bucket for the whole route.
    Route,
    /// One bucket per client IP.
    Ip,
}

/// A validated rate limit: `burst` cells, refilled one per `period`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Time to refill one request.
    pub period: Duration,
    /// Bucket size.
    pub burst: NonZeroU32,
    /// Keying.
    pub by: RateLimitBy,
    /// Enforced together by every instance through Redis.
    pub shared: bool,
}

/// Where the dedup id comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DedupSource {
    /// A request header.
    Header(HeaderName),
    /// The first of these headers that is present (presets whose provider renamed it).
    AnyHeader(Vec<HeaderName>),
    /// A JSON pointer into the body.
    JsonPointer(String),
    /// The SHA-256 of the body.
    BodySha256,
}

impl std::fmt::Display for DedupSource {
    /// As the config writes it (`header:X`, `json:/id`, `body-sha256`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DedupSource::Header(h) => write!(f, "header:{h}"),
            DedupSource::AnyHeader(hs) => {
                let names: Vec<&str> = hs.iter().map(HeaderName::as_str).collect();
                write!(f, "header:{}", names.join("|"))
            }
            DedupSource::JsonPointer(p) => write!(f, "json:{p}"),
            DedupSource::BodySha256 => f.write_str("body-sha256"),
        }
    }
}

/// Where a delivery's event type is (CONTRACT §12), for event filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSource {
    /// A request header (GitLab `X-Gitlab-Event`).
    Header(HeaderName),
    /// The first of these headers present (Shopify: `X-Shopify-Topic`, or `shopify-topic`
    /// on Events deliveries).
    AnyHeader(Vec<HeaderName>),
    /// A JSON pointer into the body (Stripe `/type`).
    Json(String),
    /// A header, then `.` and a JSON field when the body has it (GitHub: `pull_request`
    /// and `opened` make `pull_request.opened`).
    HeaderDotJson(HeaderName, String),
}

impl std::fmt::Display for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventSource::Header(h) => write!(f, "header:{h}"),
            EventSource::AnyHeader(hs) => {
                let names: Vec<&str> = hs.iter().map(HeaderName::as_str).collect();
                write!(f, "header:{}", names.join(" | "))
            }
            EventSource::Json(p) => write!(f, "json:{p}"),
            EventSource::HeaderDotJson(h, p) => write!(f, "header:{h} + \".\" + json:{p}"),
        }
    }
}

/// A route's dedup settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupKeyConfig {
    /// Where the id comes from.
    pub source: DedupSource,
    /// Whether a request without an id is refused (400) or forwarded without dedup.
    pub required: bool,
}

/// The timestamp window, in seconds either side of now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// How old a signed timestamp may be.
    pub past: Duration,
    /// How far ahead of our clock it may be.
    pub future: Duration,
}

/// What is added to or removed from the forwarded headers.
#[derive(Debug, Clone, Default)]
pub struct ForwardHeaders {
    /// Remove the signature header(s) before forwarding.
    pub strip_signature: bool,
    /// Extra headers, set (replacing any the provider sent).
    pub add: Vec<(HeaderName, HeaderValue)>,
}

/// One `[[route]]`, validated.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Unique name (metrics label).
    pub name: String,
    /// Exact path.
    pub path: String,
    /// Accepted methods (default POST).
    pub methods: Vec<Method>,
    /// Where clean deliveries go.
    pub upstream: Uri,
    /// TLS to an `https://` upstream (system roots, `ca_file`, mTLS identity).
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
    /// Preset name, or `generic`.
    pub provider: String,
    /// Signature scheme and keys.
    pub verifier: Verifier,
    /// Timestamp window, when the scheme has a timestamp.
    pub window: Option<Window>,
    /// Client networks allowed; empty (with no `allow_lists`) = anyone.
    pub allow_ips: Vec<IpNet>,
    /// Provider lists (`"@github"` in `allow_ips`, names without `@`) also allowed.
    pub allow_lists: Vec<String>,
    /// Optional local rate limit.
    pub rate_limit: Option<RateLimitConfig>,
    /// Dedup settings, `None` when off.
    pub dedup: Option<DedupKeyConfig>,
    /// Upstream response timeout.
    pub timeout: Duration,
    /// Body cap.
    pub max_body: usize,
    /// Forwarded header edits.
    pub forward_headers: ForwardHeaders,
    /// The URL the provider calls, for URL-signing schemes.
    pub public_url: Option<String>,
    /// Secret labels (id or index), in order, for metrics.
    pub secret_labels: Vec<String>,
    /// A provider control request the gateway answers itself.
    pub handshake: Option<crate::verify::presets::HandshakeKind>,
    /// Journal settings, `None` when the route is not journaled.
    pub journal: Option<RouteJournal>,
    /// The route's secrets as configured (for signature-failure diagnosis: another route's
    /// secret matching means the provider was pointed at the wrong path).
    pub secrets: Vec<Secret>,
    /// What some presets need besides secrets (Meta, Asana, SNS).
    pub provider_settings: ProviderSettings,
    /// Where the delivery's event type is (the preset's, or the route's `event`).
    pub event: Option<EventSource>,
    /// The route's event patterns (`*` matches any run of characters); empty = every
    /// event. A verified delivery they do not want is answered `200 ignored`.
    pub events: Vec<String>,
    /// `false`: shadow mode, every check runs but the delivery is forwarded anyway with
    /// `X-Hookwall-Would-Reject` (CONTRACT §12).
    pub enforce: bool,
    /// Forwarded at once (`sync`) or queued and delivered with retries (`buffered`).
    pub delivery: Delivery,
    /// `[route.reconcile]`: the provider API polled for deliveries the webhooks missed.
    pub reconcile: Option<Arc<ReconcileConfig>>,
    /// `attest`: the keys forwarded deliveries are signed with (the route's, else
    /// `[server]`'s), `None` when hookwall does not attest.
    pub attest: Option<Arc<crate::attest::AttestKeys>>,
}

impl RouteConfig {
    /// Whether every scheme that can verify this route's deliveries also signs its dedup
    /// id. When one does not, dedup binds the id to the body (`layers/dedup/key.rs`), so
    /// a captured body and signature resent under another id cannot claim that id.
    pub fn id_signed(&self) -> bool {
        let Some(dedup) = &self.dedup else {
            return false;
        };
        let schemes = &self.verifier.schemes;
        !schemes.is_empty()
            && schemes.iter().all(|k| {
                let s = &k.scheme;
                match &dedup.source {
                    DedupSource::Header(h) => s.signed_id_header() == Some(h),
                    DedupSource::AnyHeader(names) => {
                        s.signed_id_header().is_some_and(|h| names.contains(h))
                    }
                    DedupSource::JsonPointer(p) => {
                        s.signs_body() || s.signed_json_id() == Some(p.as_str())
                    }
                    // The key is the body itself.
                    DedupSource::BodySha256 => true,
                }
            })
    }
}

/// `[route.reconcile]`, validated (CONTRACT §11).
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// Where events are listed, and how.
    pub source: ReconcileSource,
    /// Time between runs.
    pub every: Duration,
    /// How far back the first run (and a run after downtime) looks.
    pub lookback: Duration,
    /// The API credential (a restricted key, a token).
    pub credentials: Secret,
    /// The API's base URL, without a trailing slash (`https://`, or `http://` to loopback).
    pub api_base: String,
    /// Pages one run reads at most.
    pub max_pages: u32,
    /// Deadline of one API call.
    pub timeout: Duration,
}

/// The three sources of CONTRACT §11.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconcileSource {
    /// `GET /v1/events`: each event forwarded with its id as the dedup id.
    Stripe,
    /// A hook's deliveries; failed ones are redelivered by GitHub.
    Github {
        /// `repos/{owner}/{name}` or `orgs/{org}`: the hook's owner in API paths.
        owner: String,
        /// The hook.
        hook_id: u64,
    },
    /// Any API that lists events after a cursor.
    Generic(GenericSource),
}

/// A generic source's template and pointers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericSource {
    /// The first page's URL, `{cursor}` replaced by the cursor (URL-encoded).
    pub url: String,
    /// JSON pointer to the array of events in a page (`""`: the page is the array).
    pub items: String,
    /// JSON pointer to an event's id, within the event.
    pub id: String,
    /// JSON pointer to an event's creation time (unix seconds or RFC 3339).
    pub created: Option<String>,
    /// JSON pointer to the next page's URL; without it the `Link: rel="next"` header.
    pub next: Option<String>,
    /// The header the credentials go in (`Authorization` sends `Bearer <credentials>`).
    pub credentials_header: http::HeaderName,
    /// How the cursor is written before any event has been seen.
    pub cursor_format: CursorFormat,
}

/// How a generic source's first cursor (now − lookback) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorFormat {
    /// Unix seconds.
    Unix,
    /// RFC 3339 (UTC).
    Rfc3339,
}

impl ReconcileSource {
    /// `"stripe"`, `"github"` or `"generic"` (labels, `X-Hookwall-Verified`).
    pub fn name(&self) -> &'static str {
        match self {
            ReconcileSource::Stripe => "stripe",
            ReconcileSource::Github { .. } => "github",
            ReconcileSource::Generic(_) => "generic",
        }
    }
}

/// `[queue]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a claimed delivery stays claimed before another worker may take it again
    /// (its claimer is presumed dead).
    pub visibility_timeout: Duration,
}

/// How a route hands deliveries to its upstream.
#[derive(Debug, Clone, Default)]
pub enum Delivery {
    /// Forward and answer with the upstream's answer (CONTRACT §1–§7).
    #[default]
    Sync,
    /// Queue durably, answer `202`, deliver with retries (CONTRACT §10).
    Buffered(Arc<Buffered>),
}

impl Delivery {
    /// The buffered settings, if the route is buffered.
    pub fn buffered(&self) -> Option<&Arc<Buffered>> {
        match self {
            Delivery::Sync => None,
            Delivery::Buffered(b) => Some(b),
        }
    }
}

/// A buffered route's delivery settings.
#[derive(Debug, Clone)]
pub struct Buffered {
    /// When to try again.
    pub retry: RetryPolicy,
    /// Which failures are tried again (the others dead-letter at once).
    pub retry_on: RetryOn,
    /// Most attempts in flight per target.
    pub upstream_concurrency: usize,
    /// Most deliveries queued for the route; beyond, `503 queue_full`.
    pub max_queued: u64,
    /// Where deliveries go: the route's `upstream` (one target named `default`), or its
    /// `[[route.targets]]`.
    pub targets: Vec<Target>,
}

/// One place a buffered route delivers to.
#[derive(Debug, Clone)]
pub struct Target {
    /// `default` for a route's own upstream, else the target's name.
    pub name: String,
    /// Where.
    pub upstream: Uri,
    /// TLS to an `https://` upstream.
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
    /// Event patterns (`*` matches any run of characters); empty = every event.
    pub events: Vec<String>,
}

/// The name of the one target of a buffered route without `[[route.targets]]`.
pub const DEFAULT_TARGET: &str = "default";

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first delay's cap.
    pub initial: Duration,
    /// No delay is longer.
    pub max_delay: Duration,
    /// Each attempt's cap is the previous one's times this.
    pub multiplier: f64,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// A delivery older than this is dead-lettered instead of tried again.
    pub max_age: Duration,
}

/// What an attempt's failure is tried again on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryOn {
    /// Whole status classes: `4` for `"4xx"`, `5` for `"5xx"`.
    pub classes: Vec<u16>,
    /// Single statuses (`"429"`).
    pub statuses: Vec<u16>,
    /// Failures without a status: `upstream_unreachable`, `upstream_timeout`,
    /// `upstream_error`.
    pub failures: Vec<String>,
}

impl RetryOn {
    /// Whether an upstream answer with `status` is tried again.
    pub fn status(&self, status: u16) -> bool {
        self.statuses.contains(&status) || self.classes.contains(&(status / 100))
    }

    /// Whether a failure without an answer (`reason`) is tried again.
    pub fn failure(&self, reason: &str) -> bool {
        self.failures.iter().any(|f| f == reason)
    }
}

/// Per-route settings of the presets that need more than secrets.
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    /// `meta.verify_token`: answers Meta's verification GET.
    pub meta_verify_token: Option<Secret>,
    /// Asana: the secret learned from the handshake, stored in the route's secret file.
    pub learned: Option<Arc<crate::verify::learned::LearnedSecret>>,
    /// `sns = { ... }`.
    pub sns: Option<SnsSettings>,
}

/// `sns = { topics, auto_confirm, cert_hosts }`, validated.
#[derive(Debug, Clone)]
pub struct SnsSettings {
    /// Topic ARNs whose messages are accepted.
    pub topics: Vec<String>,
    /// Confirm subscriptions by fetching `SubscribeURL`.
    pub auto_confirm: bool,
    /// Hosts `SigningCertURL` and `SubscribeURL` may name.
    pub hosts: crate::verify::fetched_keys::HostAllowlist,
    /// Trust for the confirmation GET (`fetch_tls`).
    pub tls: Arc<rustls::ClientConfig>,
}
