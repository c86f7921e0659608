//! `[route.reconcile]` (CONTRACT §11): which provider API is polled, how often, how far
//! back, with which credential; the source's own keys (GitHub's hook, a generic API's
//! template and pointers) and the rules that keep a poll and a webhook in one id space.

use std::sync::Arc;

use http::Uri;

use super::Compiler;
use crate::config::raw::{RawReconcile, RawRoute};
use crate::config::{
    defaults, suggest, CursorFormat, DedupKeyConfig, GenericSource, ReconcileConfig,
    ReconcileSource,
};

const SOURCES: [&str; 3] = ["stripe", "github", "generic"];
/// More pages than this in one run would hold the provider's API for minutes.
const MAX_PAGES_LIMIT: i64 = 1000;

impl Compiler {
    /// The route's reconcile settings, if it has any.
    pub(super) fn reconcile(
        &mut self,
        at: &str,
        r: &RawRoute,
        provider: &str,
        dedup: Option<&DedupKeyConfig>,
    ) -> Option<Arc<ReconcileConfig>> {
        let raw = r.reconcile.as_ref()?;
        let at = format!("{at}.reconcile");
        let source = match raw.source.as_deref() {
            None => {
                self.error(
                    &format!("{at}.source"),
                    "is required: \"stripe\", \"github\" or \"generic\"".to_owned(),
                );
                return None;
            }
            Some(s) if SOURCES.contains(&s) => s,
            Some(other) => {
                let hint = suggest::hint(other, SOURCES);
                self.error(
                    &format!("{at}.source"),
                    format!("unknown source {other:?}{hint}; expected \"stripe\", \"github\" or \"generic\""),
                );
                return None;
            }
        };
        self.only_for_source(&at, raw, source);
        let every = self.nonzero_duration(
            &format!("{at}.every"),
            raw.every.as_deref(),
            defaults::RECONCILE_EVERY,
        );
        let lookback = self.nonzero_duration(
            &format!("{at}.lookback"),
            raw.lookback.as_deref(),
            defaults::RECONCILE_LOOKBACK,
        );
        let timeout = self.nonzero_duration(
            &format!("{at}.timeout"),
            raw.timeout.as_deref(),
            defaults::RECONCILE_TIMEOUT,
        );
        let max_pages = match raw.max_pages {
            None => defaults::RECONCILE_MAX_PAGES,
            Some(n) if (1..=MAX_PAGES_LIMIT).contains(&n) => n as u32,
            Some(n) => {
                self.error(
                    &format!("{at}.max_pages"),
                    format!("{n} is out of range; 1 to {MAX_PAGES_LIMIT}"),
                );
                defaults::RECONCILE_MAX_PAGES
            }
        };
        let credentials = match &raw.credentials {
            Some(c) => self.string_or_secret(&format!("{at}.credentials"), c),
            None => {
                self.error(
                    &format!("{at}.credentials"),
                    "is required: the API key or token the poller reads events with (e.g. credentials = { env = \"RECONCILE_KEY\" })".to_owned(),
                );
                None
            }
        };
        let api_base = match (source, raw.api_base.as_deref()) {
            ("generic", _) => String::new(),
            ("stripe", base) => self.api_url(
                &format!("{at}.api_base"),
                base.unwrap_or(defaults::STRIPE_API_BASE),
            )?,
            (_, base) => self.api_url(
                &format!("{at}.api_base"),
                base.unwrap_or(defaults::GITHUB_API_BASE),
            )?,
        };
        let source = match source {
            "stripe" => {
                if provider != "stripe" {
                    self.warnings.push(format!(
                        "{at}: source \"stripe\" on a provider = {provider:?} route: polled events are keyed by the Stripe event id, which this route's webhooks may not share"
                    ));
                }
                ReconcileSource::Stripe
            }
            "github" => {
                if provider != "github" {
                    self.warnings.push(format!(
                        "{at}: source \"github\" on a provider = {provider:?} route: GitHub's redeliveries arrive signed as GitHub signs them"
                    ));
                }
                self.github(&at, raw)?
            }
            _ => ReconcileSource::Generic(self.generic(&at, raw)?),
        };
        // A poll and a webhook meet in the dedup id; without dedup every run would
        // deliver everything it lists again. GitHub's redeliveries take the normal path.
        if dedup.is_none() && !matches!(source, ReconcileSource::Github { .. }) {
            self.error(
                &at,
                "needs dedup on the route: a polled event and its webhook are told apart by the dedup id".to_owned(),
            );
        }
        Some(Arc::new(ReconcileConfig {
            source,
            every,
            lookback,
            credentials: credentials?,
            api_base,
            max_pages,
            timeout,
        }))
    }

    /// Keys of one source set on a route of another.
    fn only_for_source(&mut self, at: &str, raw: &RawReconcile, source: &str) {
        let keys = [
            (
                "api_base",
                raw.api_base.is_some(),
                &["stripe", "github"][..],
            ),
            ("repo", raw.repo.is_some(), &["github"]),
            ("org", raw.org.is_some(), &["github"]),
            ("hook_id", raw.hook_id.is_some(), &["github"]),
            ("url", raw.url.is_some(), &["generic"]),
            ("items", raw.items.is_some(), &["generic"]),
            ("id", raw.id.is_some(), &["generic"]),
            ("created", raw.created.is_some(), &["generic"]),
            ("next", raw.next.is_some(), &["generic"]),
            (
                "credentials_header",
                raw.credentials_header.is_some(),
                &["generic"],
            ),
            ("cursor_format", raw.cursor_format.is_some(), &["generic"]),
        ];
        for (key, set, sources) in keys {
            if set && !sources.contains(&source) {
                let which = sources
                    .iter()
                    .map(|s| format!("source = {s:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                self.error(&format!("{at}.{key}"), format!("applies to {which} only"));
            }
        }
    }

    /// An API URL: `https://`, or `http://` to a loopback address (tests, a local proxy).
    fn api_url(&mut self, path: &str, url: &str) -> Option<String> {
        match url.parse::<Uri>() {
            Ok(u) if u.authority().is_some() && allowed_api_scheme(&u) => {
                Some(url.trim_end_matches('/').to_owned())
            }
            _ => {
                self.error(
                    path,
                    format!("{url:?} must be an absolute https:// URL (http:// only to a loopback address)"),
                );
                None
            }
        }
    }

    fn github(&mut self, at: &str, raw: &RawReconcile) -> Option<ReconcileSource> {
        let owner = match (raw.repo.as_deref(), raw.org.as_deref()) {
            (Some(repo), None) => match repo.split_once('/') {
                Some((o, n)) if valid_github_name(o) && valid_github_name(n) => {
                    format!("repos/{o}/{n}")
                }
                _ => {
                    self.error(
                        &format!("{at}.repo"),
                        format!("{repo:?} must be \"owner/name\""),
                    );
                    return None;
                }
            },
            (None, Some(org)) if valid_github_name(org) => format!("orgs/{org}"),
            (None, Some(org)) => {
                self.error(
                    &format!("{at}.org"),
                    format!("{org:?} is not an organization name"),
                );
                return None;
            }
            (Some(_), Some(_)) => {
                self.error(
                    &format!("{at}.repo"),
                    "and org are exclusive: a hook belongs to a repository or to an organization"
                        .to_owned(),
                );
                return None;
            }
            (None, None) => {
                self.error(
                    &format!("{at}.repo"),
                    "is required for source = \"github\": repo = \"owner/name\" (or org = \"name\" for an organization hook)".to_owned(),
                );
                return None;
            }
        };
        let hook_id = match raw.hook_id {
            Some(id) if id > 0 => id as u64,
            Some(id) => {
                self.error(&format!("{at}.hook_id"), format!("{id} is not a hook id"));
                return None;
            }
            None => {
                self.error(
                    &format!("{at}.hook_id"),
                    "is required for source = \"github\": the id in the hook's settings URL"
                        .to_owned(),
                );
                return None;
            }
        };
        Some(ReconcileSource::Github { owner, hook_id })
    }

    fn generic(&mut self, at: &str, raw: &RawReconcile) -> Option<GenericSource> {
        let url = match raw.url.as_deref() {
            Some(u) => {
                // `{cursor}` is not valid in a URI: check the template with it filled in.
                let filled = u.replace("{cursor}", "0");
                self.api_url(&format!("{at}.url"), &filled)?;
                u.to_owned()
            }
            None => {
                self.error(
                    &format!("{at}.url"),
                    "is required for source = \"generic\": e.g. \"https://api.example.com/events?since={cursor}\"".to_owned(),
                );
                return None;
            }
        };
        let items = match raw.items.as_deref() {
            Some(p) => self.json_pointer(&format!("{at}.items"), p, true)?,
            None => String::new(),
        };
        let id = match raw.id.as_deref() {
            Some(p) => self.json_pointer(&format!("{at}.id"), p, false)?,
            None => {
                self.error(
                    &format!("{at}.id"),
                    "is required for source = \"generic\": where an event's id is, e.g. \"json:/id\"".to_owned(),
                );
                return None;
            }
        };
        let created = match raw.created.as_deref() {
            Some(p) => Some(self.json_pointer(&format!("{at}.created"), p, false)?),
            None => None,
        };
        let next = match raw.next.as_deref() {
            Some(p) => Some(self.json_pointer(&format!("{at}.next"), p, false)?),
            None => None,
        };
        let credentials_header = match raw.credentials_header.as_deref() {
            Some(h) => self.header_name(&format!("{at}.credentials_header"), h)?,
            None => http::header::AUTHORIZATION,
        };
        let cursor_format = match raw.cursor_format.as_deref() {
            None | Some("unix") => CursorFormat::Unix,
            Some("rfc3339") => CursorFormat::Rfc3339,
            Some(other) => {
                self.error(
                    &format!("{at}.cursor_format"),
                    format!("unknown format {other:?}; expected \"unix\" or \"rfc3339\""),
                );
                return None;
            }
        };
        Some(GenericSource {
            url,
            items,
            id,
            created,
            next,
            credentials_header,
            cursor_format,
        })
    }

    /// `json:/pointer` (`json:` alone, the whole document, only where `whole` allows it).
    fn json_pointer(&mut self, path: &str, raw: &str, whole: bool) -> Option<String> {
        match raw.strip_prefix("json:") {
            Some("") if whole => Some(String::new()),
            Some(p) if p.starts_with('/') => Some(p.to_owned()),
            _ => {
                self.error(
                    path,
                    format!("{raw:?}: write a JSON pointer as \"json:/field\""),
                );
                None
            }
        }
    }
}

/// `https`, or `http` to a loopback address.
fn allowed_api_scheme(u: &Uri) -> bool {
    u.scheme_str() == Some("https") || crate::outbound::http::is_loopback_http(u)
}

/// GitHub owner, repository and organization names: letters, digits, `-`, `_`, `.`.
fn valid_github_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
