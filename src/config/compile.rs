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

mod route;
mod scheme;
mod sections;

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
    let mut cx = Compiler::default();
    let failed = |errors| CompileErrors {
        source: path.to_owned(),
        errors,
    };
    let Some(raw) = parse(&text, &mut cx) else {
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
    // Keep only this route's problems.
    let ours = |e: &ConfigError| e.path == at || e.path.starts_with(&format!("{at}."));
    cx.errors.retain(ours);
    let route = cx.route(&at, &raw.route[index], &server, &dedup);
    match route {
        Some(route) if cx.errors.is_empty() => Ok(Arc::new(route)),
        _ => Err(failed(cx.errors)),
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

/// TOML → raw structs, reporting every value of the wrong type and every unknown key, not
/// just the first.
///
/// serde stops at the first value it cannot take, so each such value is reported with its
/// key path and taken out of the tree, and the tree deserialized again, until it goes
/// through. Unknown keys are collected on that last pass.
fn parse(text: &str, cx: &mut Compiler) -> Option<RawConfig> {
    let mut tree = match text.parse::<toml::Table>() {
        Ok(tree) => tree,
        Err(e) => {
            cx.toml_error(text, &e);
            return None;
        }
    };
    loop {
        let mut unknown = Vec::new();
        let mut note = |path: serde_ignored::Path<'_>| unknown.push(path_to_key(&path.to_string()));
        let pass = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
            toml::Value::Table(tree.clone()),
            &mut note,
        ));
        match pass {
            Ok(raw) => {
                for key in unknown {
                    cx.unknown_key(&key);
                }
                return Some(raw);
            }
            Err(e) => {
                let path = e.path().clone();
                // The message alone: the key path is ours to write.
                let message = e.into_inner().message().trim().to_owned();
                cx.errors.push(ConfigError {
                    position: position_of(text, &path),
                    path: path_to_key(&path.to_string()),
                    message,
                });
                if !remove(&mut tree, &path) {
                    return None;
                }
            }
        }
    }
}

/// Where the value at `path` starts in the text (1-based line and column).
fn position_of(text: &str, path: &serde_path_to_error::Path) -> Option<(usize, usize)> {
    use serde_path_to_error::Segment;
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut here: Option<&DeValue<'_>> = None;
    let mut start = 0;
    for segment in path.iter() {
        let found = match (segment, here) {
            (Segment::Map { key }, None) => table.iter().find(|(k, _)| k.get_ref() == key),
            (Segment::Map { key }, Some(DeValue::Table(t))) => {
                table = t;
                table.iter().find(|(k, _)| k.get_ref() == key)
            }
            (Segment::Seq { index }, Some(DeValue::Array(items))) => {
                let item = items.get(*index)?;
                start = item.span().start;
                here = Some(item.get_ref());
                continue;
            }
            _ => None,
        };
        let (_, value) = found?;
        start = value.span().start;
        here = Some(value.get_ref());
    }
    Some(line_col(text, start))
}

/// Removes the key a type error was found under (the whole array, for an element), so the
/// next pass gets past it. `false` if there is nothing to remove.
fn remove(tree: &mut toml::Table, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    // The deepest table key on the path.
    let Some(last) = segments
        .iter()
        .rposition(|s| matches!(s, Segment::Map { .. }))
    else {
        return false;
    };
    let mut table = tree;
    let mut i = 0;
    while i < last {
        let Segment::Map { key } = segments[i] else {
            return false;
        };
        let Some(mut value) = table.get_mut(key.as_str()) else {
            return false;
        };
        i += 1;
        // Array elements on the way (`route[0]`).
        while let Some(Segment::Seq { index }) = segments.get(i).filter(|_| i < last) {
            let toml::Value::Array(items) = value else {
                return false;
            };
            let Some(item) = items.get_mut(*index) else {
                return false;
            };
            value = item;
            i += 1;
        }
        let toml::Value::Table(inner) = value else {
            return false;
        };
        table = inner;
    }
    let Segment::Map { key } = segments[last] else {
        return false;
    };
    table.remove(key.as_str()).is_some()
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

    /// An unknown key, with the closest known one as a hint.
    fn unknown_key(&mut self, key: &str) {
        let (parent, name) = match key.rfind(['.', '[']) {
            Some(i) if key.as_bytes()[i] == b'.' => (&key[..i], &key[i + 1..]),
            Some(_) => (key, ""),
            None => ("", key),
        };
        let hint = super::suggest::hint(name, super::raw::known_keys(parent).iter().copied());
        self.error(key, format!("unknown key{hint}"));
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
                    self.error(
                        path,
                        format!("environment variable {name} is not set (hookwall reads its environment once, at start: a reload cannot see a variable set since; restart, or use a {{ file = \"...\" }} secret, which every reload reads again)"),
                    );
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

    fn nonzero_duration(&mut self, path: &str, raw: Option<&str>, default: Duration) -> Duration {
        let d = self.duration(path, raw, default);
        if d.is_zero() {
            self.error(path, "must be greater than zero".to_owned());
            return default;
        }
        d
    }
}
