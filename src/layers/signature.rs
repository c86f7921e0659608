//! Signature verification over the exact body bytes, constant-time, any configured secret.
//!
//! On success the matching key is counted (`hookwall_signature_key_matched_total`) and the
//! authenticated timestamp is attached for the timestamp layer. Rejections:
//! `401 missing_signature`, `401 invalid_signature` — the same body for every way of
//! failing, so a client learns nothing about which part nearly passed.

use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;

use super::check::{check_layer, Check};
use super::request_id;
use crate::context::{RequestContext, SignedIdHeader, VerifiedKey};
use crate::error::Rejection;
use crate::metrics::RouteMetrics;
use crate::respond::{self, HttpResponse};
use crate::verify::{SignedRequest, Verdict, Verifier};

/// A route's scheme and keys, and the URL it is called at.
#[derive(Debug, Clone)]
pub struct Verification {
    verifier: Arc<Verifier>,
    public_url: Option<Arc<str>>,
    metrics: Arc<RouteMetrics>,
}

impl Verification {
    /// `public_url` is the URL the provider calls, for schemes that sign it.
    pub fn new(
        verifier: Arc<Verifier>,
        public_url: Option<Arc<str>>,
        metrics: Arc<RouteMetrics>,
    ) -> Self {
        Verification {
            verifier,
            public_url,
            metrics,
        }
    }
}

check_layer! {
    /// Signature verification over the raw body: `401 missing_signature` / `invalid_signature`.
    SignatureLayer => Signature(Verification)
}

impl Check<Bytes> for Verification {
    fn check(&self, req: &mut Request<Bytes>) -> ControlFlow<HttpResponse> {
        // The provider signed the URL it called, query included.
        let url = self
            .public_url
            .as_deref()
            .map(|base| match req.uri().query() {
                Some(q) => format!("{base}?{q}"),
                None => base.to_owned(),
            });
        let (verdict, scheme) = self.verifier.verify_by(&SignedRequest {
            method: req.method(),
            headers: req.headers(),
            body: req.body(),
            url: url.as_deref(),
        });
        let rejection = match verdict {
            Verdict::Valid { key, timestamp } => {
                self.metrics.key_matched(key);
                if let Some(ctx) = req.extensions().get::<RequestContext>() {
                    let _ = ctx.record.key.set(key);
                }
                req.extensions_mut().insert(timestamp);
                req.extensions_mut().insert(VerifiedKey(key));
                if let Some(id) = scheme.and_then(|s| s.signed_id_header()) {
                    req.extensions_mut().insert(SignedIdHeader(id.clone()));
                }
                return ControlFlow::Continue(());
            }
            Verdict::Missing => Rejection::MissingSignature,
            Verdict::Invalid => {
                // For the diagnosis, off the request path: which known mistake this was.
                if let Some(ctx) = req.extensions().get::<RequestContext>() {
                    let _ = ctx.record.refused_headers.set(req.headers().clone());
                }
                Rejection::InvalidSignature
            }
        };
        ControlFlow::Break(respond::rejection(&request_id(req), rejection))
    }
}
