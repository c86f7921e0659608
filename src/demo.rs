//! `hookwall demo`: a self-contained tour on loopback. Starts the gateway with a built-in
//! config, a built-in echo upstream and the in-memory store, sends one delivery of each
//! kind, and prints what the provider would have seen and the rejection counters.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::clock::SystemClock;
use crate::config::compile_str;
use crate::gateway::Gateway;
use crate::layers::body_limit::read_capped;
use crate::verify::SignInput;

const DEMO_SECRET: &str = "demo-secret-not-for-production";

fn demo_config(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body = "4KiB"
[admin]
listen = "127.0.0.1:0"
[dedup]
store = "memory"
[[route]]
name = "demo"
path = "/webhooks/demo"
upstream = "http://{upstream}/handler"
secrets = [{{ value = "{DEMO_SECRET}", id = "demo-key" }}]
rate_limit = {{ per_minute = 5, burst = 5 }}
timeout = "5s"
[route.verify]
header = "X-Demo-Signature"
prefix = "sha256="
payload = "{{timestamp}}.{{body}}"
timestamp_header = "X-Demo-Timestamp"
id_header = "X-Demo-Delivery"
"#
    )
}

type DemoClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn send(
    client: &DemoClient,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = Request::post(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let Ok(req) = req.body(Full::new(Bytes::from(body))) else {
        return (0, "bad request".into());
    };
    match tokio::time::timeout(Duration::from_secs(5), client.request(req)).await {
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            let body = read_capped(resp.into_body(), 1 << 16)
                .await
                .unwrap_or_default();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
        Ok(Err(e)) => (0, format!("error: {e}")),
        Err(_) => (0, "timed out".into()),
    }
}

/// What a response says about itself: the gateway's reason, or the upstream's answer.
fn describe(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.to_owned();
    };
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return e.to_owned();
    }
    if v.get("status").and_then(|s| s.as_str()) == Some("duplicate") {
        return "duplicate (upstream not called)".to_owned();
    }
    format!("forwarded, upstream said {body}")
}

/// Runs the tour; exits 0 when every case got the answer the contract promises.
pub(crate) async fn run() -> ExitCode {
    match tour().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("hookwall demo: some answers differ from the contract (see the table)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hookwall demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn tour() -> Result<bool, crate::error::BoxError> {
    let upstream = crate::echo::start_quiet()
        .await
        .map_err(|e| format!("cannot start the echo upstream: {e}"))?;
    let config = compile_str(&demo_config(upstream), Path::new("<built-in demo config>"))?;
    let proxy = TcpListener::bind(config.server.listen).await?;
    let admin = TcpListener::bind(config.admin.listen).await?;
    let (proxy_addr, admin_addr) = (proxy.local_addr()?, admin.local_addr()?);
    let stores = crate::dedup::build(&config.dedup)?;
    let verifier = config.routes[0].verifier.clone();
    let gateway = Gateway::with_parts(config, stores, Arc::new(SystemClock))?;
    let never = std::future::pending::<()>();
    tokio::spawn(crate::transport::run(proxy, gateway.clone(), never));
    tokio::spawn(crate::admin::run(
        admin,
        gateway,
        std::future::pending::<()>(),
    ));

    let client: DemoClient = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("http://{proxy_addr}/webhooks/demo");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let sign = |body: &[u8], ts: i64, id: &str| -> Vec<(String, String)> {
        let input = SignInput {
            body,
            timestamp: ts,
            id,
            url: None,
            method: &http::Method::POST,
        };
        verifier
            .sign(&input)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    };
    let body = br#"{"id":"evt_1","type":"order.paid"}"#.to_vec();

    println!("hookwall demo: gateway on {proxy_addr}, admin on {admin_addr}, echo upstream on {upstream}\n");
    println!("{:<34} {:>6}  answer", "case", "status");
    println!("{}", "-".repeat(90));
    let mut all_as_promised = true;
    let mut row = |case: &str, (status, answer): (u16, String), expected: u16| {
        all_as_promised &= status == expected;
        println!("{case:<34} {status:>6}  {}", describe(&answer));
    };

    row(
        "valid delivery",
        send(&client, &url, &sign(&body, now, "d-1"), body.clone()).await,
        200,
    );
    let mut tampered = body.clone();
    tampered[8] = b'2';
    row(
        "tampered body",
        send(&client, &url, &sign(&body, now, "d-2"), tampered).await,
        401,
    );
    row(
        "stale timestamp (10 min old)",
        send(&client, &url, &sign(&body, now - 600, "d-3"), body.clone()).await,
        401,
    );
    row(
        "replayed duplicate of the first",
        send(&client, &url, &sign(&body, now, "d-1"), body.clone()).await,
        200,
    );
    let big = vec![b'x'; 8 * 1024];
    row(
        "oversized body (8 KiB > 4 KiB)",
        send(&client, &url, &sign(&big, now, "d-5"), big).await,
        413,
    );
    // The route allows 5 per minute; six have been sent by the end of this one.
    row(
        "rate limit exhausted",
        send(&client, &url, &sign(&body, now, "d-6"), body.clone()).await,
        429,
    );

    let metrics = send_get(&client, &format!("http://{admin_addr}/metrics")).await;
    println!("\nrejection counters from /metrics:");
    for line in metrics.lines().filter(|l| {
        (l.starts_with("hookwall_rejections_total{route=\"demo\"")
            || l.starts_with("hookwall_requests_total{route=\"demo\""))
            && !l.ends_with(" 0")
    }) {
        println!("  {line}");
    }
    Ok(all_as_promised)
}

async fn send_get(client: &DemoClient, url: &str) -> String {
    let Ok(req) = Request::get(url).body(Full::new(Bytes::new())) else {
        return String::new();
    };
    match client.request(req).await {
        Ok(resp) => String::from_utf8_lossy(
            &read_capped(resp.into_body(), 1 << 22)
                .await
                .unwrap_or_default(),
        )
        .into_owned(),
        Err(_) => String::new(),
    }
}
