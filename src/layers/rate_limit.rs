//! `rate_limit`: a GCRA (governor) per route or per client IP; with `shared = true`, one
//! GCRA in Redis that every instance draws from (a Lua script using Redis' own clock, so
//! instance clocks do not matter). If Redis does not answer within `call_timeout`, the
//! instance falls back to its local limiter rather than refusing or waving everything.
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

use super::{reject, shadowed, ResponseFuture};
use crate::config::{RateLimitBy, RateLimitConfig};
use crate::context::{RequestContext, WouldReject};
use crate::error::Rejection;
use crate::respond::HttpResponse;

/// How often (in checks) the per-IP table drops clients whose buckets are full again.
const RETAIN_EVERY: u32 = 4096;

/// GCRA over Redis: the stored value is the theoretical arrival time (µs, Redis clock).
const SHARED_GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + period
local allow_at = new_tat - burst * period
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
";

/// A limit enforced together by every instance through Redis.
#[derive(Debug)]
pub struct SharedLimiter<C: Clock = DefaultClock> {
    redis: Arc<crate::redis_client::RedisClient>,
    script: redis::Script,
    key_prefix: String,
    by: RateLimitBy,
    period_us: u64,
    burst: u64,
    call_timeout: Duration,
    /// Used while Redis does not answer.
    fallback: Limiter<C>,
}

impl<C: Clock + Clone> SharedLimiter<C> {
    /// `Ok` when the request may pass, else how long until it could.
    async fn admit(&self, client: IpAddr) -> Result<(), Duration> {
        let key = match self.by {
            RateLimitBy::Route => format!("{}}}", self.key_prefix),
            RateLimitBy::Ip => format!("{}:{client}}}", self.key_prefix),
        };
        let (keys, args) = ([key], [self.period_us, self.burst]);
        let call = self.redis.eval::<Vec<i64>>(&self.script, &keys, &args);
        match crate::dedup::with_timeout(self.call_timeout, call).await {
            Ok(reply) => match reply.as_slice() {
                [1, _] => Ok(()),
                [_, wait_us] => Err(Duration::from_micros((*wait_us).max(0) as u64)),
                _ => self.fallback.check(client),
            },
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limit unavailable; using this instance's limiter");
                self.fallback.check(client)
            }
        }
    }
}

/// The limiter state for one route.
#[derive(Debug)]
pub enum Limiter<C: Clock = DefaultClock> {
    /// Shared through Redis by every instance.
    Shared(Box<SharedLimiter<C>>),
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

    /// Makes this (local) limiter the fallback of a Redis-shared one for `route`.
    pub fn shared(
        self,
        redis: Arc<crate::redis_client::RedisClient>,
        route: &str,
        cfg: &RateLimitConfig,
        call_timeout: Duration,
    ) -> Self {
        Limiter::Shared(Box::new(SharedLimiter {
            redis,
            script: redis::Script::new(SHARED_GCRA),
            // `{route...}` is a Redis Cluster hash tag: one slot per key.
            key_prefix: format!("hookwall:rl:{{{route}"),
            by: cfg.by,
            period_us: (cfg.period.as_micros() as u64).max(1),
            burst: u64::from(cfg.burst.get()),
            call_timeout,
            fallback: self,
        }))
    }

    /// `Ok` when the request may pass, else how long until it could (local limiters; a
    /// shared limiter answers from its local fallback here).
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        match self {
            Limiter::Shared(s) => s.fallback.check(client),
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
    S: Service<Request<B>, Response = HttpResponse, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
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
        if let Limiter::Shared(_) = &*self.limiter {
            let limiter = self.limiter.clone();
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Box::pin(async move {
                let Limiter::Shared(shared) = &*limiter else {
                    unreachable!("checked above")
                };
                match shared.admit(client).await {
                    Ok(()) => inner.call(req).await,
                    Err(wait)
                        if shadowed(&req, WouldReject::Rejected(Rejection::RateLimited(wait))) =>
                    {
                        inner.call(req).await
                    }
                    Err(wait) => reject(&req, Rejection::RateLimited(wait)).await,
                }
            });
        }
        match self.limiter.check(client) {
            Ok(()) => Box::pin(self.inner.call(req)),
            Err(wait) if shadowed(&req, WouldReject::Rejected(Rejection::RateLimited(wait))) => {
                Box::pin(self.inner.call(req))
            }
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
            shared: false,
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
