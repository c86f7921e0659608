//! What the upstream receives (CONTRACT §4) and what the provider gets back.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn whitespace_sensitive_json_and_non_utf8_bodies_arrive_byte_for_byte() {
    let (up, gw) = setup("").await;
    let bodies: [&[u8]; 4] = [
        b"{ \"a\" :  1,\n\t\"b\": [1 ,2]  }\r\n",
        b"{\"name\":\"\\u00e4\",\"raw\":\"\xc3\xa4\"}",
        b"\xff\xfe\x00binary\x00\x80",
        b"",
    ];
    for (i, body) in bodies.iter().enumerate() {
        let resp = post(
            &gw.url("/webhooks/acme"),
            &signed(body, NOW, &format!("b-{i}")),
            body,
        )
        .await;
        assert_eq!(resp.0, 200, "{}", resp.2);
        assert_eq!(up.seen()[i].body.as_ref(), *body);
        assert_eq!(
            up.seen()[i].headers["content-length"],
            body.len().to_string()
        );
    }
}

#[tokio::test]
async fn upstream_gets_forwarding_headers_and_no_spoofed_gateway_headers() {
    let (up, gw) = setup("").await;
    let mut h = signed(b"{}", NOW, "evt_h");
    h.push(("X-Hookwall-Verified".into(), "spoofed".into()));
    h.push(("X-Hookwall-Route".into(), "spoofed".into()));
    h.push(("X-Forwarded-For".into(), "6.6.6.6".into()));
    h.push(("Connection".into(), "keep-alive, X-Hop".into()));
    h.push(("X-Hop".into(), "must-not-pass".into()));
    h.push(("X-Custom".into(), "kept".into()));
    let resp = post(&format!("{}?a=1&b=2", gw.url("/webhooks/acme")), &h, b"{}").await;
    assert_eq!(resp.0, 200);
    let seen = &up.seen()[0];
    let hd = &seen.headers;
    assert_eq!(seen.uri.path(), "/hooks/acme");
    assert_eq!(seen.uri.query(), Some("a=1&b=2"));
    assert_eq!(hd["host"], up.addr.to_string());
    assert_eq!(hd["x-forwarded-host"], gw.addr.to_string());
    assert_eq!(hd["x-forwarded-for"], "127.0.0.1");
    assert_eq!(hd["x-forwarded-proto"], "http");
    assert_eq!(hd["x-hookwall-route"], "acme");
    assert_eq!(hd["x-hookwall-verified"], "generic");
    assert_eq!(hd["x-hookwall-delivery-id"], "evt_h");
    assert_eq!(hd["x-request-id"].to_str().unwrap().len(), 32);
    assert_eq!(hd["x-custom"], "kept");
    assert_eq!(hd["x-sig"], h[0].1.as_str());
    assert!(!hd.contains_key("x-hop"));
    assert_eq!(hd.get_all("x-hookwall-verified").iter().count(), 1);
}

#[tokio::test]
async fn strip_signature_and_added_headers() {
    let (up, gw) =
        setup("forward_headers = { strip_signature = true, add = { \"X-Env\" = \"prod\" } }").await;
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "s"), b"{}")
            .await
            .0,
        200
    );
    let hd = &up.seen()[0].headers;
    assert!(!hd.contains_key("x-sig"));
    assert_eq!(hd["x-env"], "prod");
}

#[tokio::test]
async fn upstream_status_and_body_are_passed_back_unchanged() {
    let (up, gw) = setup("").await;
    for status in [201u16, 204, 302, 410, 418, 503] {
        up.answer(status, Duration::ZERO);
        let resp = post(
            &gw.url("/webhooks/acme"),
            &signed(b"{}", NOW, &format!("st-{status}")),
            b"{}",
        )
        .await;
        assert_eq!(resp.0, status);
        if status != 204 {
            assert_eq!(resp.2, "upstream-ok");
        }
    }
    assert_eq!(
        gw.metric(r#"hookwall_upstream_responses_total{route="acme",class="4xx"}"#)
            .await,
        2.0
    );
    assert_eq!(
        gw.metric(r#"hookwall_upstream_responses_total{route="acme",class="5xx"}"#)
            .await,
        1.0
    );
    // Upstream answers are forwarded, not rejections.
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="forwarded"}"#)
            .await,
        6.0
    );
}

#[tokio::test]
async fn every_answer_carries_its_own_request_id() {
    let (up, gw) = setup("").await;
    let a = post(&gw.url("/webhooks/acme"), &[], b"{}").await;
    let b = post(&gw.url("/webhooks/acme"), &[], b"{}").await;
    let id = |r: &Answer| {
        serde_json::from_str::<serde_json::Value>(&r.2).unwrap()["request_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(id(&a), id(&b));
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "rid"), b"{}")
            .await
            .0,
        200
    );
    let sent = up.seen()[0].headers["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(sent != id(&a) && sent != id(&b));
}

#[tokio::test]
async fn connection_lost_after_sending_is_502_upstream_error() {
    use tokio::io::AsyncReadExt;
    // An "upstream" that reads the request and hangs up without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            drop(s);
        }
    });
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &standard_route(&format!("http://{addr}"), ""),
    ))
    .await;
    let h = signed(b"{}", NOW, "evt_lost");
    let resp = post(&gw.url("/webhooks/acme"), &h, b"{}").await;
    assert_eq!((resp.0, reason(&resp)), (502, "upstream_error".into()));
    // Released: the retry is not answered in_flight or duplicate.
    let again = post(&gw.url("/webhooks/acme"), &h, b"{}").await;
    assert_eq!(reason(&again), "upstream_error");
}

/// A raw HTTP/1.1 upstream answering every request `200 ok` on a keep-alive connection,
/// then, if `close_after` is set, closing the connection that long after each answer
/// without saying so (as servers with a short idle timeout do). Counts connections.
async fn raw_keep_alive_upstream(
    close_after: Option<Duration>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request: a head, then Content-Length bytes of body.
                    let (head_end, body_len) = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            break (end + 4, len);
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    while buf.len() < head_end + body_len {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + body_len);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if s.write_all(answer).await.is_err() {
                        return;
                    }
                    if let Some(after) = close_after {
                        tokio::time::sleep(after).await;
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let (addr, accepted) = raw_keep_alive_upstream(None).await;
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &standard_route(&format!("http://{addr}"), ""),
    ))
    .await;
    for i in 0..8 {
        let resp = post(
            &gw.url("/webhooks/acme"),
            &signed(b"{}", NOW, &format!("evt_ka_{i}")),
            b"{}",
        )
        .await;
        assert_eq!(resp.0, 200, "{}", resp.2);
    }
    // Sequential requests: at most one upstream connection per worker thread.
    let opened = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        opened <= hookwall::transport::workers::count(),
        "{opened} upstream connections for 8 sequential requests"
    );
}

#[tokio::test]
async fn an_upstream_closing_idle_connections_costs_no_delivery() {
    let (addr, accepted) = raw_keep_alive_upstream(Some(Duration::from_millis(20))).await;
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &standard_route(&format!("http://{addr}"), ""),
    ))
    .await;
    for i in 0..5 {
        let resp = post(
            &gw.url("/webhooks/acme"),
            &signed(b"{}", NOW, &format!("evt_idle_{i}")),
            b"{}",
        )
        .await;
        assert_eq!(resp.0, 200, "request {i}: {}", resp.2);
        // Long enough for the upstream to have closed the connection just used.
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5);
}

/// An HTTP/1.0 upstream that closes after each answer: the provider still gets HTTP/1.1
/// answers on a connection that stays open (the upstream's version is not passed back).
#[tokio::test]
async fn answers_keep_the_clients_http_version_whatever_the_upstreams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                // The whole request (the gateway always sends Content-Length).
                while !seen.windows(2).any(|w| w == b"{}") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &standard_route(&format!("http://{addr}"), ""),
    ))
    .await;
    let mut client = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    for id in ["v1", "v2"] {
        let mut req =
            String::from("POST /webhooks/acme HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n");
        for (k, v) in signed(b"{}", NOW, id) {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n{}");
        client.write_all(req.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(
            !text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
        assert!(text.ends_with("ok"), "{text}");
    }
}

/// The client-IP headers a client can write freely, besides `X-Forwarded-For`.
const CLIENT_IP_HEADERS: [&str; 5] = [
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "x-client-ip",
];

/// A delivery from 127.0.0.1 carrying two `X-Forwarded-For` headers and every other
/// client-IP header; what the upstream saw, with `trusted_proxies = server_extra`.
async fn client_ip_headers_seen(server_extra: &str) -> http::HeaderMap {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with(
        server_extra,
        "",
        &standard_route(&up.url(), ""),
    ))
    .await;
    let mut h = signed(b"{}", NOW, "d-client-ip");
    h.push(("X-Forwarded-For".into(), "1.2.3.4".into()));
    h.push(("X-Forwarded-For".into(), "10.9.9.9, 10.8.8.8".into()));
    for name in CLIENT_IP_HEADERS {
        h.push((name.into(), "for=6.6.6.6".into()));
    }
    let resp = post(&gw.url("/webhooks/acme"), &h, b"{}").await;
    assert_eq!(resp.0, 200, "{}", resp.2);
    up.seen()[0].headers.clone()
}

#[tokio::test]
async fn trusted_proxy_keeps_every_forwarded_for_header_in_order() {
    let hd = client_ip_headers_seen("trusted_proxies = [\"127.0.0.1/32\"]").await;
    let xff: Vec<_> = hd.get_all("x-forwarded-for").iter().collect();
    assert_eq!(xff, ["1.2.3.4, 10.9.9.9, 10.8.8.8, 127.0.0.1"]);
    for name in CLIENT_IP_HEADERS {
        assert_eq!(hd[name], "for=6.6.6.6", "{name}");
    }
}

#[tokio::test]
async fn untrusted_peer_client_ip_headers_are_replaced_or_removed() {
    let hd = client_ip_headers_seen("").await;
    let xff: Vec<_> = hd.get_all("x-forwarded-for").iter().collect();
    assert_eq!(xff, ["127.0.0.1"]);
    for name in CLIENT_IP_HEADERS {
        assert!(!hd.contains_key(name), "{name} reached the upstream");
    }
}

/// An upstream answer far larger than what is read before answering (64 KiB) is streamed
/// through to the client: every byte, in order, with the upstream's status and length.
#[tokio::test]
async fn a_large_upstream_answer_is_passed_back_whole_while_streamed() {
    let (up, gw) = setup("").await;
    let big: String = (0..(3 << 20) / 16).map(|i| format!("{i:015x}\n")).collect();
    let big: &'static str = Box::leak(big.into_boxed_str());
    up.answer(201, Duration::ZERO);
    up.answer_body(big);
    let resp = post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "big"), b"{}").await;
    assert_eq!(resp.0, 201);
    assert_eq!(resp.1["content-length"], big.len().to_string());
    assert_eq!(resp.2.len(), big.len());
    assert!(
        resp.2 == big,
        "the streamed answer differs from the upstream's"
    );
    // Delivered: the retry is a duplicate.
    let again = post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "big"), b"{}").await;
    assert!(again.2.contains("duplicate"), "{}", again.2);
}

/// An upstream that starts a large answer and then stalls: once the route's timeout has
/// passed, the client's answer is cut off (the connection ends short of the announced
/// length) instead of hanging, and the 2xx still marked the delivery delivered.
#[tokio::test]
async fn a_streamed_answer_that_stalls_is_cut_at_the_route_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n";
                let _ = s.write_all(head).await;
                let _ = s.write_all(&[b'a'; 128 * 1024]).await;
                // Never the rest; hold the connection open past the test.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &standard_route(&format!("http://{addr}"), ""),
    ))
    .await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut req = b"POST /webhooks/acme HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n".to_vec();
    for (k, v) in signed(b"{}", NOW, "stall") {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n{}");
    s.write_all(&req).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the stalled answer was never cut off");
    let text = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(answer.len() < 1048576, "{} bytes: not cut", answer.len());
    let again = post(
        &gw.url("/webhooks/acme"),
        &signed(b"{}", NOW, "stall"),
        b"{}",
    )
    .await;
    assert!(again.2.contains("duplicate"), "{}", again.2);
}
