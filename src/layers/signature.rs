//! Signature verification over the exact body bytes, constant-time, any configured secret.
//!
//! On success the matching key is counted (`hookwall_signature_key_matched_total`) and the
//! authenticated timestamp is attached for the timestamp layer. Rejections:
//! `401 missing_signature`, `401 invalid_signature` — the same body for every way of
//! failing, so a client learns nothing about which part nearly passed.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use tower::{Layer, Service};

use super::{reject, ResponseFuture};
use crate::error::Rejection;
use crate::metrics::RouteMetrics;
use crate::respond::HttpResponse;
use crate::verify::{SignedRequest, Verdict, Verifier};

/// The index (in the route's `secrets`) of the secret that verified the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedKey(pub usize);

/// Verifies with a route's scheme and keys.
#[derive(Debug, Clone)]
pub struct SignatureLayer {
    verifier: Arc<Verifier>,
    public_url: Option<Arc<str>>,
    metrics: Arc<RouteMetrics>,
}

impl SignatureLayer {
    /// `public_url` is the URL the provider calls, for schemes that sign it.
    pub fn new(
        verifier: Arc<Verifier>,
        public_url: Option<Arc<str>>,
        metrics: Arc<RouteMetrics>,
    ) -> Self {
        SignatureLayer {
            verifier,
            public_url,
            metrics,
        }
    }
}

impl<S> Layer<S> for SignatureLayer {
    type Service = Signature<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Signature {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`SignatureLayer`].
#[derive(Debug, Clone)]
pub struct Signature<S> {
    inner: S,
    layer: SignatureLayer,
}

impl<S> Service<Request<Bytes>> for Signature<S>
where
    S: Service<Request<Bytes>, Response = HttpResponse, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Bytes>) -> Self::Future {
        // The provider signed the URL it called, query included.
        let url = self
            .layer
            .public_url
            .as_deref()
            .map(|base| match req.uri().query() {
                Some(q) => format!("{base}?{q}"),
                None => base.to_owned(),
            });
        let verdict = self.layer.verifier.verify(&SignedRequest {
            method: req.method(),
            headers: req.headers(),
            body: req.body(),
            url: url.as_deref(),
        });
        match verdict {
            Verdict::Valid { key, timestamp } => {
                self.layer.metrics.key_matched(key);
                req.extensions_mut().insert(timestamp);
                req.extensions_mut().insert(VerifiedKey(key));
                Box::pin(self.inner.call(req))
            }
            Verdict::Missing => reject(&req, Rejection::MissingSignature),
            Verdict::Invalid => reject(&req, Rejection::InvalidSignature),
        }
    }
}
