//! A `202` from a buffered route is a promise that the delivery is on disk: the real
//! binary on SQLite is killed with SIGKILL while thousands of deliveries are queued and
//! hundreds in flight, started again, and every delivery it accepted reaches the upstream;
//! the only duplicates are attempts that were in flight at the kill.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_hookwall");
/// Deliveries sent in all.
const DELIVERIES: usize = 4000;
/// Attempts the gateway may have in flight: the bound on duplicates.
const CONCURRENCY: usize = 64;

/// A POST for the shared test client; unlike `post`, a cut connection is an answer too.
fn request(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut req = http::Request::builder().method("POST").uri(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req.body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
        body,
    )))
    .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(config: &std::path::Path) -> Child {
    Command::new(BIN)
        .args(["--log-format", "json", "run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_listening(addr: &str) {
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} never came up");
}

fn write_config(
    dir: &std::path::Path,
    port: u16,
    admin: u16,
    upstream: &str,
) -> std::path::PathBuf {
    let route = standard_route(
        upstream,
        &format!(
            "delivery = \"buffered\"\nupstream_concurrency = {CONCURRENCY}\nretry = {{ initial = \"100ms\", max_delay = \"1s\" }}"
        ),
    );
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"2s\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n[storage]\npath = {:?}\n[journal]\nenabled = false\n[dedup]\nlease = \"5s\"\n{route}",
        dir.join("hookwall.db").display().to_string()
    );
    let path = dir.join(format!("gateway-{port}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_that_was_accepted() {
    let up = Upstream::start().await;
    // Slow enough that many attempts are in flight when the kill comes.
    up.answer(200, Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let config = write_config(dir.path(), port, admin, &up.url());
    let mut gateway = start(&config);
    let addr = format!("127.0.0.1:{port}");
    wait_listening(&addr).await;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = format!("http://{addr}/webhooks/acme");
    let senders: Vec<_> = (0..32)
        .map(|_| {
            let (accepted, killed, next, url) =
                (accepted.clone(), killed.clone(), next.clone(), url.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= DELIVERIES || killed.load(Ordering::Relaxed) {
                        return;
                    }
                    let id = format!("crash-{i}");
                    let body = format!(r#"{{"id":"{id}"}}"#);
                    let headers = signed(body.as_bytes(), now, &id);
                    // The kill cuts connections: those requests were not accepted.
                    let sent = tokio::time::timeout(
                        Duration::from_secs(10),
                        client().request(request(&url, &headers, body.as_bytes())),
                    )
                    .await;
                    if let Ok(Ok(resp)) = sent {
                        if resp.status() == 202 {
                            accepted.lock().unwrap().insert(id);
                        }
                    }
                }
            })
        })
        .collect();
    // Kill once most were accepted, with deliveries in flight to the upstream.
    for _ in 0..3000 {
        if accepted.lock().unwrap().len() >= DELIVERIES * 3 / 4 && up.hits() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateway.kill().unwrap();
    let _ = gateway.wait();
    killed.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.await;
    }
    let accepted_at_kill = accepted.lock().unwrap().clone();
    let delivered_at_kill = up.hits();
    assert!(
        accepted_at_kill.len() >= DELIVERIES * 3 / 4,
        "only {} accepted before the kill",
        accepted_at_kill.len()
    );
    assert!(
        accepted_at_kill.len() > delivered_at_kill + 1000,
        "the kill should leave deliveries queued ({} accepted, {delivered_at_kill} delivered)",
        accepted_at_kill.len()
    );

    // Start again on the same file: everything accepted arrives.
    let (port2, admin2) = (free_port(), free_port());
    let config2 = write_config(dir.path(), port2, admin2, &up.url());
    let mut restarted = start(&config2);
    let mut missing = Vec::new();
    for _ in 0..1200 {
        let seen: HashSet<String> = up
            .seen()
            .iter()
            .filter_map(|s| s.headers.get("x-hookwall-delivery-id"))
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        missing = accepted_at_kill
            .iter()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "accepted at kill {} delivered at kill {delivered_at_kill}",
        accepted_at_kill.len()
    );
    let _ = restarted.kill();
    let _ = restarted.wait();
    assert!(
        missing.is_empty(),
        "{} accepted deliveries never reached the upstream, e.g. {:?}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for s in up.seen() {
        if let Some(id) = s.headers.get("x-hookwall-delivery-id") {
            *counts.entry(id.to_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "upstream saw {} ({} distinct), duplicates {duplicates}",
        up.hits(),
        counts.len()
    );
    assert!(
        duplicates <= CONCURRENCY,
        "{duplicates} duplicate deliveries; only the {CONCURRENCY} attempts in flight at the kill may repeat"
    );
}
