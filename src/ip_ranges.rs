//! Provider IP ranges (CONTRACT §12): `allow_ips = ["@github", "@stripe", "10.0.0.0/8"]`.
//!
//! Each `@name` is the provider's published list of webhook source addresses. A copy ships
//! in the binary (`ip_ranges/<name>.txt`: one CIDR or address a line, with its source URL
//! and retrieval date in the header), so a route works offline from the first request.
//! With `[ip_ranges] refresh = "24h"`, hookwall fetches the published list again on that
//! interval through the outbound HTTPS client and swaps it in whole, atomically; a fetch
//! that fails, or an answer that does not parse into a plausible list, keeps the last
//! good list (logged, and counted in `hookwall_ip_range_refreshes_total{list,result}`).
//!
//! The lists live once per process ([`IpRanges`]): reloads rebuild routes, never the
//! lists, so a refreshed list is not lost to a reload.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use ipnet::IpNet;

use crate::outbound::http::{Call, HttpClient};

pub mod refresh;

/// How a provider publishes its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// GitHub's meta API: `{"hooks": ["cidr", ...], ...}`.
    GithubMeta,
    /// Stripe's `ips_webhooks.json`: `{"WEBHOOKS": ["ip", ...]}`.
    StripeJson,
    /// Paddle's `/ips`: `{"data": {"ipv4_cidrs": ["cidr", ...]}}`.
    PaddleJson,
}

/// One provider that publishes its webhook source addresses.
#[derive(Debug)]
pub(crate) struct Source {
    /// The name after `@`.
    pub name: &'static str,
    /// Where the live list is published.
    pub url: &'static str,
    pub format: Format,
    /// The shipped copy.
    shipped: &'static str,
    /// When the shipped copy was taken from `url`.
    pub retrieved: &'static str,
}

/// Every provider with a published list. Shopify, Twilio, Mailgun, SendGrid and Slack
/// publish none (they say their addresses change without notice), so they have no entry.
pub(crate) const SOURCES: [Source; 4] = [
    Source {
        name: "github",
        url: "https://api.github.com/meta",
        format: Format::GithubMeta,
        shipped: include_str!("ip_ranges/github.txt"),
        retrieved: "2026-12-03",
    },
    Source {
        name: "stripe",
        url: "https://stripe.com/files/ips/ips_webhooks.json",
        format: Format::StripeJson,
        shipped: include_str!("ip_ranges/stripe.txt"),
        retrieved: "2026-12-03",
    },
    Source {
        name: "paddle",
        url: "https://api.paddle.com/ips",
        format: Format::PaddleJson,
        shipped: include_str!("ip_ranges/paddle.txt"),
        retrieved: "2026-12-03",
    },
    Source {
        name: "paddle-sandbox",
        url: "https://sandbox-api.paddle.com/ips",
        format: Format::PaddleJson,
        shipped: include_str!("ip_ranges/paddle-sandbox.txt"),
        retrieved: "2026-12-03",
    },
];

/// The provider named `name` (without `@`).
pub(crate) fn source(name: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.name == name)
}

/// The names, as written in `allow_ips` (for error messages).
pub(crate) fn names() -> Vec<String> {
    SOURCES.iter().map(|s| format!("@{}", s.name)).collect()
}

/// Where a list in use came from, for the `ip_not_allowed` log line and `/routes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The copy in the binary, taken on this date.
    Shipped(&'static str),
    /// Fetched from the provider at this time.
    Refreshed(SystemTime),
}

/// One provider's list as it stands.
#[derive(Debug)]
pub struct RangeList {
    /// `@name`.
    pub name: &'static str,
    /// The networks.
    pub nets: Vec<IpNet>,
    /// Where they came from.
    pub origin: Origin,
}

impl fmt::Display for RangeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.origin {
            Origin::Shipped(date) => write!(f, "@{} (shipped, {date})", self.name),
            Origin::Refreshed(at) => write!(
                f,
                "@{} (refreshed {})",
                self.name,
                humantime::format_rfc3339_seconds(at)
            ),
        }
    }
}

/// A list a route reads on every request and the refresh task replaces whole.
pub type SharedList = Arc<ArcSwap<RangeList>>;

/// Every provider list of this process.
#[derive(Debug)]
pub struct IpRanges {
    lists: HashMap<&'static str, SharedList>,
}

impl Default for IpRanges {
    fn default() -> Self {
        let lists = SOURCES
            .iter()
            .map(|s| {
                let list = RangeList {
                    name: s.name,
                    nets: parse_lines(s.shipped).unwrap_or_default(),
                    origin: Origin::Shipped(s.retrieved),
                };
                (s.name, Arc::new(ArcSwap::from_pointee(list)))
            })
            .collect();
        IpRanges { lists }
    }
}

impl IpRanges {
    /// The list `@name`, shared with whoever else reads it.
    pub fn list(&self, name: &str) -> Option<SharedList> {
        self.lists.get(name).cloned()
    }

    /// Fetches `name`'s published list from `url` and swaps it in; on any failure the
    /// current list stays. Returns how many networks the new list has.
    pub(crate) async fn refresh(
        &self,
        client: &HttpClient,
        name: &str,
        url: &str,
    ) -> Result<usize, String> {
        let (Some(list), Some(source)) = (self.lists.get(name), source(name)) else {
            return Err(format!("no list named @{name}"));
        };
        let call = Call {
            timeout: REFRESH_TIMEOUT,
            max_body: MAX_LIST_BODY,
            ..Call::get(url)
        };
        let answer = client.send(call).await.map_err(|e| e.to_string())?;
        if !answer.status.is_success() {
            return Err(format!("{url} answered {}", answer.status));
        }
        let nets = parse_published(source.format, &answer.body)?;
        let count = nets.len();
        list.store(Arc::new(RangeList {
            name: source.name,
            nets,
            origin: Origin::Refreshed(SystemTime::now()),
        }));
        Ok(count)
    }
}

/// A published list is a few KiB (GitHub's whole meta document is the largest, ~200 KiB).
const MAX_LIST_BODY: usize = 1024 * 1024;
/// Deadline of one list fetch.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// Networks broader than these are refused in a fetched list: no provider sends from a
/// /7, and a list that says so is broken or not the provider's.
const MIN_V4_PREFIX: u8 = 8;
const MIN_V6_PREFIX: u8 = 24;

/// Parses one entry: a CIDR, or an address meaning that host.
fn parse_entry(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = s
        .parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or CIDR"))?;
    let too_broad = match net {
        IpNet::V4(n) => n.prefix_len() < MIN_V4_PREFIX,
        IpNet::V6(n) => n.prefix_len() < MIN_V6_PREFIX,
    };
    if too_broad {
        return Err(format!("{net} is broader than a provider's range can be"));
    }
    Ok(net.trunc())
}

/// Checks a whole list: every entry parses, and there is at least one.
fn parse_all<'a>(entries: impl Iterator<Item = &'a str>) -> Result<Vec<IpNet>, String> {
    let nets = entries.map(parse_entry).collect::<Result<Vec<_>, _>>()?;
    if nets.is_empty() {
        return Err("the list is empty".to_owned());
    }
    Ok(nets)
}

/// The shipped text form: one entry a line, `#` comments and blank lines skipped.
fn parse_lines(text: &str) -> Result<Vec<IpNet>, String> {
    parse_all(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#')),
    )
}

/// A list as the provider publishes it.
fn parse_published(format: Format, body: &[u8]) -> Result<Vec<IpNet>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let pointer = match format {
        Format::GithubMeta => "/hooks",
        Format::StripeJson => "/WEBHOOKS",
        Format::PaddleJson => "/data/ipv4_cidrs",
    };
    let items = doc
        .pointer(pointer)
        .and_then(|v| v.as_array())
        .ok_or_else(|| format!("no list at {pointer}"))?;
    let strings = items
        .iter()
        .map(|v| v.as_str().ok_or_else(|| format!("{v} is not a string")))
        .collect::<Result<Vec<_>, _>>()?;
    parse_all(strings.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_list_parses_whole() {
        for s in &SOURCES {
            let nets = parse_lines(s.shipped).unwrap_or_else(|e| panic!("@{}: {e}", s.name));
            assert!(!nets.is_empty(), "@{}", s.name);
            assert!(
                s.shipped.contains(s.url),
                "@{}: the header names its source",
                s.name
            );
        }
    }

    #[test]
    fn the_shipped_lists_hold_the_published_addresses() {
        let ranges = IpRanges::default();
        let has = |list: &str, ip: &str| {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            ranges
                .list(list)
                .unwrap()
                .load()
                .nets
                .iter()
                .any(|n| n.contains(&ip))
        };
        assert!(has("github", "192.30.252.1"));
        assert!(has("github", "2606:50c0::1"));
        assert!(has("stripe", "3.18.12.63"));
        assert!(!has("stripe", "3.18.12.64"));
        assert!(has("paddle", "34.232.58.13"));
        assert!(has("paddle-sandbox", "34.194.127.46"));
        assert!(!has("paddle", "34.194.127.46"));
    }

    #[test]
    fn each_published_format_is_read() {
        let github = br#"{"verifiable_password_authentication":false,"hooks":["192.30.252.0/22","2a0a:a440::/29"],"web":["0.0.0.0/1"]}"#;
        assert_eq!(
            parse_published(Format::GithubMeta, github).unwrap().len(),
            2
        );
        let stripe = br#"{"WEBHOOKS":["3.18.12.63","3.130.192.231"]}"#;
        assert_eq!(
            parse_published(Format::StripeJson, stripe).unwrap(),
            vec![
                "3.18.12.63/32".parse::<IpNet>().unwrap(),
                "3.130.192.231/32".parse().unwrap()
            ]
        );
        let paddle = br#"{"data":{"ipv4_cidrs":["34.232.58.13/32"]},"meta":{"request_id":"x"}}"#;
        assert_eq!(
            parse_published(Format::PaddleJson, paddle).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_broken_or_implausible_list_is_refused_whole() {
        let refused = |body: &[u8]| parse_published(Format::GithubMeta, body).unwrap_err();
        assert!(refused(b"<html>").contains("not JSON"));
        assert!(refused(br#"{"web":[]}"#).contains("no list at /hooks"));
        assert!(refused(br#"{"hooks":[]}"#).contains("empty"));
        assert!(refused(br#"{"hooks":["192.30.252.0/22","nonsense"]}"#).contains("nonsense"));
        assert!(refused(br#"{"hooks":["0.0.0.0/0"]}"#).contains("broader"));
        assert!(refused(br#"{"hooks":["::/0"]}"#).contains("broader"));
        assert!(refused(br#"{"hooks":[1]}"#).contains("not a string"));
    }

    #[test]
    fn the_origin_is_shown_with_the_name() {
        let list = RangeList {
            name: "github",
            nets: Vec::new(),
            origin: Origin::Shipped("2026-12-03"),
        };
        assert_eq!(list.to_string(), "@github (shipped, 2026-12-03)");
        let list = RangeList {
            origin: Origin::Refreshed(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            ..list
        };
        assert_eq!(list.to_string(), "@github (refreshed 2027-01-15T08:00:00Z)");
    }
}
