//! TLS termination: HTTP/1.1 and h2 via ALPN with a real TLS client, and a certificate
//! renewed by reload served to new connections while open ones keep working.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};

use crate::support::*;

struct TestCert {
    pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn cert() -> TestCert {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    TestCert {
        pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
        der: ck.cert.der().clone(),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path.display().to_string()
}

/// A TLS connection to the gateway offering `alpn` (none if empty), trusting `trusted`.
async fn connect(
    addr: std::net::SocketAddr,
    trusted: &[&CertificateDer<'static>],
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add((*c).clone()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = if alpn.is_empty() {
        Vec::new()
    } else {
        vec![alpn.to_vec()]
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

fn signed_request(id: &str) -> Request<Full<Bytes>> {
    let mut req = Request::post("https://localhost/webhooks/acme");
    for (k, v) in signed(b"{}", NOW, id) {
        req = req.header(k, v);
    }
    req.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
}

async fn tls_gateway(
    up: &Upstream,
    c: &TestCert,
) -> (tempfile::TempDir, std::path::PathBuf, TestGateway) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (
        write(&dir, "cert.pem", &c.pem),
        write(&dir, "key.pem", &c.key_pem),
    );
    let text = config_with(
        &format!("idle_timeout = \"1s\"\ntls = {{ cert = \"{cert}\", key = \"{key}\" }}"),
        "",
        &standard_route(&up.url(), ""),
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = hookwall::config::compile_file(&path).unwrap();
    let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
    let gw = TestGateway::start_with(cfg, stores).await;
    (dir, path, gw)
}

#[tokio::test]
async fn h2_and_http1_over_tls_via_alpn() {
    let up = Upstream::start().await;
    let c = cert();
    let (_dir, _path, gw) = tls_gateway(&up, &c).await;

    let h2 = connect(gw.addr, &[&c.der], b"h2").await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(h2))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = send.send_request(signed_request("tls-h2")).await.unwrap();
    assert_eq!(resp.status(), 200);

    let h1 = connect(gw.addr, &[&c.der], b"http/1.1").await;
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(h1))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = send.send_request(signed_request("tls-h1")).await.unwrap();
    assert_eq!(resp.status(), 200);

    assert_eq!(up.hits(), 2);
    for seen in up.seen() {
        assert_eq!(seen.headers["x-forwarded-proto"], "https");
        // h2 has no Host header: the original host comes from the :authority.
        assert_eq!(seen.headers["x-forwarded-host"], "localhost");
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_reload_without_dropping_open_connections() {
    let up = Upstream::start().await;
    let (old, new) = (cert(), cert());
    let (dir, _path, gw) = tls_gateway(&up, &old).await;
    let open = connect(gw.addr, &[&old.der], b"http/1.1").await;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(open))
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(
        send.send_request(signed_request("before"))
            .await
            .unwrap()
            .status(),
        200
    );

    write(&dir, "cert.pem", &new.pem);
    write(&dir, "key.pem", &new.key_pem);
    assert_eq!(post(&gw.admin_url("/reload"), &[], b"").await.0, 200);

    // The open connection keeps working.
    assert_eq!(
        send.send_request(signed_request("after"))
            .await
            .unwrap()
            .status(),
        200
    );
    // A new connection gets the new certificate.
    let fresh = connect(gw.addr, &[&new.der], b"http/1.1").await;
    let served = fresh.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(served, new.der);
}

#[test]
fn check_refuses_unreadable_or_mismatched_tls_files() {
    let (a, b) = (cert(), cert());
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_b) = (
        write(&dir, "a.pem", &a.pem),
        write(&dir, "b.key", &b.key_pem),
    );
    let text = |cert: &str, key: &str| {
        format!(
            "[server]\ntls = {{ cert = \"{cert}\", key = \"{key}\" }}\n{}",
            standard_route("http://127.0.0.1:9", "")
        )
    };
    let err = hookwall::config::compile_str(
        &text(&cert_a, "/nonexistent.key"),
        std::path::Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("server.tls: cannot read /nonexistent.key"),
        "{err}"
    );
    let err = hookwall::config::compile_str(&text(&cert_a, &key_b), std::path::Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not fit"), "{err}");
    assert!(
        !err.contains("PRIVATE KEY"),
        "key material must not be printed: {err}"
    );
}

/// TLS connections are bounded like plain ones: one that says nothing after the handshake
/// is closed after `idle_timeout` (1s here), and a stalled head is counted as `read_timeout`.
#[tokio::test]
async fn idle_and_stalled_tls_connections_are_closed_within_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let c = cert();
    let (_dir, _path, gw) = tls_gateway(&up, &c).await;
    let closed_within = |mut s: tokio_rustls::client::TlsStream<tokio::net::TcpStream>| async move {
        let mut buf = Vec::new();
        // Ok(_) (end of stream) or Err (reset): either way the gateway closed it.
        tokio::time::timeout(std::time::Duration::from_secs(3), s.read_to_end(&mut buf))
            .await
            .is_ok()
    };
    for alpn in [&b"http/1.1"[..], b""] {
        let idle = connect(gw.addr, &[&c.der], alpn).await;
        assert!(
            closed_within(idle).await,
            "idle TLS connection ({alpn:?}) still open"
        );
    }
    let mut stalled = connect(gw.addr, &[&c.der], b"http/1.1").await;
    stalled
        .write_all(b"POST /webhooks/acme HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(closed_within(stalled).await, "stalled TLS head still open");
    assert_eq!(
        gw.metric_reaches(
            r#"hookwall_rejections_total{route="_unknown",reason="read_timeout"}"#,
            1.0
        )
        .await,
        1.0
    );
}

/// An h2 connection whose peer keeps answering pings but opens no stream is closed (GOAWAY)
/// after `idle_timeout` (1s here), after it served a request, and the request was not cut.
#[tokio::test]
async fn an_idle_h2_connection_is_closed_after_idle_timeout() {
    let up = Upstream::start().await;
    let c = cert();
    let (_dir, _path, gw) = tls_gateway(&up, &c).await;
    let h2 = connect(gw.addr, &[&c.der], b"h2").await;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(h2))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let resp = send.send_request(signed_request("h2-idle")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(4), conn).await;
    assert!(
        ended.is_ok(),
        "idle h2 connection still open after idle_timeout"
    );
}
