//! The timestamp window, checked only after the signature proved the timestamp authentic,
//! so the reason reported is always the true one (an attacker cannot make a forged request
//! look merely stale).
//!
//! Past and future are bounded separately (`tolerance`, `future_tolerance`). Every
//! authenticated timestamp, accepted or not, feeds `hookwall_timestamp_skew_seconds`.
//! Rejection: `401 timestamp_out_of_window` (also for a signed but unparseable or absent
//! timestamp on a route that has a window).

use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;

use super::check::{check_layer, Check};
use super::request_id;
use crate::clock::Clock;
use crate::config::Window;
use crate::error::Rejection;
use crate::metrics::RouteMetrics;
use crate::respond::{self, HttpResponse};
use crate::verify::SignedTimestamp;

/// Enforces a [`Window`] around `clock`'s now.
#[derive(Debug, Clone)]
pub struct TimestampWindow {
    window: Window,
    clock: Arc<dyn Clock>,
    metrics: Arc<RouteMetrics>,
}

impl TimestampWindow {
    /// A window on a clock.
    pub fn new(window: Window, clock: Arc<dyn Clock>, metrics: Arc<RouteMetrics>) -> Self {
        TimestampWindow {
            window,
            clock,
            metrics,
        }
    }

    /// Whether a signed timestamp is acceptable now.
    fn accepts(&self, signed: Option<&SignedTimestamp>) -> bool {
        let (ts, expires) = match signed {
            Some(SignedTimestamp::UnixMs(ts)) => (*ts, None),
            // A token is good from issue until it expires, and no longer than the window's
            // past allows; `future` is the clock-skew allowance at both ends.
            Some(SignedTimestamp::Validity {
                issued_ms,
                expires_ms,
            }) => (*issued_ms, Some(*expires_ms)),
            _ => return false,
        };
        let now = self.clock.unix_now();
        let skew = now - ts as f64 / 1000.0;
        self.metrics.timestamp_skew.observe(skew);
        let future = self.window.future.as_secs_f64();
        if let Some(exp) = expires {
            if now > exp as f64 / 1000.0 + future {
                return false;
            }
        }
        if skew >= 0.0 {
            skew <= self.window.past.as_secs_f64()
        } else {
            -skew <= future
        }
    }
}

check_layer! {
    /// The timestamp window: `401 timestamp_out_of_window`.
    TimestampLayer => Timestamp(TimestampWindow)
}

impl Check<Bytes> for TimestampWindow {
    fn check(&self, req: &mut Request<Bytes>) -> ControlFlow<HttpResponse> {
        if self.accepts(req.extensions().get::<SignedTimestamp>()) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(respond::rejection(
                &request_id(req),
                Rejection::TimestampOutOfWindow,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::layers::test_support::*;
    use crate::metrics::Metrics;
    use std::time::Duration;
    use tower::{ServiceBuilder, ServiceExt};

    async fn run(ts: SignedTimestamp) -> (u16, Option<String>) {
        let metrics = Metrics::default().route("r", &[]);
        let layer = TimestampLayer::new(TimestampWindow::new(
            Window {
                past: Duration::from_secs(300),
                future: Duration::from_secs(60),
            },
            Arc::new(FakeClock::at(1_000_000)),
            metrics,
        ));
        let svc = ServiceBuilder::new().layer(layer).service(echo());
        let mut req = request(b"");
        req.extensions_mut().insert(ts);
        status_reason(svc.oneshot(req).await.unwrap()).await
    }

    #[tokio::test]
    async fn window_edges() {
        let out = (401, Some("timestamp_out_of_window".to_owned()));
        assert_eq!(run(SignedTimestamp::UnixMs(1_000_000_000)).await.0, 200);
        assert_eq!(
            run(SignedTimestamp::UnixMs((1_000_000 - 300) * 1000))
                .await
                .0,
            200
        );
        assert_eq!(
            run(SignedTimestamp::UnixMs((1_000_000 - 301) * 1000)).await,
            out
        );
        assert_eq!(
            run(SignedTimestamp::UnixMs((1_000_000 + 60) * 1000))
                .await
                .0,
            200
        );
        assert_eq!(
            run(SignedTimestamp::UnixMs((1_000_000 + 61) * 1000)).await,
            out
        );
        assert_eq!(run(SignedTimestamp::Malformed).await, out);
        assert_eq!(run(SignedTimestamp::None).await, out);
    }
}
