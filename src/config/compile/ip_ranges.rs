//! `allow_ips` with provider lists (`"@github"`), and the `[ip_ranges]` section that
//! refreshes them (CONTRACT §12).

use ipnet::IpNet;

use super::Compiler;
use crate::config::raw::RawIpRanges;
use crate::config::IpRangesConfig;
use crate::ip_ranges;

impl Compiler {
    /// A route's `allow_ips`: its CIDRs and the provider lists it names.
    pub(super) fn allow_ips(
        &mut self,
        path: &str,
        raw: Option<&[String]>,
    ) -> (Vec<IpNet>, Vec<String>) {
        let mut nets = Vec::new();
        let mut lists: Vec<String> = Vec::new();
        for (i, s) in raw.unwrap_or_default().iter().enumerate() {
            let at = format!("{path}[{i}]");
            let Some(name) = s.strip_prefix('@') else {
                nets.extend(self.cidr(&at, s));
                continue;
            };
            if ip_ranges::source(name).is_none() {
                self.error(
                    &at,
                    format!(
                        "unknown provider list {s:?}{}; lists: {} (providers that publish no webhook addresses have none)",
                        crate::config::suggest::hint(s, ip_ranges::names().iter().map(String::as_str)),
                        ip_ranges::names().join(", ")
                    ),
                );
            } else if !lists.iter().any(|l| l == name) {
                lists.push(name.to_owned());
            }
        }
        (nets, lists)
    }

    /// `[ip_ranges]`: refresh interval and per-list URL overrides.
    pub(super) fn ip_ranges(&mut self, raw: Option<&RawIpRanges>) -> IpRangesConfig {
        let Some(raw) = raw else {
            return IpRangesConfig::default();
        };
        let refresh = raw.refresh.as_deref().map(|s| {
            self.nonzero_duration(
                "ip_ranges.refresh",
                Some(s),
                std::time::Duration::from_secs(86400),
            )
        });
        let mut urls = Vec::new();
        for (name, url) in raw.urls.iter().flatten() {
            let at = format!("ip_ranges.urls.{name}");
            let bare = name.trim_start_matches('@');
            let Some(source) = ip_ranges::source(bare) else {
                self.error(
                    &at,
                    format!(
                        "unknown provider list \"@{bare}\"; lists: {}",
                        ip_ranges::names().join(", ")
                    ),
                );
                continue;
            };
            let ok = url.parse::<http::Uri>().is_ok_and(|u| {
                u.authority().is_some()
                    && (u.scheme_str() == Some("https")
                        || crate::outbound::http::is_loopback_http(&u))
            });
            if !ok {
                self.error(
                    &at,
                    format!(
                        "{url:?} must be an https:// URL (plain http only to a loopback address)"
                    ),
                );
                continue;
            }
            urls.push((source.name, url.clone()));
        }
        IpRangesConfig { refresh, urls }
    }
}
