//! `rate_limit`: a GCRA (governor) per route or per client IP.
//!
//! Runs before the body is read, so a flood costs no buffering. Rejection:
//! `429 rate_limited` with `Retry-After` from the limiter (seconds, rounded up). The limiter
//! lives in an `Arc` that reload can hand to the rebuilt stack, so state survives a reload
//! for routes whose limit did not change. Generic over governor's clock so tests use
//! `FakeRelativeClock` instead of sleeping.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use http::Request;
use tower::{Layer, Service};

use super::{reject, ResponseFuture};
use crate::config::{RateLimitBy, RateLimitConfig};
use crate::context::RequestContext;
use crate::error::Rejection;
use crate::respond::HttpResponse;

/// How often (in checks) the per-IP table drops clients whose buckets are full again.
const RETAIN_EVERY: u32 = 4096;

/// The limiter state for one route.
#[derive(Debug)]
pub enum Limiter<C: Clock = DefaultClock> {
    /// One bucket for the route.
    Route(RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>),
    /// One bucket per client IP.
    Ip {
        /// The buckets.
        limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
        /// Checks since the last cleanup.
        checks: AtomicU32,
    },
}

impl<C: Clock + Clone> Limiter<C> {
    /// A limiter for `cfg` on `clock`.
    pub fn new(cfg: &RateLimitConfig, clock: C) -> Self {
        let quota = Quota::with_period(cfg.period)
            .unwrap_or_else(|| Quota::per_second(cfg.burst))
            .allow_burst(cfg.burst);
        match cfg.by {
            RateLimitBy::Route => Limiter::Route(RateLimiter::direct_with_clock(quota, clock)),
            RateLimitBy::Ip => Limiter::Ip {
                limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock),
                checks: AtomicU32::new(0),
            },
        }
    }

    /// `Ok` when the request may pass, else how long until it could.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        match self {
            Limiter::Route(l) => l
                .check()
                .map_err(|not_until| not_until.wait_time_from(l.clock().now())),
            Limiter::Ip { limiter, checks } => {
                if checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
                    // Bounds memory under a spray of source addresses.
                    limiter.retain_recent();
                }
                limiter
                    .check_key(&client)
                    .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
            }
        }
    }
}

/// Applies a shared [`Limiter`].
#[derive(Debug)]
pub struct RateLimitLayer<C: Clock = DefaultClock> {
    limiter: Arc<Limiter<C>>,
}

impl<C: Clock> Clone for RateLimitLayer<C> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            limiter: self.limiter.clone(),
        }
    }
}

impl<C: Clock> RateLimitLayer<C> {
    /// Uses `limiter` (possibly carried over from before a reload).
    pub fn new(limiter: Arc<Limiter<C>>) -> Self {
        RateLimitLayer { limiter }
    }
}

impl<S, C: Clock> Layer<S> for RateLimitLayer<C> {
    type Service = RateLimit<S, C>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// The service built by [`RateLimitLayer`].
#[derive(Debug)]
pub struct RateLimit<S, C: Clock = DefaultClock> {
    inner: S,
    limiter: Arc<Limiter<C>>,
}

impl<S: Clone, C: Clock> Clone for RateLimit<S, C> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

impl<S, B, C> Service<Request<B>> for RateLimit<S, C>
where
    S: Service<Request<B>, Response = HttpResponse, Error = Infallible>,
    S::Future: Send + 'static,
    C: Clock + Clone,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let client = req
            .extensions()
            .get::<RequestContext>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.client_ip);
        match self.limiter.check(client) {
            Ok(()) => Box::pin(self.inner.call(req)),
            Err(wait) => reject(&req, Rejection::RateLimited(wait)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_support::*;
    use governor::clock::FakeRelativeClock;
    use std::num::NonZeroU32;
    use tower::{ServiceBuilder, ServiceExt};

    fn cfg(per_second: u32, burst: u32, by: RateLimitBy) -> RateLimitConfig {
        RateLimitConfig {
            period: Duration::from_secs(1) / per_second,
            burst: NonZeroU32::new(burst).unwrap(),
            by,
        }
    }

    async fn status(
        svc: &tower::util::BoxCloneSyncService<Request<bytes::Bytes>, HttpResponse, Infallible>,
        ip: &str,
    ) -> (u16, Option<String>) {
        let mut req = request(b"");
        req.extensions_mut().insert(context(ip));
        let resp = svc.clone().oneshot(req).await.unwrap();
        if resp.status() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
        }
        status_reason(resp).await
    }

    #[tokio::test]
    async fn burst_then_429_then_refill() {
        let clock = FakeRelativeClock::default();
        let limiter = Arc::new(Limiter::new(&cfg(1, 2, RateLimitBy::Route), clock.clone()));
        let svc = tower::util::BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(RateLimitLayer::new(limiter))
                .service(echo()),
        );
        assert_eq!(status(&svc, "1.1.1.1").await.0, 200);
        assert_eq!(status(&svc, "2.2.2.2").await.0, 200);
        assert_eq!(
            status(&svc, "3.3.3.3").await,
            (429, Some("rate_limited".into()))
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(status(&svc, "1.1.1.1").await.0, 200);
    }

    #[tokio::test]
    async fn by_ip_keeps_clients_apart() {
        let clock = FakeRelativeClock::default();
        let limiter = Arc::new(Limiter::new(&cfg(1, 1, RateLimitBy::Ip), clock));
        let svc = tower::util::BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(RateLimitLayer::new(limiter))
                .service(echo()),
        );
        assert_eq!(status(&svc, "1.1.1.1").await.0, 200);
        assert_eq!(status(&svc, "1.1.1.1").await.0, 429);
        assert_eq!(status(&svc, "2.2.2.2").await.0, 200);
    }

    #[test]
    fn retry_after_comes_from_the_limiter() {
        let clock = FakeRelativeClock::default();
        let limiter = Limiter::new(&cfg(1, 1, RateLimitBy::Route), clock);
        let ip = IpAddr::from([1, 1, 1, 1]);
        limiter.check(ip).unwrap();
        let wait = limiter.check(ip).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
    }
}
