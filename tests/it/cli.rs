//! The binary itself: `check`, and `run` with SIGTERM draining and logs free of secrets.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_hookwall");

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn check_accepts_the_example_config() {
    let out = Command::new(BIN)
        .args([
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml.example"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("route acme path=/webhooks/acme provider=generic"),
        "{stdout}"
    );
}

/// `check` says per route whether the signature covers the dedup id and whether a
/// timestamp window bounds how long a captured delivery verifies.
#[test]
fn check_says_whether_each_id_is_signed_and_what_bounds_replay() {
    let route = |name: &str, extra: &str| {
        format!(
            "[[route]]\nname = \"{name}\"\npath = \"/{name}\"\nupstream = \"http://127.0.0.1:3000/\"\n{extra}\n"
        )
    };
    let f = write_config(&[
        route("gh", "provider = \"github\"\nsecrets = [{ value = \"s\" }]"),
        route("sw", "provider = \"standard-webhooks\"\nsecrets = [{ value = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\" }]"),
        route("plain", "secrets = [{ value = \"s\" }]\n[route.verify]\nheader = \"X-Sig\"\npayload = \"{body}\"\nid_header = \"X-Id\""),
        route("nodedup", "secrets = [{ value = \"s\" }]\n[route.verify]\nheader = \"X-Sig\"\ntimestamp_header = \"X-Ts\"\npayload = \"{timestamp}.{body}\""),
    ].concat());
    let out = Command::new(BIN)
        .args(["check", "--config", f.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("route {name} ")))
            .unwrap_or_else(|| panic!("{stdout}"))
            .to_owned()
    };
    assert!(
        line("gh").ends_with(" id=unsigned(bound to body) replay=none"),
        "{stdout}"
    );
    assert!(
        line("sw").ends_with(" id=signed replay=window 300s"),
        "{stdout}"
    );
    assert!(
        line("plain").ends_with(" id=unsigned(bound to body) replay=none"),
        "{stdout}"
    );
    assert!(
        line("nodedup").ends_with(" id=none replay=window 300s"),
        "{stdout}"
    );
}

#[test]
fn check_lists_every_problem_and_exits_1() {
    let f = write_config(
        r#"
[server]
listen = "nope"
max_body = "lots"
[dedup]
lease = "5s"
[[route]]
name = "a"
path = "/a"
upstream = "http://127.0.0.1:3000/a"
timeout = "10s"
allow_ips = ["10.0.0.0/33"]
secrets = [{ env = "HOOKWALL_TEST_SURELY_UNSET_VAR" }]
typo_key = 1
[route.verify]
header = "X-Sig"
id_header = "X-Id"
encoding = "hexx"
[[route]]
name = "a"
path = "/a"
upstream = "ftp://x"
secrets = [{ value = "s" }]
"#,
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(f.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "server.listen: invalid listen address \"nope\"",
        "server.max_body: invalid size \"lots\"",
        "route[0].typo_key: unknown key",
        "route[0].allow_ips[0]: invalid CIDR \"10.0.0.0/33\"",
        "route[0].secrets[0]: environment variable HOOKWALL_TEST_SURELY_UNSET_VAR is not set",
        "route[0].verify.encoding: unknown encoding \"hexx\"",
        "route[0].timeout: dedup.lease (5s) must be longer than this route's timeout (10s)",
        "route[1].name: duplicate route name \"a\"",
        "route[1].path: duplicate path \"/a\"",
        "route[1].upstream: \"ftp://x\" must be an absolute http:// or https:// URL",
        "route[1].verify: a route needs `provider",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn check_reports_toml_syntax_errors_with_line_and_column() {
    let f = write_config("[server]\nlisten = \"127.0.0.1:1\"\nmax_body = \n");
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(f.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:3:", f.path().display());
    assert!(err.contains(&expected), "{err}");
}

#[test]
fn config_may_come_from_the_environment() {
    let out = Command::new(BIN)
        .arg("check")
        .env(
            "HOOKWALL_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml.example"),
        )
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// Polls until `addr` accepts connections (bounded).
async fn wait_listening(addr: &str) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} never came up");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_0_and_logs_hold_no_secrets() {
    let up = Upstream::start().await;
    up.answer(200, Duration::from_millis(700));
    let (port, admin) = (free_port(), free_port());
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("hookwall.db");
    let dead = dead_port().await;
    let dead_route = standard_route(&format!("http://{dead}"), "")
        .replace("name = \"acme\"", "name = \"dead\"")
        .replace("/webhooks/acme\"", "/webhooks/dead\"");
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"5s\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n[storage]\npath = {:?}\n{}\n{dead_route}",
        db.display().to_string(),
        standard_route(&up.url(), "")
    );
    let f = write_config(&cfg);
    let child = Command::new(BIN)
        .args(["--log-format", "json", "run", "--config"])
        .arg(f.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let base = format!("127.0.0.1:{port}");
    wait_listening(&base).await;
    let url = format!("http://{base}/webhooks/acme");
    // Real-time timestamps: this gateway runs on the system clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let rejected = post(&url, &signed_with("wrong", b"{}", now, "x"), b"{}").await;
    assert_eq!(reason(&rejected), "invalid_signature");
    let unreachable = post(
        &format!("http://{base}/webhooks/dead"),
        &signed(b"{}", now, "evt_dead"),
        b"{}",
    )
    .await;
    assert_eq!(reason(&unreachable), "upstream_unreachable");
    let in_flight = {
        let url = url.clone();
        tokio::spawn(async move {
            post(&url, &signed(b"{\"k\":1}", now, "evt_term"), b"{\"k\":1}").await
        })
    };
    wait_until(|| up.hits() == 1).await;
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let answered = in_flight.await.unwrap();
    assert_eq!((answered.0, answered.2.as_str()), (200, "upstream-ok"));
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Listener closed: nothing accepts on the port any more.
    assert!(tokio::net::TcpStream::connect(&base).await.is_err());
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("\"reason\":\"invalid_signature\""), "{logs}");
    assert!(logs.contains("\"outcome\":\"forwarded\""), "{logs}");
    // The delivery id, and for an upstream failure its cause and where; no empty fields.
    assert!(logs.contains("\"dedup_id\":\"evt_term\""), "{logs}");
    let cause = format!("\"cause\":\"connection refused ({dead})\"");
    assert!(logs.contains(&cause), "{cause} not in {logs}");
    assert!(!logs.contains("\"\""), "an empty field was logged: {logs}");
    assert!(
        !logs.contains(SECRET) && !logs.contains(OLD_SECRET),
        "a secret leaked into the logs"
    );
    let rejected_id = serde_json::from_str::<serde_json::Value>(&rejected.2).unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(logs.contains(&rejected_id), "request id not logged");
    // The request answered while draining is journaled too, before the process exits.
    let storage = hookwall::storage::Storage::open(&hookwall::config::StorageBackend::Sqlite {
        path: db.clone(),
    })
    .await
    .unwrap();
    let filter = hookwall::storage::journal::EntryFilter {
        dedup_id: Some("evt_term".into()),
        ..Default::default()
    };
    let drained = storage.list_entries(&filter, 10).await.unwrap();
    assert_eq!(drained.len(), 1, "the drained request was not journaled");
    assert_eq!(drained[0].upstream_status, Some(200));
}

const TWILIO_URL: &str = "public_url = \"https://hooks.example.com/twilio\"";

/// Runs `hookwall sign` for `route` and returns its header lines and stderr.
fn sign_headers(
    config: &std::path::Path,
    route: &str,
    body: &std::path::Path,
) -> (Vec<(String, String)>, String) {
    let out = Command::new(BIN)
        .args(["sign", "--route", route, "--timestamp", &NOW.to_string()])
        .args(["--id", &format!("id-{route}"), "--config"])
        .arg(config)
        .arg("--body-file")
        .arg(body)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{route}: {stderr}");
    let headers = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("not a header line: {l:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (headers, stderr)
}

/// Runs `hookwall sign --curl target` for `route` and returns the command it printed.
fn sign_curl(
    config: &std::path::Path,
    route: &str,
    target: &str,
    body: &std::path::Path,
) -> String {
    let out = Command::new(BIN)
        .args(["sign", "--route", route, "--curl", target, "--config"])
        .arg(config)
        .arg("--body-file")
        .arg(body)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{route}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn sign_output_is_accepted_by_the_gateway_for_each_scheme_family() {
    let up = Upstream::start().await;
    let routes = [
        preset_route(&up, "stripe", "whsec_test_secret", ""),
        preset_route(&up, "svix", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""),
        preset_route(&up, "twilio", "12345", TWILIO_URL),
        standard_route(&up.url(), ""),
    ]
    .concat();
    let cfg = config_with("", "", &routes);
    let gw = TestGateway::start(&cfg).await;
    let file = write_config(&cfg);
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), b"From=%2B14158675309&Body=hi").unwrap();
    for (route, path) in [
        ("stripe", "/stripe"),
        ("svix", "/svix"),
        ("twilio", "/twilio"),
        ("acme", "/webhooks/acme"),
    ] {
        let (mut headers, _) = sign_headers(file.path(), route, body.path());
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        let resp = post(&gw.url(path), &headers, b"From=%2B14158675309&Body=hi").await;
        assert_eq!(
            (resp.0, resp.2.as_str()),
            (200, "upstream-ok"),
            "{route}: {headers:?}"
        );
    }
    assert_eq!(up.hits(), 4);
}

#[tokio::test]
async fn sign_sends_json_as_json_with_the_delivery_id_and_twilio_body_hash() {
    let up = Upstream::start().await;
    let routes = [
        preset_route(&up, "github", "gh-secret", ""),
        preset_route(&up, "twilio", "12345", TWILIO_URL),
    ]
    .concat();
    let cfg = config_with("", "", &routes);
    let gw = TestGateway::start(&cfg).await;
    let file = write_config(&cfg);
    let json = br#"{"event": "ping",  "n": 1}"#;
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), json).unwrap();

    // GitHub does not sign its delivery id: sign still sends it, so the delivery dedups.
    let (headers, _) = sign_headers(file.path(), "github", body.path());
    assert!(
        headers.contains(&("X-Github-Delivery".into(), "id-github".into())),
        "{headers:?}"
    );
    assert!(
        headers.contains(&("Content-Type".into(), "application/json".into())),
        "{headers:?}"
    );
    assert_eq!(
        post(&gw.url("/github"), &headers, json).await.2,
        "upstream-ok"
    );
    assert_eq!(up.seen()[0].headers["x-hookwall-delivery-id"], "id-github");

    // Twilio signs a JSON body through `?bodySHA256=<hex>` in the URL it calls.
    let (headers, stderr) = sign_headers(file.path(), "twilio", body.path());
    let param = format!(
        "bodySHA256={}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(json))
    );
    assert!(stderr.contains(&param), "{stderr}");
    let resp = post(&gw.url(&format!("/twilio?{param}")), &headers, json).await;
    assert_eq!(
        (resp.0, resp.2.as_str()),
        (200, "upstream-ok"),
        "{headers:?}"
    );
    assert_eq!(post(&gw.url("/twilio"), &headers, json).await.0, 401);

    // With --curl the target gets the parameter and the command the content type.
    let curl = sign_curl(
        file.path(),
        "twilio",
        "http://127.0.0.1:8080/twilio",
        body.path(),
    );
    assert!(
        curl.contains(&format!("'http://127.0.0.1:8080/twilio?{param}'")),
        "{curl}"
    );
    assert!(
        curl.contains("-H 'Content-Type: application/json'"),
        "{curl}"
    );
}

#[test]
fn sign_prints_a_runnable_curl_command_and_refuses_public_key_routes() {
    let cfg = r#"
[[route]]
name = "gh"
path = "/gh"
upstream = "http://127.0.0.1:9/"
provider = "github"
secrets = [{ value = "It's a Secret to Everybody" }]
[[route]]
name = "discord"
path = "/d"
upstream = "http://127.0.0.1:9/"
provider = "discord"
secrets = [{ value = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8" }]
"#;
    let file = write_config(cfg);
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), b"Hello, World!").unwrap();
    let stdout = sign_curl(file.path(), "gh", "http://127.0.0.1:8080/gh", body.path());
    assert!(
        stdout.starts_with("curl -sS -i -X POST 'http://127.0.0.1:8080/gh'"),
        "{stdout}"
    );
    assert!(stdout.contains("-H 'X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17'"), "{stdout}");
    assert!(stdout.contains("--data-binary @"), "{stdout}");
    let out = Command::new(BIN)
        .args(["sign", "--route", "discord", "--config"])
        .arg(file.path())
        .arg("--body-file")
        .arg(body.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("public keys"));
    assert!(out.stdout.is_empty());
}

#[test]
fn demo_runs_the_tour_and_exits_0() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "valid delivery                        200",
        "tampered body                         401  invalid_signature",
        "stale timestamp (10 min old)          401  timestamp_out_of_window",
        "replayed duplicate of the first       200  duplicate",
        "oversized body (8 KiB > 4 KiB)        413  body_too_large",
        "rate limit exhausted                  429  rate_limited",
        "hookwall_rejections_total{route=\"demo\",reason=\"invalid_signature\"} 1",
    ] {
        assert!(stdout.contains(row), "missing {row:?} in:\n{stdout}");
    }
}

#[tokio::test]
async fn sighup_reloads_the_config_file() {
    let up = Upstream::start().await;
    let (port, admin) = (free_port(), free_port());
    // Its own storage file: the default sits beside the config, in the shared temp dir.
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("hookwall.db");
    let head = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n[storage]\npath = {:?}\n",
        db.display().to_string()
    );
    let f = write_config(&format!("{head}{}", standard_route(&up.url(), "")));
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(f.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(&format!("127.0.0.1:{admin}")).await;
    let routes = || async {
        get(&format!("http://127.0.0.1:{admin}/routes"), &[])
            .await
            .2
    };
    assert!(!routes().await.contains("\"beta\""));
    let beta = standard_route(&up.url(), "")
        .replace("name = \"acme\"", "name = \"beta\"")
        .replace("/webhooks/acme\"", "/webhooks/beta\"");
    std::fs::write(
        f.path(),
        format!("{head}{}{beta}", standard_route(&up.url(), "")),
    )
    .unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let mut seen = false;
    for _ in 0..100 {
        if routes().await.contains("\"beta\"") {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "SIGHUP did not load the new route");
}

/// `hookwall sign` needs the chosen route's secrets only, and `--key` picks which signs.
#[test]
fn sign_needs_only_its_routes_secrets_and_key_picks_the_secret() {
    let cfg = r#"
[dedup]
store = "redis"
redis_url = { env = "HOOKWALL_TEST_UNSET_REDIS_URL" }
[[route]]
name = "gh"
path = "/gh"
upstream = "http://127.0.0.1:9/"
provider = "github"
secrets = [{ value = "new-secret", id = "new" }, { value = "old-secret", id = "old" }]
[[route]]
name = "other"
path = "/other"
upstream = "http://127.0.0.1:9/"
provider = "github"
secrets = [{ env = "HOOKWALL_TEST_UNSET_SECRET" }]
"#;
    let file = write_config(cfg);
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), b"{}").unwrap();
    let sign = |route: &str, key: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["sign", "--route", route, "--config"])
            .arg(file.path())
            .arg("--body-file")
            .arg(body.path());
        if let Some(k) = key {
            cmd.args(["--key", k]);
        }
        cmd.output().unwrap()
    };
    let expected =
        |secret: &str| format!("X-Hub-Signature-256: sha256={}", hmac_hex(secret, &[b"{}"]));
    let out = sign("gh", None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&expected("new-secret")), "{stdout}");
    let out = sign("gh", Some("old"));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&expected("old-secret")));
    let out = sign("gh", Some("nope"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no secret with id \"nope\"") && stderr.contains("new, old"),
        "{stderr}"
    );
    // The route whose own secret is missing says so.
    let out = sign("other", None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOOKWALL_TEST_UNSET_SECRET"));
}

#[test]
fn presets_lists_every_preset_and_describes_one() {
    let out = Command::new(BIN).arg("presets").output().unwrap();
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&out.stdout);
    for name in hookwall::verify::presets::NAMES {
        assert!(
            list.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{list}"
        );
    }
    let out = Command::new(BIN)
        .args(["presets", "github"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for fact in [
        "x-hub-signature-256: sha256=<sig>",
        "HMAC-SHA256, hex",
        "signed payload:   {body}",
        "dedup key:   header:x-github-delivery",
        "event field: header:x-github-event + \".\" + json:/action",
    ] {
        assert!(text.contains(fact), "{fact:?} not in:\n{text}");
    }
    let out = Command::new(BIN)
        .args(["presets", "githb"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"github\""));
}

/// `hookwall echo` answers 200 and prints each delivery, headers and body.
#[tokio::test]
async fn echo_prints_what_it_receives() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let port = free_port();
    let mut child = tokio::process::Command::new(BIN)
        .args(["echo", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/hooks/x");
    wait_listening(&format!("127.0.0.1:{port}")).await;
    let answer = post(&url, &[("X-Test".into(), "yes".into())], b"{\"hello\":1}").await;
    assert_eq!(answer.0, 200);
    assert_eq!(answer.2, "{\"received\":11}");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("---") {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(5), stdout.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "echo stopped printing: {printed}");
        printed.push_str(&line);
    }
    assert!(printed.starts_with("POST /hooks/x"), "{printed}");
    assert!(printed.contains("x-test: yes"), "{printed}");
    assert!(printed.contains("{\"hello\":1}"), "{printed}");
    child.kill().await.unwrap();
    let _ = stdout.read_to_end(&mut Vec::new()).await;
}

/// Every bad config in `tests/fixtures/invalid/` is refused by `hookwall check` with exactly
/// the messages written next to it (`<name>.err`): what a user sees, with file positions.
#[test]
fn invalid_config_fixtures_print_their_expected_messages() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let expected = std::fs::read_to_string(path.with_extension("err"))
            .unwrap_or_else(|e| panic!("{name} has no .err file: {e}"));
        let out = Command::new(BIN)
            .args(["check", "--config", &name])
            .current_dir(&dir)
            .env_remove("HOOKWALL_FIXTURE_NEVER_SET")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{name}");
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} fixtures");
}

/// A relative file path in the config is taken from the config file's folder, whatever
/// directory hookwall runs in.
#[test]
fn relative_secret_files_are_found_next_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gh.secret"), "from-a-file\n").unwrap();
    let cfg = "[[route]]\nname = \"gh\"\npath = \"/gh\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"github\"\nsecrets = [{ file = \"gh.secret\" }]\n";
    std::fs::write(dir.path().join("gateway.toml"), cfg).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(dir.path().join("gateway.toml"))
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A storage file that cannot be opened (here: the path is a folder) stops `run` at once
/// (exit 1), naming the file and what to change, before anything listens.
#[test]
fn run_refuses_a_storage_path_it_cannot_open() {
    let folder = tempfile::tempdir().unwrap();
    let db = folder.path().to_path_buf();
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n{}",
        db.display().to_string(),
        standard_route("http://127.0.0.1:9", "")
    );
    let f = write_config(&cfg);
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(f.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!("cannot open the SQLite database {}", db.display());
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("set [storage] path"), "{err}");
}
