//! One test per compile rule; the error text is asserted because operators read it.

use std::path::Path;
use std::time::Duration;

use super::*;

const ROUTE: &str = r#"
[[route]]
name = "r"
path = "/r"
upstream = "http://127.0.0.1:3000/r"
secrets = [{ value = "s" }]
[route.verify]
header = "X-Sig"
"#;

fn ok(text: &str) -> Config {
    compile_str(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str) -> Vec<String> {
    match compile_str(text, Path::new("t.toml")) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.errors.iter().map(|e| e.to_string()).collect(),
    }
}

fn has(errs: &[String], needle: &str) -> bool {
    errs.iter().any(|e| e.contains(needle))
}

#[test]
fn defaults_match_the_contract() {
    let c = ok(ROUTE);
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.server.max_body, 1024 * 1024);
    assert_eq!(c.server.read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.max_concurrency, 1024);
    assert_eq!(c.server.max_concurrency_per_ip, 256);
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(c.dedup.store, StoreKind::Memory);
    assert_eq!(c.dedup.call_timeout, Duration::from_millis(250));
    assert_eq!(c.dedup.ttl, Duration::from_secs(72 * 3600));
    assert_eq!(c.dedup.lease, Duration::from_secs(60));
    assert_eq!(c.dedup.on_store_error, OnStoreError::Reject);
    let r = &c.routes[0];
    assert_eq!(r.methods, vec![http::Method::POST]);
    assert_eq!(r.timeout, Duration::from_secs(10));
    assert_eq!(r.max_body, 1024 * 1024);
    assert_eq!(r.provider, "generic");
    assert_eq!(r.dedup, None, "no id_header: dedup is off by default");
    assert_eq!(r.window, None, "no timestamp_header: no window");
}

#[test]
fn generic_route_with_id_and_timestamp_gets_dedup_and_a_5m_window() {
    let c = ok(&format!("{ROUTE}timestamp_header = \"X-Ts\"\nid_header = \"X-Id\"\npayload = \"{{timestamp}}.{{body}}\"\n"));
    let r = &c.routes[0];
    assert_eq!(
        r.dedup,
        Some(DedupKeyConfig {
            source: DedupSource::Header(http::HeaderName::from_static("x-id")),
            required: true
        })
    );
    assert_eq!(
        r.window,
        Some(Window {
            past: Duration::from_secs(300),
            future: Duration::from_secs(300)
        })
    );
}

#[test]
fn burst_defaults_to_the_rate() {
    let c = ok(&ROUTE.replace(
        "[route.verify]",
        "rate_limit = { per_second = 7 }\n[route.verify]",
    ));
    let rl = c.routes[0].rate_limit.clone().unwrap();
    assert_eq!(rl.burst.get(), 7);
    assert_eq!(rl.by, RateLimitBy::Route);
    assert_eq!(rl.period, Duration::from_secs(1) / 7);
}

#[test]
fn rate_limit_needs_exactly_one_rate() {
    let e = errors(&ROUTE.replace(
        "[route.verify]",
        "rate_limit = { per_second = 1, per_minute = 2 }\n[route.verify]",
    ));
    assert!(
        has(
            &e,
            "route[0].rate_limit: needs exactly one of per_second or per_minute"
        ),
        "{e:?}"
    );
    let e = errors(&ROUTE.replace(
        "[route.verify]",
        "rate_limit = { per_second = 0 }\n[route.verify]",
    ));
    assert!(
        has(&e, "route[0].rate_limit.per_second: must be between 1"),
        "{e:?}"
    );
}

#[test]
fn unknown_keys_are_all_reported_with_their_path() {
    let e = errors(&format!(
        "[server]\nlisen = \"x\"\n[dedup]\nttl2 = \"1h\"\n{ROUTE}algo = \"x\"\n"
    ));
    assert!(has(&e, "server.lisen: unknown key"), "{e:?}");
    assert!(has(&e, "dedup.ttl2: unknown key"), "{e:?}");
    assert!(has(&e, "route[0].verify.algo: unknown key"), "{e:?}");
}

#[test]
fn unknown_keys_inside_inline_tables_are_reported() {
    let e = errors(&ROUTE.replace(
        "[route.verify]",
        "dedup = { key = \"body-sha256\", requird = false }\n[route.verify]",
    ));
    assert!(has(&e, "route[0].dedup.requird: unknown key"), "{e:?}");
    let e = errors(&ROUTE.replace("{ value = \"s\" }", "{ value = \"s\", idd = \"x\" }"));
    assert!(has(&e, "route[0].secrets[0].idd: unknown key"), "{e:?}");
}

#[test]
fn secret_sources() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "from-file\n").unwrap();
    let c = ok(&ROUTE.replace(
        "{ value = \"s\" }",
        &format!("{{ file = \"{}\" }}", file.display()),
    ));
    let sig = c.routes[0]
        .verifier
        .sign(&crate::verify::SignInput {
            body: b"x",
            timestamp: 0,
            id: "",
            url: None,
            method: &http::Method::POST,
        })
        .unwrap()
        .remove(0)
        .1;
    let expected = crate::verify::PreparedMac::new(crate::verify::Algorithm::Sha256, b"from-file");
    assert_eq!(
        sig,
        hex::encode(expected.compute(&[b"x"]).as_bytes()),
        "trailing newline must be trimmed"
    );
    let e = errors(&ROUTE.replace("{ value = \"s\" }", "{ value = \"s\", env = \"X\" }"));
    assert!(
        has(&e, "needs exactly one of `value`, `env` or `file`"),
        "{e:?}"
    );
    let e = errors(&ROUTE.replace("{ value = \"s\" }", "{ file = \"/nonexistent/hookwall\" }"));
    assert!(
        has(&e, "cannot read secret file \"/nonexistent/hookwall\""),
        "{e:?}"
    );
}

#[test]
fn errors_never_contain_secret_values() {
    let e = errors(&ROUTE.replace(
        "{ value = \"s\" }",
        "{ value = \"super-secret-value\", env = \"X\" }",
    ));
    assert!(e.iter().all(|l| !l.contains("super-secret-value")), "{e:?}");
}

#[test]
fn a_secret_of_the_wrong_type_is_not_quoted_in_the_error() {
    // serde's own messages quote the value; a secret written in the wrong shape must not be.
    let cases = [
        ROUTE.replace("{ value = \"s\" }", "\"LEAK-plain-string\""),
        ROUTE.replace("{ value = \"s\" }", "{ value = 987654321 }"),
        ROUTE.replace("{ value = \"s\" }", "{ value = [\"LEAK-in-array\"] }"),
        format!("[admin]\ntoken = 987654321\n{ROUTE}"),
        format!("[dedup]\nstore = \"redis\"\nredis_url = 987654321\n{ROUTE}"),
    ];
    for text in cases {
        let e = errors(&text);
        assert!(has(&e, "not shown: it may be a secret"), "{e:?}");
        assert!(
            e.iter()
                .all(|l| !l.contains("LEAK") && !l.contains("987654321")),
            "{e:?}"
        );
    }
}

#[test]
fn payload_placeholders_need_their_headers() {
    let e = errors(&format!("{ROUTE}payload = \"{{timestamp}}.{{body}}\"\n"));
    assert!(
        has(&e, "uses {timestamp} but timestamp_header is not set"),
        "{e:?}"
    );
    let e = errors(&format!("{ROUTE}payload = \"{{url}}{{body}}\"\n"));
    assert!(has(&e, "route[0].public_url: is required"), "{e:?}");
}

#[test]
fn dedup_true_without_an_id_is_an_error() {
    let e = errors(&ROUTE.replace("[route.verify]", "dedup = true\n[route.verify]"));
    assert!(
        has(&e, "route[0].dedup: dedup = true needs a delivery id"),
        "{e:?}"
    );
}

#[test]
fn dedup_keys_parse() {
    for (key, source) in [
        (
            "header:X-Request-Id",
            DedupSource::Header(http::HeaderName::from_static("x-request-id")),
        ),
        ("json:/data/id", DedupSource::JsonPointer("/data/id".into())),
        ("body-sha256", DedupSource::BodySha256),
    ] {
        let c = ok(&ROUTE.replace(
            "[route.verify]",
            &format!("dedup = {{ key = \"{key}\" }}\n[route.verify]"),
        ));
        assert_eq!(c.routes[0].dedup.as_ref().unwrap().source, source);
    }
    let e = errors(&ROUTE.replace(
        "[route.verify]",
        "dedup = { key = \"json:id\" }\n[route.verify]",
    ));
    assert!(has(&e, "must start with '/'"), "{e:?}");
    let e = errors(&ROUTE.replace(
        "[route.verify]",
        "dedup = { key = \"cookie:x\" }\n[route.verify]",
    ));
    assert!(has(&e, "unknown dedup key \"cookie:x\""), "{e:?}");
}

#[test]
fn lease_must_exceed_timeout_only_for_dedup_routes() {
    let dedup_route = ROUTE.replace(
        "[route.verify]",
        "timeout = \"60s\"\ndedup = { key = \"body-sha256\" }\n[route.verify]",
    );
    let e = errors(&dedup_route);
    assert!(
        has(
            &e,
            "dedup.lease (1m) must be longer than this route's timeout (1m)"
        ),
        "{e:?}"
    );
    ok(&ROUTE.replace("[route.verify]", "timeout = \"60s\"\n[route.verify]"));
}

#[test]
fn bare_addresses_are_single_host_networks() {
    let c = ok(&ROUTE.replace(
        "[route.verify]",
        "allow_ips = [\"192.0.2.1\", \"2001:db8::/32\"]\n[route.verify]",
    ));
    assert_eq!(c.routes[0].allow_ips[0].to_string(), "192.0.2.1/32");
}

#[test]
fn reserved_and_unsupported_values_are_explained() {
    let e = errors(&ROUTE.replace("name = \"r\"", "name = \"_unknown\""));
    assert!(has(&e, "\"_unknown\" is reserved"), "{e:?}");
    // `hook` and `hook:x` would share dedup ids (`hook:x:1` is both).
    for bad in ["hook:x", "a b", "a{b}", "x\\ny"] {
        let e = errors(&ROUTE.replace("name = \"r\"", &format!("name = \"{bad}\"")));
        assert!(has(&e, "route[0].name"), "{bad}: {e:?}");
        assert!(has(&e, "letters, digits"), "{bad}: {e:?}");
    }
    ok(&ROUTE.replace("name = \"r\"", "name = \"stripe-prod_2/v1.x\""));

    let e = errors(&ROUTE.replace("name = \"r\"", "name = \"r\"\nprovider = \"strype\""));
    assert!(
        has(&e, "route[0].provider: unknown provider \"strype\""),
        "{e:?}"
    );
    let e = errors("");
    assert!(has(&e, "no [[route]] is configured"), "{e:?}");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = compile_str("[server]\nlisten = \n", Path::new("t.toml")).unwrap_err();
    assert_eq!(e.errors[0].position.map(|p| p.0), Some(2));
    let e = compile_str(
        "[server]\nmax_concurrency = \"many\"\n",
        Path::new("t.toml"),
    )
    .unwrap_err();
    assert_eq!(e.errors[0].position.map(|p| p.0), Some(2), "{e}");
}

#[test]
fn event_without_any_filter_is_a_warning_and_with_one_is_not() {
    let unused = ok(&ROUTE.replace(
        "[route.verify]",
        "event = \"header:X-Type\"\n[route.verify]",
    ));
    assert!(
        unused
            .warnings
            .iter()
            .any(|w| w.contains("event has no effect")),
        "{:?}",
        unused.warnings
    );
    let filtered = ok(&ROUTE.replace(
        "[route.verify]",
        "event = \"header:X-Type\"\nevents = [\"invoice.*\"]\n[route.verify]",
    ));
    assert!(
        !filtered.warnings.iter().any(|w| w.contains("event")),
        "{:?}",
        filtered.warnings
    );
    assert_eq!(filtered.routes[0].events, ["invoice.*"]);
}

#[test]
fn events_need_an_event_type_and_no_empty_pattern() {
    let e = errors(&ROUTE.replace(
        "[route.verify]",
        "events = [\"invoice.*\", \" \"]\n[route.verify]",
    ))
    .join("\n");
    assert!(
        e.contains("route[0].events") && e.contains("no event type to filter on"),
        "{e}"
    );
    assert!(e.contains("an event pattern is empty"), "{e}");
}

#[test]
fn enforce_defaults_to_true() {
    assert!(ok(ROUTE).routes[0].enforce);
    let shadow = ok(&ROUTE.replace("[route.verify]", "enforce = false\n[route.verify]"));
    assert!(!shadow.routes[0].enforce);
}

#[test]
fn tolerance_without_timestamp_is_a_warning_not_an_error() {
    let c = ok(&ROUTE.replace("[route.verify]", "tolerance = \"1m\"\n[route.verify]"));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("tolerance has no effect")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn forward_headers_may_not_set_gateway_headers() {
    let e = errors(&ROUTE.replace(
        "[route.verify]",
        "forward_headers = { add = { \"X-Hookwall-Verified\" = \"yes\" } }\n[route.verify]",
    ));
    assert!(
        has(&e, "X-Hookwall-* headers are set by the gateway itself"),
        "{e:?}"
    );
}

#[test]
fn shared_rate_limits_need_redis() {
    let e = errors(&ROUTE.replace(
        "[route.verify]",
        "rate_limit = { per_second = 1, shared = true }\n[route.verify]",
    ));
    assert!(
        has(
            &e,
            "route[0].rate_limit.shared: shared rate limits live in Redis"
        ),
        "{e:?}"
    );
}

#[test]
fn redis_store_needs_exactly_one_valid_url_and_never_echoes_it() {
    let e = errors(&format!("[dedup]\nstore = \"redis\"\n{ROUTE}"));
    assert!(
        has(&e, "dedup.redis_url: is required when store = \"redis\""),
        "{e:?}"
    );
    let e = errors(&format!(
        "[dedup]\nstore = \"redis\"\nredis_url = \"http://user:hunter2@x\"\n{ROUTE}"
    ));
    assert!(has(&e, "dedup.redis_url: invalid Redis URL"), "{e:?}");
    assert!(e.iter().all(|l| !l.contains("hunter2")), "{e:?}");
    let c = ok(&format!(
        "[dedup]\nstore = \"redis\"\nredis_url = \"redis://:pw@127.0.0.1:6379/0\"\n{ROUTE}"
    ));
    assert!(matches!(c.dedup.store, StoreKind::Redis(_)));
    let c = ok(&format!("[dedup]\nstore = \"redis\"\nredis_cluster = [\"redis://127.0.0.1:7000\", \"redis://127.0.0.1:7001\"]\n{ROUTE}"));
    assert!(matches!(c.dedup.store, StoreKind::RedisCluster(ref n) if n.len() == 2));
    let e = errors(&format!("[dedup]\nstore = \"redis\"\nredis_url = \"redis://x\"\nredis_cluster = [\"redis://y\"]\n{ROUTE}"));
    assert!(has(&e, "not both"), "{e:?}");
}

fn preset_route(provider: &str, extra: &str) -> String {
    format!(
        "[[route]]\nname = \"r\"\npath = \"/r\"\nupstream = \"http://127.0.0.1:3000/r\"\nprovider = \"{provider}\"\n{extra}\n"
    )
}

#[test]
fn fetched_key_presets_need_their_table_and_take_no_secrets() {
    let errs = errors(&preset_route("sns", ""));
    assert!(has(&errs, "route[0].sns: is required"), "{errs:?}");
    let errs = errors(&preset_route(
        "google-pubsub",
        "secrets = [{ value = \"s\" }]\ngoogle = { audience = \"a\", service_account = \"x@p.iam.gserviceaccount.com\" }",
    ));
    assert!(
        has(
            &errs,
            "route[0].secrets: provider \"google-pubsub\" verifies with the keys it publishes"
        ),
        "{errs:?}"
    );
    let errs = errors(&preset_route(
        "google-pubsub",
        "google = { audience = \"a\" }",
    ));
    assert!(
        has(&errs, "route[0].google.service_account: is required"),
        "{errs:?}"
    );
    let errs = errors(&preset_route(
        "google-chat",
        "google = { audience = \"1\", service_account = \"x@y\" }",
    ));
    assert!(has(&errs, "does not apply to google-chat"), "{errs:?}");
    let errs = errors(&preset_route("plaid", "plaid = { client_id = \"c\" }"));
    assert!(has(&errs, "route[0].plaid.secret: is required"), "{errs:?}");
    let errs = errors(&preset_route(
        "google-chat",
        "google = { audience = \"1\", key_url = \"http://127.0.0.1/certs\" }",
    ));
    assert!(has(&errs, "must be an absolute https:// URL"), "{errs:?}");
    let c = ok(&preset_route(
        "plaid",
        "plaid = { client_id = \"c\", secret = { value = \"s\" } }",
    ));
    assert!(c.routes[0].secret_labels.is_empty());
}

#[test]
fn sns_topics_and_hosts_are_validated() {
    let errs = errors(&preset_route("sns", "sns = { topics = [] }"));
    assert!(
        has(&errs, "route[0].sns.topics: must list the topic ARNs"),
        "{errs:?}"
    );
    let errs = errors(&preset_route("sns", "sns = { topics = [\"orders\"] }"));
    assert!(
        has(
            &errs,
            "route[0].sns.topics[0]: \"orders\" is not a topic ARN"
        ),
        "{errs:?}"
    );
    let errs = errors(&preset_route(
        "sns",
        "sns = { topics = [\"arn:aws:sns:us-east-1:1:t\"], cert_hosts = [\"evil host\"] }",
    ));
    assert!(
        has(
            &errs,
            "route[0].sns.cert_hosts: \"evil host\" is not a host pattern"
        ),
        "{errs:?}"
    );
    let c = ok(&preset_route(
        "sns",
        "sns = { topics = [\"arn:aws:sns:us-east-1:1:t\"] }",
    ));
    let sns = c.routes[0].provider_settings.sns.as_ref().unwrap();
    assert!(!sns.auto_confirm, "confirming subscriptions is opt-in");
    assert!(sns
        .hosts
        .allows("https://sns.us-east-1.amazonaws.com/c.pem"));
}

#[test]
fn provider_tables_apply_to_their_presets_only() {
    let route = preset_route(
        "github",
        "secrets = [{ value = \"s\" }]\nsns = { topics = [\"arn:aws:sns:us-east-1:1:t\"] }\nmeta = { verify_token = \"t\" }\nfetch_tls = { ca_file = \"x.pem\" }",
    );
    let errs = errors(&route);
    assert!(
        has(&errs, "route[0].sns: applies to provider = sns only"),
        "{errs:?}"
    );
    assert!(
        has(&errs, "route[0].meta: applies to provider = \"meta\" only"),
        "{errs:?}"
    );
    assert!(
        has(
            &errs,
            "route[0].fetch_tls: applies to presets that fetch keys"
        ),
        "{errs:?}"
    );
}

#[test]
fn meta_verify_token_is_a_secret_and_get_is_accepted() {
    std::env::set_var("HOOKWALL_TEST_META_TOKEN", "zq9-verify");
    let c = ok(&preset_route(
        "meta",
        "secrets = [{ value = \"s\" }]\nmeta = { verify_token = { env = \"HOOKWALL_TEST_META_TOKEN\" } }",
    ));
    let r = &c.routes[0];
    assert!(r
        .provider_settings
        .meta_verify_token
        .as_ref()
        .unwrap()
        .matches(b"zq9-verify"));
    assert_eq!(r.methods, vec![http::Method::GET, http::Method::POST]);
    assert!(!format!("{:?}", r.provider_settings).contains("zq9-verify"));
    let c = ok(&preset_route("meta", "secrets = [{ value = \"s\" }]"));
    assert!(
        c.warnings.iter().any(|w| w.contains("meta.verify_token")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn asana_takes_one_file_secret_whose_folder_exists() {
    let errs = errors(&preset_route("asana", "secrets = [{ value = \"s\" }]"));
    assert!(
        has(
            &errs,
            "learns its secret from Asana's X-Hook-Secret handshake"
        ),
        "{errs:?}"
    );
    let errs = errors(&preset_route(
        "asana",
        "secrets = [{ file = \"/nonexistent-hookwall/dir/s\" }]",
    ));
    assert!(has(&errs, "does not exist"), "{errs:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.secret");
    let c = ok(&preset_route(
        "asana",
        &format!("secrets = [{{ file = {:?} }}]", file.display().to_string()),
    ));
    let learned = c.routes[0].provider_settings.learned.as_ref().unwrap();
    assert!(!learned.is_established());
}

#[test]
fn max_concurrency_per_ip_defaults_to_a_quarter_but_never_splits_a_small_limit() {
    let per_ip = |server: &str| ok(&format!("[server]\n{server}\n{ROUTE}")).server;
    assert_eq!(per_ip("max_concurrency = 400").max_concurrency_per_ip, 100);
    assert_eq!(per_ip("max_concurrency = 64").max_concurrency_per_ip, 32);
    assert_eq!(per_ip("max_concurrency = 4").max_concurrency_per_ip, 4);
    assert_eq!(
        per_ip("max_concurrency = 400\nmax_concurrency_per_ip = 3").max_concurrency_per_ip,
        3
    );
}
