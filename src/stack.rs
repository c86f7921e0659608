//! Builds one route's tower stack from its validated config, once per config load.
//!
//! The order is CONTRACT §3 and is the whole point: cheap header-only checks first, the
//! body read next, then the checks that need the body, and dedup last so that only
//! authentic, fresh requests may touch the store.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use hyper::body::Incoming;
use tower::util::{BoxCloneSyncService, Either, MapRequestLayer};
use tower::ServiceBuilder;

use crate::attest::Attestor;
use crate::clock::Clock;
use crate::config::{DedupConfig, RateLimitConfig, ReconcileSource, RouteConfig};
use crate::context::Shadow;
use crate::dedup::DedupStore;
use crate::forward::{Forward, Upstream, UpstreamSettings};
use crate::gateway::BuildError;
use crate::layers::dedup::{Binding, DedupTimings};
use crate::layers::rate_limit::Limiter;
use crate::layers::{
    AllowedNets, BodyLimitLayer, DedupLayer, EventFilter, EventFilterLayer, HandshakeLayer,
    HandshakeSettings, IpAllowLayer, KeyFetchLayer, ProviderHandshake, RateLimitLayer,
    SignatureLayer, SnsControlLayer, TimestampLayer, TimestampWindow, Verification,
};
use crate::metrics::{Metrics, RouteMetrics};
use crate::queue::accept::Accept;
use crate::queue::QueueSlot;
use crate::respond::HttpResponse;
use crate::telemetry::layer::{SpanEndLayer, SpanStartLayer};
use crate::verify::presets::HandshakeKind;

/// A route's whole stack, type-erased at the route boundary.
pub(crate) type RouteService = BoxCloneSyncService<Request<Incoming>, HttpResponse, Infallible>;

/// What every route shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The dedup store.
    pub store: Arc<dyn DedupStore>,
    /// The Redis connection, for shared rate limits.
    pub redis: Option<Arc<crate::redis_client::RedisClient>>,
    /// Metric families.
    pub metrics: Arc<Metrics>,
    /// Wall clock for timestamp windows.
    pub clock: Arc<dyn Clock>,
    /// The delivery queue, for buffered routes (set once storage is attached).
    pub(crate) queue: QueueSlot,
    /// The provider IP lists `allow_ips` may name (one set per process, kept over reloads).
    pub ip_ranges: Arc<crate::ip_ranges::IpRanges>,
    /// The span exporter (spans are made only while it exports).
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

/// A built route.
#[derive(Debug)]
pub struct Route {
    /// Its config.
    pub config: Arc<RouteConfig>,
    /// The stack.
    pub service: RouteService,
    /// Its metric handles.
    pub metrics: Arc<RouteMetrics>,
    /// The rate limiter and the limit it enforces, kept for reload.
    pub limiter: Option<(RateLimitConfig, Arc<Limiter>)>,
    /// The upstream the stack forwards to (replays send there directly).
    pub(crate) upstream: Arc<Upstream>,
    /// A buffered route's targets by name, each with its upstream (the delivery workers
    /// send there); empty for a sync route.
    pub(crate) targets: Vec<(String, Arc<Upstream>)>,
    /// Where polled events enter (reconcile): the route's dedup, then its delivery; `None`
    /// unless the route reconciles from a source whose events hookwall forwards itself.
    pub(crate) polled: Option<PolledService>,
}

/// The part of a route's stack polled events go through.
pub(crate) type PolledService = BoxCloneSyncService<Request<Bytes>, HttpResponse, Infallible>;

/// Builds `cfg`'s stack. `previous` is the limiter of the route with the same name before
/// a reload: reused when the limit is unchanged, so a reload does not reset rate limits.
pub(crate) fn build_route(
    cfg: &Arc<RouteConfig>,
    dedup: &DedupConfig,
    read_timeout: std::time::Duration,
    shared: &Shared,
    previous: Option<&(RateLimitConfig, Arc<Limiter>)>,
) -> Result<Route, BuildError> {
    let metrics = shared.metrics.route(&cfg.name, &cfg.secret_labels);
    let limiter = cfg.rate_limit.as_ref().map(|rl| match previous {
        Some((old, limiter)) if old == rl => (rl.clone(), limiter.clone()),
        _ => {
            let local = Limiter::new(rl, Default::default());
            let limiter = match (&shared.redis, rl.shared) {
                (Some(redis), true) => {
                    local.shared(redis.clone(), &cfg.name, rl, dedup.call_timeout)
                }
                _ => local,
            };
            (rl.clone(), Arc::new(limiter))
        }
    });
    let upstream = Arc::new(upstream_for(
        cfg,
        &cfg.upstream,
        cfg.upstream_tls.clone(),
        shared,
        &metrics,
    )?);
    let targets = match cfg.delivery.buffered() {
        None => Vec::new(),
        Some(b) => b
            .targets
            .iter()
            .map(|t| {
                let up = upstream_for(cfg, &t.upstream, t.upstream_tls.clone(), shared, &metrics)?;
                shared.metrics.queue.target_series(&cfg.name, &t.name);
                Ok((t.name.clone(), Arc::new(up)))
            })
            .collect::<Result<Vec<_>, BuildError>>()?,
    };

    let dedup_layer = cfg.dedup.clone().map(|key| {
        DedupLayer::new(
            shared.store.clone(),
            key,
            Binding {
                id_signed: cfg.id_signed(),
                reconciled: cfg.reconcile.is_some(),
            },
            &cfg.name,
            DedupTimings {
                lease: dedup.lease,
                ttl: dedup.ttl,
                call_timeout: dedup.call_timeout,
                on_store_error: dedup.on_store_error,
                upstream_timeout: cfg.timeout,
            },
            metrics.clone(),
        )
    });
    let verifier = Arc::new(cfg.verifier.clone());
    let settings = HandshakeSettings {
        verify_token: cfg.provider_settings.meta_verify_token.clone(),
        learned: cfg.provider_settings.learned.clone(),
        route: cfg.name.as_str().into(),
    };
    // SNS's subscription handshake needs an outbound call: its own (async) layer below.
    let handshake = cfg
        .handshake
        .filter(|k| *k != HandshakeKind::SnsSubscription)
        .map(|kind| {
            (
                kind,
                HandshakeLayer::new(ProviderHandshake::new(kind, verifier.clone(), settings)),
            )
        });
    let fetches_keys = verifier.schemes.iter().any(|k| k.scheme.fetches_keys());
    // The `verify` and `dedup` spans, only while spans are exported.
    let span = |name| {
        shared.telemetry.exporting().then(|| {
            (
                SpanStartLayer::new(shared.telemetry.clone(), name),
                SpanEndLayer,
            )
        })
    };
    let (verify_start, verify_end) = span("verify").unzip();
    let (dedup_start, dedup_end) = span("dedup").filter(|_| dedup_layer.is_some()).unzip();
    let (unsigned_handshake, signed_handshake) = match handshake {
        Some((kind, layer)) if ProviderHandshake::before_signature(kind) => (Some(layer), None),
        Some((_, layer)) => (None, Some(layer)),
        None => (None, None),
    };
    let events = cfg
        .event
        .clone()
        .filter(|_| !cfg.events.is_empty())
        .map(|source| EventFilterLayer::new(EventFilter::new(source, &cfg.events)));
    // Built from this config, so a reload to `enforce = true` enforces from the next request.
    let shadow = (!cfg.enforce).then(|| {
        let metrics = shared.metrics.shadow(&cfg.name);
        MapRequestLayer::new(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(Shadow(metrics.clone()));
            req
        })
    });
    let stack = ServiceBuilder::new()
        // Shadow mode: every check below records what it would answer and lets it through.
        .option_layer(shadow)
        // Header-only and cheapest: a disallowed client costs one lookup.
        .option_layer(
            (!cfg.allow_ips.is_empty() || !cfg.allow_lists.is_empty()).then(|| {
                let lists = cfg
                    .allow_lists
                    .iter()
                    .filter_map(|name| shared.ip_ranges.list(name))
                    .collect();
                IpAllowLayer::new(AllowedNets::with_lists(cfg.allow_ips.clone(), lists))
            }),
        )
        // Before the body read, so a flood costs no buffering.
        .option_layer(
            limiter
                .as_ref()
                .map(|(_, l)| RateLimitLayer::new(l.clone())),
        )
        // The only buffering: capped, with a deadline.
        .layer(BodyLimitLayer::new(cfg.max_body, read_timeout))
        // Control requests that carry no signature (WooCommerce's ping, Meta's, X's,
        // Dropbox's, Okta's and Graph's challenges, Asana's handshake): matched by their
        // exact shape, with the credentials each provider gives for them.
        .option_layer(unsigned_handshake)
        // Times the signature and timestamp checks (key fetching included).
        .option_layer(verify_start)
        // Provider keys named by the request, fetched (503 if they cannot be) so the
        // signature check below only reads the cache.
        .option_layer(fetches_keys.then(|| KeyFetchLayer::new(verifier.clone())))
        // Authenticity over the raw bytes.
        .layer(SignatureLayer::new(Verification::new(
            verifier.clone(),
            cfg.public_url.as_deref().map(Arc::from),
            metrics.clone(),
        )))
        // Freshness, now that the timestamp is known to be the provider's.
        .option_layer(cfg.window.map(|w| {
            TimestampLayer::new(TimestampWindow::new(
                w,
                shared.clock.clone(),
                metrics.clone(),
            ))
        }))
        .option_layer(verify_end)
        // Provider control requests, answered only once authentic and fresh.
        .option_layer(signed_handshake)
        // SNS: only the route's topics; subscriptions confirmed when the route allows it.
        .option_layer(
            cfg.provider_settings
                .sns
                .clone()
                .map(|s| SnsControlLayer::new(s, &cfg.name)),
        )
        // Uniqueness, only for authentic and fresh deliveries.
        .option_layer(dedup_start)
        .option_layer(dedup_layer.clone())
        .option_layer(dedup_end)
        // Unwanted events, once their id is reserved: answered 200 and committed.
        .option_layer(events.clone())
        .service(delivery(cfg, &upstream, shared));
    if cfg.reconcile.is_some() {
        shared.metrics.reconcile.route_series(&cfg.name);
    }
    // Polled events (reconcile) are vouched for by the provider's API: they start at dedup.
    let polled = cfg
        .reconcile
        .as_ref()
        .filter(|r| !matches!(r.source, ReconcileSource::Github { .. }))
        .map(|_| {
            BoxCloneSyncService::new(
                ServiceBuilder::new()
                    .option_layer(dedup_layer)
                    .option_layer(events)
                    .service(delivery(cfg, &upstream, shared)),
            )
        });

    Ok(Route {
        polled,
        upstream,
        targets,
        config: cfg.clone(),
        service: BoxCloneSyncService::new(stack),
        metrics,
        limiter,
    })
}

/// The end of a route's stack: forward now (sync), or queue (buffered).
fn delivery(
    cfg: &RouteConfig,
    upstream: &Arc<Upstream>,
    shared: &Shared,
) -> Either<Accept, Forward> {
    match cfg.delivery.buffered() {
        // Buffered: the delivery is written to the queue; workers forward it later.
        Some(b) => Either::Left(Accept::new(
            &cfg.name,
            b.clone(),
            cfg.event.clone(),
            shared.queue.clone(),
        )),
        None => Either::Right(Forward::new(upstream.clone())),
    }
}

/// The pooled client for one of a route's upstreams (its own, or a target's).
fn upstream_for(
    cfg: &RouteConfig,
    url: &http::Uri,
    tls: Option<Arc<rustls::ClientConfig>>,
    shared: &Shared,
    metrics: &Arc<RouteMetrics>,
) -> Result<Upstream, BuildError> {
    Upstream::new(
        UpstreamSettings {
            url,
            route: &cfg.name,
            provider: &cfg.provider,
            strip: if cfg.forward_headers.strip_signature {
                cfg.verifier.signature_headers()
            } else {
                Vec::new()
            },
            add: cfg.forward_headers.add.clone(),
            timeout: cfg.timeout,
            tls,
            attest: cfg
                .attest
                .clone()
                .map(|keys| Attestor::new(keys, shared.clock.clone())),
            telemetry: shared.telemetry.clone(),
        },
        metrics.clone(),
    )
    .ok_or_else(|| BuildError::Upstream {
        route: cfg.name.clone(),
        url: url.to_string(),
    })
}

/// Names of the checks a route runs, in order (for `check` and `/routes`).
pub(crate) fn checks(cfg: &RouteConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !cfg.allow_ips.is_empty() || !cfg.allow_lists.is_empty() {
        out.push("ip_allow");
    }
    if cfg.rate_limit.is_some() {
        out.push("rate_limit");
    }
    out.push("body_limit");
    let unsigned_ping = cfg
        .handshake
        .is_some_and(ProviderHandshake::before_signature);
    if unsigned_ping {
        out.push("handshake");
    }
    if cfg.verifier.schemes.iter().any(|k| k.scheme.fetches_keys()) {
        out.push("keys");
    }
    out.push("signature");
    if cfg.window.is_some() {
        out.push("timestamp");
    }
    if cfg.handshake.is_some() && !unsigned_ping {
        out.push(if cfg.provider_settings.sns.is_some() {
            "sns"
        } else {
            "handshake"
        });
    }
    if cfg.dedup.is_some() {
        out.push("dedup");
    }
    if !cfg.events.is_empty() {
        out.push("events");
    }
    out
}
