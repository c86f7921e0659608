//! The deployment assets in `deploy/` agree with the code: every metric (and every label,
//! and every fixed label value) that a dashboard panel or an alert queries is one a real
//! gateway exposes on that metric and docs/METRICS.md documents, the dashboard covers every
//! family of CONTRACT §5 and of buffered delivery (§10), the alerts watch the delivery
//! queue, and the systemd unit and the Containerfile start the binary with a command line
//! the real CLI accepts.
//!
//! A panel or an alert on a misspelt metric does not fail anywhere else: Prometheus just
//! returns nothing, the panel stays empty and the alert never fires. These tests are where
//! such a typo fails (see `the_checks_catch_typos`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::Parser;
use hookwall::cli::{Cli, Command};
use hookwall::config::compile_str;
use hookwall::gateway::Gateway;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::{config_with, standard_route};

/// The families of CONTRACT §5, named as the contract names them (counters with `_total`,
/// histograms by their base name).
const CONTRACT_FAMILIES: [&str; 10] = [
    "hookwall_requests_total",
    "hookwall_rejections_total",
    "hookwall_upstream_responses_total",
    "hookwall_request_duration_seconds",
    "hookwall_upstream_duration_seconds",
    "hookwall_dedup_store_errors_total",
    "hookwall_config_reloads_total",
    "hookwall_in_flight",
    "hookwall_signature_key_matched_total",
    "hookwall_timestamp_skew_seconds",
];

/// The buffered-delivery families of CONTRACT §10, named the same way.
const QUEUE_FAMILIES: [&str; 5] = [
    "hookwall_queue_depth",
    "hookwall_queue_oldest_seconds",
    "hookwall_delivery_attempts_total",
    "hookwall_dead_letters_total",
    "hookwall_queue_delivery_seconds",
];

/// The reconcile families of CONTRACT §11.
const RECONCILE_FAMILIES: [&str; 3] = [
    "hookwall_reconcile_runs_total",
    "hookwall_reconcile_recovered_total",
    "hookwall_reconcile_lag_seconds",
];

/// Labels whose values are fixed by the code (the `route`, `target` and `key` values come
/// from the config, so they cannot be checked here).
const FIXED_VALUE_LABELS: [&str; 4] = ["outcome", "reason", "class", "result"];

/// Labels Prometheus adds to every scraped series (its target's), not the gateway.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// `server.shutdown_grace` default (CONTRACT §2); the unit's stop timeout must exceed it.
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;

const CONFIG_PATH: &str = "/etc/hookwall/gateway.toml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy_file(name: &str) -> String {
    let path = root().join("deploy").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the registry really exposes: sample names, and per sample name the values of each
/// of its labels.
struct Exposition {
    samples: BTreeSet<String>,
    labels: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Exposition {
    /// What a real gateway exposes. Every family prints at least one sample: building a
    /// route pre-creates all its series (each outcome, reason and class, the histograms,
    /// one series per signature key), a buffered route also its target's queue series
    /// (both gauges, each attempt result and dead-letter reason, the delivery histogram),
    /// and `reload` the reload counters.
    fn of_registry() -> Self {
        let route = standard_route(
            "http://127.0.0.1:9",
            "delivery = \"buffered\"\n[route.reconcile]\nsource = \"generic\"\nurl = \"http://127.0.0.1:9/events?since={cursor}\"\nid = \"json:/id\"\ncredentials = \"k\"\n",
        );
        let config = compile_str(&config_with("", "", &route), Path::new("deploy.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let gateway = Gateway::new(config).expect("a gateway for the buffered route");
        let metrics = gateway.metrics();
        metrics.reload(true);
        // Diagnosis series exist from the first diagnosis on.
        metrics.journal.diagnosed("acme", "unknown");
        // The lag exists from a route's first reconcile run on.
        metrics.reconcile.lag("acme", 0);
        Self::parse(&metrics.encode())
    }

    fn parse(text: &str) -> Self {
        let mut samples = BTreeSet::new();
        let mut labels: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let sample = &line[..end];
            samples.insert(sample.to_string());
            if line[end..].starts_with('{') {
                let close = line.find('}').expect("unterminated label set");
                // Label values here (route "acme", target "default", key "current", fixed
                // strings, numbers) hold no comma or quote, so a plain split is exact.
                for pair in line[end + 1..close].split(',').filter(|p| !p.is_empty()) {
                    let (name, value) = pair.split_once('=').expect("label without =");
                    labels
                        .entry(sample.to_string())
                        .or_default()
                        .entry(name.to_string())
                        .or_default()
                        .insert(value.trim_matches('"').to_string());
                }
            }
        }
        Exposition { samples, labels }
    }

    fn is_histogram(&self, family: &str) -> bool {
        self.samples.contains(&format!("{family}_bucket"))
    }

    /// The CONTRACT §5 name of the family a sample belongs to.
    fn family_of<'a>(&self, sample: &'a str) -> &'a str {
        ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| sample.strip_suffix(suffix))
            .find(|base| self.is_histogram(base))
            .unwrap_or(sample)
    }

    /// Why `name` would select nothing in Prometheus, or `None` when it is exposed.
    fn problem_with_metric(&self, name: &str) -> Option<String> {
        if self.samples.contains(name) {
            return None;
        }
        let hint = if self.samples.contains(&format!("{name}_total")) {
            format!(": counters are exposed as {name}_total")
        } else if self.is_histogram(name) {
            format!(": a histogram is queried as {name}_bucket, _sum or _count")
        } else {
            String::new()
        };
        Some(format!(
            "metric {name} is not exposed by the registry{hint}"
        ))
    }

    /// Why `matcher` in a selector of `metric` would select nothing, or `None`: `metric`
    /// has no such label, or (for a label of [`FIXED_VALUE_LABELS`]) never that value.
    /// Regex alternatives of the form `prefix.*` must match some value; other regexes are
    /// not judged. A metric that is not exposed at all is [`Self::problem_with_metric`]'s.
    fn problem_with_matcher(&self, metric: &str, matcher: &Matcher) -> Option<String> {
        if !self.samples.contains(metric) {
            return None;
        }
        let label = matcher.label.as_str();
        let labels = self.labels.get(metric);
        let Some(known) = labels.and_then(|l| l.get(label)) else {
            // `label!="x"` and `label!~"x"` match series without the label: harmless.
            let positive = matches!(matcher.op, "=" | "=~");
            let ours = !TARGET_LABELS.contains(&label) && !label.starts_with("__");
            let has: Vec<&String> = labels.into_iter().flat_map(|l| l.keys()).collect();
            return (positive && ours)
                .then(|| format!("{metric} has no label {label}; its labels: {has:?}"));
        };
        if !FIXED_VALUE_LABELS.contains(&label) {
            return None;
        }
        let value = matcher.value.as_str();
        let bad: Vec<&str> = value
            .split('|')
            .filter(|alt| {
                if let Some(prefix) = alt.strip_suffix(".*") {
                    !has_regex_syntax(prefix) && !known.iter().any(|v| v.starts_with(prefix))
                } else {
                    !has_regex_syntax(alt) && !known.contains(*alt)
                }
            })
            .collect();
        (!bad.is_empty())
            .then(|| format!("{metric}: {label} value(s) {bad:?} never exposed; known: {known:?}"))
    }

    /// Every problem with the metric names, labels and fixed label values of one PromQL
    /// expression. Each matcher is judged against the metric of its own selector: a reason
    /// of one family (the journal's `queue_full`) is not a reason of another.
    fn problems(&self, expr: &str) -> Vec<String> {
        let mut problems: Vec<String> = metric_names(expr)
            .iter()
            .filter_map(|name| self.problem_with_metric(name))
            .collect();
        let selectors = selectors(expr);
        for matcher in label_matchers(expr) {
            match selectors
                .iter()
                .find(|(_, braces)| braces.contains(&matcher.at))
            {
                Some((metric, _)) => problems.extend(self.problem_with_matcher(metric, &matcher)),
                None if FIXED_VALUE_LABELS.contains(&matcher.label.as_str()) => {
                    problems.push(format!(
                        "{}{}\"{}\" is not in a hookwall_...{{}} selector, so it cannot be checked",
                        matcher.label, matcher.op, matcher.value
                    ));
                }
                None => {}
            }
        }
        problems
    }
}

fn has_regex_syntax(s: &str) -> bool {
    s.contains(|c: char| ".*+?()[]{}^$\\".contains(c))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Every identifier starting with `hookwall_` (the whole identifier, so that a stray digit
/// or capital letter after a valid prefix is not silently cut off).
fn metric_names(expr: &str) -> BTreeSet<String> {
    metric_occurrences(expr)
        .into_iter()
        .map(|(_, name)| name)
        .collect()
}

/// Each `hookwall_` identifier with the byte offset just after it.
fn metric_occurrences(expr: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut prev: Option<char> = None;
    while let Some(i) = expr[offset..].find("hookwall_") {
        let before = expr[offset..offset + i].chars().next_back().or(prev);
        let tail = &expr[offset + i..];
        let len = tail.find(|c: char| !is_ident(c)).unwrap_or(tail.len());
        if !before.is_some_and(is_ident) {
            out.push((offset + i + len, tail[..len].to_string()));
        }
        prev = tail[..len].chars().next_back();
        offset += i + len;
    }
    out
}

/// Every `hookwall_...{...}` selector: its metric, and the byte range of its braces.
fn selectors(expr: &str) -> Vec<(String, Range<usize>)> {
    metric_occurrences(expr)
        .into_iter()
        .filter_map(|(end, metric)| {
            let open = end + (expr[end..].len() - expr[end..].trim_start().len());
            if !expr[open..].starts_with('{') {
                return None;
            }
            // The first `}` outside a string literal closes the selector.
            let mut in_string = false;
            let mut escaped = false;
            let close = expr[open..].char_indices().find_map(|(i, c)| {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if in_string => escaped = true,
                    '"' => in_string = !in_string,
                    '}' if !in_string => return Some(open + i),
                    _ => {}
                }
                None
            })?;
            Some((metric, open..close + 1))
        })
        .collect()
}

/// One `label="v"`, `label=~"v"`, `label!="v"` or `label!~"v"`, at byte `at`.
struct Matcher {
    at: usize,
    label: String,
    op: &'static str,
    value: String,
}

/// Every matcher of an expression.
fn label_matchers(expr: &str) -> Vec<Matcher> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            // Skip string literals: a label value never starts a matcher.
            let end = expr[i + 1..].find('"').map_or(bytes.len(), |e| i + 1 + e);
            i = end + 1;
            continue;
        }
        if !is_ident(bytes[i] as char) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i] as char) {
            i += 1;
        }
        let ident = &expr[start..i];
        let after = expr[i..].trim_start();
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| after.starts_with(op) && !after.starts_with("=="));
        if let Some(op) = op {
            let value = after[op.len()..].trim_start();
            if let Some(value) = value.strip_prefix('"') {
                if let Some(end) = value.find('"') {
                    out.push(Matcher {
                        at: start,
                        label: ident.to_string(),
                        op,
                        value: value[..end].to_string(),
                    });
                }
            }
        }
    }
    out
}

/// Whether some query selects `metric` with a `label="value"` (or `=~` with `value` among
/// its alternatives) matcher.
fn selects(exprs: &[(String, String)], metric: &str, label: &str, value: &str) -> bool {
    exprs.iter().any(|(_, expr)| {
        let selectors = selectors(expr);
        label_matchers(expr).iter().any(|m| {
            m.label == label
                && matches!(m.op, "=" | "=~")
                && m.value.split('|').any(|alt| alt == value)
                && selectors
                    .iter()
                    .any(|(name, braces)| name == metric && braces.contains(&m.at))
        })
    })
}

/// The metric families docs/METRICS.md's table lists (its rows naming a `hookwall_` metric).
fn documented_families() -> BTreeSet<String> {
    let documented = std::fs::read_to_string(root().join("docs/METRICS.md")).unwrap();
    documented
        .lines()
        .filter_map(|l| l.strip_prefix("| `hookwall_"))
        .filter_map(|l| l.split('`').next())
        .map(|name| format!("hookwall_{name}"))
        .collect()
}

/// Every metric the queries use is in docs/METRICS.md's table (where whoever reads the
/// panel or gets the alert looks it up).
fn assert_documented(what: &str, exprs: &[(String, String)], expo: &Exposition) {
    let listed = documented_families();
    let undocumented: Vec<String> = exprs
        .iter()
        .flat_map(|(place, e)| metric_names(e).into_iter().map(move |n| (place, n)))
        .filter(|(_, name)| !listed.contains(expo.family_of(name)))
        .map(|(place, name)| format!("{place}: {name}"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "{what} queries metrics docs/METRICS.md does not list:\n{}",
        undocumented.join("\n")
    );
}

/// Every `expr` of every panel target (rows' nested panels included), and every
/// template-variable query.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((format!("panel {title:?}"), expr.to_string()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            let query = var["query"]
                .as_str()
                .or_else(|| var["query"]["query"].as_str());
            if let Some(q) = query {
                out.push((format!("variable {}", var["name"]), q.to_string()));
            }
        }
    }
    out
}

/// Every problem of every `(place, expr)`, each with where it is.
fn problems_in(exprs: &[(String, String)], expo: &Exposition) -> Vec<String> {
    exprs
        .iter()
        .flat_map(|(place, expr)| {
            expo.problems(expr)
                .into_iter()
                .map(move |p| format!("{place}: {p}\n    in: {expr}"))
        })
        .collect()
}

fn assert_no_problems(what: &str, exprs: &[(String, String)], expo: &Exposition) {
    let problems = problems_in(exprs, expo);
    assert!(
        problems.is_empty(),
        "{what} queries what the registry does not expose:\n{}",
        problems.join("\n")
    );
}

/// Parses `hookwall <args>` with the real CLI and returns the `run` subcommand's config.
fn run_config(args: &[&str]) -> PathBuf {
    let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    match cli.command {
        Command::Run { config } => config,
        _ => panic!("{args:?} is not `hookwall run`"),
    }
}

#[test]
fn registry_exposes_every_contract_family() {
    let expo = Exposition::of_registry();
    let families: BTreeSet<&str> = expo.samples.iter().map(|s| expo.family_of(s)).collect();
    for family in CONTRACT_FAMILIES
        .iter()
        .chain(&QUEUE_FAMILIES)
        .chain(&RECONCILE_FAMILIES)
    {
        assert!(
            families.contains(family),
            "{family} not exposed: {families:?}"
        );
    }
    // Every family exposed is documented in docs/METRICS.md's table, the list users read.
    let listed = documented_families();
    for family in families.iter().filter(|f| f.starts_with("hookwall_")) {
        let named = listed.contains(*family) || listed.contains(&format!("{family}_total"));
        assert!(named, "{family} is exposed but not in docs/METRICS.md");
    }
    // And so is every value a fixed label takes (each rejection reason, attempt result,
    // dead-letter reason...), written as code: `queue_full`.
    let documented = std::fs::read_to_string(root().join("docs/METRICS.md")).unwrap();
    for (sample, labels) in expo
        .labels
        .iter()
        .filter(|(s, _)| s.starts_with("hookwall_"))
    {
        for (label, values) in labels
            .iter()
            .filter(|(l, _)| FIXED_VALUE_LABELS.contains(&l.as_str()))
        {
            for value in values {
                assert!(
                    documented.contains(&format!("`{value}`")),
                    "{sample}{{{label}=\"{value}\"}} is exposed but `{value}` is not in docs/METRICS.md"
                );
            }
        }
    }
}

#[test]
fn dashboard_queries_only_exposed_metrics_and_covers_the_contract() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&deploy_file("grafana-dashboard.json")).expect("dashboard JSON");
    let expo = Exposition::of_registry();
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 10, "too few queries: {exprs:?}");
    assert_no_problems("the dashboard", &exprs, &expo);

    // Coverage: each CONTRACT §5 family is shown by at least one query.
    let used: BTreeSet<String> = exprs
        .iter()
        .flat_map(|(_, e)| metric_names(e))
        .map(|name| expo.family_of(&name).to_string())
        .collect();
    for family in CONTRACT_FAMILIES
        .iter()
        .chain(&QUEUE_FAMILIES)
        .chain(&RECONCILE_FAMILIES)
    {
        assert!(used.contains(*family), "no dashboard panel shows {family}");
    }
    // The buffered routes' own refusals, which the generic rejections panel mixes in.
    for reason in ["queue_unavailable", "queue_full"] {
        assert!(
            selects(&exprs, "hookwall_rejections_total", "reason", reason),
            "no dashboard panel selects hookwall_rejections_total{{reason=\"{reason}\"}}"
        );
    }
    assert_documented("the dashboard", &exprs, &expo);

    // Importable: a Prometheus datasource input, and the `route` variable.
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let route = vars
        .iter()
        .find(|v| v["name"] == "route")
        .expect("route variable");
    assert_eq!(
        route["query"],
        "label_values(hookwall_requests_total, route)"
    );
    let mut ids = BTreeSet::new();
    let mut cells: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let id = panel["id"].as_u64().unwrap();
        assert!(ids.insert(id), "duplicate panel id {id}");
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}");
        }
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "panel {id}");
        }
        // No two panels share a grid cell (Grafana would push one of them down).
        let grid = |key: &str| panel["gridPos"][key].as_u64().expect("gridPos");
        let (x, y, w, h) = (grid("x"), grid("y"), grid("w"), grid("h"));
        assert!(x + w <= 24, "panel {id} is wider than the grid");
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            if let Some(other) = cells.insert(cell, id) {
                panic!("panels {other} and {id} overlap at {cell:?}");
            }
        }
    }
}

#[test]
fn alerts_are_well_formed_and_query_only_exposed_metrics() {
    let docs = YamlLoader::load_from_str(&deploy_file("alerts.yml")).expect("alerts YAML");
    assert_eq!(docs.len(), 1);
    let groups = docs[0]["groups"].as_vec().expect("top-level `groups` list");
    assert!(!groups.is_empty());
    let mut exprs = Vec::new();
    let mut names = BTreeSet::new();
    for group in groups {
        let group_name = group["name"].as_str().expect("group name");
        let rules = group["rules"].as_vec().expect("group rules");
        assert!(!rules.is_empty(), "group {group_name} has no rules");
        for rule in rules {
            let alert = rule["alert"]
                .as_str()
                .unwrap_or_else(|| panic!("rule without `alert` in {group_name}: {rule:?}"));
            assert!(names.insert(alert.to_string()), "duplicate alert {alert}");
            let expr = rule["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{alert}: no `expr`"));
            let annotations = &rule["annotations"];
            for key in ["summary", "description"] {
                assert!(
                    annotations[key]
                        .as_str()
                        .is_some_and(|s| !s.trim().is_empty()),
                    "{alert}: no annotations.{key}"
                );
            }
            let severity = rule["labels"]["severity"].as_str();
            assert!(
                matches!(severity, Some("warning" | "critical")),
                "{alert}: labels.severity is {severity:?}"
            );
            if !matches!(rule["for"], Yaml::BadValue) {
                let duration = rule["for"].as_str().expect("`for` is a duration string");
                humantime::parse_duration(duration)
                    .unwrap_or_else(|e| panic!("{alert}: for {duration:?}: {e}"));
            }
            exprs.push((format!("alert {alert}"), expr.to_string()));
        }
    }
    let expo = Exposition::of_registry();
    assert_no_problems("alerts.yml", &exprs, &expo);
    assert_documented("alerts.yml", &exprs, &expo);
    for required in [
        "HookwallSignatureFailuresSpike",
        "HookwallUpstreamErrorRatio",
        "HookwallDedupStoreDown",
        "HookwallConfigReloadFailed",
        "HookwallOverloaded",
        "HookwallTimestampsOutOfWindow",
    ] {
        assert!(names.contains(required), "alerts.yml lacks {required}");
    }
    // Buffered delivery: each alert watches what its name says (the delivery queue's
    // queue_full is a rejection reason, not the journal's dropped reason of that name).
    for (alert, metric, matcher) in [
        (
            "HookwallDeliveryQueueStalled",
            "hookwall_queue_oldest_seconds",
            None,
        ),
        ("HookwallDeadLetters", "hookwall_dead_letters_total", None),
        (
            "HookwallReconcileFailing",
            "hookwall_reconcile_runs_total",
            Some(("result", "error")),
        ),
        (
            "HookwallReconcileLagging",
            "hookwall_reconcile_lag_seconds",
            None,
        ),
        (
            "HookwallDeliveryQueueUnavailable",
            "hookwall_rejections_total",
            Some(("reason", "queue_unavailable")),
        ),
        (
            "HookwallDeliveryQueueFull",
            "hookwall_rejections_total",
            Some(("reason", "queue_full")),
        ),
    ] {
        let place = format!("alert {alert}");
        let own: Vec<(String, String)> =
            exprs.iter().filter(|(p, _)| *p == place).cloned().collect();
        assert!(!own.is_empty(), "alerts.yml lacks {alert}");
        let watched = match matcher {
            Some((label, value)) => selects(&own, metric, label, value),
            None => own.iter().any(|(_, e)| metric_names(e).contains(metric)),
        };
        assert!(
            watched,
            "{alert} does not query {metric} {matcher:?}: {own:?}"
        );
    }
}

/// Guards the guards: each kind of typo in a query must be reported.
#[test]
fn the_checks_catch_typos() {
    let expo = Exposition::of_registry();
    let ok = r#"sum by (route) (rate(hookwall_rejections_total{route=~"$route", reason=~"upstream_.*|overloaded"}[5m]))
        / histogram_quantile(0.99, sum by (le) (rate(hookwall_request_duration_seconds_bucket[5m])))
        + hookwall_in_flight + increase(hookwall_config_reloads_total{result="error"}[15m])"#;
    assert_eq!(expo.problems(ok), Vec::<String>::new());
    let ok = r#"max by (route, target) (hookwall_queue_oldest_seconds{route=~"$route", target="default"})
        + sum(rate(hookwall_delivery_attempts_total{result=~"retry|dead_letter"}[5m]))
        + sum(increase(hookwall_dead_letters_total{job="hookwall", reason="max_age"}[15m]))
        + histogram_quantile(0.5, sum by (le) (rate(hookwall_queue_delivery_seconds_bucket[5m])))
        + sum(rate(hookwall_rejections_total{reason=~"queue_unavailable|queue_full"}[5m]))
        + sum(rate(hookwall_journal_dropped_total{reason="queue_full"}[5m]))
        + hookwall_queue_depth{instance!="x", reason!="y"}"#;
    assert_eq!(expo.problems(ok), Vec::<String>::new());
    for typo in [
        "rate(hookwall_request_total[5m])",                   // missing s
        "rate(hookwall_requests[5m])",                        // counter without _total
        "rate(hookwall_request_duration_seconds[5m])",        // histogram without _bucket
        "rate(hookwall_upstream_duration_second_bucket[5m])", // missing s
        "hookwall_in_flight2",                                // trailing junk
        r#"rate(hookwall_rejections_total{reason="upstream_timout"}[5m])"#,
        r#"rate(hookwall_rejections_total{reason=~"invalid_signature|bad_signature"}[5m])"#,
        r#"rate(hookwall_rejections_total{reason=~"upstrem_.*"}[5m])"#,
        r#"rate(hookwall_upstream_responses_total{class="5XX"}[5m])"#,
        r#"increase(hookwall_config_reloads_total{result="failure"}[5m])"#,
        "rate(hookwall_delivery_attempt_total[5m])", // missing s
        "rate(hookwall_dead_letters[5m])",           // counter without _total
        "hookwall_queue_oldest_second",              // missing s
        "rate(hookwall_queue_delivery_seconds[5m])", // histogram without _bucket
        // A value of the label of another family is not a value of this one's.
        r#"rate(hookwall_delivery_attempts_total{result="ok"}[5m])"#,
        r#"rate(hookwall_dead_letters_total{reason="queue_full"}[5m])"#,
        r#"rate(hookwall_journal_dropped_total{reason="queue_unavailable"}[5m])"#,
        r#"rate(hookwall_rejections_total{reason="max_attempts"}[5m])"#,
        // A label the family does not have.
        r#"hookwall_queue_depth{reason="status"}"#,
        r#"sum(rate(hookwall_rejections_total{target="default"}[5m]))"#,
        // A fixed label outside a hookwall_ selector cannot be checked, so it is refused.
        r#"{__name__="hookwall_dead_letters_total", reason="max_age"}"#,
    ] {
        assert!(!expo.problems(typo).is_empty(), "typo not caught: {typo}");
    }
    // A typo'd name in a dashboard target makes the dashboard check fail.
    let dashboard = serde_json::json!({"panels": [{"title": "t", "targets": [
        {"expr": "sum(rate(hookwall_requets_total[5m]))"}
    ]}]});
    let exprs = dashboard_exprs(&dashboard);
    let problems = problems_in(&exprs, &expo);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("hookwall_requets_total"));
}

/// `key=value` lines of a systemd unit (comments and section headers skipped).
fn unit_directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn systemd_unit_is_hardened_and_runs_the_real_cli() {
    let unit = unit_directives(&deploy_file("hookwall.service"));
    let get = |key: &str| -> Vec<&str> {
        unit.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let one = |key: &str| -> &str {
        match get(key).as_slice() {
            [v] => v,
            other => panic!("{key}= set {} times: {other:?}", other.len()),
        }
    };
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("KillSignal", "SIGTERM"),
        ("Restart", "on-failure"),
        ("CapabilityBoundingSet", ""),
        ("ConfigurationDirectory", "hookwall"),
        // The one writable place under ProtectSystem=strict, for the SQLite storage.
        ("StateDirectory", "hookwall"),
    ] {
        assert_eq!(one(key), value, "{key}=");
    }
    assert!(get("AmbientCapabilities").is_empty());

    let exec_start = one("ExecStart");
    assert_eq!(
        exec_start,
        format!("/usr/local/bin/hookwall run --config {CONFIG_PATH}")
    );
    let args: Vec<&str> = exec_start.split_whitespace().collect();
    assert_eq!(run_config(&args), Path::new(CONFIG_PATH));

    let reload = one("ExecReload");
    assert!(
        reload.contains("kill -HUP $MAINPID") || reload.contains("kill -s HUP $MAINPID"),
        "ExecReload must send SIGHUP to the main process: {reload}"
    );

    let stop = one("TimeoutStopSec");
    let stop = stop
        .parse::<u64>()
        .ok()
        .or_else(|| humantime::parse_duration(stop).ok().map(|d| d.as_secs()))
        .unwrap_or_else(|| panic!("TimeoutStopSec={stop}"));
    assert!(
        stop > DEFAULT_SHUTDOWN_GRACE_SECS,
        "TimeoutStopSec={stop} would SIGKILL within the {DEFAULT_SHUTDOWN_GRACE_SECS}s shutdown grace"
    );
    assert!(get("EnvironmentFile").contains(&"-/etc/hookwall/env"));
}

#[test]
fn containerfile_runs_as_non_root_with_the_real_cli() {
    let text = deploy_file("Containerfile");
    // Instructions of the final stage, continuation lines joined, comments dropped.
    let mut instructions: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => {
                pending.push_str(line);
                instructions.push(std::mem::take(&mut pending));
            }
        }
    }
    let stages: Vec<&[String]> = {
        let starts: Vec<usize> = instructions
            .iter()
            .enumerate()
            .filter(|(_, i)| i.starts_with("FROM "))
            .map(|(n, _)| n)
            .collect();
        assert!(starts.len() >= 2, "expected a multi-stage build");
        starts
            .iter()
            .zip(starts.iter().skip(1).chain([&instructions.len()]))
            .map(|(&a, &b)| &instructions[a..b])
            .collect()
    };
    let build = stages[0];
    assert!(build
        .iter()
        .any(|i| i.starts_with("RUN") && i.contains("cargo build --release --locked")));
    let last = stages[stages.len() - 1];
    let arg = |name: &str| -> &str {
        let found: Vec<&str> = last
            .iter()
            .filter_map(|i| i.strip_prefix(name))
            .filter_map(|rest| rest.strip_prefix(' '))
            .map(str::trim)
            .collect();
        match found.as_slice() {
            [v] => v,
            other => panic!("final stage: {name} appears {} times", other.len()),
        }
    };

    let user = arg("USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        !uid.is_empty() && uid != "root" && uid != "0",
        "final stage runs as {user}"
    );
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "USER should be a numeric non-root uid: {user}"
    );

    let entrypoint: Vec<String> =
        serde_json::from_str(arg("ENTRYPOINT")).expect("ENTRYPOINT in exec form");
    let cmd: Vec<String> = serde_json::from_str(arg("CMD")).expect("CMD in exec form");
    assert_eq!(entrypoint, ["/usr/local/bin/hookwall"]);
    assert_eq!(cmd, ["run", "--config", CONFIG_PATH]);
    let argv: Vec<&str> = entrypoint.iter().chain(&cmd).map(String::as_str).collect();
    assert_eq!(run_config(&argv), Path::new(CONFIG_PATH));

    let exposed: Vec<&str> = arg("EXPOSE").split_whitespace().collect();
    assert_eq!(exposed, ["8080", "9090"]);
    // A volume the image's user can write, for the SQLite storage.
    let volume: Vec<String> = serde_json::from_str(arg("VOLUME")).expect("VOLUME in exec form");
    assert_eq!(volume, ["/var/lib/hookwall"]);
    assert!(
        last.iter()
            .any(|i| i.starts_with("RUN")
                && i.contains(&format!("-o {uid} -g {uid} /var/lib/hookwall"))),
        "/var/lib/hookwall must belong to uid {uid}"
    );
    assert!(last
        .iter()
        .any(|i| i.starts_with("COPY --from=") && i.ends_with("/usr/local/bin/hookwall")));
}
