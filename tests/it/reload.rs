//! Hot reload: SIGHUP and POST /reload apply a valid file atomically, refuse an invalid one
//! (the old config keeps serving), keep rate-limiter state and in-flight requests.

use std::io::Write;
use std::time::Duration;

use crate::support::*;

/// A gateway whose config lives in a real file (so reload has something to re-read).
async fn gateway_from_file(text: &str) -> (tempfile::NamedTempFile, TestGateway) {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let cfg = hookwall::config::compile_file(f.path()).unwrap();
    let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
    let gw = TestGateway::start_with(cfg, stores).await;
    (f, gw)
}

fn rewrite(f: &tempfile::NamedTempFile, text: &str) {
    std::fs::write(f.path(), text).unwrap();
}

async fn reload(gw: &TestGateway) -> Answer {
    post(&gw.admin_url("/reload"), &[], b"").await
}

#[tokio::test]
async fn a_valid_file_is_applied_and_an_invalid_one_refused_while_the_old_keeps_serving() {
    let up = Upstream::start().await;
    let cfg = config_with("", "", &standard_route(&up.url(), ""));
    let (f, gw) = gateway_from_file(&cfg).await;
    // Add a route.
    let more = format!(
        "{cfg}\n{}",
        standard_route(&up.url(), "")
            .replace("name = \"acme\"", "name = \"beta\"")
            .replace("/webhooks/acme\"", "/webhooks/beta\"")
    );
    rewrite(&f, &more);
    let ok = reload(&gw).await;
    assert_eq!((ok.0, ok.2.as_str()), (200, r#"{"result":"ok"}"#));
    assert_eq!(
        post(&gw.url("/webhooks/beta"), &signed(b"{}", NOW, "b1"), b"{}")
            .await
            .2,
        "upstream-ok"
    );
    // A broken file: refused with details, counted, old table still serving.
    rewrite(&f, "[server]\nlisten = 42\n");
    let bad = reload(&gw).await;
    assert_eq!(bad.0, 400);
    let v: serde_json::Value = serde_json::from_str(&bad.2).unwrap();
    assert_eq!(v["error"], "invalid_config");
    assert!(!v["details"].as_array().unwrap().is_empty());
    assert_eq!(
        post(&gw.url("/webhooks/beta"), &signed(b"{}", NOW, "b2"), b"{}")
            .await
            .2,
        "upstream-ok"
    );
    assert_eq!(
        gw.metric(r#"hookwall_config_reloads_total{result="ok"}"#)
            .await,
        1.0
    );
    assert_eq!(
        gw.metric(r#"hookwall_config_reloads_total{result="error"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn rate_limiter_state_survives_a_reload_of_an_unchanged_route() {
    let up = Upstream::start().await;
    let cfg = config_with(
        "",
        "",
        &standard_route(&up.url(), "dedup = false\nrate_limit = { per_minute = 2 }"),
    );
    let (f, gw) = gateway_from_file(&cfg).await;
    for _ in 0..2 {
        assert_eq!(
            post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "x"), b"{}")
                .await
                .0,
            200
        );
    }
    // Same route and limit, another route changed: the bucket must stay empty.
    rewrite(
        &f,
        &cfg.replace("read_timeout = \"1s\"", "read_timeout = \"2s\""),
    );
    assert_eq!(reload(&gw).await.0, 200);
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "x"), b"{}")
            .await
            .0,
        429
    );
    // A changed limit starts a fresh bucket.
    rewrite(&f, &cfg.replace("per_minute = 2", "per_minute = 3"));
    assert_eq!(reload(&gw).await.0, 200);
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "x"), b"{}")
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn in_flight_requests_finish_on_the_config_they_started_with_and_connections_survive() {
    let up = Upstream::start().await;
    up.answer(200, Duration::from_millis(400));
    let cfg = config_with("", "", &standard_route(&up.url(), ""));
    let (f, gw) = gateway_from_file(&cfg).await;
    // One client connection, kept alive across the reload.
    let client = client();
    let send = |id: &str| {
        let mut req = http::Request::post(gw.url("/webhooks/acme"));
        for (k, v) in signed(b"{}", NOW, id) {
            req = req.header(k, v);
        }
        client.request(
            req.body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                .unwrap(),
        )
    };
    let in_flight = tokio::spawn(send("old"));
    wait_until(|| up.hits() == 1).await;
    // The new config removes the route's upstream header add; the in-flight request is unaffected.
    rewrite(
        &f,
        &cfg.replace(
            "timeout = \"2s\"",
            "timeout = \"3s\"\nforward_headers = { add = { \"X-Config\" = \"new\" } }",
        ),
    );
    assert_eq!(reload(&gw).await.0, 200);
    assert_eq!(in_flight.await.unwrap().unwrap().status(), 200);
    assert!(!up.seen()[0].headers.contains_key("x-config"));
    up.answer(200, Duration::ZERO);
    assert_eq!(send("new").await.unwrap().status(), 200);
    assert_eq!(up.seen()[1].headers["x-config"], "new");
}

#[tokio::test]
async fn reload_needs_the_token_when_one_is_set() {
    let up = Upstream::start().await;
    let cfg = config_with("", "", &standard_route(&up.url(), "")).replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"t0ken\"",
    );
    let (_f, gw) = gateway_from_file(&cfg).await;
    assert_eq!(reload(&gw).await.0, 401);
    let auth = [("Authorization".to_owned(), "Bearer t0ken".to_owned())];
    assert_eq!(post(&gw.admin_url("/reload"), &auth, b"").await.0, 200);
}

/// A change only a restart can apply is refused by name, the old config keeps serving, and
/// `check --against-running` says the same before anyone reloads (CONTRACT §13).
#[tokio::test]
async fn restart_only_changes_are_refused_by_name_and_check_against_running_says_so() {
    let up = Upstream::start().await;
    let cfg = config_with("", "", &standard_route(&up.url(), ""));
    let (f, gw) = gateway_from_file(&cfg).await;
    let moved = cfg.replace(
        "listen = \"127.0.0.1:0\"\nread_timeout",
        "listen = \"127.0.0.1:1\"\nread_timeout",
    );
    assert_ne!(moved, cfg);
    let candidate = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(candidate.path(), &moved).unwrap();
    let admin = gw.admin_url("");
    let check = |path: std::path::PathBuf| {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_hookwall"))
                .args(["check", "--against-running", "--admin", &admin, "--config"])
                .arg(path)
                .output()
                .unwrap()
        })
    };
    let out = check(candidate.path().to_owned()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("server.listen changed"), "{stderr}");
    // The same file, reloaded: refused naming the setting, and counted.
    rewrite(&f, &moved);
    let refused = reload(&gw).await;
    assert_eq!(refused.0, 400);
    let v: serde_json::Value = serde_json::from_str(&refused.2).unwrap();
    assert_eq!(v["error"], "restart_required");
    assert_eq!(v["restart_required"][0]["setting"], "server.listen");
    assert_eq!(
        gw.metric(r#"hookwall_config_reloads_total{result="error"}"#)
            .await,
        1.0
    );
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "r1"), b"{}")
            .await
            .2,
        "upstream-ok"
    );
    // A change that applies: both say yes.
    let retimed = cfg.replace("timeout = \"2s\"", "timeout = \"3s\"");
    std::fs::write(candidate.path(), &retimed).unwrap();
    let out = check(candidate.path().to_owned()).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("would apply this file on reload"));
    rewrite(&f, &retimed);
    assert_eq!(reload(&gw).await.0, 200);
}

/// An environment variable set after start is not seen by a reload, and the error says
/// what to do instead.
#[tokio::test]
async fn a_reload_cannot_see_a_new_env_secret_and_says_how_to_rotate() {
    let up = Upstream::start().await;
    let cfg = config_with("", "", &standard_route(&up.url(), ""));
    let (f, gw) = gateway_from_file(&cfg).await;
    let with_env = cfg.replace(
        "{ value = \"old-secret-also-never-logged\", id = \"old\" }",
        "{ env = \"HOOKWALL_TEST_NEVER_SET_7Q\", id = \"old\" }",
    );
    assert_ne!(with_env, cfg);
    rewrite(&f, &with_env);
    let refused = reload(&gw).await;
    assert_eq!(refused.0, 400);
    assert!(
        refused.2.contains("HOOKWALL_TEST_NEVER_SET_7Q is not set"),
        "{}",
        refused.2
    );
    assert!(refused.2.contains("file"), "{}", refused.2);
    assert!(refused.2.contains("restart"), "{}", refused.2);
}

/// Connection settings are live config: a reload applies them to new connections.
#[tokio::test]
async fn max_concurrency_changes_apply_on_reload() {
    let up = Upstream::start().await;
    up.answer(200, Duration::from_millis(600));
    let cfg = config_with("max_concurrency = 1", "", &standard_route(&up.url(), ""));
    let (f, gw) = gateway_from_file(&cfg).await;
    let url = gw.url("/webhooks/acme");
    let send = |id: &'static str| {
        let url = url.clone();
        tokio::spawn(async move { post(&url, &signed(b"{}", NOW, id), b"{}").await.0 })
    };
    let slow = send("c1");
    gw.metric_reaches("hookwall_in_flight", 1.0).await;
    assert_eq!(
        send("c2").await.unwrap(),
        503,
        "one slot: the second is shed"
    );
    assert_eq!(slow.await.unwrap(), 200);
    rewrite(
        &f,
        &cfg.replace("max_concurrency = 1", "max_concurrency = 4"),
    );
    assert_eq!(reload(&gw).await.0, 200);
    let first = send("c3");
    gw.metric_reaches("hookwall_in_flight", 1.0).await;
    assert_eq!(send("c4").await.unwrap(), 200, "four slots now");
    assert_eq!(first.await.unwrap(), 200);
}
