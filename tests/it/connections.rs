//! Connections are bounded both ways (CONTRACT §13): a client that stops reading is cut
//! after `write_timeout`, and what the HTTP parser refuses is counted.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A client that pipelines thousands of requests and never reads the answers: once the
/// socket buffers are full the gateway's writes stall, and `write_timeout` (1s) ends the
/// connection instead of keeping it (and its queued answers) forever.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_after_write_timeout() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with(
        "write_timeout = \"1s\"",
        "",
        &standard_route(&up.url(), ""),
    ))
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // A small receive window, so that the answers fill it quickly.
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(gw.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    const REQUESTS: usize = 20_000;
    let writes = tokio::spawn(async move {
        let one = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
        for _ in 0..REQUESTS / 100 {
            if writer.write_all(&one).await.is_err() {
                return;
            }
        }
        // Keep the write half open: a half-closed client is not what is tested here.
        std::future::pending::<()>().await;
    });
    // Long enough for the buffers to fill and the write deadline to pass.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut answers = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), reader.read_to_end(&mut answers)).await;
    writes.abort();
    assert!(read.is_ok(), "the connection was still open");
    let answered = answers.windows(12).filter(|w| w == b"HTTP/1.1 404").count();
    assert!(
        answered < REQUESTS,
        "all {answered} answers were written: nothing was cut"
    );
    assert_eq!(gw.metric("hookwall_in_flight").await, 0.0);
}

/// hyper refuses a malformed head (400) or one over the size limit (431) before any
/// request exists; both are counted under `_unknown`.
#[tokio::test]
async fn parser_refusals_are_counted_as_bad_request_and_headers_too_large() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with("", "", &standard_route(&up.url(), ""))).await;
    let exchange = |raw: Vec<u8>| async move {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(&raw).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    let garbage = exchange(b"NOT HTTP AT ALL\r\n\r\n".to_vec()).await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let mut huge = b"POST /webhooks/acme HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 100 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let too_large = exchange(huge).await;
    assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large}");
    let counted = |reason: &'static str| {
        let sample = format!(r#"hookwall_rejections_total{{route="_unknown",reason="{reason}"}}"#);
        let gw = &gw;
        async move { gw.metric_reaches(&sample, 1.0).await }
    };
    assert_eq!(counted("bad_request").await, 1.0);
    assert_eq!(counted("headers_too_large").await, 1.0);
}

/// A chunked body whose framing is malformed is a bad request, not a slow one.
#[tokio::test]
async fn malformed_chunked_framing_is_400_bad_request() {
    let (_up, gw) = setup("").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut req =
        b"POST /webhooks/acme HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n".to_vec();
    for (k, v) in signed(b"{}", NOW, "c1") {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\nzz\r\n{}\r\n0\r\n\r\n");
    s.write_all(&req).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("\"error\":\"bad_request\""), "{text}");
}

/// One client holding its share of slots with bodies it never finishes is answered
/// `503 overloaded` for the next request, while another client is still served. Clients
/// are told apart by `X-Forwarded-For` from the trusted loopback peer.
#[tokio::test]
async fn slow_bodies_from_one_client_do_not_shed_the_others() {
    let up = Upstream::start().await;
    // Bodies get 5 s here (the harness's 1 s could end the slow ones mid-test).
    let config = config_with(
        "max_concurrency = 8\nmax_concurrency_per_ip = 2\ntrusted_proxies = [\"127.0.0.1/32\"]",
        "",
        &standard_route(&up.url(), ""),
    )
    .replace("read_timeout = \"1s\"", "read_timeout = \"5s\"");
    let gw = TestGateway::start(&config).await;
    let head = |client: &str| {
        format!(
            "POST /webhooks/acme HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {client}\r\nContent-Length: 100\r\n\r\n{{"
        )
    };
    // Two requests whose bodies never come: both slots of 198.51.100.1 are taken.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(head("198.51.100.1").as_bytes()).await.unwrap();
        slow.push(s);
    }
    gw.metric_reaches("hookwall_in_flight", 2.0).await;
    let url = gw.url("/webhooks/acme");
    let from = |client: &str, id: &str| {
        let mut h = signed(b"{}", NOW, id);
        h.push(("X-Forwarded-For".into(), client.into()));
        h
    };
    let third = post(&url, &from("198.51.100.1", "third"), b"{}").await;
    assert_eq!((third.0, reason(&third)), (503, "overloaded".into()));
    let other = post(&url, &from("198.51.100.2", "other"), b"{}").await;
    assert_eq!(other.0, 200, "{}", other.2);
    assert_eq!(up.delivery_ids(), ["other"]);
    drop(slow);
}
