//! `allow_ips`: only clients in these networks reach the rest of the stack.
//!
//! Uses the real client IP from the request context (see `client_ip.rs` for how
//! `trusted_proxies` makes `X-Forwarded-For` count). Rejection: `403 ip_not_allowed`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use ipnet::IpNet;
use tower::{Layer, Service};

use super::{reject, ResponseFuture};
use crate::client_ip::is_in;
use crate::context::RequestContext;
use crate::respond::HttpResponse;

/// Refuses clients outside `nets`.
#[derive(Debug, Clone)]
pub struct IpAllowLayer {
    nets: Arc<[IpNet]>,
}

impl IpAllowLayer {
    /// Allows exactly these networks (callers skip the layer for an empty list).
    pub fn new(nets: Vec<IpNet>) -> Self {
        IpAllowLayer { nets: nets.into() }
    }
}

impl<S> Layer<S> for IpAllowLayer {
    type Service = IpAllow<S>;
    fn layer(&self, inner: S) -> Self::Service {
        IpAllow {
            inner,
            nets: self.nets.clone(),
        }
    }
}

/// The service built by [`IpAllowLayer`].
#[derive(Debug, Clone)]
pub struct IpAllow<S> {
    inner: S,
    nets: Arc<[IpNet]>,
}

impl<S, B> Service<Request<B>> for IpAllow<S>
where
    S: Service<Request<B>, Response = HttpResponse, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let allowed = req
            .extensions()
            .get::<RequestContext>()
            .is_some_and(|c| is_in(&self.nets, c.client_ip));
        if !allowed {
            return reject(&req, crate::error::Rejection::IpNotAllowed);
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_support::*;
    use tower::{ServiceBuilder, ServiceExt};

    #[tokio::test]
    async fn allows_listed_and_refuses_others() {
        let svc = ServiceBuilder::new()
            .layer(IpAllowLayer::new(vec!["10.0.0.0/8".parse().unwrap()]))
            .service(echo());
        let mut ok = request(b"x");
        ok.extensions_mut().insert(context("10.1.2.3"));
        assert_eq!(svc.clone().oneshot(ok).await.unwrap().status(), 200);
        let mut bad = request(b"x");
        bad.extensions_mut().insert(context("192.0.2.1"));
        let resp = svc.oneshot(bad).await.unwrap();
        assert_eq!(
            status_reason(resp).await,
            (403, Some("ip_not_allowed".into()))
        );
    }
}
