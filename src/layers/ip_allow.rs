//! `allow_ips`: only clients in these networks reach the rest of the stack.
//!
//! Uses the real client IP from the request context (see `client_ip.rs` for how
//! `trusted_proxies` makes `X-Forwarded-For` count). Rejection: `403 ip_not_allowed`.

use std::ops::ControlFlow;
use std::sync::Arc;

use http::Request;
use ipnet::IpNet;

use super::check::{check_layer, Check};
use super::request_id;
use crate::client_ip::is_in;
use crate::context::RequestContext;
use crate::error::Rejection;
use crate::respond::{self, HttpResponse};

/// The networks a route accepts clients from.
#[derive(Debug, Clone)]
pub struct AllowedNets {
    nets: Arc<[IpNet]>,
}

impl AllowedNets {
    /// Allows exactly these networks (callers skip the layer for an empty list).
    pub fn new(nets: Vec<IpNet>) -> Self {
        AllowedNets { nets: nets.into() }
    }
}

check_layer! {
    /// The IP allowlist: `403 ip_not_allowed` for clients outside the route's networks.
    IpAllowLayer => IpAllow(AllowedNets)
}

impl<B> Check<B> for AllowedNets {
    fn check(&self, req: &mut Request<B>) -> ControlFlow<HttpResponse> {
        let allowed = req
            .extensions()
            .get::<RequestContext>()
            .is_some_and(|c| is_in(&self.nets, c.client_ip));
        if allowed {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(respond::rejection(
                &request_id(req),
                Rejection::IpNotAllowed,
            ))
        }
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
            .layer(IpAllowLayer::new(AllowedNets::new(vec!["10.0.0.0/8"
                .parse()
                .unwrap()])))
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
