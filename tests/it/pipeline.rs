//! Each row of CONTRACT §3 up to the signature and timestamp checks, through a real socket.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn valid_delivery_is_forwarded_and_the_answer_passed_back() {
    let (up, gw) = setup("").await;
    let body = br#"{"id":"evt_1"}"#;
    let resp = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "d-1"), body).await;
    assert_eq!(resp.0, 200);
    assert_eq!(resp.2, "upstream-ok");
    assert_eq!(resp.1["x-upstream"], "yes");
    assert_eq!(up.hits(), 1);
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="forwarded"}"#)
            .await,
        1.0
    );
    assert_eq!(
        gw.metric(r#"hookwall_upstream_responses_total{route="acme",class="2xx"}"#)
            .await,
        1.0
    );
    assert_eq!(
        gw.metric(r#"hookwall_signature_key_matched_total{route="acme",key="current"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn unknown_path_is_404_counted_under_unknown() {
    let (_up, gw) = setup("").await;
    let resp = post(&gw.url("/nope"), &[], b"x").await;
    assert_eq!((resp.0, reason(&resp)), (404, "unknown_route".into()));
    assert_eq!(resp.1["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_str(&resp.2).unwrap();
    assert_eq!(v["request_id"].as_str().unwrap().len(), 32);
    assert_eq!(
        gw.metric(r#"hookwall_rejections_total{route="_unknown",reason="unknown_route"}"#)
            .await,
        1.0
    );
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="_unknown",outcome="rejected"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let (up, gw) = setup("").await;
    let resp = get(&gw.url("/webhooks/acme"), &[]).await;
    assert_eq!((resp.0, reason(&resp)), (405, "method_not_allowed".into()));
    assert_eq!(resp.1["allow"], "POST");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn missing_signature_is_401() {
    let (up, gw) = setup("").await;
    let resp = post(&gw.url("/webhooks/acme"), &[], b"{}").await;
    assert_eq!((resp.0, reason(&resp)), (401, "missing_signature".into()));
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn tampered_body_wrong_secret_and_garbage_are_401_invalid() {
    let (up, gw) = setup("").await;
    let url = gw.url("/webhooks/acme");
    let headers = signed(b"{\"a\":1}", NOW, "d-1");
    let tampered = post(&url, &headers, b"{\"a\":2}").await;
    assert_eq!(
        (tampered.0, reason(&tampered)),
        (401, "invalid_signature".into())
    );
    let wrong = post(
        &url,
        &signed_with("not-the-secret", b"{}", NOW, "d-2"),
        b"{}",
    )
    .await;
    assert_eq!(reason(&wrong), "invalid_signature");
    for garbage in [
        "sha256=zz",
        "sha256=",
        "md5=abcd",
        "sha256=00",
        &format!("sha256={}", "a".repeat(9000)),
    ] {
        let mut h = signed(b"{}", NOW, "d-3");
        h[0].1 = garbage.to_owned();
        let resp = post(&url, &h, b"{}").await;
        assert_eq!(
            (resp.0, reason(&resp)),
            (401, "invalid_signature".into()),
            "{garbage}"
        );
    }
    assert_eq!(up.hits(), 0);
    assert!(
        gw.metric(r#"hookwall_rejections_total{route="acme",reason="invalid_signature"}"#)
            .await
            >= 7.0
    );
}

#[tokio::test]
async fn any_configured_secret_matches_and_is_labelled() {
    let (up, gw) = setup("").await;
    let resp = post(
        &gw.url("/webhooks/acme"),
        &signed_with(OLD_SECRET, b"{}", NOW, "d-old"),
        b"{}",
    )
    .await;
    assert_eq!(resp.0, 200);
    assert_eq!(up.hits(), 1);
    assert_eq!(
        gw.metric(r#"hookwall_signature_key_matched_total{route="acme",key="old"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn stale_and_future_timestamps_are_401_after_a_valid_signature() {
    let (up, gw) = setup("tolerance = \"5m\"\nfuture_tolerance = \"30s\"").await;
    let url = gw.url("/webhooks/acme");
    let stale = post(&url, &signed(b"{}", NOW - 301, "d-s"), b"{}").await;
    assert_eq!(
        (stale.0, reason(&stale)),
        (401, "timestamp_out_of_window".into())
    );
    let future = post(&url, &signed(b"{}", NOW + 31, "d-f"), b"{}").await;
    assert_eq!(reason(&future), "timestamp_out_of_window");
    let edge = post(&url, &signed(b"{}", NOW - 300, "d-e"), b"{}").await;
    assert_eq!(edge.0, 200);
    // A forged request with a stale timestamp reports the signature, the true reason.
    let forged = post(
        &url,
        &signed_with("forger", b"{}", NOW - 9999, "d-x"),
        b"{}",
    )
    .await;
    assert_eq!(reason(&forged), "invalid_signature");
    assert_eq!(up.hits(), 1);
    let text = get(&gw.admin_url("/metrics"), &[]).await.2;
    assert!(
        text.contains("hookwall_timestamp_skew_seconds_count{route=\"acme\"} 3"),
        "{text}"
    );
}

#[tokio::test]
async fn ip_allowlist_uses_the_peer_and_ignores_spoofed_forwarded_for() {
    let (up, gw) = setup("allow_ips = [\"10.0.0.0/8\"]").await;
    let url = gw.url("/webhooks/acme");
    let mut h = signed(b"{}", NOW, "d-ip");
    h.push(("X-Forwarded-For".into(), "10.1.2.3".into()));
    let resp = post(&url, &h, b"{}").await;
    assert_eq!((resp.0, reason(&resp)), (403, "ip_not_allowed".into()));
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn trusted_proxy_forwarded_for_is_honoured_and_appended() {
    let up = Upstream::start().await;
    let routes = standard_route(&up.url(), "allow_ips = [\"203.0.113.0/24\"]");
    let gw = TestGateway::start(&config_with(
        "trusted_proxies = [\"127.0.0.1/32\"]",
        "",
        &routes,
    ))
    .await;
    let mut h = signed(b"{}", NOW, "d-tp");
    h.push(("X-Forwarded-For".into(), "10.9.9.9, 203.0.113.7".into()));
    let resp = post(&gw.url("/webhooks/acme"), &h, b"{}").await;
    assert_eq!(resp.0, 200, "{}", resp.2);
    let seen = &up.seen()[0];
    assert_eq!(
        seen.headers["x-forwarded-for"],
        "10.9.9.9, 203.0.113.7, 127.0.0.1"
    );
}

#[tokio::test]
async fn rate_limit_is_429_with_retry_after_before_reading_the_body() {
    let (up, gw) = setup("rate_limit = { per_minute = 2, by = \"route\" }").await;
    let url = gw.url("/webhooks/acme");
    for i in 0..2 {
        let resp = post(&url, &signed(b"{}", NOW, &format!("d-rl-{i}")), b"{}").await;
        assert_eq!(resp.0, 200);
    }
    let resp = post(&url, &signed(b"{}", NOW, "d-rl-3"), b"{}").await;
    assert_eq!((resp.0, reason(&resp)), (429, "rate_limited".into()));
    let retry: u64 = resp.1["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn body_over_cap_is_413() {
    let (up, gw) = setup("max_body = \"1KiB\"").await;
    let body = vec![b'x'; 1025];
    let resp = post(
        &gw.url("/webhooks/acme"),
        &signed(&body, NOW, "d-big"),
        &body,
    )
    .await;
    assert_eq!((resp.0, reason(&resp)), (413, "body_too_large".into()));
    let ok = vec![b'x'; 1024];
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &signed(&ok, NOW, "d-ok"), &ok)
            .await
            .0,
        200
    );
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn declared_100mb_content_length_gets_413_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_up, gw) = setup("").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = "POST /webhooks/acme HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\nX-Sig: sha256=00\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    // Well under read_timeout (1s): the answer comes from the header alone.
    let n = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("body_too_large"), "{text}");
}

#[tokio::test]
async fn slow_headers_get_408_and_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_up, gw) = setup("").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /webhooks/acme HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never finish the head: within read_timeout (1s) + slack the gateway answers 408 and
    // closes the connection.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "connection still open after 3s");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "read_timeout");
    assert_eq!(body["request_id"].as_str().map(str::len), Some(32));
    assert_eq!(
        gw.metric(r#"hookwall_rejections_total{route="_unknown",reason="read_timeout"}"#)
            .await,
        1.0
    );
}

/// `read_timeout` bounds a request head, not the wait for the next request: a keep-alive
/// connection stays open past it, until `idle_timeout`.
#[tokio::test]
async fn keep_alive_connections_live_until_idle_timeout_not_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with(
        "idle_timeout = \"3s\"",
        "",
        &standard_route(&up.url(), ""),
    ))
    .await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    for _ in 0..2 {
        s.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"));
        // Twice read_timeout (1s) of silence: still open, and still served.
        assert!(
            tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
                .await
                .is_err(),
            "closed before idle_timeout"
        );
    }
    let closed = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle connection not closed after idle_timeout"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closing_is_not_a_rejection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with(
        "idle_timeout = \"1s\"",
        "",
        &standard_route(&up.url(), ""),
    ))
    .await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"));
    // Idle past idle_timeout (1s): the gateway closes the connection, but no request was
    // cut off, so nothing counts as read_timeout.
    let closed = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle connection not closed"
    );
    assert_eq!(
        gw.metric(r#"hookwall_rejections_total{route="_unknown",reason="read_timeout"}"#)
            .await,
        0.0
    );
}

#[tokio::test]
async fn slow_body_is_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (up, gw) = setup("").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let h = signed(b"{}", NOW, "d-slow");
    let head = format!(
        "POST /webhooks/acme HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n{}: {}\r\n{}: {}\r\n\r\n{{",
        h[0].0, h[0].1, h[1].0, h[1].1
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("read_timeout"));
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn overload_is_503_with_retry_after() {
    let up = Upstream::start().await;
    up.answer(200, Duration::from_millis(800));
    let gw = TestGateway::start(&config_with(
        "max_concurrency = 1",
        "",
        &standard_route(&up.url(), "dedup = false"),
    ))
    .await;
    let url = gw.url("/webhooks/acme");
    let first = {
        let url = url.clone();
        tokio::spawn(async move { post(&url, &signed(b"{}", NOW, "a"), b"{}").await })
    };
    wait_until(|| up.hits() == 1).await;
    let shed = post(&url, &signed(b"{}", NOW, "b"), b"{}").await;
    assert_eq!((shed.0, reason(&shed)), (503, "overloaded".into()));
    assert!(shed.1.contains_key("retry-after"));
    assert_eq!(first.await.unwrap().0, 200);
}

/// One client holding its share of slots (slow upstream answers here; slow bodies alike)
/// is shed past it, while another client still gets through. Clients are told apart by
/// `X-Forwarded-For` from the trusted loopback peer.
#[tokio::test]
async fn one_client_past_its_share_is_shed_without_shedding_others() {
    let up = Upstream::start().await;
    up.answer(200, Duration::from_millis(800));
    let gw = TestGateway::start(&config_with(
        "max_concurrency = 8\nmax_concurrency_per_ip = 2\ntrusted_proxies = [\"127.0.0.1/32\"]",
        "",
        &standard_route(&up.url(), "dedup = false"),
    ))
    .await;
    let url = gw.url("/webhooks/acme");
    let from = |client: &str, id: &str| {
        let mut h = signed(b"{}", NOW, id);
        h.push(("X-Forwarded-For".into(), client.into()));
        h
    };
    let held: Vec<_> = (0..2)
        .map(|i| {
            let (url, h) = (url.clone(), from("198.51.100.1", &format!("held-{i}")));
            tokio::spawn(async move { post(&url, &h, b"{}").await.0 })
        })
        .collect();
    wait_until(|| up.hits() == 2).await;
    let shed = post(&url, &from("198.51.100.1", "third"), b"{}").await;
    assert_eq!((shed.0, reason(&shed)), (503, "overloaded".into()));
    assert!(shed.1.contains_key("retry-after"));
    let other = post(&url, &from("198.51.100.2", "other"), b"{}").await;
    assert_eq!(other.0, 200, "{}", other.2);
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    // Its slots are back: the first client is served again.
    let again = post(&url, &from("198.51.100.1", "again"), b"{}").await;
    assert_eq!(again.0, 200, "{}", again.2);
}

#[tokio::test]
async fn the_window_moves_with_the_clock() {
    let (up, gw) = setup("").await;
    let url = gw.url("/webhooks/acme");
    assert_eq!(post(&url, &signed(b"{}", NOW, "c-1"), b"{}").await.0, 200);
    gw.clock.set(NOW + 301);
    let stale = post(&url, &signed(b"{}", NOW, "c-2"), b"{}").await;
    assert_eq!(reason(&stale), "timestamp_out_of_window");
    assert_eq!(up.hits(), 1);
    assert_eq!(up.seen()[0].method, http::Method::POST);
}

#[tokio::test]
async fn shutdown_lets_the_in_flight_request_finish() {
    let (up, gw) = setup("").await;
    up.answer(200, Duration::from_millis(300));
    let url = gw.url("/webhooks/acme");
    let in_flight = {
        let url = url.clone();
        tokio::spawn(async move { post(&url, &signed(b"{}", NOW, "sd"), b"{}").await })
    };
    wait_until(|| up.hits() == 1).await;
    let addr = gw.addr;
    gw.shutdown().await;
    assert_eq!(in_flight.await.unwrap().2, "upstream-ok");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_refused_reload_keeps_the_old_routes_serving() {
    let (up, gw) = setup("").await;
    // The in-process config has no file behind it, so the reload must be refused.
    assert!(gw.gateway.reload().is_err());
    assert_eq!(
        gw.metric(r#"hookwall_config_reloads_total{result="error"}"#)
            .await,
        1.0
    );
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "rl"), b"{}")
            .await
            .0,
        200
    );
    assert_eq!(up.hits(), 1);
}
