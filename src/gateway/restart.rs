//! Settings that take effect on restart only, and the comparison that finds them changed.
//!
//! A reload that changes one of them is refused as a whole, naming each one, so that what
//! the file says is never silently different from what runs (CONTRACT §13). Everything
//! else applies on reload: routes, secrets from files, timeouts (to connections accepted
//! after the reload), `max_concurrency`, `trusted_proxies`, the admin token, the TLS
//! certificate.

use std::fmt;

use crate::config::{Config, StorageBackend, StoreKind};

/// One setting whose change needs a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartRequired {
    /// The key, as written in the file.
    pub setting: &'static str,
    /// What runs now (never a secret).
    pub running: String,
    /// What the file asks for (never a secret).
    pub requested: String,
}

impl fmt::Display for RestartRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} changed ({} -> {}): it takes effect on restart only",
            self.setting, self.running, self.requested
        )
    }
}

/// The message for a refused reload.
pub(crate) fn describe(changes: &[RestartRequired]) -> String {
    let list: Vec<String> = changes.iter().map(ToString::to_string).collect();
    format!(
        "{}; restart hookwall to apply, or revert the change",
        list.join("; ")
    )
}

/// How a dedup store is shown: its kind, never its URL (which may carry a password).
fn store_label(kind: &StoreKind) -> String {
    match kind {
        StoreKind::Memory => "memory".to_owned(),
        StoreKind::Redis(_) => "redis".to_owned(),
        StoreKind::RedisCluster(nodes) => format!("redis cluster of {} seed(s)", nodes.len()),
    }
}

/// The restart-only settings that differ between `running` and `new`.
pub fn changes(running: &Config, new: &Config) -> Vec<RestartRequired> {
    let mut out = Vec::new();
    let differ = |out: &mut Vec<RestartRequired>, setting, running: String, requested: String| {
        if running != requested {
            out.push(RestartRequired {
                setting,
                running,
                requested,
            });
        }
    };
    differ(
        &mut out,
        "server.listen",
        running.server.listen.to_string(),
        new.server.listen.to_string(),
    );
    differ(
        &mut out,
        "admin.listen",
        running.admin.listen.to_string(),
        new.admin.listen.to_string(),
    );
    let tls = |c: &Config| if c.server.tls.is_some() { "on" } else { "off" }.to_owned();
    differ(&mut out, "server.tls", tls(running), tls(new));
    differ(
        &mut out,
        "dedup.store",
        store_label(&running.dedup.store),
        store_label(&new.dedup.store),
    );
    // Same kind, other server: the URLs are compared, not shown.
    if store_label(&running.dedup.store) == store_label(&new.dedup.store)
        && running.dedup.store != new.dedup.store
    {
        out.push(RestartRequired {
            setting: match new.dedup.store {
                StoreKind::RedisCluster(_) => "dedup.redis_cluster",
                _ => "dedup.redis_url",
            },
            running: "[redacted]".to_owned(),
            requested: "another [redacted]".to_owned(),
        });
    }
    let storage = |c: &Config| match &c.storage.backend {
        StorageBackend::Sqlite { path } => format!("sqlite at {}", path.display()),
        StorageBackend::Postgres { .. } => "postgres".to_owned(),
    };
    differ(&mut out, "storage", storage(running), storage(new));
    if let (StorageBackend::Postgres { url: a }, StorageBackend::Postgres { url: b }) =
        (&running.storage.backend, &new.storage.backend)
    {
        if a != b {
            out.push(RestartRequired {
                setting: "storage.postgres_url",
                running: "[redacted]".to_owned(),
                requested: "another [redacted]".to_owned(),
            });
        }
    }
    // The exporter is built once, at start.
    let telemetry = |c: &Config| {
        let t = &c.telemetry;
        match &t.traces_url {
            None => "off".to_owned(),
            Some(url) => format!(
                "{url} as {} every {}",
                t.service_name,
                humantime::format_duration(t.export_interval)
            ),
        }
    };
    differ(&mut out, "telemetry", telemetry(running), telemetry(new));
    if matches!(new.dedup.store, StoreKind::Memory) {
        differ(
            &mut out,
            "dedup.max_entries",
            running.dedup.max_entries.to_string(),
            new.dedup.max_entries.to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile_str;

    fn config(extra: &str) -> Config {
        compile_str(
            &format!(
                "{extra}\n[[route]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"github\"\nsecrets = [{{ value = \"s\" }}]\n"
            ),
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn listen_store_and_capacity_changes_are_named() {
        let running = config("[server]\nlisten = \"127.0.0.1:8080\"");
        assert!(changes(&running, &config("[server]\nlisten = \"127.0.0.1:8080\"")).is_empty());
        let moved = changes(&running, &config("[server]\nlisten = \"127.0.0.1:8081\""));
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].setting, "server.listen");
        assert!(
            moved[0].to_string().contains("127.0.0.1:8081"),
            "{}",
            moved[0]
        );

        let redis = config(
            "[server]\nlisten = \"127.0.0.1:8080\"\n[dedup]\nstore = \"redis\"\nredis_url = \"redis://:pw@127.0.0.1:6379\"",
        );
        let to_redis = changes(&running, &redis);
        assert_eq!(to_redis[0].setting, "dedup.store");
        let other = config(
            "[server]\nlisten = \"127.0.0.1:8080\"\n[dedup]\nstore = \"redis\"\nredis_url = \"redis://:pw@127.0.0.1:6380\"",
        );
        let moved = changes(&redis, &other);
        assert_eq!(moved[0].setting, "dedup.redis_url");
        assert!(!describe(&moved).contains("pw@"), "{}", describe(&moved));

        let smaller = changes(
            &running,
            &config("[server]\nlisten = \"127.0.0.1:8080\"\n[dedup]\nmax_entries = 10"),
        );
        assert_eq!(smaller[0].setting, "dedup.max_entries");
    }

    #[test]
    fn span_export_changes_need_a_restart_ip_range_refresh_does_not() {
        let running = config("[server]\nlisten = \"127.0.0.1:8080\"");
        let exporting = config(
            "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n[server]\nlisten = \"127.0.0.1:8080\"",
        );
        let turned_on = changes(&running, &exporting);
        assert_eq!(turned_on.len(), 1);
        assert_eq!(turned_on[0].setting, "telemetry");
        assert!(
            turned_on[0]
                .to_string()
                .contains("http://127.0.0.1:4318/v1/traces"),
            "{}",
            turned_on[0]
        );
        let refreshing =
            config("[ip_ranges]\nrefresh = \"1h\"\n[server]\nlisten = \"127.0.0.1:8080\"");
        assert!(changes(&running, &refreshing).is_empty());
    }

    #[test]
    fn timeouts_and_concurrency_apply_on_reload() {
        let running = config("[server]\nlisten = \"127.0.0.1:8080\"");
        let tuned = config(
            "[server]\nlisten = \"127.0.0.1:8080\"\nread_timeout = \"3s\"\nmax_concurrency = 8\nshutdown_grace = \"1s\"",
        );
        assert!(changes(&running, &tuned).is_empty());
    }
}
