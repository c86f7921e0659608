//! Reconcile (CONTRACT §11): polling the provider's API as the safety net for webhooks that
//! never came (an endpoint down past the provider's retries, a disabled endpoint, GitHub,
//! which does not retry at all).
//!
//! Each route with `[route.reconcile]` is polled every `every` ([`schedule`]), and on
//! demand (`POST /reconcile/{route}/run`). A run takes the route's lease in storage (one
//! instance of a fleet at a time; a dead holder's lease ends and is taken over), reads
//! where the last run stopped, lists through the source's API ([`api`]: credentials,
//! deadlines, 429 honoured), and
//! - for Stripe and generic sources ([`walk`], [`stripe`], [`generic`]) feeds each event
//!   through the route's own dedup and delivery ([`feed`]), so a missed webhook is
//!   delivered once and the real one, if it comes later, is a `duplicate`;
//! - for GitHub ([`github`]) asks GitHub to redeliver each failed delivery, which then
//!   arrives signed through the normal path.
//!
//! The cursor only moves over what was delivered; the run's result, the recovered count
//! and the lag are kept in storage and exported as metrics.

pub(crate) mod api;
pub(crate) mod feed;
pub(crate) mod generic;
pub(crate) mod github;
pub(crate) mod schedule;
pub(crate) mod stripe;
pub(crate) mod walk;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue};

use crate::config::{ReconcileConfig, ReconcileSource};
use crate::gateway::Gateway;
use crate::outbound::http::HttpClient;
use crate::storage::reconcile::Position;
use crate::storage::{Storage, StorageError};

use self::api::{Api, ApiError};
use self::feed::Feeder;
use self::walk::Lister;

/// A lease lasts at least this long; a run renews it well before it ends.
const MIN_LEASE: Duration = Duration::from_secs(60);

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The provider's API failed.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// A polled event could not be delivered; the cursor stays behind it.
    #[error("{0}")]
    Delivery(String),
    /// Storage failed.
    #[error("{0}")]
    Storage(StorageError),
    /// Another instance took the lease over (this one stalled past it).
    #[error("the lease was taken over by another instance")]
    LeaseLost,
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotRun {
    /// No such route, or it does not reconcile.
    #[error("route {0:?} has no [route.reconcile]")]
    NoRoute(String),
    /// No storage: nowhere to keep a cursor.
    #[error("reconcile needs storage")]
    NoStorage,
    /// Another run of the route holds the lease (on another instance).
    #[error("another instance is reconciling route {route:?}")]
    Busy {
        /// The route.
        route: String,
    },
    /// A run is in progress on this instance already (scheduled runs only skip).
    #[error("a run of route {0:?} is in progress")]
    Running(String),
    /// Storage failed before the run began.
    #[error("{0}")]
    Storage(StorageError),
}

/// How a run ended.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Summary {
    /// The route.
    pub route: String,
    /// `ok` or `error`.
    pub result: &'static str,
    /// Events (or GitHub deliveries) listed.
    pub listed: u64,
    /// Delivered (or redelivered) now, that the webhooks had not delivered.
    pub recovered: u64,
    /// What went wrong, when it did.
    pub error: Option<String>,
}

/// This instance's reconcile runtime: its name on leases, the API client, and one lock
/// per route so two runs of a route never overlap here.
pub(crate) struct Reconciler {
    holder: String,
    client: HttpClient,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("holder", &self.holder)
            .finish()
    }
}

impl Reconciler {
    /// A runtime trusting the system roots.
    pub(crate) fn new() -> Result<Self, String> {
        let tls =
            crate::outbound::tls::client_config(&Default::default()).map_err(|e| e.to_string())?;
        Ok(Reconciler {
            holder: crate::journal::writer::time_ordered_id(SystemTime::now()),
            client: HttpClient::allowing_loopback_http(tls),
            locks: Mutex::new(HashMap::new()),
        })
    }

    fn lock_for(&self, route: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(route.to_owned()).or_default().clone()
    }
}

/// Now, Unix µs.
pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// One run in progress: what the sources read and update.
pub(crate) struct Run<'a> {
    storage: &'a Storage,
    route: &'a str,
    holder: &'a str,
    lease: Duration,
    renewed: tokio::time::Instant,
    source: &'static str,
    /// The route's settings.
    pub config: &'a ReconcileConfig,
    /// The API, with the credential.
    pub api: Api,
    /// Where the last run left off.
    pub position: Position,
    /// Now, by the gateway's clock (what `lookback` and the lag count from), Unix s.
    pub now_secs: i64,
    /// Delivers polled events.
    pub feeder: Feeder<'a>,
    /// Listed so far.
    pub listed: u64,
    /// Recovered so far.
    pub recovered: u64,
    /// Recovered and already added to the stored count.
    saved_recovered: u64,
}

impl Run<'_> {
    /// Renews the lease once a third of it has passed; fails if it was taken over.
    pub(crate) async fn keep_lease(&mut self) -> Result<(), RunError> {
        if self.renewed.elapsed() < self.lease / 3 {
            return Ok(());
        }
        let now = now_micros();
        let until = now + i64::try_from(self.lease.as_micros()).unwrap_or(i64::MAX);
        let held = self
            .storage
            .take_reconcile_lease(self.route, self.source, self.holder, now, until)
            .await
            .map_err(RunError::Storage)?;
        if !held {
            return Err(RunError::LeaseLost);
        }
        self.renewed = tokio::time::Instant::now();
        Ok(())
    }

    /// Stores `position` and the recovered count so far.
    pub(crate) async fn save(&mut self, position: Position) -> Result<(), RunError> {
        let add = self.recovered - self.saved_recovered;
        let saved = self
            .storage
            .save_reconcile_position(
                self.route,
                self.holder,
                &position,
                i64::try_from(add).unwrap_or(i64::MAX),
            )
            .await
            .map_err(RunError::Storage)?;
        if !saved {
            return Err(RunError::LeaseLost);
        }
        self.saved_recovered = self.recovered;
        self.position = position;
        Ok(())
    }
}

/// The API of a route's source, with its credential and headers.
fn api_for(client: &HttpClient, config: &ReconcileConfig) -> Result<Api, String> {
    let secret = std::str::from_utf8(config.credentials.expose())
        .map_err(|_| "the reconcile credentials are not text".to_owned())?
        .trim();
    let bearer = || {
        HeaderValue::from_str(&format!("Bearer {secret}"))
            .map_err(|_| "the reconcile credentials cannot go in a header".to_owned())
    };
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    match &config.source {
        ReconcileSource::Stripe => headers.push((http::header::AUTHORIZATION, bearer()?)),
        ReconcileSource::Github { .. } => {
            headers.push((http::header::AUTHORIZATION, bearer()?));
            headers.push((
                http::header::ACCEPT,
                HeaderValue::from_static("application/vnd.github+json"),
            ));
            headers.push((
                HeaderName::from_static("x-github-api-version"),
                HeaderValue::from_static("2022-11-28"),
            ));
        }
        ReconcileSource::Generic(g) => {
            let value = if g.credentials_header == http::header::AUTHORIZATION {
                bearer()?
            } else {
                HeaderValue::from_str(secret)
                    .map_err(|_| "the reconcile credentials cannot go in a header".to_owned())?
            };
            headers.push((g.credentials_header.clone(), value));
        }
    }
    if !matches!(config.source, ReconcileSource::Github { .. }) {
        headers.push((
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        ));
    }
    Ok(Api::new(client.clone(), headers, config.timeout))
}

impl Gateway {
    /// Runs `route`'s reconcile now. With `wait`, a run already in progress on this
    /// instance is waited for first; without, it is [`NotRun::Running`].
    pub(crate) async fn reconcile_route(&self, route: &str, wait: bool) -> Result<Summary, NotRun> {
        let Some(reconciler) = self.reconciler() else {
            return Err(NotRun::NoStorage);
        };
        let lock = reconciler.lock_for(route);
        let _guard = if wait {
            lock.lock_owned().await
        } else {
            lock.try_lock_owned()
                .map_err(|_| NotRun::Running(route.to_owned()))?
        };
        // The table as it is now: a reload since the request changes what runs.
        let live = self.live();
        let Some(found) = live.routes.by_name(route).cloned() else {
            return Err(NotRun::NoRoute(route.to_owned()));
        };
        let Some(config) = found.config.reconcile.clone() else {
            return Err(NotRun::NoRoute(route.to_owned()));
        };
        let storage = self.storage().cloned().ok_or(NotRun::NoStorage)?;
        let source = config.source.name();
        let state = storage
            .reconcile_state(route)
            .await
            .map_err(NotRun::Storage)?;
        let lease = MIN_LEASE.max(found.config.timeout * 3);
        let now = now_micros();
        let until = now + i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
        let held = storage
            .take_reconcile_lease(route, source, &reconciler.holder, now, until)
            .await
            .map_err(NotRun::Storage)?;
        if !held {
            return Err(NotRun::Busy {
                route: route.to_owned(),
            });
        }
        // A source changed in the config starts afresh: the old cursor means nothing to it.
        let position = state
            .filter(|s| s.source == source)
            .map(|s| s.position)
            .unwrap_or_default();
        // The root of the run's trace; each polled event's forward is a child.
        let trace = self.shared.telemetry.root(
            "reconcile run",
            opentelemetry::trace::SpanKind::Internal,
            None,
            || {
                vec![
                    opentelemetry::KeyValue::new("hookwall.route", route.to_owned()),
                    opentelemetry::KeyValue::new("hookwall.source", source),
                ]
            },
        );
        let outcome = match api_for(&reconciler.client, &config) {
            Err(e) => Err(RunError::Delivery(e)),
            Ok(api) => {
                let mut run = Run {
                    storage: &storage,
                    route,
                    holder: &reconciler.holder,
                    lease,
                    renewed: tokio::time::Instant::now(),
                    source,
                    config: &config,
                    api,
                    position,
                    now_secs: self.shared.clock.unix_now() as i64,
                    feeder: Feeder {
                        gateway: self,
                        live: &live,
                        route: &found,
                        verified_by: format!("reconcile:{source}").into(),
                        trace: trace.clone(),
                    },
                    listed: 0,
                    recovered: 0,
                    saved_recovered: 0,
                };
                let result = match &config.source {
                    ReconcileSource::Stripe => {
                        walk::run(
                            &mut run,
                            Lister::Stripe {
                                api_base: &config.api_base,
                            },
                        )
                        .await
                    }
                    ReconcileSource::Generic(g) => walk::run(&mut run, Lister::Generic(g)).await,
                    ReconcileSource::Github { owner, hook_id } => {
                        github::run(&mut run, owner, *hook_id).await
                    }
                };
                // What was recovered before a failure is counted even if the position
                // could not be saved after it.
                if result.is_err() && run.recovered > run.saved_recovered {
                    let position = run.position.clone();
                    let _ = run.save(position).await;
                }
                let newest = run.position.newest_seen;
                Ok((result, run.listed, run.recovered, newest, run.now_secs))
            }
        };
        let (result, listed, recovered, newest, now_secs) = match outcome {
            Ok(done) => done,
            Err(e) => (Err(e), 0, 0, None, 0),
        };
        let error = result.as_ref().err().map(ToString::to_string);
        let label = if error.is_some() { "error" } else { "ok" };
        if let Err(e) = storage
            .finish_reconcile_run(
                route,
                &reconciler.holder,
                now_micros(),
                label,
                error.as_deref(),
            )
            .await
        {
            tracing::warn!(route, error = %e, "reconcile run not recorded");
        }
        let _ = storage
            .release_reconcile_lease(route, &reconciler.holder)
            .await;
        trace.set(vec![
            opentelemetry::KeyValue::new("hookwall.result", label),
            opentelemetry::KeyValue::new(
                "hookwall.listed",
                i64::try_from(listed).unwrap_or(i64::MAX),
            ),
            opentelemetry::KeyValue::new(
                "hookwall.recovered",
                i64::try_from(recovered).unwrap_or(i64::MAX),
            ),
        ]);
        trace.end(error.is_some().then_some("reconcile run failed"));
        let metrics = &self.metrics().reconcile;
        metrics.ran(route, label, recovered);
        if let Some(newest) = newest {
            metrics.lag(route, (now_secs - newest).max(0));
        }
        match &error {
            Some(e) => {
                tracing::warn!(route, source, listed, recovered, error = %e, "reconcile run failed")
            }
            None if recovered > 0 => {
                tracing::info!(
                    route,
                    source,
                    listed,
                    recovered,
                    "reconcile run recovered missed deliveries"
                )
            }
            None => tracing::debug!(route, source, listed, "reconcile run found nothing missed"),
        }
        Ok(Summary {
            route: route.to_owned(),
            result: label,
            listed,
            recovered,
            error,
        })
    }
}
