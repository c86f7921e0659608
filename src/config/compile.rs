//! Raw config → [`Config`]: defaults applied, every value validated, every problem collected.
//!
//! `hookwall check`, `hookwall run` and reload all go through [`compile_file`], so a file
//! that passes `check` starts, and one that fails is refused by reload.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};
use ipnet::IpNet;

mod scheme;

use super::raw::{
    RawAdmin, RawConfig, RawDedup, RawDedupSetting, RawRoute, RawSecret, RawServer, SecretText,
    StringOrSecret,
};
use super::units::{parse_duration, parse_size};
use super::{
    AdminConfig, Config, DedupConfig, DedupKeyConfig, DedupSource, ForwardHeaders, OnStoreError,
    RateLimitBy, RateLimitConfig, RouteConfig, ServerConfig, StoreKind, Window,
};
use crate::secret::Secret;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `line:col` when TOML gave a position.
    pub position: Option<(usize, usize)>,
    /// Key path such as `route[0].allow_ips[1]`, empty for file-level problems.
    pub path: String,
    /// What is wrong, naming the bad value (never a secret).
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, col)) = self.position {
            write!(f, "{line}:{col}: ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone)]
pub struct CompileErrors {
    /// The file.
    pub source: PathBuf,
    /// At least one.
    pub errors: Vec<ConfigError>,
}

impl CompileErrors {
    /// One line per problem, `file:line:col: path: message`.
    pub fn lines(&self) -> Vec<String> {
        let file = self.source.display();
        self.errors
            .iter()
            .map(|e| match e.position {
                Some(_) => format!("{file}:{e}"),
                None => format!("{file}: {e}"),
            })
            .collect()
    }
}

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for CompileErrors {}

/// Longest route name (it is in every metric sample and log line of the route).
const MAX_ROUTE_NAME: usize = 100;

/// What a route name may be made of.
fn route_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/')
}

/// Reads and compiles a config file.
pub fn compile_file(path: &Path) -> Result<Config, CompileErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => compile_str(&text, path),
        Err(e) => Err(CompileErrors {
            source: path.to_owned(),
            errors: vec![ConfigError {
                position: None,
                path: String::new(),
                message: format!("cannot read config file: {e}"),
            }],
        }),
    }
}

/// Compiles config text; `source` names the file in messages and resolves nothing else.
pub fn compile_str(text: &str, source: &Path) -> Result<Config, CompileErrors> {
    let mut cx = Compiler::default();
    let raw = parse(text, &mut cx);
    let config = raw.and_then(|raw| cx.config(raw, source));
    match config {
        Some(config) if cx.errors.is_empty() => Ok(config),
        _ => Err(CompileErrors {
            source: source.to_owned(),
            errors: cx.errors,
        }),
    }
}

/// TOML → raw structs, collecting unknown keys instead of stopping at the first.
fn parse(text: &str, cx: &mut Compiler) -> Option<RawConfig> {
    let de = match toml::Deserializer::parse(text) {
        Ok(de) => de,
        Err(e) => {
            cx.toml_error(text, &e);
            return None;
        }
    };
    let mut unknown = Vec::new();
    let raw = serde_ignored::deserialize(de, |path| unknown.push(path_to_key(&path.to_string())));
    match raw {
        Ok(raw) => {
            for key in unknown {
                cx.error(&key, "unknown key".to_owned());
            }
            Some(raw)
        }
        Err(e) => {
            cx.toml_error(text, &e);
            None
        }
    }
}

/// `route.0.verify.foo` (serde_ignored's spelling) → `route[0].verify.foo`.
fn path_to_key(dotted: &str) -> String {
    let mut out = String::new();
    // `?` marks an `Option` layer in serde_ignored's path; it is not a key.
    for seg in dotted.split('.').filter(|s| *s != "?") {
        if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[derive(Default)]
struct Compiler {
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
}

impl Compiler {
    fn error(&mut self, path: &str, message: String) {
        self.errors.push(ConfigError {
            position: None,
            path: path.to_owned(),
            message,
        });
    }

    fn toml_error(&mut self, text: &str, e: &toml::de::Error) {
        let position = e.span().map(|s| line_col(text, s.start));
        self.errors.push(ConfigError {
            position,
            path: String::new(),
            message: e.message().trim().to_owned(),
        });
    }

    /// `Some(v)` on success; on failure records the error and returns `None`.
    fn check<T>(&mut self, path: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.error(path, m)).ok()
    }

    fn duration(&mut self, path: &str, raw: Option<&str>, default: Duration) -> Duration {
        match raw {
            None => default,
            Some(s) => self.check(path, parse_duration(s)).unwrap_or(default),
        }
    }

    fn size(&mut self, path: &str, raw: Option<&str>, default: usize) -> usize {
        match raw {
            None => default,
            Some(s) => match self.check(path, parse_size(s)) {
                Some(0) => {
                    self.error(path, format!("size {s:?} must be greater than zero"));
                    default
                }
                Some(n) => n,
                None => default,
            },
        }
    }

    fn socket_addr(&mut self, path: &str, raw: Option<&str>, default: &str) -> SocketAddr {
        let s = raw.unwrap_or(default);
        let fallback = || SocketAddr::from(([127, 0, 0, 1], 0));
        self.check(
            path,
            s.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "invalid listen address {s:?}; write e.g. \"0.0.0.0:8080\" or \"[::1]:9090\""
                )
            }),
        )
        .unwrap_or_else(fallback)
    }

    fn cidrs(&mut self, path: &str, raw: Option<&[String]>) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, s) in raw.unwrap_or_default().iter().enumerate() {
            let parsed = s.parse::<IpNet>().or_else(|_| {
                // A bare address means that one host.
                s.parse::<std::net::IpAddr>().map(IpNet::from)
            });
            match parsed {
                Ok(net) => out.push(net.trunc()),
                Err(_) => self.error(
                    &format!("{path}[{i}]"),
                    format!("invalid CIDR {s:?}; write e.g. \"10.0.0.0/8\" or \"2600:1f16::/32\""),
                ),
            }
        }
        out
    }

    fn secret(&mut self, path: &str, raw: &RawSecret) -> Option<Secret> {
        let sources = [raw.value.is_some(), raw.env.is_some(), raw.file.is_some()];
        if sources.iter().filter(|s| **s).count() != 1 {
            self.error(
                path,
                "needs exactly one of `value`, `env` or `file`".to_owned(),
            );
            return None;
        }
        if let Some(SecretText(v)) = &raw.value {
            if v.is_empty() {
                self.error(path, "secret `value` is empty".to_owned());
                return None;
            }
            return Some(Secret::new(v.as_bytes()));
        }
        if let Some(name) = &raw.env {
            return match std::env::var_os(name) {
                Some(v) if !v.is_empty() => Some(Secret::new(v.into_encoded_bytes())),
                Some(_) => {
                    self.error(path, format!("environment variable {name} is empty"));
                    None
                }
                None => {
                    self.error(path, format!("environment variable {name} is not set"));
                    None
                }
            };
        }
        let file = raw.file.as_deref().unwrap_or_default();
        match std::fs::read(file) {
            Ok(mut bytes) => {
                // Files written by editors and `echo` end in a newline that is not part of
                // the secret.
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                if bytes.is_empty() {
                    self.error(path, format!("secret file {file:?} is empty"));
                    return None;
                }
                Some(Secret::new(bytes))
            }
            Err(e) => {
                self.error(path, format!("cannot read secret file {file:?}: {e}"));
                None
            }
        }
    }

    fn string_or_secret(&mut self, path: &str, raw: &StringOrSecret) -> Option<Secret> {
        match raw {
            StringOrSecret::Plain(s) if s.is_empty() => {
                self.error(path, "is empty".to_owned());
                None
            }
            StringOrSecret::Plain(s) => Some(Secret::new(s.as_bytes())),
            StringOrSecret::Source(src) => {
                if src.id.is_some() {
                    self.error(&format!("{path}.id"), "unknown key".to_owned());
                }
                self.secret(path, src)
            }
        }
    }

    fn header_name(&mut self, path: &str, s: &str) -> Option<HeaderName> {
        self.check(
            path,
            HeaderName::from_bytes(s.as_bytes()).map_err(|_| format!("invalid header name {s:?}")),
        )
    }

    fn config(&mut self, raw: RawConfig, source: &Path) -> Option<Config> {
        let server = self.server(&raw.server);
        let admin = self.admin(&raw.admin);
        let dedup = self.dedup(&raw.dedup);
        let mut routes = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut paths: HashMap<String, usize> = HashMap::new();
        if raw.route.is_empty() {
            self.error("route", "no [[route]] is configured".to_owned());
        }
        for (i, r) in raw.route.iter().enumerate() {
            let at = format!("route[{i}]");
            if let Some(name) = &r.name {
                if let Some(first) = names.insert(name.clone(), i) {
                    self.error(
                        &format!("{at}.name"),
                        format!("duplicate route name {name:?} (also route[{first}])"),
                    );
                }
            }
            if let Some(path) = &r.path {
                if let Some(first) = paths.insert(path.clone(), i) {
                    self.error(
                        &format!("{at}.path"),
                        format!("duplicate path {path:?} (also route[{first}])"),
                    );
                }
            }
            if let Some(route) = self.route(&at, r, &server, &dedup) {
                routes.push(Arc::new(route));
            }
        }
        Some(Config {
            source: source.to_owned(),
            server,
            admin,
            dedup,
            routes,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    fn server(&mut self, raw: &RawServer) -> ServerConfig {
        let tls = raw.tls.as_ref().and_then(|t| match (&t.cert, &t.key) {
            (Some(cert), Some(key)) => {
                let files = crate::tls::TlsFiles {
                    cert: cert.into(),
                    key: key.into(),
                };
                let loaded = crate::tls::load(&files);
                self.check("server.tls", loaded).map(|k| (files, k))
            }
            _ => {
                self.error(
                    "server.tls",
                    "needs both `cert` and `key` (PEM file paths)".to_owned(),
                );
                None
            }
        });
        let max_concurrency = match raw.max_concurrency {
            None => 1024,
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(n) => {
                self.error(
                    "server.max_concurrency",
                    format!("must be at least 1, got {n}"),
                );
                1024
            }
        };
        ServerConfig {
            listen: self.socket_addr("server.listen", raw.listen.as_deref(), "0.0.0.0:8080"),
            max_body: self.size("server.max_body", raw.max_body.as_deref(), 1024 * 1024),
            read_timeout: self.nonzero_duration(
                "server.read_timeout",
                raw.read_timeout.as_deref(),
                Duration::from_secs(10),
            ),
            max_concurrency,
            trusted_proxies: self.cidrs("server.trusted_proxies", raw.trusted_proxies.as_deref()),
            shutdown_grace: self.duration(
                "server.shutdown_grace",
                raw.shutdown_grace.as_deref(),
                Duration::from_secs(30),
            ),
            tls,
        }
    }

    fn nonzero_duration(&mut self, path: &str, raw: Option<&str>, default: Duration) -> Duration {
        let d = self.duration(path, raw, default);
        if d.is_zero() {
            self.error(path, "must be greater than zero".to_owned());
            return default;
        }
        d
    }

    fn admin(&mut self, raw: &RawAdmin) -> AdminConfig {
        AdminConfig {
            listen: self.socket_addr("admin.listen", raw.listen.as_deref(), "127.0.0.1:9090"),
            token: raw
                .token
                .as_ref()
                .and_then(|t| self.string_or_secret("admin.token", t)),
        }
    }

    /// `store = "redis"`: exactly one of `redis_url` and `redis_cluster`, each a valid URL.
    /// URLs may carry a password, so messages never repeat them.
    fn redis_store(&mut self, raw: &RawDedup) -> Option<StoreKind> {
        let valid = |cx: &mut Self, path: &str, url: &Secret| {
            let text = String::from_utf8_lossy(url.expose()).into_owned();
            match redis::Client::open(text.as_str()) {
                Ok(_) => true,
                Err(e) => {
                    cx.error(
                        path,
                        format!("invalid Redis URL ({}); write e.g. \"redis://127.0.0.1:6379\", \"rediss://host:6380\" or \"redis+unix:///run/redis.sock\" (the value is not shown: it may hold a password)", e.category()),
                    );
                    false
                }
            }
        };
        match (&raw.redis_url, &raw.redis_cluster) {
            (Some(url), None) => {
                let url = self.string_or_secret("dedup.redis_url", url)?;
                valid(self, "dedup.redis_url", &url).then_some(StoreKind::Redis(url))
            }
            (None, Some(nodes)) if !nodes.is_empty() => {
                let mut ok = true;
                let urls: Vec<Secret> = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let s = Secret::new(n.as_bytes());
                        ok &= valid(self, &format!("dedup.redis_cluster[{i}]"), &s);
                        s
                    })
                    .collect();
                ok.then_some(StoreKind::RedisCluster(urls))
            }
            (None, _) => {
                self.error(
                    "dedup.redis_url",
                    "is required when store = \"redis\" (or give redis_cluster = [urls...])"
                        .to_owned(),
                );
                None
            }
            (Some(_), Some(_)) => {
                self.error(
                    "dedup.redis_cluster",
                    "give either redis_url (one Redis) or redis_cluster (a cluster), not both"
                        .to_owned(),
                );
                None
            }
        }
    }

    fn dedup(&mut self, raw: &RawDedup) -> DedupConfig {
        let store = match raw.store.as_deref() {
            None | Some("memory") => {
                if raw.redis_url.is_some() || raw.redis_cluster.is_some() {
                    self.warnings.push(
                        "dedup.redis_url / redis_cluster are ignored while store = \"memory\""
                            .to_owned(),
                    );
                }
                StoreKind::Memory
            }
            Some("redis") => self.redis_store(raw).unwrap_or(StoreKind::Memory),
            Some(other) => {
                self.error(
                    "dedup.store",
                    format!("unknown store {other:?} (expected \"memory\" or \"redis\")"),
                );
                StoreKind::Memory
            }
        };
        let on_store_error = match raw.on_store_error.as_deref() {
            None | Some("reject") => OnStoreError::Reject,
            Some("allow") => OnStoreError::Allow,
            Some(other) => {
                self.error(
                    "dedup.on_store_error",
                    format!("unknown policy {other:?} (expected \"reject\" or \"allow\")"),
                );
                OnStoreError::Reject
            }
        };
        let max_entries = match raw.max_entries {
            None => 1_000_000,
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(n) => {
                self.error("dedup.max_entries", format!("must be at least 1, got {n}"));
                1_000_000
            }
        };
        DedupConfig {
            store,
            call_timeout: self.nonzero_duration(
                "dedup.call_timeout",
                raw.call_timeout.as_deref(),
                Duration::from_millis(250),
            ),
            ttl: self.nonzero_duration(
                "dedup.ttl",
                raw.ttl.as_deref(),
                Duration::from_secs(72 * 3600),
            ),
            lease: self.nonzero_duration(
                "dedup.lease",
                raw.lease.as_deref(),
                Duration::from_secs(60),
            ),
            on_store_error,
            max_entries,
        }
    }

    fn route(
        &mut self,
        at: &str,
        r: &RawRoute,
        server: &ServerConfig,
        dedup_cfg: &DedupConfig,
    ) -> Option<RouteConfig> {
        let errors_before = self.errors.len();
        let name = match r.name.as_deref() {
            None | Some("") => {
                self.error(&format!("{at}.name"), "is required".to_owned());
                String::new()
            }
            Some("_unknown") => {
                self.error(
                    &format!("{at}.name"),
                    "\"_unknown\" is reserved for requests that match no route".to_owned(),
                );
                String::new()
            }
            // The name keys dedup ids (`<route>:<id>`), labels metrics and goes upstream in
            // a header: a `:` would let two routes share ids, and braces, spaces or control
            // characters would break the Redis key or the header.
            Some(n) if n.len() > MAX_ROUTE_NAME || !n.bytes().all(route_name_byte) => {
                self.error(
                    &format!("{at}.name"),
                    format!("{n:?} must be at most {MAX_ROUTE_NAME} letters, digits, `_`, `-`, `.` or `/`"),
                );
                String::new()
            }
            Some(n) => n.to_owned(),
        };
        let path = match r.path.as_deref() {
            None => {
                self.error(&format!("{at}.path"), "is required".to_owned());
                String::new()
            }
            Some(p) if !p.starts_with('/') || p.contains('?') || p.contains('#') => {
                self.error(
                    &format!("{at}.path"),
                    format!(
                        "{p:?} must be an absolute path like \"/webhooks/stripe\" without query"
                    ),
                );
                String::new()
            }
            Some(p) => p.to_owned(),
        };
        let methods = self.methods(at, r.methods.as_deref());
        let upstream = self.upstream(at, r.upstream.as_deref());

        let provider = r.provider.clone().unwrap_or_else(|| "generic".to_owned());
        let secrets = self.route_secrets(at, r);
        let (verifier, defaults) = self.route_scheme(at, r, &provider, &secrets);

        let public_url = r.public_url.clone();
        if let Some(u) = &public_url {
            if u.parse::<Uri>().map_or(true, |u| u.scheme().is_none()) {
                self.error(
                    &format!("{at}.public_url"),
                    format!("invalid URL {u:?}; write the full URL the provider calls"),
                );
            }
        }
        if defaults.needs_public_url && public_url.is_none() {
            self.error(
                &format!("{at}.public_url"),
                format!("is required: provider {provider:?} signs the URL it calls (write it exactly as configured at the provider)"),
            );
        }
        let window = self.window(at, r, defaults.window);
        let allow_ips = self.cidrs(&format!("{at}.allow_ips"), r.allow_ips.as_deref());
        let rate_limit = self.rate_limit(at, r, &dedup_cfg.store);
        let dedup = self.route_dedup(at, r, &provider, defaults.dedup);
        let timeout = self.nonzero_duration(
            &format!("{at}.timeout"),
            r.timeout.as_deref(),
            Duration::from_secs(10),
        );
        if dedup.is_some() && dedup_cfg.lease <= timeout {
            self.error(
                &format!("{at}.timeout"),
                format!(
                    "dedup.lease ({}) must be longer than this route's timeout ({}), or a slow upstream would let a retry through while the first attempt is still in flight",
                    humantime::format_duration(dedup_cfg.lease),
                    humantime::format_duration(timeout)
                ),
            );
        }
        let max_body = self.size(
            &format!("{at}.max_body"),
            r.max_body.as_deref(),
            server.max_body,
        );
        let forward_headers = self.forward_headers(at, r);

        if self.errors.len() > errors_before {
            return None;
        }
        let verifier = verifier?;
        Some(RouteConfig {
            name,
            path,
            methods,
            upstream: upstream?,
            provider,
            window,
            allow_ips,
            rate_limit,
            dedup,
            timeout,
            max_body,
            forward_headers,
            public_url,
            secret_labels: secrets.into_iter().map(|(label, _)| label).collect(),
            verifier,
            handshake: defaults.handshake,
        })
    }

    fn methods(&mut self, at: &str, raw: Option<&[String]>) -> Vec<Method> {
        let Some(raw) = raw else {
            return vec![Method::POST];
        };
        if raw.is_empty() {
            self.error(
                &format!("{at}.methods"),
                "must list at least one method".to_owned(),
            );
        }
        raw.iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let upper = m.to_ascii_uppercase();
                self.check(
                    &format!("{at}.methods[{i}]"),
                    Method::from_bytes(upper.as_bytes())
                        .map_err(|_| format!("invalid method {m:?}")),
                )
            })
            .collect()
    }

    fn upstream(&mut self, at: &str, raw: Option<&str>) -> Option<Uri> {
        let path = format!("{at}.upstream");
        let Some(s) = raw else {
            self.error(&path, "is required".to_owned());
            return None;
        };
        let uri = self.check(
            &path,
            s.parse::<Uri>()
                .map_err(|e| format!("invalid URL {s:?}: {e}")),
        )?;
        match (uri.scheme_str(), uri.authority()) {
            (Some("http"), Some(_)) => Some(uri),
            (Some("https"), Some(_)) => {
                self.error(
                    &path,
                    format!("{s:?}: https upstreams are not supported yet; the internal handler is reached over plain http"),
                );
                None
            }
            _ => {
                self.error(&path, format!("{s:?} must be an absolute http:// URL"));
                None
            }
        }
    }

    fn route_secrets(&mut self, at: &str, r: &RawRoute) -> Vec<(String, Secret)> {
        let Some(raw) = &r.secrets else {
            self.error(
                &format!("{at}.secrets"),
                "is required (at least one secret)".to_owned(),
            );
            return Vec::new();
        };
        if raw.is_empty() {
            self.error(
                &format!("{at}.secrets"),
                "must list at least one secret".to_owned(),
            );
        }
        let mut labels = HashSet::new();
        let mut out = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            let path = format!("{at}.secrets[{i}]");
            let label = s.id.clone().unwrap_or_else(|| i.to_string());
            if !labels.insert(label.clone()) {
                self.error(
                    &format!("{path}.id"),
                    format!("duplicate secret id {label:?}"),
                );
            }
            if let Some(secret) = self.secret(&path, s) {
                out.push((label, secret));
            }
        }
        out
    }

    fn window(
        &mut self,
        at: &str,
        r: &RawRoute,
        default: Option<(Duration, Option<Duration>)>,
    ) -> Option<Window> {
        let Some((preset_past, preset_future)) = default else {
            if r.tolerance.is_some() || r.future_tolerance.is_some() {
                self.warnings.push(format!(
                    "{at}.tolerance has no effect: the route's scheme carries no signed timestamp"
                ));
            }
            return None;
        };
        let past = self.nonzero_duration(
            &format!("{at}.tolerance"),
            r.tolerance.as_deref(),
            preset_past,
        );
        // The preset's own future rule wins over "same as tolerance" when only tolerance is set.
        let future_default = preset_future.unwrap_or(past);
        let future = self.duration(
            &format!("{at}.future_tolerance"),
            r.future_tolerance.as_deref(),
            future_default,
        );
        Some(Window { past, future })
    }

    fn rate_limit(&mut self, at: &str, r: &RawRoute, store: &StoreKind) -> Option<RateLimitConfig> {
        let raw = r.rate_limit.as_ref()?;
        let path = format!("{at}.rate_limit");
        let shared = raw.shared.unwrap_or(false);
        if shared && *store == StoreKind::Memory {
            self.error(
                &format!("{path}.shared"),
                "shared rate limits live in Redis: set [dedup] store = \"redis\"".to_owned(),
            );
        }
        let positive = |cx: &mut Self, key: &str, n: i64| -> Option<NonZeroU32> {
            let v = u32::try_from(n).ok().and_then(NonZeroU32::new);
            if v.is_none() {
                cx.error(
                    &format!("{path}.{key}"),
                    format!("must be between 1 and {}, got {n}", u32::MAX),
                );
            }
            v
        };
        let (rate, per) = match (raw.per_second, raw.per_minute) {
            (Some(n), None) => (positive(self, "per_second", n)?, Duration::from_secs(1)),
            (None, Some(n)) => (positive(self, "per_minute", n)?, Duration::from_secs(60)),
            _ => {
                self.error(
                    &path,
                    "needs exactly one of per_second or per_minute".to_owned(),
                );
                return None;
            }
        };
        let burst = match raw.burst {
            None => rate,
            Some(b) => positive(self, "burst", b)?,
        };
        let by = match raw.by.as_deref() {
            None | Some("route") => RateLimitBy::Route,
            Some("ip") => RateLimitBy::Ip,
            Some(other) => {
                self.error(
                    &format!("{path}.by"),
                    format!("unknown key {other:?} (expected \"route\" or \"ip\")"),
                );
                return None;
            }
        };
        Some(RateLimitConfig {
            period: per / rate.get(),
            burst,
            by,
            shared,
        })
    }

    fn route_dedup(
        &mut self,
        at: &str,
        r: &RawRoute,
        provider: &str,
        default: Option<DedupKeyConfig>,
    ) -> Option<DedupKeyConfig> {
        let path = format!("{at}.dedup");
        match &r.dedup {
            // Omitted: on exactly when the scheme carries a delivery id.
            None => default,
            Some(RawDedupSetting::Enabled(false)) => None,
            Some(RawDedupSetting::Enabled(true)) => {
                if default.is_none() {
                    let hint = if provider == "generic" {
                        "set verify.id_header"
                    } else {
                        "this provider sends no stable delivery id"
                    };
                    self.error(
                        &path,
                        format!("dedup = true needs a delivery id: {hint}; or give a key such as {{ key = \"body-sha256\" }}"),
                    );
                }
                default
            }
            Some(RawDedupSetting::Key(k)) => {
                let Some(key) = k.key.as_deref() else {
                    self.error(&format!("{path}.key"), "is required".to_owned());
                    return None;
                };
                let source = self.dedup_source(&format!("{path}.key"), key)?;
                Some(DedupKeyConfig {
                    source,
                    required: k.required.unwrap_or(true),
                })
            }
        }
    }

    fn dedup_source(&mut self, path: &str, key: &str) -> Option<DedupSource> {
        if let Some(h) = key.strip_prefix("header:") {
            return self.header_name(path, h).map(DedupSource::Header);
        }
        if let Some(p) = key.strip_prefix("json:") {
            if !p.starts_with('/') {
                self.error(
                    path,
                    format!("JSON pointer {p:?} must start with '/' (e.g. \"json:/id\")"),
                );
                return None;
            }
            return Some(DedupSource::JsonPointer(p.to_owned()));
        }
        if key == "body-sha256" {
            return Some(DedupSource::BodySha256);
        }
        self.error(
            path,
            format!("unknown dedup key {key:?} (expected \"header:NAME\", \"json:/pointer\" or \"body-sha256\")"),
        );
        None
    }

    fn forward_headers(&mut self, at: &str, r: &RawRoute) -> ForwardHeaders {
        let Some(raw) = &r.forward_headers else {
            return ForwardHeaders::default();
        };
        let mut add = Vec::new();
        for (name, value) in raw.add.iter().flatten() {
            let path = format!("{at}.forward_headers.add.{name}");
            let Some(h) = self.header_name(&path, name) else {
                continue;
            };
            if h.as_str().starts_with("x-hookwall-") {
                self.error(
                    &path,
                    "X-Hookwall-* headers are set by the gateway itself".to_owned(),
                );
                continue;
            }
            if let Some(v) = self.check(
                &path,
                HeaderValue::from_str(value).map_err(|_| format!("invalid header value {value:?}")),
            ) {
                add.push((h, v));
            }
        }
        ForwardHeaders {
            strip_signature: raw.strip_signature.unwrap_or(false),
            add,
        }
    }
}
