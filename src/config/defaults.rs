//! Every default the config applies when a key is omitted, named once. `gateway.toml.example`
//! and `docs/CONFIG.md` show the same values; the config tests check a few of them.

use std::time::Duration;

/// `server.listen`.
pub const LISTEN: &str = "0.0.0.0:8080";
/// `admin.listen`: loopback unless configured otherwise (CONTRACT §6).
pub const ADMIN_LISTEN: &str = "127.0.0.1:9090";
/// `server.max_body`, and each route's unless it sets its own.
pub const MAX_BODY: usize = 1024 * 1024;
/// `server.read_timeout`: the request head, and the body, must arrive within this.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `server.write_timeout`: a write to a client may make no progress for this long.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// `server.idle_timeout`: a keep-alive connection may sit between requests this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// `server.max_concurrency`.
pub const MAX_CONCURRENCY: usize = 1024;

/// `server.max_concurrency_per_ip`: a quarter of `max_concurrency`, but never fewer than 32
/// slots (or all of them, when there are fewer): a small limit is not split, so that one
/// provider sending from a single address can still use it all.
pub fn max_concurrency_per_ip(max_concurrency: usize) -> usize {
    (max_concurrency / 4).max(32).min(max_concurrency)
}
/// `server.shutdown_grace`.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// `dedup.call_timeout`.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// `dedup.ttl`: covers Stripe's ~3-day retry horizon.
pub const DEDUP_TTL: Duration = Duration::from_secs(72 * 3600);
/// `dedup.lease`.
pub const LEASE: Duration = Duration::from_secs(60);
/// `dedup.max_entries`.
pub const MAX_ENTRIES: usize = 1_000_000;
/// A route's `timeout`.
pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(10);
/// A generic route's `tolerance` when it has a `timestamp_header`.
pub const GENERIC_TOLERANCE: Duration = Duration::from_secs(300);
/// `storage.path`, relative to the config file's folder.
pub const STORAGE_PATH: &str = "hookwall.db";
/// `journal.retain`.
pub const JOURNAL_RETAIN: Duration = Duration::from_secs(7 * 24 * 3600);
/// `journal.max_size`.
pub const JOURNAL_MAX_SIZE: usize = 1024 * 1024 * 1024;
/// `journal.max_stored_body`.
pub const MAX_STORED_BODY: usize = 256 * 1024;
/// `google.key_url` for `google-pubsub`: Google's OAuth2 signing keys (JWKS), which sign
/// the OIDC tokens of authenticated push subscriptions.
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// `google.key_url` for `google-chat`: the Chat service account's published certificates.
pub const GOOGLE_CHAT_CERTS_URL: &str =
    "https://www.googleapis.com/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com";
/// `plaid.api_base`: Plaid's production API (`https://sandbox.plaid.com` for the sandbox).
pub const PLAID_API_BASE: &str = "https://production.plaid.com";
/// `sns.cert_hosts`: where SNS signing certificates (and subscription URLs) may be.
pub const SNS_CERT_HOSTS: &[&str] = &["sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"];
/// How long the SNS subscription confirmation (a GET of `SubscribeURL`) may take.
pub const SNS_CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// `[queue] visibility_timeout`.
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(120);
/// A buffered route's `retry.initial`.
pub const RETRY_INITIAL: Duration = Duration::from_secs(1);
/// A buffered route's `retry.max_delay`.
pub const RETRY_MAX_DELAY: Duration = Duration::from_secs(600);
/// A buffered route's `retry.multiplier`.
pub const RETRY_MULTIPLIER: f64 = 2.0;
/// A buffered route's `retry.max_attempts`.
pub const RETRY_MAX_ATTEMPTS: u32 = 25;
/// A buffered route's `retry.max_age`.
pub const RETRY_MAX_AGE: Duration = Duration::from_secs(72 * 3600);
/// A buffered route's `retry_on`.
pub const RETRY_ON: &[&str] = &[
    "5xx",
    "429",
    "408",
    "upstream_unreachable",
    "upstream_timeout",
    "upstream_error",
];
/// A buffered route's `upstream_concurrency`.
pub const UPSTREAM_CONCURRENCY: usize = 16;
/// A buffered route's `max_queued`.
pub const MAX_QUEUED: u64 = 1_000_000;
/// `reconcile.every`.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5 * 60);
/// `reconcile.lookback`: Stripe keeps events listable for 30 days, GitHub deliveries for 3;
/// 72 h covers the longest retry horizon of the providers that retry.
pub const RECONCILE_LOOKBACK: Duration = Duration::from_secs(72 * 3600);
/// `reconcile.max_pages`: pages one run reads before it stops (the next run continues).
pub const RECONCILE_MAX_PAGES: u32 = 20;
/// `reconcile.timeout`: one call to the provider's API.
pub const RECONCILE_TIMEOUT: Duration = Duration::from_secs(15);
/// Stripe's API.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com";
/// GitHub's REST API.
pub const GITHUB_API_BASE: &str = "https://api.github.com";
