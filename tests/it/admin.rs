//! The admin listener: health, readiness, route table, metrics, token.

use crate::support::*;

#[tokio::test]
async fn health_ready_and_routes_without_secrets() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with("", "", &standard_route(&up.url(), ""))).await;
    assert_eq!(get(&gw.admin_url("/healthz"), &[]).await.0, 200);
    assert_eq!(get(&gw.admin_url("/readyz"), &[]).await.0, 200);
    let routes = get(&gw.admin_url("/routes"), &[]).await;
    assert_eq!(routes.0, 200);
    assert!(!routes.2.contains(SECRET) && !routes.2.contains(OLD_SECRET));
    let v: serde_json::Value = serde_json::from_str(&routes.2).unwrap();
    let r = &v["routes"][0];
    assert_eq!(r["name"], "acme");
    assert_eq!(r["path"], "/webhooks/acme");
    assert_eq!(
        r["checks"],
        serde_json::json!(["body_limit", "signature", "timestamp", "dedup"])
    );
    assert_eq!(r["secrets"][0]["id"], "current");
    // Sizes and durations both in the units the config file uses (max_body was a bare
    // byte count beside "timeout":"2s").
    assert_eq!(r["max_body"], "1MiB");
    assert_eq!(r["timeout"], "2s");
    assert_eq!(r["tolerance"], "5m");
    assert_eq!(get(&gw.admin_url("/nope"), &[]).await.0, 404);
}

#[tokio::test]
async fn metrics_expose_every_contract_family() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with("", "", &standard_route(&up.url(), ""))).await;
    post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "m"), b"{}").await;
    let text = get(&gw.admin_url("/metrics"), &[]).await.2;
    for family in [
        "hookwall_requests_total",
        "hookwall_rejections_total",
        "hookwall_upstream_responses_total",
        "hookwall_request_duration_seconds_bucket",
        "hookwall_upstream_duration_seconds_bucket",
        "hookwall_dedup_store_errors_total",
        "hookwall_config_reloads_total",
        "hookwall_in_flight",
        "hookwall_signature_key_matched_total",
        "hookwall_timestamp_skew_seconds_bucket",
        "hookwall_build_info",
        "hookwall_config_last_reload_success_timestamp_seconds",
        "hookwall_dedup_entries",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(family), "{family} missing from /metrics");
    }
    assert!(!text.contains(SECRET));
    assert_eq!(metric_value(&text, "hookwall_in_flight"), Some(0.0));
    // The one delivery's id is remembered.
    assert_eq!(metric_value(&text, "hookwall_dedup_entries"), Some(1.0));
    let version = format!(
        r#"hookwall_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(metric_value(&text, &version), Some(1.0));
}

/// Plain clients get the classic Prometheus text format, in which every sample belongs to
/// a family named by a TYPE line; Prometheus itself, asking for OpenMetrics, gets that.
#[tokio::test]
async fn metrics_speak_prometheus_text_unless_openmetrics_is_asked_for() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with("", "", &standard_route(&up.url(), ""))).await;
    post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "m"), b"{}").await;

    let (status, headers, text) = get(&gw.admin_url("/metrics"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        text.contains("# TYPE hookwall_requests_total counter"),
        "{text}"
    );
    assert!(!text.contains("# EOF"));
    let mut typed: Vec<(String, String)> = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            typed.push((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap();
        let (family, kind) = typed.last().expect("a sample before any TYPE line");
        let belongs = match kind.as_str() {
            "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name == format!("{family}{s}")),
            _ => name == family,
        };
        assert!(
            belongs,
            "{name} is not in the family typed before it ({family} {kind})"
        );
    }

    let accept = [(
        "Accept".to_owned(),
        "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5".to_owned(),
    )];
    let (_, headers, text) = get(&gw.admin_url("/metrics"), &accept).await;
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn token_guards_everything_but_healthz_and_metrics() {
    let up = Upstream::start().await;
    let cfg = config_with("", "", &standard_route(&up.url(), "")).replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"admin-token-xyz\"",
    );
    let gw = TestGateway::start(&cfg).await;
    assert_eq!(get(&gw.admin_url("/healthz"), &[]).await.0, 200);
    assert_eq!(get(&gw.admin_url("/metrics"), &[]).await.0, 200);
    assert_eq!(get(&gw.admin_url("/routes"), &[]).await.0, 401);
    assert_eq!(get(&gw.admin_url("/readyz"), &[]).await.0, 401);
    let wrong = [("Authorization".to_owned(), "Bearer nope".to_owned())];
    assert_eq!(get(&gw.admin_url("/routes"), &wrong).await.0, 401);
    let right = [(
        "Authorization".to_owned(),
        "Bearer admin-token-xyz".to_owned(),
    )];
    let routes = get(&gw.admin_url("/routes"), &right).await;
    assert_eq!(routes.0, 200);
    assert!(!routes.2.contains("admin-token-xyz"));
    // The scheme name is case-insensitive, the token is not.
    let auth = |v: &str| [("Authorization".to_owned(), v.to_owned())];
    assert_eq!(
        get(&gw.admin_url("/routes"), &auth("bearer admin-token-xyz"))
            .await
            .0,
        200
    );
    assert_eq!(
        get(&gw.admin_url("/routes"), &auth("Bearer admin-token-XYZ"))
            .await
            .0,
        401
    );
    assert_eq!(get(&gw.admin_url("/routes"), &auth("Bearer")).await.0, 401);
}

/// Regression: deploy/README's Kubernetes advice had the readiness probe call `/readyz`
/// without the token, which then answered 401 forever. The probe it shows now sends the
/// header, and that request is ready.
#[tokio::test]
async fn the_documented_readiness_probe_is_ready_when_a_token_is_set() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/README.md"),
    )
    .unwrap();
    let probe = readme
        .split("readinessProbe:")
        .nth(1)
        .expect("deploy/README.md shows a readinessProbe");
    let probe = &probe[..probe
        .find("terminationGracePeriodSeconds")
        .unwrap_or(probe.len())];
    assert!(
        probe.contains("path: /readyz") && probe.contains("- name: Authorization"),
        "{probe}"
    );
    assert!(probe.contains("value: \"Bearer "), "{probe}");
    let up = Upstream::start().await;
    let cfg = config_with("", "", &standard_route(&up.url(), "")).replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"probe-token\"",
    );
    let gw = TestGateway::start(&cfg).await;
    let header = [("Authorization".to_owned(), "Bearer probe-token".to_owned())];
    assert_eq!(get(&gw.admin_url("/readyz"), &header).await.0, 200);
}
