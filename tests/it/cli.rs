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
        "route[1].upstream: \"ftp://x\" must be an absolute http:// URL",
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
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"5s\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n{}",
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
    assert!(
        !logs.contains(SECRET) && !logs.contains(OLD_SECRET),
        "a secret leaked into the logs"
    );
    let rejected_id = serde_json::from_str::<serde_json::Value>(&rejected.2).unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(logs.contains(&rejected_id), "request id not logged");
}
