//! `https://` upstreams (CONTRACT §13): the upstream's certificate is verified (system
//! roots plus `upstream_tls.ca_file`), and `client_cert`/`client_key` give mTLS.

use std::io::Write;
use std::sync::atomic::Ordering;

use crate::support::*;
use crate::test_ca::{tls_upstream, TestCa};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path.display().to_string()
}

async fn gateway(upstream: &str, tls: &str) -> TestGateway {
    let route = standard_route(upstream, tls);
    TestGateway::start(&config_with("", "", &route)).await
}

#[tokio::test]
async fn an_https_upstream_signed_by_the_configured_ca_gets_the_delivery() {
    let ca = TestCa::new();
    let (addr, hits) = tls_upstream(&ca, None).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(&dir, "ca.pem", &ca.pem());
    for host in ["127.0.0.1", "localhost"] {
        let upstream = format!("https://{host}:{}", addr.port());
        let gw = gateway(
            &upstream,
            &format!("upstream_tls = {{ ca_file = \"{ca_file}\" }}"),
        )
        .await;
        let id = format!("tls-{host}");
        let answer = post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, &id), b"{}").await;
        assert_eq!((answer.0, answer.2.as_str()), (200, "tls-ok"), "{host}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_upstream_certificate_nobody_trusts_is_unreachable_and_nothing_is_sent() {
    let ca = TestCa::new();
    let (addr, hits) = tls_upstream(&ca, None).await;
    // Only the system roots: the test CA is not among them.
    let gw = gateway(&format!("https://127.0.0.1:{}", addr.port()), "").await;
    let answer = post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "t1"), b"{}").await;
    assert_eq!(
        (answer.0, reason(&answer).as_str()),
        (502, "upstream_unreachable")
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn mtls_presents_the_client_certificate_the_upstream_requires() {
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    let (addr, hits) = tls_upstream(&server_ca, Some(&client_ca)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(&dir, "ca.pem", &server_ca.pem());
    let client = client_ca.issue(&["hookwall"]);
    let (cert, key) = (
        write(&dir, "client.pem", &client.cert_pem),
        write(&dir, "client.key", &client.key_pem),
    );
    let upstream = format!("https://127.0.0.1:{}", addr.port());
    let without = gateway(
        &upstream,
        &format!("upstream_tls = {{ ca_file = \"{ca_file}\" }}"),
    )
    .await;
    let refused = post(
        &without.url("/webhooks/acme"),
        &signed(b"{}", NOW, "m1"),
        b"{}",
    )
    .await;
    assert_eq!(refused.0, 502, "{refused:?}");
    let with = gateway(
        &upstream,
        &format!(
            "upstream_tls = {{ ca_file = \"{ca_file}\", client_cert = \"{cert}\", client_key = \"{key}\" }}"
        ),
    )
    .await;
    let answer = post(
        &with.url("/webhooks/acme"),
        &signed(b"{}", NOW, "m2"),
        b"{}",
    )
    .await;
    assert_eq!((answer.0, answer.2.as_str()), (200, "tls-ok"));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn upstream_tls_mistakes_are_check_errors() {
    let errors = |tls: &str, upstream: &str| {
        hookwall::config::compile_str(
            &config_with("", "", &standard_route(upstream, tls)),
            std::path::Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string()
    };
    let e = errors(
        "upstream_tls = { ca_file = \"/nonexistent.pem\" }",
        "https://127.0.0.1:1",
    );
    assert!(
        e.contains("route[0].upstream_tls: cannot read /nonexistent.pem"),
        "{e}"
    );
    let e = errors(
        "upstream_tls = { client_cert = \"/a.pem\" }",
        "https://127.0.0.1:1",
    );
    assert!(e.contains("client_cert and client_key go together"), "{e}");
    let e = errors(
        "upstream_tls = { ca_file = \"/a.pem\" }",
        "http://127.0.0.1:1",
    );
    assert!(e.contains("applies to https:// upstreams only"), "{e}");
}
