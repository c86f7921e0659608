//! The shape shared by every synchronous check: look at the request (possibly annotate
//! it), then either pass it on or answer it.
//!
//! Each check file holds only its rule (a [`Check`]) and its tests, and declares its layer
//! with [`check_layer!`]: `FooLayer::new(rule)` builds `Foo<S>`, the same shape as every
//! other layer here (tower-http's), without hand-copied `Service` code.

use std::convert::Infallible;
use std::ops::ControlFlow;

use http::Request;
use tower::Service;

use super::{shadowed, unverified, ResponseFuture};
use crate::context::{Outcome, WouldReject};
use crate::respond::{self, HttpResponse};

/// A synchronous check on a request.
pub trait Check<B> {
    /// `Continue` passes the request on (the check may have annotated it); `Break` is the
    /// answer.
    fn check(&self, req: &mut Request<B>) -> ControlFlow<HttpResponse>;
}

/// Runs `rule`, then `inner` if the rule let the request through: the body of every
/// check layer's `call`. On a route in shadow mode a rejection is recorded instead and the
/// request goes on; other answers (a handshake) are given as usual.
pub(crate) fn call<B, C, S>(rule: &C, inner: &mut S, mut req: Request<B>) -> ResponseFuture
where
    C: Check<B>,
    S: Service<Request<B>, Response = HttpResponse, Error = Infallible>,
    S::Future: Send + 'static,
{
    match rule.check(&mut req) {
        ControlFlow::Continue(()) => Box::pin(inner.call(req)),
        ControlFlow::Break(answer) => match respond::outcome_of(&answer) {
            Outcome::Rejected(r) if shadowed(&req, WouldReject::Rejected(r)) => {
                Box::pin(inner.call(req))
            }
            // Shadow mode: a control request whose signature failed is not answered in the
            // provider's name; it goes to the app, which answered it before.
            Outcome::Handshake if unverified(&req) => Box::pin(inner.call(req)),
            _ => Box::pin(std::future::ready(Ok(answer))),
        },
    }
}

/// Declares `$layer` (holding a `$rule`, built by `$layer::new(rule)`) and the service it
/// builds, `$service<S>`, which runs the rule in front of `S`.
macro_rules! check_layer {
    ($(#[$doc:meta])* $layer:ident => $service:ident($rule:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $layer {
            rule: $rule,
        }

        impl $layer {
            /// A layer running `rule`.
            pub fn new(rule: $rule) -> Self {
                $layer { rule }
            }
        }

        impl<S> tower::Layer<S> for $layer {
            type Service = $service<S>;
            fn layer(&self, inner: S) -> Self::Service {
                $service {
                    inner,
                    rule: self.rule.clone(),
                }
            }
        }

        #[doc = concat!("The service built by [`", stringify!($layer), "`].")]
        #[derive(Debug, Clone)]
        pub struct $service<S> {
            inner: S,
            rule: $rule,
        }

        impl<S, B> tower::Service<http::Request<B>> for $service<S>
        where
            $rule: $crate::layers::check::Check<B>,
            S: tower::Service<
                http::Request<B>,
                Response = $crate::respond::HttpResponse,
                Error = std::convert::Infallible,
            >,
            S::Future: Send + 'static,
        {
            type Response = $crate::respond::HttpResponse;
            type Error = std::convert::Infallible;
            type Future = $crate::layers::ResponseFuture;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, req: http::Request<B>) -> Self::Future {
                $crate::layers::check::call(&self.rule, &mut self.inner, req)
            }
        }
    };
}

pub(crate) use check_layer;
