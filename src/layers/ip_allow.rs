//! `allow_ips`: only clients in these networks reach the rest of the stack.
//!
//! Uses the real client IP from the request context (see `client_ip.rs` for how
//! `trusted_proxies` makes `X-Forwarded-For` count). Rejection: `403 ip_not_allowed`, with
//! the lists it was judged against (`@github (refreshed ...)`, the CIDR count) as the
//! log line's cause, so an operator sees at once whether a stale list refused a provider.
//!
//! Provider lists (`"@github"`) are read through their shared pointer on each request: a
//! refresh swaps the whole list at once, and a request sees either the old or the new one.

use std::ops::ControlFlow;
use std::sync::Arc;

use http::Request;
use ipnet::IpNet;

use super::check::{check_layer, Check};
use super::request_id;
use crate::client_ip::is_in;
use crate::context::{RejectionCause, RequestContext};
use crate::error::Rejection;
use crate::ip_ranges::SharedList;
use crate::respond::{self, HttpResponse};

/// The networks a route accepts clients from.
#[derive(Debug, Clone)]
pub struct AllowedNets {
    nets: Arc<[IpNet]>,
    lists: Arc<[SharedList]>,
}

impl AllowedNets {
    /// Allows exactly these networks (callers skip the layer for an empty list).
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self::with_lists(nets, Vec::new())
    }

    /// Allows these networks and whatever the provider lists hold at the time of a request.
    pub fn with_lists(nets: Vec<IpNet>, lists: Vec<SharedList>) -> Self {
        AllowedNets {
            nets: nets.into(),
            lists: lists.into(),
        }
    }

    fn allows(&self, ip: std::net::IpAddr) -> bool {
        is_in(&self.nets, ip) || self.lists.iter().any(|l| is_in(&l.load().nets, ip))
    }

    /// What the client was judged against, for the log line.
    fn judged_against(&self) -> String {
        let mut parts: Vec<String> = self.lists.iter().map(|l| l.load().to_string()).collect();
        match self.nets.len() {
            0 => {}
            1 => parts.push("1 CIDR".to_owned()),
            n => parts.push(format!("{n} CIDRs")),
        }
        format!("client in none of: {}", parts.join(", "))
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
            .is_some_and(|c| self.allows(c.client_ip));
        if allowed {
            ControlFlow::Continue(())
        } else {
            let mut resp = respond::rejection(&request_id(req), Rejection::IpNotAllowed);
            resp.extensions_mut()
                .insert(RejectionCause(self.judged_against()));
            ControlFlow::Break(resp)
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

    #[tokio::test]
    async fn provider_lists_are_read_at_each_request_and_named_in_the_cause() {
        use crate::ip_ranges::{Origin, RangeList};
        let list: SharedList = Arc::new(arc_swap::ArcSwap::from_pointee(RangeList {
            name: "github",
            nets: vec!["192.30.252.0/22".parse().unwrap()],
            origin: Origin::Shipped("2026-12-03"),
        }));
        let svc = ServiceBuilder::new()
            .layer(IpAllowLayer::new(AllowedNets::with_lists(
                vec!["10.0.0.0/8".parse().unwrap()],
                vec![list.clone()],
            )))
            .service(echo());
        let from = |ip: &str| {
            let mut r = request(b"x");
            r.extensions_mut().insert(context(ip));
            r
        };
        assert_eq!(
            svc.clone()
                .oneshot(from("192.30.252.9"))
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            svc.clone()
                .oneshot(from("10.9.9.9"))
                .await
                .unwrap()
                .status(),
            200
        );
        let refused = svc.clone().oneshot(from("198.51.100.1")).await.unwrap();
        assert_eq!(refused.status(), 403);
        assert_eq!(
            refused.extensions().get::<RejectionCause>().unwrap().0,
            "client in none of: @github (shipped, 2026-12-03), 1 CIDR"
        );
        // A refresh swaps the list: the next request is judged by the new one.
        list.store(Arc::new(RangeList {
            name: "github",
            nets: vec!["198.51.100.0/24".parse().unwrap()],
            origin: Origin::Refreshed(std::time::SystemTime::UNIX_EPOCH),
        }));
        assert_eq!(
            svc.clone()
                .oneshot(from("198.51.100.1"))
                .await
                .unwrap()
                .status(),
            200
        );
        let refused = svc.oneshot(from("192.30.252.9")).await.unwrap();
        assert_eq!(
            refused.extensions().get::<RejectionCause>().unwrap().0,
            "client in none of: @github (refreshed 1970-01-01T00:00:00Z), 1 CIDR"
        );
    }
}
