//! How many journal entries per second a storage takes, written the way the journal's
//! writer writes them: one transaction per batch of up to 512 entries, one batch at a time.
//! That is the most the journal can sustain before its queue fills and it drops entries.
//!
//!     journal_write sqlite /tmp/x.db [ENTRIES]
//!     journal_write postgres postgres://user@127.0.0.1:5432/db [ENTRIES]
//!
//! Each entry looks like one of the benchmark's deliveries: a 1024-byte body kept, eight
//! headers, a delivery id. Prints one `JOURNAL_WRITE` line.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hookwall::config::StorageBackend;
use hookwall::secret::Secret;
use hookwall::storage::journal::StoredEntry;
use hookwall::storage::Storage;

/// The journal writer's batch size.
const BATCH: usize = 512;

fn entry(n: usize, now_us: i64) -> StoredEntry {
    let body = vec![b'x'; 1024];
    let headers = [
        ("host", "127.0.0.1:8080"),
        ("content-type", "application/json"),
        ("content-length", "1024"),
        ("user-agent", "bench"),
        (
            "x-bench-signature",
            "sha256=0c7a54f6ad1e1b3c1f0b8f06e1c1d3a1b2c3d4e5f60718293a4b5c6d7e8f9012",
        ),
        ("x-forwarded-for", "127.0.0.1"),
        ("accept", "*/*"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .chain([("x-bench-delivery".to_owned(), format!("jw-{n}"))])
    .collect();
    StoredEntry {
        id: format!("{:032x}", (now_us as u128) << 32 | n as u128),
        request_id: format!("{n:032x}"),
        received_at: now_us,
        route: "bench".into(),
        method: "POST".into(),
        path: "/webhooks/bench".into(),
        client_ip: "127.0.0.1".into(),
        headers,
        body: Some(body.into()),
        body_size: 1024,
        body_sha256: Some("0".repeat(64)),
        truncated: false,
        body_redacted: false,
        outcome: "forwarded".into(),
        reason: None,
        status: 200,
        upstream_status: Some(200),
        upstream_ms: Some(0.4),
        dedup_id: Some(format!("jw-{n}")),
        key_id: Some("0".into()),
        diagnosis: None,
        verified: true,
        attempt: None,
        target: None,
        would_reject: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: journal_write sqlite PATH | postgres URL [ENTRIES]";
    let (kind, target) = match (args.get(1), args.get(2)) {
        (Some(k), Some(t)) => (k.as_str(), t.clone()),
        _ => return Err(usage.into()),
    };
    let total: usize = args.get(3).map_or(Ok(100_000), |n| n.parse())?;
    let backend = match kind {
        "sqlite" => StorageBackend::Sqlite {
            path: PathBuf::from(&target),
        },
        "postgres" => StorageBackend::Postgres {
            url: Secret::new(target.clone().into_bytes()),
        },
        _ => return Err(usage.into()),
    };
    let storage = Storage::open(&backend).await?;
    let now_us = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros())?;
    let started = Instant::now();
    let mut written = 0;
    while written < total {
        let n = BATCH.min(total - written);
        let batch: Vec<StoredEntry> = (written..written + n).map(|i| entry(i, now_us)).collect();
        storage.append_entries(&batch).await?;
        written += n;
    }
    let secs = started.elapsed().as_secs_f64();
    let estimate = entry(0, now_us).stored_bytes();
    let on_disk = match kind {
        "sqlite" => {
            // The WAL holds pages not yet checkpointed: count both files.
            let wal = PathBuf::from(format!("{target}-wal"));
            let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
            format!(
                "{:.0}",
                (size(std::path::Path::new(&target)) + size(&wal)) as f64 / written as f64
            )
        }
        _ => "-".into(),
    };
    println!(
        "JOURNAL_WRITE backend={kind} entries={written} batch={BATCH} secs={secs:.2} entries_per_s={:.0} estimate_bytes_per_entry={estimate} disk_bytes_per_entry={on_disk}",
        written as f64 / secs
    );
    Ok(())
}
