//! A route's delivery mode: `delivery = "sync" | "buffered"` and, for buffered routes, the
//! retry policy, `retry_on`, `upstream_concurrency`, `max_queued`, and the fan-out
//! `[[route.targets]]` with their event filters; plus `event`, where the event type is.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use super::Compiler;
use crate::config::raw::{RawRetry, RawRoute};
use crate::config::{
    defaults, suggest, Buffered, Delivery, EventSource, RetryOn, RetryPolicy, Target,
    DEFAULT_TARGET,
};

/// The failures without a status that `retry_on` may name.
const FAILURES: [&str; 3] = ["upstream_unreachable", "upstream_timeout", "upstream_error"];

/// What `route()` has already compiled that the delivery mode builds on.
pub(super) struct RouteBasics<'a> {
    /// The route's `upstream`, when it has one.
    pub upstream: Option<&'a Uri>,
    /// Its TLS settings.
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
    /// The route's `timeout` (each attempt's).
    pub timeout: Duration,
    /// `[queue] visibility_timeout`.
    pub visibility_timeout: Duration,
    /// Where the event type is.
    pub event: Option<&'a EventSource>,
}

impl Compiler {
    /// `event = "header:X-Event"` or `"json:/type"`, else the preset's.
    pub(super) fn event_source(
        &mut self,
        at: &str,
        r: &RawRoute,
        preset: Option<EventSource>,
    ) -> Option<EventSource> {
        let Some(raw) = r.event.as_deref() else {
            return preset;
        };
        let path = format!("{at}.event");
        if let Some(pointer) = raw.strip_prefix("json:") {
            if !pointer.starts_with('/') {
                self.error(
                    &path,
                    format!("JSON pointer {pointer:?} must start with '/' (e.g. \"json:/type\")"),
                );
                return None;
            }
            return Some(EventSource::Json(pointer.to_owned()));
        }
        if let Some(name) = raw.strip_prefix("header:") {
            return self.header_name(&path, name).map(EventSource::Header);
        }
        self.error(
            &path,
            format!("{raw:?}: write \"header:<Name>\" or \"json:/pointer\""),
        );
        None
    }

    /// The `events` patterns at `at` (a route's or a target's): they need an event type to
    /// filter on, and an empty pattern would match only an empty type, never sent.
    pub(super) fn event_patterns(
        &mut self,
        at: &str,
        raw: Option<&[String]>,
        event: Option<&EventSource>,
    ) -> Vec<String> {
        let events = raw.map(<[String]>::to_vec).unwrap_or_default();
        if !events.is_empty() && event.is_none() {
            self.error(
                &format!("{at}.events"),
                "the route has no event type to filter on: set the route's event = \"header:<Name>\" or \"json:/pointer\"".to_owned(),
            );
        }
        if events.iter().any(|e| e.trim().is_empty()) {
            self.error(
                &format!("{at}.events"),
                "an event pattern is empty".to_owned(),
            );
        }
        events
    }

    /// Whether the route has no `upstream` because its targets are its upstreams.
    pub(super) fn fans_out(r: &RawRoute) -> bool {
        r.targets.is_some() && r.upstream.is_none()
    }

    /// The route's delivery mode. Buffered-only keys on a sync route are errors (they would
    /// do nothing).
    pub(super) fn delivery(&mut self, at: &str, r: &RawRoute, basics: RouteBasics<'_>) -> Delivery {
        let buffered = match r.delivery.as_deref() {
            None | Some("sync") => false,
            Some("buffered") => true,
            Some(other) => {
                let hint = suggest::hint(other, ["sync", "buffered"]);
                self.error(
                    &format!("{at}.delivery"),
                    format!("unknown delivery {other:?}{hint}; expected \"sync\" or \"buffered\""),
                );
                return Delivery::Sync;
            }
        };
        if !buffered {
            let only_buffered = [
                ("retry", r.retry.is_some()),
                ("retry_on", r.retry_on.is_some()),
                ("upstream_concurrency", r.upstream_concurrency.is_some()),
                ("max_queued", r.max_queued.is_some()),
                ("targets", r.targets.is_some()),
            ];
            for (key, set) in only_buffered {
                if set {
                    self.error(
                        &format!("{at}.{key}"),
                        "applies to delivery = \"buffered\" routes only".to_owned(),
                    );
                }
            }
            return Delivery::Sync;
        }
        if basics.visibility_timeout <= basics.timeout {
            self.error(
                &format!("{at}.timeout"),
                format!(
                    "queue.visibility_timeout ({}) must be longer than a buffered route's timeout ({}), or an attempt still in flight would be claimed again",
                    humantime::format_duration(basics.visibility_timeout),
                    humantime::format_duration(basics.timeout)
                ),
            );
        }
        let retry = self.retry_policy(at, r.retry.as_ref());
        let retry_on = self.retry_on(at, r.retry_on.as_deref());
        let upstream_concurrency = self.count(
            &format!("{at}.upstream_concurrency"),
            r.upstream_concurrency,
            defaults::UPSTREAM_CONCURRENCY,
        );
        let max_queued = self.count(
            &format!("{at}.max_queued"),
            r.max_queued,
            usize::try_from(defaults::MAX_QUEUED).unwrap_or(usize::MAX),
        ) as u64;
        let targets = self.targets(at, r, &basics);
        Delivery::Buffered(Arc::new(Buffered {
            retry,
            retry_on,
            upstream_concurrency,
            max_queued,
            targets,
        }))
    }

    fn retry_policy(&mut self, at: &str, raw: Option<&RawRetry>) -> RetryPolicy {
        let default = RawRetry::default();
        let raw = raw.unwrap_or(&default);
        let path = |k: &str| format!("{at}.retry.{k}");
        let initial = self.nonzero_duration(
            &path("initial"),
            raw.initial.as_deref(),
            defaults::RETRY_INITIAL,
        );
        let max_delay = self.nonzero_duration(
            &path("max_delay"),
            raw.max_delay.as_deref(),
            defaults::RETRY_MAX_DELAY,
        );
        if max_delay < initial {
            self.error(
                &path("max_delay"),
                format!(
                    "{} must be at least retry.initial ({})",
                    humantime::format_duration(max_delay),
                    humantime::format_duration(initial)
                ),
            );
        }
        let multiplier = match raw.multiplier {
            None => defaults::RETRY_MULTIPLIER,
            Some(m) if m.is_finite() && m >= 1.0 => m,
            Some(m) => {
                self.error(
                    &path("multiplier"),
                    format!("must be at least 1.0, got {m}"),
                );
                defaults::RETRY_MULTIPLIER
            }
        };
        let max_attempts = self.count(
            &path("max_attempts"),
            raw.max_attempts,
            defaults::RETRY_MAX_ATTEMPTS as usize,
        );
        let max_age = self.nonzero_duration(
            &path("max_age"),
            raw.max_age.as_deref(),
            defaults::RETRY_MAX_AGE,
        );
        RetryPolicy {
            initial,
            max_delay,
            multiplier,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            max_age,
        }
    }

    fn retry_on(&mut self, at: &str, raw: Option<&[String]>) -> RetryOn {
        let owned: Vec<String>;
        let raw = match raw {
            Some(r) => r,
            None => {
                owned = defaults::RETRY_ON.iter().map(|s| (*s).to_owned()).collect();
                &owned
            }
        };
        let mut on = RetryOn::default();
        for (i, item) in raw.iter().enumerate() {
            let item = item.trim();
            if let Some(class) = item
                .strip_suffix("xx")
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (1..=5).contains(c))
            {
                on.classes.push(class);
            } else if let Some(status) = item.parse::<u16>().ok().filter(|s| (100..600).contains(s))
            {
                on.statuses.push(status);
            } else if FAILURES.contains(&item) {
                on.failures.push(item.to_owned());
            } else {
                let hint = suggest::hint(item, FAILURES.iter().copied());
                self.error(
                    &format!("{at}.retry_on[{i}]"),
                    format!("{item:?}{hint}: write a status (\"429\"), a class (\"5xx\") or one of upstream_unreachable, upstream_timeout, upstream_error"),
                );
            }
        }
        on
    }

    /// The route's one target (its `upstream`), or its `[[route.targets]]`.
    fn targets(&mut self, at: &str, r: &RawRoute, basics: &RouteBasics<'_>) -> Vec<Target> {
        let Some(raw) = &r.targets else {
            return basics
                .upstream
                .map(|u| Target {
                    name: DEFAULT_TARGET.to_owned(),
                    upstream: u.clone(),
                    upstream_tls: basics.upstream_tls.clone(),
                    events: Vec::new(),
                })
                .into_iter()
                .collect();
        };
        if r.upstream.is_some() {
            self.error(
                &format!("{at}.targets"),
                "a route has either an upstream or [[route.targets]], not both".to_owned(),
            );
        }
        if r.upstream_tls.is_some() {
            self.error(
                &format!("{at}.upstream_tls"),
                "with [[route.targets]], upstream_tls goes on each target that needs it".to_owned(),
            );
        }
        if raw.is_empty() {
            self.error(
                &format!("{at}.targets"),
                "must list at least one target".to_owned(),
            );
        }
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            let tat = format!("{at}.targets[{i}]");
            let name = match t.name.as_deref() {
                None | Some("") => {
                    self.error(&format!("{tat}.name"), "is required".to_owned());
                    continue;
                }
                Some(n)
                    if !n
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) =>
                {
                    self.error(
                        &format!("{tat}.name"),
                        format!("{n:?}: a target name is made of letters, digits, `_`, `-` and `.` (it labels metrics)"),
                    );
                    continue;
                }
                Some(n) => n.to_owned(),
            };
            if !names.insert(name.clone()) {
                self.error(
                    &format!("{tat}.name"),
                    format!("duplicate target name {name:?}"),
                );
            }
            let upstream = self.upstream(&tat, t.upstream.as_deref());
            let upstream_tls =
                self.upstream_tls_at(&tat, t.upstream_tls.as_ref(), upstream.as_ref());
            let events = self.event_patterns(&tat, t.events.as_deref(), basics.event);
            if let Some(upstream) = upstream {
                out.push(Target {
                    name,
                    upstream,
                    upstream_tls,
                    events,
                });
            }
        }
        out
    }
}
