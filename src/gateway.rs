//! The gateway's state: the live table (routes, load shedder, connection settings) behind
//! one atomic pointer, what every route shares (stores, metrics, clock), and reload.
//!
//! One build path for everything that reads a config: `config::compile` → [`build`] →
//! [`Live`]. `hookwall check` runs both steps and throws the result away; `hookwall run`
//! keeps it; a reload (SIGHUP or `POST /reload`) runs them on the file again, refuses a
//! change that only a restart can apply ([`restart`]), and otherwise swaps the whole table
//! at once: requests in flight finish on the table they started with.

pub mod build;
pub mod restart;

use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;

use crate::access_log::AccessLog;
use crate::clock::{Clock, SystemClock};
use crate::config::{compile_file, compile_str, CompileErrors, Config};
use crate::context::RequestIds;
use crate::dedup::{DedupStore, Stores};
use crate::journal::replay::Jobs;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::queue::{Queue, QueueSlot};
use crate::stack::Shared;
use crate::storage::Storage;
use crate::transport::tls::Termination;

pub use build::{BuildError, Live};
pub use restart::RestartRequired;

/// Everything the listeners share.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) live: ArcSwap<Live>,
    pub(crate) shared: Shared,
    pub(crate) ids: RequestIds,
    pub(crate) access_log: AccessLog,
    /// The certificate resolver and acceptor when `[server] tls` is set.
    tls: Option<Termination>,
    /// Storage, once attached (`hookwall run` opens it before serving).
    storage: OnceLock<Arc<Storage>>,
    /// The journal's queue, once attached.
    pub(crate) journal: OnceLock<Journal>,
    /// Bulk replays running on this instance.
    pub(crate) replay_jobs: Jobs,
    /// Reconcile, once started.
    reconciler: OnceLock<Arc<crate::reconcile::Reconciler>>,
    /// What the last reload (SIGHUP or `POST /reload`) did, for the admin page.
    last_reload: Mutex<Option<ReloadRecord>>,
}

/// One reload's result, as `GET /routes` reports it.
#[derive(Debug, Clone)]
pub struct ReloadRecord {
    /// When it was tried.
    pub at: std::time::SystemTime,
    /// Whether the new config was applied.
    pub ok: bool,
    /// The problems of a refused reload, one a line.
    pub details: Vec<String>,
}

/// Why a reload (or a check against the running gateway) was refused. The running config
/// keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not compile.
    #[error("{0}")]
    Invalid(CompileErrors),
    /// It compiled but could not be built.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// It changes settings that take effect on restart only.
    #[error("{}", restart::describe(.0))]
    RestartRequired(Vec<RestartRequired>),
}

impl ReloadError {
    /// One line per problem, for `POST /reload`'s `details` and `check --against-running`.
    pub fn details(&self) -> Vec<String> {
        match self {
            ReloadError::Invalid(e) => e.lines(),
            ReloadError::Build(e) => vec![e.to_string()],
            ReloadError::RestartRequired(changes) => {
                changes.iter().map(ToString::to_string).collect()
            }
        }
    }
}

impl Gateway {
    /// A gateway for `config` with the system clock and the configured stores.
    pub fn new(config: Config) -> Result<Arc<Self>, BuildError> {
        let stores = crate::dedup::build(&config.dedup)?;
        Self::with_parts(config, stores, Arc::new(SystemClock))
    }

    /// A gateway with explicit stores and clock (tests, embedding).
    pub fn with_parts(
        config: Config,
        stores: Stores,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, BuildError> {
        let shared = Shared {
            store: stores.dedup,
            redis: stores.redis,
            metrics: Arc::new(Metrics::default()),
            clock,
            queue: QueueSlot::default(),
            ip_ranges: Default::default(),
            telemetry: Arc::new(
                crate::telemetry::Telemetry::start(&config.telemetry).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "spans are not exported");
                    Default::default()
                }),
            ),
        };
        let tls = match &config.server.tls {
            Some((_, key)) => Some(Termination::new(key.clone())?),
            None => None,
        };
        let live = build::live(config, &shared, None)?;
        shared.metrics.reload_succeeded_now();
        Ok(Arc::new(Gateway {
            live: ArcSwap::from_pointee(live),
            shared,
            ids: RequestIds::default(),
            access_log: AccessLog::default(),
            tls,
            storage: OnceLock::new(),
            journal: OnceLock::new(),
            replay_jobs: Jobs::default(),
            reconciler: OnceLock::new(),
            last_reload: Mutex::new(None),
        }))
    }

    /// Attaches storage and starts the journal's writer on it (on the calling runtime).
    /// Returns the writer's task: once `shutdown` resolves it stops taking drafts, writes
    /// the ones queued, and ends. Call once.
    pub fn attach_storage(
        &self,
        storage: Arc<Storage>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let (journal, drafts) = Journal::channel(self.shared.metrics.clone());
        let _ = self.storage.set(storage.clone());
        let _ = self.journal.set(journal);
        tokio::spawn(crate::journal::writer::run(
            drafts,
            storage,
            self.shared.metrics.clone(),
            shutdown,
        ))
    }

    /// Starts buffered delivery on the attached storage (on the calling runtime): the
    /// committer, the dispatcher, the queue counter and, on PostgreSQL, the listener that
    /// wakes the dispatcher when another instance queues. `stop` ends claiming; attempts in
    /// flight are then left to [`Self::drain_queue`]. `false` without storage.
    pub async fn start_queue(self: &Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) -> bool {
        let Some(storage) = self.storage.get().cloned() else {
            return false;
        };
        if storage.backend() == "sqlite" {
            // One process owns an SQLite file: claims left by its previous run are void.
            match storage.release_claims(None).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    reclaimed = n,
                    "deliveries claimed by the previous run are queued again"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "claims of the previous run not given back; they expire after the visibility timeout")
                }
            }
        }
        let queue = Queue::start(storage.clone());
        if self.shared.queue.set(queue.clone()).is_err() {
            return true;
        }
        tokio::spawn(crate::queue::worker::dispatch(
            self.clone(),
            queue.clone(),
            stop.clone(),
        ));
        tokio::spawn(crate::queue::stats::run(
            self.clone(),
            queue.clone(),
            stop.clone(),
        ));
        let listener = queue.clone();
        tokio::spawn(async move {
            listener
                .storage
                .listen_for_queued(|| listener.wake.notify_one(), stop)
                .await;
        });
        true
    }

    /// After claiming stopped: waits (at most `grace`) for delivery attempts in flight,
    /// and queues again what did not finish.
    pub async fn drain_queue(&self, grace: std::time::Duration) {
        if let Some(queue) = self.queue() {
            crate::queue::worker::drain(queue, grace).await;
        }
    }

    /// Starts reconcile on the attached storage (on the calling runtime): the schedule
    /// that runs each route's `[route.reconcile]` every `every`, until `stop`. Routes a
    /// reload adds are picked up. `false` without storage.
    pub async fn start_reconcile(
        self: &Arc<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let Some(storage) = self.storage.get() else {
            return false;
        };
        if storage.backend() == "sqlite" {
            // A run the previous process was in the middle of holds a lease nobody renews.
            if let Err(e) = storage.release_all_reconcile_leases().await {
                tracing::warn!(error = %e, "reconcile leases of the previous run not given back; they expire within a minute");
            }
        }
        match crate::reconcile::Reconciler::new() {
            Ok(r) => {
                if self.reconciler.set(Arc::new(r)).is_ok() {
                    tokio::spawn(crate::reconcile::schedule::run(self.clone(), stop));
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "reconcile not started: no TLS client settings");
                false
            }
        }
    }

    /// Starts refreshing the provider IP lists routes name (`[ip_ranges] refresh`), on the
    /// calling runtime, until `stop`. Without `refresh` the task only watches for a reload
    /// that sets it.
    pub fn start_ip_ranges(self: &Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        tokio::spawn(crate::ip_ranges::refresh::run(self.clone(), stop));
    }

    /// Reconcile's runtime, once started.
    pub(crate) fn reconciler(&self) -> Option<&Arc<crate::reconcile::Reconciler>> {
        self.reconciler.get()
    }

    /// The running queue, once started.
    pub(crate) fn queue(&self) -> Option<&Arc<Queue>> {
        self.shared.queue.get()
    }

    /// The journal, once attached.
    pub(crate) fn journal(&self) -> Option<&Journal> {
        self.journal.get()
    }

    /// The storage, if attached.
    pub fn storage(&self) -> Option<&Arc<Storage>> {
        self.storage.get()
    }

    /// The metric families.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The dedup store.
    pub fn store(&self) -> &Arc<dyn DedupStore> {
        &self.shared.store
    }

    /// The live table.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// The TLS acceptor, when the proxy listener terminates TLS.
    pub(crate) fn tls_acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.tls.as_ref().map(Termination::acceptor)
    }

    /// Re-reads the config file and swaps in the new table only if all of it builds and
    /// nothing in it needs a restart. Counted and logged either way.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let current = self.live.load_full();
        let source = current.config().source().to_owned();
        let result = compile_file(&source)
            .map_err(ReloadError::Invalid)
            .and_then(|config| self.prepare(config, &current, &self.shared));
        self.note_reload(&result);
        match result {
            Ok(live) => {
                if let (Some(tls), Some((_, key))) = (&self.tls, &live.config().server.tls) {
                    // A renewed certificate, for new connections; open ones keep theirs.
                    tls.replace(key.clone());
                }
                self.live.store(Arc::new(live));
                self.shared.metrics.reload(true);
                tracing::info!(config = %source.display(), "config reloaded");
                Ok(())
            }
            Err(e) => {
                self.shared.metrics.reload(false);
                tracing::error!(error = %e, "config reload refused; the previous config keeps serving");
                Err(e)
            }
        }
    }

    fn note_reload(&self, result: &Result<Live, ReloadError>) {
        let record = ReloadRecord {
            at: std::time::SystemTime::now(),
            ok: result.is_ok(),
            details: result
                .as_ref()
                .err()
                .map(ReloadError::details)
                .unwrap_or_default(),
        };
        *self
            .last_reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(record);
    }

    /// The last reload's result; `None` when none was tried since start.
    pub fn last_reload(&self) -> Option<ReloadRecord> {
        self.last_reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What a reload with `text` as the config file would do, without doing it (for
    /// `hookwall check --against-running`). Environment secrets are read here, as a
    /// reload would read them.
    pub fn check_candidate(&self, text: &str) -> Result<(), ReloadError> {
        let current = self.live.load_full();
        let config = compile_str(text, current.config().source()).map_err(ReloadError::Invalid)?;
        // Built against throwaway metrics, so a dry run adds no series to /metrics.
        let dry = Shared {
            metrics: Arc::new(Metrics::default()),
            ..self.shared.clone()
        };
        self.prepare(config, &current, &dry).map(drop)
    }

    fn prepare(
        &self,
        config: Config,
        current: &Live,
        shared: &Shared,
    ) -> Result<Live, ReloadError> {
        let refused = restart::changes(current.config(), &config);
        if !refused.is_empty() {
            return Err(ReloadError::RestartRequired(refused));
        }
        Ok(build::live(config, shared, Some(current))?)
    }
}
