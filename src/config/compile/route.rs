//! One `[[route]]`: name, path, methods, upstream, secrets, window, allowlist, rate limit,
//! dedup key and forwarded headers (the signature scheme is `scheme.rs`).

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Uri};

use super::delivery::RouteBasics;
use super::Compiler;
use crate::config::raw::{RawDedupSetting, RawRoute, RawRouteJournal, RawUpstreamTls};
use crate::config::{defaults, suggest};
use crate::config::{
    DedupConfig, DedupKeyConfig, DedupSource, ForwardHeaders, JournalConfig, QueueConfig,
    RateLimitBy, RateLimitConfig, RouteConfig, RouteJournal, ServerConfig, StoreKind, Window,
};
use crate::outbound::tls::{client_config, TlsClientFiles};
use crate::secret::Secret;
use crate::verify::presets::{preset, HandshakeKind};

/// The methods a route may accept (a provider never sends anything else).
const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Longest route name (it is in every metric sample and log line of the route).
const MAX_ROUTE_NAME: usize = 100;

/// What a route name may be made of.
fn route_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/')
}

impl Compiler {
    pub(super) fn route(
        &mut self,
        at: &str,
        r: &RawRoute,
        server: &ServerConfig,
        dedup_cfg: &DedupConfig,
        journal: &JournalConfig,
        queue: &QueueConfig,
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
            Some(n) if n.len() > MAX_ROUTE_NAME => {
                self.error(
                    &format!("{at}.name"),
                    format!(
                        "{n:?} is {} characters long; at most {MAX_ROUTE_NAME}",
                        n.len()
                    ),
                );
                String::new()
            }
            Some(n) if !n.bytes().all(route_name_byte) => {
                let bad = n
                    .chars()
                    .find(|c| !c.is_ascii() || !route_name_byte(*c as u8));
                let bad = bad.map_or_else(String::new, |c| format!(" {c:?}"));
                self.error(
                    &format!("{at}.name"),
                    format!("{n:?} contains{bad}: a route name is made of letters, digits, `_`, `-`, `.` and `/` (it keys dedup ids and labels metrics)"),
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
        // A fan-out route's upstreams are its targets (compiled with the delivery mode).
        let upstream = if Self::fans_out(r) {
            None
        } else {
            self.upstream(at, r.upstream.as_deref())
        };
        let upstream_tls = self.upstream_tls(at, r, upstream.as_ref());

        let provider = r.provider.clone().unwrap_or_else(|| "generic".to_owned());
        let preset = (provider != "generic")
            .then(|| preset(&provider, r.legacy_sha1.unwrap_or(false)))
            .flatten();
        let learns = preset
            .as_ref()
            .is_some_and(|p| p.handshake == Some(HandshakeKind::AsanaHookSecret));
        let (secrets, learned) = if learns {
            (Vec::new(), self.learned_secret(at, r))
        } else if Self::fetches_keys(preset.as_ref()) {
            if r.secrets.is_some() {
                self.error(
                    &format!("{at}.secrets"),
                    format!("provider {provider:?} verifies with the keys it publishes (fetched and cached by hookwall): remove secrets"),
                );
            }
            (Vec::new(), None)
        } else {
            (self.route_secrets(at, r), None)
        };
        let (mut verifier, defaults) = self.route_scheme(at, r, &provider, &secrets);
        let provider_settings = self.provider_settings(
            at,
            r,
            &provider,
            preset.as_ref(),
            verifier.as_mut(),
            learned,
        );
        let methods = match (&r.methods, defaults.handshake) {
            // The provider's control request is a GET: accept it unless told otherwise.
            (None, Some(kind)) if kind.uses_get() => vec![Method::GET, Method::POST],
            _ => methods,
        };

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
        let (allow_ips, allow_lists) =
            self.allow_ips(&format!("{at}.allow_ips"), r.allow_ips.as_deref());
        let rate_limit = self.rate_limit(at, r, &dedup_cfg.store);
        let dedup = self.route_dedup(at, r, &provider, defaults.dedup);
        let timeout = self.nonzero_duration(
            &format!("{at}.timeout"),
            r.timeout.as_deref(),
            defaults::ROUTE_TIMEOUT,
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
        let route_journal = self.route_journal(at, r, journal);
        let event = self.event_source(at, r, preset.as_ref().and_then(|p| p.event.clone()));
        let delivery = self.delivery(
            at,
            r,
            RouteBasics {
                upstream: upstream.as_ref(),
                upstream_tls: upstream_tls.clone(),
                timeout,
                visibility_timeout: queue.visibility_timeout,
                event: event.as_ref(),
            },
        );
        let events = self.event_patterns(at, r.events.as_deref(), event.as_ref());
        let targets_filter = delivery
            .buffered()
            .is_some_and(|b| b.targets.iter().any(|t| !t.events.is_empty()));
        if r.event.is_some() && events.is_empty() && !targets_filter {
            self.warnings.push(format!(
                "{at}.event has no effect: neither the route nor a target has events = [...] to filter on"
            ));
        }
        let reconcile = self.reconcile(at, r, &provider, dedup.as_ref());
        // A route's own `attest` replaces `[server]`'s.
        let attest = match &r.attest {
            Some(a) => self.attest(&format!("{at}.attest"), a),
            None => server.attest.clone(),
        };
        // What sync paths (replays) send to: the route's upstream, or its first target.
        let upstream = upstream.or_else(|| {
            delivery
                .buffered()
                .and_then(|b| b.targets.first())
                .map(|t| t.upstream.clone())
        });

        if self.errors.len() > errors_before {
            return None;
        }
        let verifier = verifier?;
        Some(RouteConfig {
            name,
            path,
            methods,
            upstream: upstream?,
            upstream_tls,
            provider,
            window,
            allow_ips,
            allow_lists,
            rate_limit,
            dedup,
            timeout,
            max_body,
            forward_headers,
            public_url,
            // A learned secret (Asana) has one slot, filled by the handshake.
            secret_labels: if learns {
                vec!["0".to_owned()]
            } else {
                secrets.iter().map(|(label, _)| label.clone()).collect()
            },
            secrets: secrets.into_iter().map(|(_, secret)| secret).collect(),
            journal: route_journal,
            verifier,
            handshake: defaults.handshake,
            provider_settings,
            event,
            events,
            enforce: r.enforce.unwrap_or(true),
            delivery,
            reconcile,
            attest,
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
                let known = METHODS.iter().find(|k| k.as_str() == upper);
                if known.is_none() {
                    let hint = suggest::hint(&upper, METHODS.iter().map(Method::as_str));
                    self.error(
                        &format!("{at}.methods[{i}]"),
                        format!("unknown method {m:?}{hint}; expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
                    );
                }
                known.cloned()
            })
            .collect()
    }

    pub(super) fn upstream(&mut self, at: &str, raw: Option<&str>) -> Option<Uri> {
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
            (Some("http" | "https"), Some(_)) => Some(uri),
            _ => {
                self.error(
                    &path,
                    format!("{s:?} must be an absolute http:// or https:// URL"),
                );
                None
            }
        }
    }

    /// The TLS client settings of an `https://` upstream; `upstream_tls` on an `http://`
    /// one is a mistake worth saying.
    fn upstream_tls(
        &mut self,
        at: &str,
        r: &RawRoute,
        upstream: Option<&Uri>,
    ) -> Option<Arc<rustls::ClientConfig>> {
        self.upstream_tls_at(at, r.upstream_tls.as_ref(), upstream)
    }

    /// [`Self::upstream_tls`] for a route or one of its targets (`at`).
    pub(super) fn upstream_tls_at(
        &mut self,
        at: &str,
        raw: Option<&RawUpstreamTls>,
        upstream: Option<&Uri>,
    ) -> Option<Arc<rustls::ClientConfig>> {
        let path = format!("{at}.upstream_tls");
        let https = upstream.is_some_and(|u| u.scheme_str() == Some("https"));
        if !https {
            if raw.is_some() && upstream.is_some() {
                self.error(&path, "applies to https:// upstreams only".to_owned());
            }
            return None;
        }
        let raw = raw.cloned().unwrap_or_default();
        let identity = match (raw.client_cert, raw.client_key) {
            (Some(cert), Some(key)) => Some((self.resolve(&cert), self.resolve(&key))),
            (None, None) => None,
            _ => {
                self.error(
                    &path,
                    "client_cert and client_key go together (PEM file paths)".to_owned(),
                );
                return None;
            }
        };
        let files = TlsClientFiles {
            ca_file: raw.ca_file.map(|f| self.resolve(&f)),
            identity,
        };
        self.check(&path, client_config(&files))
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

    /// The route's journal settings: `[journal]`'s, overridden by the route's own table,
    /// `None` when either turns journaling off.
    fn route_journal(
        &mut self,
        at: &str,
        r: &RawRoute,
        journal: &JournalConfig,
    ) -> Option<RouteJournal> {
        let defaults = RouteJournal {
            bodies: journal.bodies,
            redact_headers: Vec::new(),
            redact_json: Vec::new(),
        };
        let own = match &r.journal {
            None | Some(RawRouteJournal::Enabled(true)) => defaults,
            Some(RawRouteJournal::Enabled(false)) => return None,
            Some(RawRouteJournal::Settings(s)) => {
                let path = format!("{at}.journal");
                let bodies = self
                    .body_policy(&format!("{path}.bodies"), s.bodies.as_deref())
                    .unwrap_or(journal.bodies);
                let redact_headers = s
                    .redact_headers
                    .iter()
                    .flatten()
                    .enumerate()
                    .filter_map(|(i, h)| {
                        self.header_name(&format!("{path}.redact_headers[{i}]"), h)
                    })
                    .collect();
                let mut redact_json = Vec::new();
                for (i, pointer) in s.redact_json.iter().flatten().enumerate() {
                    if pointer.starts_with('/') {
                        redact_json.push(pointer.clone());
                    } else {
                        self.error(
                            &format!("{path}.redact_json[{i}]"),
                            format!("JSON pointer {pointer:?} must start with '/' (e.g. \"/customer/email\")"),
                        );
                    }
                }
                RouteJournal {
                    bodies,
                    redact_headers,
                    redact_json,
                }
            }
        };
        journal.enabled.then_some(own)
    }
}
