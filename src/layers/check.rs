//! The shape shared by every synchronous check: look at the request (possibly annotate
//! it), then either pass it on or answer it. One `Layer`/`Service` pair serves them all,
//! so each check file holds only its rule and its tests.

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use super::ResponseFuture;
use crate::respond::HttpResponse;

/// A synchronous check on a request.
pub trait Check<B> {
    /// `Continue` passes the request on (the check may have annotated it); `Break` is the
    /// answer.
    fn check(&self, req: &mut Request<B>) -> ControlFlow<HttpResponse>;
}

/// Applies a [`Check`] in front of a service.
#[derive(Debug, Clone)]
pub struct CheckLayer<C> {
    check: C,
}

impl<C> CheckLayer<C> {
    /// A layer running `check`.
    pub fn new(check: C) -> Self {
        CheckLayer { check }
    }
}

impl<S, C: Clone> Layer<S> for CheckLayer<C> {
    type Service = Checked<S, C>;
    fn layer(&self, inner: S) -> Self::Service {
        Checked {
            inner,
            check: self.check.clone(),
        }
    }
}

/// The service built by [`CheckLayer`].
#[derive(Debug, Clone)]
pub struct Checked<S, C> {
    inner: S,
    check: C,
}

impl<S, C, B> Service<Request<B>> for Checked<S, C>
where
    C: Check<B>,
    S: Service<Request<B>, Response = HttpResponse, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match self.check.check(&mut req) {
            ControlFlow::Continue(()) => Box::pin(self.inner.call(req)),
            ControlFlow::Break(answer) => Box::pin(std::future::ready(Ok(answer))),
        }
    }
}
