//! Makes sure the provider key a request needs is cached before the signature check runs,
//! so that check can stay synchronous (it only reads the cache).
//!
//! For each scheme of the route that verifies with fetched keys (Google, Plaid, SNS), the
//! scheme names the key the request asks for (a JWT `kid`, an SNS `SigningCertURL` that
//! passed the host allowlist); [`KeySource::ensure`] fetches it if it is not cached (one
//! fetch per source at a time; waiting requests share it). When the key cannot be had the
//! answer is `503 key_unavailable` with `Retry-After`: the provider retries later. A request
//! naming no fetchable key passes through and the signature check refuses it (`401`).
//!
//! [`KeySource::ensure`]: crate::verify::fetched_keys::KeySource::ensure

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use tower::{Layer, Service};

use super::{reject, shadowed, ResponseFuture};
use crate::context::WouldReject;
use crate::error::Rejection;
use crate::respond::HttpResponse;
use crate::verify::{SignedRequest, Verifier};

/// Fetches the keys a route's schemes need.
#[derive(Debug, Clone)]
pub struct KeyFetchLayer {
    verifier: Arc<Verifier>,
}

impl KeyFetchLayer {
    /// For a route's verifier.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        KeyFetchLayer { verifier }
    }
}

impl<S> Layer<S> for KeyFetchLayer {
    type Service = KeyFetch<S>;
    fn layer(&self, inner: S) -> Self::Service {
        KeyFetch {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service built by [`KeyFetchLayer`].
#[derive(Debug, Clone)]
pub struct KeyFetch<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S> Service<Request<Bytes>> for KeyFetch<S>
where
    S: Service<Request<Bytes>, Response = HttpResponse, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let signed = SignedRequest {
            method: req.method(),
            headers: req.headers(),
            body: req.body(),
            url: None,
        };
        let wanted: Vec<_> = self
            .verifier
            .schemes
            .iter()
            .filter_map(|k| k.scheme.wanted_key(&signed))
            .collect();
        if wanted.is_empty() {
            return Box::pin(self.inner.call(req));
        }
        // The ready inner service goes with this request; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            for (source, id) in wanted {
                // In shadow mode the signature check then fails too; the first reason is this.
                if source.ensure(&id).await.is_err()
                    && !shadowed(&req, WouldReject::Rejected(Rejection::KeyUnavailable))
                {
                    return reject(&req, Rejection::KeyUnavailable).await;
                }
            }
            inner.call(req).await
        })
    }
}
