//! Raw config → [`Config`]: defaults applied, every value validated, every problem collected.
//!
//! `hookwall check`, `hookwall run` and reload all go through [`compile_file`], so a file
//! that passes `check` starts, and one that fails is refused by reload.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use ipnet::IpNet;

mod attest;
mod delivery;
mod ip_ranges;
mod parse;
mod provider;
mod reconcile;
mod route;
mod scheme;
mod sections;
mod telemetry;

use super::raw::{RawConfig, RawSecret, SecretText, StringOrSecret};
use super::units::{parse_duration, parse_size};
use super::{suggest, Config, RouteConfig};
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

/// Reads and compiles a config file.
pub fn compile_file(path: &Path) -> Result<Config, CompileErrors> {
    compile_str(&read(path)?, path)
}

fn read(path: &Path) -> Result<String, CompileErrors> {
    std::fs::read_to_string(path).map_err(|e| CompileErrors {
        source: path.to_owned(),
        errors: vec![ConfigError {
            position: None,
            path: String::new(),
            message: format!("cannot read config file: {e}"),
        }],
    })
}

/// Compiles the one route `hookwall sign` needs, secrets loaded. The rest of the file is
/// read for its defaults, but its problems (another route's unset secret, a Redis URL in
/// an unset variable) are not this route's and do not stop it.
pub fn compile_route(path: &Path, name: &str) -> Result<Arc<RouteConfig>, CompileErrors> {
    let text = read(path)?;
    let mut cx = Compiler::for_file(path);
    let failed = |errors| CompileErrors {
        source: path.to_owned(),
        errors,
    };
    let Some(raw) = cx.parse(&text) else {
        return Err(failed(cx.errors));
    };
    let names: Vec<&str> = raw.route.iter().filter_map(|r| r.name.as_deref()).collect();
    let Some(index) = raw
        .route
        .iter()
        .position(|r| r.name.as_deref() == Some(name))
    else {
        return Err(failed(vec![ConfigError {
            position: None,
            path: "route".to_owned(),
            message: format!(
                "no route named {name:?}{} (routes: {})",
                suggest::hint(name, names.iter().copied()),
                names.join(", ")
            ),
        }]));
    };
    let at = format!("route[{index}]");
    let server = cx.server(&raw.server);
    let dedup = cx.dedup(&raw.dedup);
    let journal = cx.journal(&raw.journal);
    let queue = cx.queue(&raw.queue);
    // Keep only this route's problems.
    let ours = |e: &ConfigError| e.path == at || e.path.starts_with(&format!("{at}."));
    cx.errors.retain(ours);
    let route = cx.route(&at, &raw.route[index], &server, &dedup, &journal, &queue);
    match route {
        Some(route) if cx.errors.is_empty() => Ok(Arc::new(route)),
        _ => {
            parse::locate(&text, &mut cx.errors);
            Err(failed(cx.errors))
        }
    }
}

/// Compiles only `[admin]`, for the commands that talk to a running gateway: another
/// section's problem (a route's unset secret) is not theirs.
pub fn compile_admin(path: &Path) -> Result<super::AdminConfig, CompileErrors> {
    let text = read(path)?;
    let mut cx = Compiler::for_file(path);
    let failed = |errors| CompileErrors {
        source: path.to_owned(),
        errors,
    };
    let Some(raw) = cx.parse(&text) else {
        return Err(failed(cx.errors));
    };
    cx.errors.clear();
    let admin = cx.admin(&raw.admin);
    if cx.errors.is_empty() {
        Ok(admin)
    } else {
        parse::locate(&text, &mut cx.errors);
        Err(failed(cx.errors))
    }
}

/// Compiles config text; `source` names the file in messages, and relative file paths in
/// it are taken from its folder.
pub fn compile_str(text: &str, source: &Path) -> Result<Config, CompileErrors> {
    let mut cx = Compiler::for_file(source);
    let raw = cx.parse(text);
    let config = raw.and_then(|raw| cx.config(raw, source));
    match config {
        Some(config) if cx.errors.is_empty() => Ok(config),
        _ => {
            parse::locate(text, &mut cx.errors);
            Err(CompileErrors {
                source: source.to_owned(),
                errors: cx.errors,
            })
        }
    }
}

#[derive(Default)]
struct Compiler {
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    /// The config file's folder: relative file paths in it are relative to it.
    base: PathBuf,
}

impl Compiler {
    fn for_file(source: &Path) -> Self {
        Compiler {
            base: source.parent().map(Path::to_owned).unwrap_or_default(),
            ..Compiler::default()
        }
    }

    /// A path from the file: relative ones are taken from the config file's folder, so
    /// the config means the same whatever directory hookwall was started in.
    fn resolve(&self, path: &str) -> PathBuf {
        self.base.join(path)
    }

    fn error(&mut self, path: &str, message: String) {
        self.errors.push(ConfigError {
            position: None,
            path: path.to_owned(),
            message,
        });
    }

    /// `Some(v)` on success; on failure records the error and returns `None`.
    fn check<T, E: fmt::Display>(&mut self, path: &str, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.error(path, e.to_string())).ok()
    }

    /// A count of at least 1 (`max_concurrency`, `max_entries`).
    fn count(&mut self, path: &str, raw: Option<i64>, default: usize) -> usize {
        match raw {
            None => default,
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(n) => {
                self.error(path, format!("must be at least 1, got {n}"));
                default
            }
        }
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
            out.extend(self.cidr(&format!("{path}[{i}]"), s));
        }
        out
    }

    /// One CIDR, or a bare address meaning that one host.
    fn cidr(&mut self, path: &str, s: &str) -> Option<IpNet> {
        let parsed = s
            .parse::<IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => Some(net.trunc()),
            Err(_) => {
                self.error(
                    path,
                    format!("invalid CIDR {s:?}; write e.g. \"10.0.0.0/8\" or \"2600:1f16::/32\""),
                );
                None
            }
        }
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
                    self.error(
                        path,
                        format!("environment variable {name} is not set (hookwall reads its environment once, at start: a reload cannot see a variable set since; restart, or use a {{ file = \"...\" }} secret, which every reload reads again)"),
                    );
                    None
                }
            };
        }
        let file = self.resolve(raw.file.as_deref().unwrap_or_default());
        match std::fs::read(&file) {
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
        let storage = self.storage(&raw.storage);
        let journal = self.journal(&raw.journal);
        let queue = self.queue(&raw.queue);
        let ip_ranges = self.ip_ranges(raw.ip_ranges.as_ref());
        let telemetry = self.telemetry(raw.telemetry.as_ref());
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
            if let Some(route) = self.route(&at, r, &server, &dedup, &journal, &queue) {
                routes.push(Arc::new(route));
            }
        }
        Some(Config {
            source: source.to_owned(),
            server,
            admin,
            dedup,
            storage,
            journal,
            queue,
            ip_ranges,
            telemetry,
            routes,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    fn nonzero_duration(&mut self, path: &str, raw: Option<&str>, default: Duration) -> Duration {
        let d = self.duration(path, raw, default);
        if d.is_zero() {
            self.error(path, "must be greater than zero".to_owned());
            return default;
        }
        d
    }
}
