//! File descriptors under a flood (issue 18, item 2), against the real binary run with a
//! low open-files limit: one descriptor per connection; while more connections than the
//! limit allows are open, the admin listener still answers, and a signed delivery on a new
//! connection is still served.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_hookwall");
/// The open-files limit the gateway runs under.
const NOFILE: usize = 128;
/// More connections than that limit could ever hold.
const FLOOD: usize = 200;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The gateway, under `ulimit -n NOFILE`, killed when dropped.
struct Limited(Child);

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &std::path::Path) -> Limited {
    start_under(config, &format!("-n {NOFILE}"))
}

/// The gateway under `ulimit <limit>`.
fn start_under(config: &std::path::Path, limit: &str) -> Limited {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit {limit} && exec \"$0\" run --config \"$1\""))
        .arg(BIN)
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Limited(child)
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Opens `n` connections that send nothing (bounded: 5 s for all).
async fn idle_connections(addr: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut open = Vec::new();
    for _ in 0..n {
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(5), connect).await {
            open.push(s);
        }
    }
    open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_under_a_low_descriptor_limit_leaves_admin_and_deliveries_served() {
    if !cfg!(target_os = "linux") {
        return; // /proc is how descriptors are counted here
    }
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let config = dir.path().join("gateway.toml");
    let route = standard_route(&up.url(), "");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n[storage]\npath = {:?}\n{route}",
            dir.path().join("hookwall.db").display().to_string()
        ),
    )
    .unwrap();
    let gateway = start(&config);
    let pid = gateway.0.id();
    let (addr, admin_url) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{admin}"),
    );
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let url = format!("http://{addr}/webhooks/acme");
    assert_eq!(
        post(&url, &signed(b"{}", now, "before"), b"{}").await.0,
        200
    );

    // One descriptor per connection: ten idle connections open about ten more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = open_descriptors(pid);
    let ten = idle_connections(&addr, 10).await;
    wait_until(|| open_descriptors(pid) >= before + 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let per_ten = open_descriptors(pid) - before;
    assert!(per_ten <= 12, "10 connections took {per_ten} descriptors");
    drop(ten);

    // The flood: far more connections than the limit allows, all held open.
    let flood = idle_connections(&addr, FLOOD).await;
    assert!(
        flood.len() > NOFILE,
        "only {} connections opened",
        flood.len()
    );
    let health = get(&format!("{admin_url}/healthz"), &[]).await;
    assert_eq!(health.0, 200, "the admin listener during the flood");
    let during = post(&url, &signed(b"{}", now, "during"), b"{}").await;
    assert_eq!(during.0, 200, "a delivery during the flood: {}", during.2);
    assert!(open_descriptors(pid) < NOFILE);
    drop(flood);

    let after = post(&url, &signed(b"{}", now, "after"), b"{}").await;
    assert_eq!(after.0, 200, "{}", after.2);
    assert_eq!(up.delivery_ids(), ["before", "during", "after"]);
}

/// The soft and hard open-files limits of a process.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut fields = line.trim_start_matches("Max open files").split_whitespace();
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().to_owned(),
    )
}

/// Started from a shell whose soft limit is low (as many are, at 1,024), the gateway
/// raises it to the hard limit, so its connection budget is not a few hundred.
#[tokio::test]
async fn the_soft_open_files_limit_is_raised_to_the_hard_one() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n[storage]\npath = {:?}\n{}",
            dir.path().join("hookwall.db").display().to_string(),
            standard_route(&up.url(), "")
        ),
    )
    .unwrap();
    let gateway = start_under(&config, "-Sn 256");
    let pid = gateway.0.id();
    // The limit is raised first thing; the admin listener comes up after everything else.
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(format!("127.0.0.1:{admin}"))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (soft, hard) = open_files_limits(pid);
    assert_ne!(hard, "256", "the test needs a hard limit above 256");
    assert_eq!(soft, hard);
}
