//! Private PostgreSQL servers for tests: `initdb` into a temp dir (once per test run, then
//! copied for each server, which is much faster than a fresh `initdb`), started with
//! `pg_ctl` on a free loopback port, and stopped by the test so fault tests can kill it.
//!
//! PostgreSQL refuses to run as root, so under root (CI) every command runs as the
//! `postgres` user the package creates, and the directories are handed to it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The folder of PostgreSQL's programs (`initdb`, `pg_ctl`).
fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL must be installed (scripts/test installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no PostgreSQL bin folder under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL program (as `postgres` when we are root).
fn pg(program: &str, args: &[&str]) -> std::process::Output {
    let path = bin_dir().join(program);
    let out = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&path)
            .args(args)
            .output()
    } else {
        Command::new(&path).args(args).output()
    };
    out.unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Hands a folder to the `postgres` user (under root).
fn give(dir: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {}", dir.display());
    }
}

/// A data folder made by `initdb` once per test run, copied for each server.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            give(dir.path());
            let data = dir.path().join("data");
            let out = pg(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            );
            assert!(
                out.status.success(),
                "initdb: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
        .path()
}

/// One private PostgreSQL.
pub(crate) struct PostgresServer {
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl PostgresServer {
    /// Starts a fresh server and waits until it accepts connections.
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let copied = Command::new("cp")
            .arg("-a")
            .arg(template().join("data"))
            .arg(dir.path().join("data"))
            .status()
            .unwrap();
        assert!(copied.success(), "copy the template data folder");
        give(dir.path());
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut server = PostgresServer {
            dir,
            port,
            running: false,
        };
        server.restart().await;
        server
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts it (again) on the same port and data; returns once it accepts connections.
    pub(crate) async fn restart(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        let out = tokio::task::spawn_blocking(move || {
            pg(
                "pg_ctl",
                &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
            )
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = true;
    }

    /// Stops it at once (`-m immediate`: like a crash, connections cut).
    pub(crate) async fn kill(&mut self) {
        if !self.running {
            return;
        }
        let data = self.data();
        let _ = tokio::task::spawn_blocking(move || {
            pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
        })
        .await;
        self.running = false;
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            let _ = pg(
                "pg_ctl",
                &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
            );
        }
    }
}
