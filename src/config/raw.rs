//! The config file as written: plain serde structs, every field optional so that
//! [`super::compile`] can apply defaults and report every problem with its key path.
//!
//! Unknown keys are not rejected here with `deny_unknown_fields` (which stops at the first
//! one); `serde_ignored` collects all of them and `compile` reports each as an error.
//!
//! Fields are named exactly as the keys in the file and documented in
//! `gateway.toml.example`; repeating that here would only drift.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: RawServer,
    /// `[admin]`.
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[dedup]`.
    #[serde(default)]
    pub dedup: RawDedup,
    /// `[storage]`.
    #[serde(default)]
    pub storage: RawStorage,
    /// `[journal]`.
    #[serde(default)]
    pub journal: RawJournal,
    /// `[queue]`.
    #[serde(default)]
    pub queue: RawQueue,
    /// `[ip_ranges]`.
    pub ip_ranges: Option<RawIpRanges>,
    /// `[telemetry]`.
    pub telemetry: Option<RawTelemetry>,
    /// `[[route]]`.
    #[serde(default)]
    pub route: Vec<RawRoute>,
}

/// `[telemetry]`: `otlp_endpoint = "http://127.0.0.1:4318"`, `service_name`, `export_interval`.
#[derive(Debug, Default, Deserialize)]
pub struct RawTelemetry {
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
    pub export_interval: Option<String>,
}

/// `[ip_ranges]`: `refresh = "24h"`, `urls = { github = "https://..." }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawIpRanges {
    pub refresh: Option<String>,
    pub urls: Option<BTreeMap<String, String>>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawServer {
    pub listen: Option<String>,
    pub max_body: Option<String>,
    pub read_timeout: Option<String>,
    pub write_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_concurrency: Option<i64>,
    pub max_concurrency_per_ip: Option<i64>,
    pub trusted_proxies: Option<Vec<String>>,
    pub shutdown_grace: Option<String>,
    pub tls: Option<RawTls>,
    pub attest: Option<RawAttest>,
}

/// `attest = { secret = { env = "HOOKWALL_ATTEST_KEY" }, previous = [{ env = "..." }] }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawAttest {
    pub secret: Option<StringOrSecret>,
    pub previous: Option<Vec<StringOrSecret>>,
}

/// `tls = { cert = "...", key = "..." }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawTls {
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawAdmin {
    pub listen: Option<String>,
    pub token: Option<StringOrSecret>,
}

/// `[dedup]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawDedup {
    pub store: Option<String>,
    pub redis_url: Option<StringOrSecret>,
    pub redis_cluster: Option<Vec<String>>,
    pub call_timeout: Option<String>,
    pub ttl: Option<String>,
    pub lease: Option<String>,
    pub on_store_error: Option<String>,
    pub max_entries: Option<i64>,
}

/// `[storage]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawStorage {
    pub backend: Option<String>,
    pub path: Option<String>,
    pub postgres_url: Option<StringOrSecret>,
}

/// `[journal]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawJournal {
    pub enabled: Option<bool>,
    pub retain: Option<String>,
    pub max_size: Option<String>,
    pub bodies: Option<String>,
    pub max_stored_body: Option<String>,
}

/// `[queue]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawQueue {
    pub visibility_timeout: Option<String>,
}

/// A buffered route's `retry = { initial, max_delay, multiplier, max_attempts, max_age }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawRetry {
    pub initial: Option<String>,
    pub max_delay: Option<String>,
    pub multiplier: Option<f64>,
    pub max_attempts: Option<i64>,
    pub max_age: Option<String>,
}

/// One `[[route.targets]]` of a fan-out route.
#[derive(Debug, Default, Deserialize)]
pub struct RawTarget {
    pub name: Option<String>,
    pub upstream: Option<String>,
    pub events: Option<Vec<String>>,
    pub upstream_tls: Option<RawUpstreamTls>,
}

/// A route's `journal = false | { bodies, redact_headers, redact_json }`.
#[derive(Debug)]
pub enum RawRouteJournal {
    /// `true` (the `[journal]` settings) or `false` (not journaled).
    Enabled(bool),
    /// Settings of its own.
    Settings(RawRouteJournalSettings),
}

/// The table form of a route's `journal`.
#[derive(Debug, Default, Deserialize)]
pub struct RawRouteJournalSettings {
    pub bodies: Option<String>,
    pub redact_headers: Option<Vec<String>>,
    pub redact_json: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for RawRouteJournal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRouteJournal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "true, false, or a table like { bodies = \"all\", redact_headers = [...] }",
                )
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawRouteJournal::Enabled(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawRouteJournalSettings::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawRouteJournal::Settings)
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[[route]]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawRoute {
    pub name: Option<String>,
    pub path: Option<String>,
    pub methods: Option<Vec<String>>,
    pub upstream: Option<String>,
    pub provider: Option<String>,
    pub secrets: Option<Vec<RawSecret>>,
    pub tolerance: Option<String>,
    pub future_tolerance: Option<String>,
    pub allow_ips: Option<Vec<String>>,
    pub rate_limit: Option<RawRateLimit>,
    pub dedup: Option<RawDedupSetting>,
    pub timeout: Option<String>,
    pub max_body: Option<String>,
    pub forward_headers: Option<RawForwardHeaders>,
    pub public_url: Option<String>,
    pub legacy_sha1: Option<bool>,
    pub upstream_tls: Option<RawUpstreamTls>,
    pub journal: Option<RawRouteJournal>,
    pub delivery: Option<String>,
    pub retry: Option<RawRetry>,
    pub retry_on: Option<Vec<String>>,
    pub upstream_concurrency: Option<i64>,
    pub max_queued: Option<i64>,
    pub targets: Option<Vec<RawTarget>>,
    pub event: Option<String>,
    pub events: Option<Vec<String>>,
    pub enforce: Option<bool>,
    pub verify: Option<RawVerify>,
    pub meta: Option<RawMeta>,
    pub sns: Option<RawSns>,
    pub google: Option<RawGoogle>,
    pub plaid: Option<RawPlaid>,
    pub fetch_tls: Option<RawFetchTls>,
    pub reconcile: Option<RawReconcile>,
    pub attest: Option<RawAttest>,
}

/// `[route.reconcile]`: polling the provider's API for missed deliveries.
#[derive(Debug, Default, Deserialize)]
pub struct RawReconcile {
    pub source: Option<String>,
    pub every: Option<String>,
    pub lookback: Option<String>,
    pub credentials: Option<StringOrSecret>,
    pub api_base: Option<String>,
    pub max_pages: Option<i64>,
    pub timeout: Option<String>,
    pub repo: Option<String>,
    pub org: Option<String>,
    pub hook_id: Option<i64>,
    pub url: Option<String>,
    pub items: Option<String>,
    pub id: Option<String>,
    pub created: Option<String>,
    pub next: Option<String>,
    pub credentials_header: Option<String>,
    pub cursor_format: Option<String>,
}

/// `meta = { verify_token = { env = "META_VERIFY_TOKEN" } }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawMeta {
    pub verify_token: Option<StringOrSecret>,
}

/// `sns = { topics = ["arn:aws:sns:..."], auto_confirm = true, cert_hosts = [...] }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawSns {
    pub topics: Option<Vec<String>>,
    pub auto_confirm: Option<bool>,
    pub cert_hosts: Option<Vec<String>>,
}

/// `google = { audience = "...", service_account = "...", key_url = "..." }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawGoogle {
    pub audience: Option<String>,
    pub service_account: Option<String>,
    pub key_url: Option<String>,
}

/// `plaid = { client_id = { env = ".." }, secret = { env = ".." }, api_base = "..." }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawPlaid {
    pub client_id: Option<StringOrSecret>,
    pub secret: Option<StringOrSecret>,
    pub api_base: Option<String>,
}

/// `fetch_tls = { ca_file = "..." }`: trust for the keys and APIs a route's preset calls.
#[derive(Debug, Default, Deserialize)]
pub struct RawFetchTls {
    pub ca_file: Option<String>,
}

/// `upstream_tls = { ca_file = "...", client_cert = "...", client_key = "..." }`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawUpstreamTls {
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

/// `secrets = [{ env = "X", id = "2026-q4" }]`: exactly one of `value`, `env`, `file`.
#[derive(Debug, Default)]
pub struct RawSecret {
    pub value: Option<SecretText>,
    pub env: Option<String>,
    pub file: Option<String>,
    pub id: Option<String>,
}

/// The fields of a secret table, as serde reads them.
#[derive(Deserialize)]
struct SecretFields {
    value: Option<SecretText>,
    env: Option<String>,
    file: Option<String>,
    id: Option<String>,
}

/// What a secret-bearing key says when it is not a string or a table: never what was
/// written there, which may be the secret itself (serde's own messages quote it).
const NOT_ECHOED: &str = "(what is written there is not shown: it may be a secret)";

/// The error for a value of the `found` kind where visitor `v` wanted another: what was
/// wanted, never what was written.
fn refused<'de, V: Visitor<'de>, E: de::Error>(v: &V, found: &str) -> E {
    E::custom(format_args!(
        "expected {}, found {found} {NOT_ECHOED}",
        Expected(v)
    ))
}

/// Visitor methods that refuse every TOML type but strings and tables without quoting the
/// value, for visitors whose `expecting` says what is wanted.
macro_rules! refuse_without_echo {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(refused(&self, "a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(refused(&self, "a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(refused(&self, "a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(refused(&self, "a number"))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(refused(&self, "an array"))
        }
    };
}

/// A visitor's `expecting` text, for messages.
struct Expected<'a, V>(&'a V);

impl<'de, V: Visitor<'de>> fmt::Display for Expected<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a table like { value = \"...\" }, { env = \"NAME\" } or { file = \"PATH\" }",
                )
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(refused(&self, "a string"))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let f = SecretFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawSecret {
                    value: f.value,
                    env: f.env,
                    file: f.file,
                    id: f.id,
                })
            }
            refuse_without_echo!();
        }
        d.deserialize_any(V)
    }
}

/// A secret written inline (`value = "..."`).
#[derive(Debug, Default)]
pub struct SecretText(pub String);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SecretText(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(refused(&self, "a table"))
            }
            refuse_without_echo!();
        }
        d.deserialize_any(V)
    }
}

/// A plain string, or a secret source table (`{ env = "..." }`).
#[derive(Debug)]
pub enum StringOrSecret {
    /// Written inline.
    Plain(String),
    /// From `value`, `env` or `file`.
    Source(RawSecret),
}

impl<'de> Deserialize<'de> for StringOrSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a table like { env = \"NAME\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringOrSecret::Plain(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawSecret::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(StringOrSecret::Source)
            }
            refuse_without_echo!();
        }
        d.deserialize_any(V)
    }
}

/// `rate_limit = { per_second = 50, burst = 100, by = "route" }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawRateLimit {
    pub per_second: Option<i64>,
    pub per_minute: Option<i64>,
    pub burst: Option<i64>,
    pub by: Option<String>,
    pub shared: Option<bool>,
}

/// `dedup = true | false | { key = "...", required = bool }`.
#[derive(Debug)]
pub enum RawDedupSetting {
    /// `true`: the preset's (or `id_header`'s) key; `false`: off.
    Enabled(bool),
    /// An explicit key.
    Key(RawDedupKey),
}

/// The table form of `dedup`.
#[derive(Debug, Default, Deserialize)]
pub struct RawDedupKey {
    pub key: Option<String>,
    pub required: Option<bool>,
}

impl<'de> Deserialize<'de> for RawDedupSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDedupSetting;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a table like { key = \"header:X-Delivery-Id\" }")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawDedupSetting::Enabled(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawDedupKey::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawDedupSetting::Key)
            }
        }
        d.deserialize_any(V)
    }
}

/// `forward_headers = { strip_signature = false, add = { "X-Env" = "prod" } }`.
#[derive(Debug, Default, Deserialize)]
pub struct RawForwardHeaders {
    pub strip_signature: Option<bool>,
    pub add: Option<BTreeMap<String, String>>,
}

/// `[route.verify]`: the generic scheme.
#[derive(Debug, Default, Deserialize)]
pub struct RawVerify {
    pub algorithm: Option<String>,
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub encoding: Option<String>,
    pub payload: Option<String>,
    pub timestamp_header: Option<String>,
    pub id_header: Option<String>,
}

/// The keys a table at `parent` (a key path such as `route[0].verify`, indices included)
/// may hold, for did-you-mean hints on unknown keys.
pub fn known_keys(parent: &str) -> &'static [&'static str] {
    // Indices do not matter: `route[3].verify` is a route's verify table.
    let mut shape = String::with_capacity(parent.len());
    let mut in_index = false;
    for c in parent.chars() {
        match c {
            '[' => {
                in_index = true;
                shape.push_str("[]");
            }
            ']' => in_index = false,
            c if !in_index => shape.push(c),
            _ => {}
        }
    }
    match shape.as_str() {
        "" => fields::<RawConfig>(),
        "server" => fields::<RawServer>(),
        "server.tls" => fields::<RawTls>(),
        "admin" => fields::<RawAdmin>(),
        "dedup" => fields::<RawDedup>(),
        "storage" => fields::<RawStorage>(),
        "journal" => fields::<RawJournal>(),
        "route[].journal" => fields::<RawRouteJournalSettings>(),
        "route[]" => fields::<RawRoute>(),
        "route[].verify" => fields::<RawVerify>(),
        "route[].rate_limit" => fields::<RawRateLimit>(),
        "route[].dedup" => fields::<RawDedupKey>(),
        "route[].forward_headers" => fields::<RawForwardHeaders>(),
        "route[].upstream_tls" => fields::<RawUpstreamTls>(),
        "route[].meta" => fields::<RawMeta>(),
        "route[].sns" => fields::<RawSns>(),
        "route[].google" => fields::<RawGoogle>(),
        "route[].plaid" => fields::<RawPlaid>(),
        "route[].fetch_tls" => fields::<RawFetchTls>(),
        "route[].reconcile" => fields::<RawReconcile>(),
        "server.attest" | "route[].attest" => fields::<RawAttest>(),
        "ip_ranges" => fields::<RawIpRanges>(),
        "telemetry" => fields::<RawTelemetry>(),
        "admin.token"
        | "route[].secrets[]"
        | "route[].meta.verify_token"
        | "route[].plaid.client_id"
        | "route[].plaid.secret"
        | "route[].reconcile.credentials"
        | "server.attest.secret"
        | "server.attest.previous[]"
        | "route[].attest.secret"
        | "route[].attest.previous[]" => fields::<SecretFields>(),
        _ => &[],
    }
}

/// The field names serde's derive gives a struct, read by asking it to deserialize itself
/// from a deserializer that only records what `deserialize_struct` is told.
fn fields<T: Deserialize<'static>>() -> &'static [&'static str] {
    struct Fields(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Done;
    impl fmt::Display for Done {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("field names recorded")
        }
    }
    impl std::error::Error for Done {}
    impl de::Error for Done {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Done
        }
    }
    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Done;
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Done> {
            self.0 = Some(fields);
            Err(Done)
        }
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Done> {
            Err(Done)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut probe = Fields(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}
