//! The top-level sections: `[server]`, `[admin]`, `[dedup]`, `[storage]`, `[journal]`,
//! `[queue]`.

use super::Compiler;
use crate::config::raw::{RawAdmin, RawDedup, RawJournal, RawQueue, RawServer, RawStorage};
use crate::config::{
    defaults, suggest, AdminConfig, BodyPolicy, DedupConfig, JournalConfig, OnStoreError,
    QueueConfig, ServerConfig, StorageBackend, StorageConfig, StoreKind,
};
use crate::secret::Secret;
use crate::transport::tls::{self, TlsFiles};

impl Compiler {
    pub(super) fn server(&mut self, raw: &RawServer) -> ServerConfig {
        let tls = raw.tls.as_ref().and_then(|t| match (&t.cert, &t.key) {
            (Some(cert), Some(key)) => {
                let files = TlsFiles {
                    cert: self.resolve(cert),
                    key: self.resolve(key),
                };
                let loaded = tls::load(&files);
                self.check("server.tls", loaded).map(|k| (files, k))
            }
            _ => {
                self.error(
                    "server.tls",
                    "needs both `cert` and `key` (PEM file paths)".to_owned(),
                );
                None
            }
        });
        let max_concurrency = self.count(
            "server.max_concurrency",
            raw.max_concurrency,
            defaults::MAX_CONCURRENCY,
        );
        let max_concurrency_per_ip = self.count(
            "server.max_concurrency_per_ip",
            raw.max_concurrency_per_ip,
            defaults::max_concurrency_per_ip(max_concurrency),
        );
        ServerConfig {
            listen: self.socket_addr("server.listen", raw.listen.as_deref(), defaults::LISTEN),
            max_body: self.size(
                "server.max_body",
                raw.max_body.as_deref(),
                defaults::MAX_BODY,
            ),
            read_timeout: self.nonzero_duration(
                "server.read_timeout",
                raw.read_timeout.as_deref(),
                defaults::READ_TIMEOUT,
            ),
            write_timeout: self.nonzero_duration(
                "server.write_timeout",
                raw.write_timeout.as_deref(),
                defaults::WRITE_TIMEOUT,
            ),
            idle_timeout: self.nonzero_duration(
                "server.idle_timeout",
                raw.idle_timeout.as_deref(),
                defaults::IDLE_TIMEOUT,
            ),
            max_concurrency,
            max_concurrency_per_ip,
            trusted_proxies: self.cidrs("server.trusted_proxies", raw.trusted_proxies.as_deref()),
            shutdown_grace: self.duration(
                "server.shutdown_grace",
                raw.shutdown_grace.as_deref(),
                defaults::SHUTDOWN_GRACE,
            ),
            tls,
            attest: raw
                .attest
                .as_ref()
                .and_then(|a| self.attest("server.attest", a)),
        }
    }

    pub(super) fn admin(&mut self, raw: &RawAdmin) -> AdminConfig {
        AdminConfig {
            listen: self.socket_addr(
                "admin.listen",
                raw.listen.as_deref(),
                defaults::ADMIN_LISTEN,
            ),
            token: raw
                .token
                .as_ref()
                .and_then(|t| self.string_or_secret("admin.token", t)),
        }
    }

    /// `store = "redis"`: exactly one of `redis_url` and `redis_cluster`, each a valid URL.
    /// URLs may carry a password, so messages never repeat them.
    fn redis_store(&mut self, raw: &RawDedup) -> Option<StoreKind> {
        let valid = |cx: &mut Self, path: &str, url: &Secret| {
            let text = String::from_utf8_lossy(url.expose()).into_owned();
            match redis::Client::open(text.as_str()) {
                Ok(_) => true,
                Err(e) => {
                    cx.error(
                        path,
                        format!("invalid Redis URL ({}); write e.g. \"redis://127.0.0.1:6379\", \"rediss://host:6380\" or \"redis+unix:///run/redis.sock\" (the value is not shown: it may hold a password)", e.category()),
                    );
                    false
                }
            }
        };
        match (&raw.redis_url, &raw.redis_cluster) {
            (Some(url), None) => {
                let url = self.string_or_secret("dedup.redis_url", url)?;
                valid(self, "dedup.redis_url", &url).then_some(StoreKind::Redis(url))
            }
            (None, Some(nodes)) if !nodes.is_empty() => {
                let mut ok = true;
                let urls: Vec<Secret> = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let s = Secret::new(n.as_bytes());
                        ok &= valid(self, &format!("dedup.redis_cluster[{i}]"), &s);
                        s
                    })
                    .collect();
                ok.then_some(StoreKind::RedisCluster(urls))
            }
            (None, _) => {
                self.error(
                    "dedup.redis_url",
                    "is required when store = \"redis\" (or give redis_cluster = [urls...])"
                        .to_owned(),
                );
                None
            }
            (Some(_), Some(_)) => {
                self.error(
                    "dedup.redis_cluster",
                    "give either redis_url (one Redis) or redis_cluster (a cluster), not both"
                        .to_owned(),
                );
                None
            }
        }
    }

    pub(super) fn dedup(&mut self, raw: &RawDedup) -> DedupConfig {
        let store = match raw.store.as_deref() {
            None | Some("memory") => {
                if raw.redis_url.is_some() || raw.redis_cluster.is_some() {
                    self.warnings.push(
                        "dedup.redis_url / redis_cluster are ignored while store = \"memory\""
                            .to_owned(),
                    );
                }
                StoreKind::Memory
            }
            Some("redis") => self.redis_store(raw).unwrap_or(StoreKind::Memory),
            Some(other) => {
                self.error(
                    "dedup.store",
                    format!("unknown store {other:?} (expected \"memory\" or \"redis\")"),
                );
                StoreKind::Memory
            }
        };
        let on_store_error = match raw.on_store_error.as_deref() {
            None | Some("reject") => OnStoreError::Reject,
            Some("allow") => OnStoreError::Allow,
            Some(other) => {
                self.error(
                    "dedup.on_store_error",
                    format!("unknown policy {other:?} (expected \"reject\" or \"allow\")"),
                );
                OnStoreError::Reject
            }
        };
        let max_entries = self.count("dedup.max_entries", raw.max_entries, defaults::MAX_ENTRIES);
        DedupConfig {
            store,
            call_timeout: self.nonzero_duration(
                "dedup.call_timeout",
                raw.call_timeout.as_deref(),
                defaults::CALL_TIMEOUT,
            ),
            ttl: self.nonzero_duration("dedup.ttl", raw.ttl.as_deref(), defaults::DEDUP_TTL),
            lease: self.nonzero_duration("dedup.lease", raw.lease.as_deref(), defaults::LEASE),
            on_store_error,
            max_entries,
        }
    }

    pub(super) fn storage(&mut self, raw: &RawStorage) -> StorageConfig {
        let sqlite = |cx: &mut Self| {
            let path = cx.resolve(raw.path.as_deref().unwrap_or(defaults::STORAGE_PATH));
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                cx.error(
                    "storage.path",
                    format!("the folder {} does not exist", dir.display()),
                );
            }
            StorageBackend::Sqlite { path }
        };
        let backend = match raw.backend.as_deref() {
            None | Some("sqlite") => {
                if raw.postgres_url.is_some() {
                    self.warnings.push(
                        "storage.postgres_url is ignored while backend = \"sqlite\"".to_owned(),
                    );
                }
                sqlite(self)
            }
            Some("postgres") => {
                if raw.path.is_some() {
                    self.warnings
                        .push("storage.path is ignored while backend = \"postgres\"".to_owned());
                }
                match &raw.postgres_url {
                    None => {
                        self.error(
                            "storage.postgres_url",
                            "is required when backend = \"postgres\"".to_owned(),
                        );
                        sqlite(self)
                    }
                    Some(url) => match self.string_or_secret("storage.postgres_url", url) {
                        Some(url) => {
                            let text = String::from_utf8_lossy(url.expose()).into_owned();
                            if text.parse::<sqlx::postgres::PgConnectOptions>().is_err() {
                                self.error(
                                    "storage.postgres_url",
                                    "is not a PostgreSQL URL; write e.g. \"postgres://user@host:5432/hookwall\" (the value is not shown: it may hold a password)".to_owned(),
                                );
                            }
                            StorageBackend::Postgres { url }
                        }
                        None => sqlite(self),
                    },
                }
            }
            Some(other) => {
                self.error(
                    "storage.backend",
                    format!(
                        "unknown backend {other:?}{} (expected \"sqlite\" or \"postgres\")",
                        suggest::hint(other, ["sqlite", "postgres"])
                    ),
                );
                sqlite(self)
            }
        };
        StorageConfig { backend }
    }

    pub(super) fn queue(&mut self, raw: &RawQueue) -> QueueConfig {
        QueueConfig {
            visibility_timeout: self.nonzero_duration(
                "queue.visibility_timeout",
                raw.visibility_timeout.as_deref(),
                defaults::VISIBILITY_TIMEOUT,
            ),
        }
    }

    pub(super) fn journal(&mut self, raw: &RawJournal) -> JournalConfig {
        JournalConfig {
            enabled: raw.enabled.unwrap_or(true),
            retain: self.nonzero_duration(
                "journal.retain",
                raw.retain.as_deref(),
                defaults::JOURNAL_RETAIN,
            ),
            max_size: self.size(
                "journal.max_size",
                raw.max_size.as_deref(),
                defaults::JOURNAL_MAX_SIZE,
            ) as u64,
            bodies: self
                .body_policy("journal.bodies", raw.bodies.as_deref())
                .unwrap_or(BodyPolicy::Accepted),
            max_stored_body: self.size(
                "journal.max_stored_body",
                raw.max_stored_body.as_deref(),
                defaults::MAX_STORED_BODY,
            ),
        }
    }

    /// `"all" | "accepted" | "none"`.
    pub(super) fn body_policy(&mut self, path: &str, raw: Option<&str>) -> Option<BodyPolicy> {
        match raw? {
            "all" => Some(BodyPolicy::All),
            "accepted" => Some(BodyPolicy::Accepted),
            "none" => Some(BodyPolicy::None),
            other => {
                self.error(
                    path,
                    format!(
                        "unknown value {other:?}{} (expected \"all\", \"accepted\" or \"none\")",
                        suggest::hint(other, ["all", "accepted", "none"])
                    ),
                );
                None
            }
        }
    }
}
