//! The per-route checks, one tower layer each, in the order they run (CONTRACT §3):
//!
//! 1. [`ip_allow`] — `403 ip_not_allowed`
//! 2. [`rate_limit`] — `429 rate_limited`
//! 3. [`body_limit`] — capped read: `413 body_too_large`, `408 read_timeout`
//!    then unsigned [`handshake`]s (WooCommerce, Meta, X, Dropbox, Asana, Okta, Graph:
//!    `403 handshake_refused` without their credentials) and [`keys`] — the provider keys
//!    the request names, fetched if not cached: `503 key_unavailable`
//! 4. [`signature`] — over the raw bytes: `401 missing_signature` / `invalid_signature`
//! 5. [`timestamp`] — only once the signature vouched for it: `401 timestamp_out_of_window`
//!    then signed [`handshake`]s (Zoom, Slack, Twitch, Discord) and [`sns`] — topics
//!    (`403 topic_not_allowed`) and subscription confirmation (`502 confirmation_failed`)
//! 6. [`dedup`] — two-phase, only for authentic requests: `200 duplicate`, `409 in_flight`,
//!    `400 missing_dedup_key`, `503 dedup_unavailable`
//! 7. [`event_filter`] — the route's `events`: `200 ignored` (dedup commits the id)
//!
//! Shadow mode (`enforce = false`): a check that would answer a rejection records it with
//! `shadowed` and lets the request through instead (CONTRACT §12). The body layer's
//! `413`/`408`/`400` stay answered: there is no whole body to forward.
//!
//! Each layer answers a rejection as a response (never an error): every stack has
//! `Error = Infallible`. Route matching and load shedding happen before the stack, in
//! `server.rs`; forwarding is the stack's innermost service, `forward.rs`.

pub mod body_limit;
pub mod check;
pub mod dedup;
pub mod event_filter;
pub mod handshake;
pub mod ip_allow;
pub mod keys;
pub mod rate_limit;
pub mod signature;
pub mod sns;
pub mod timestamp;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use http::Request;

use crate::context::{RequestContext, Shadow, WouldReject};
use crate::error::Rejection;
use crate::respond::{self, HttpResponse};

pub use body_limit::BodyLimitLayer;
pub use check::Check;
pub use dedup::DedupLayer;
pub use event_filter::{EventFilter, EventFilterLayer};
pub use handshake::{HandshakeLayer, HandshakeSettings, ProviderHandshake};
pub use ip_allow::{AllowedNets, IpAllowLayer};
pub use keys::KeyFetchLayer;
pub use rate_limit::RateLimitLayer;
pub use signature::{SignatureLayer, Verification};
pub use sns::SnsControlLayer;
pub use timestamp::{TimestampLayer, TimestampWindow};

/// The future every layer returns.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>>;

/// This request's id for a gateway answer ("-" only if the server forgot to set a context).
pub(crate) fn request_id<B>(req: &Request<B>) -> std::sync::Arc<str> {
    req.extensions()
        .get::<RequestContext>()
        .map_or_else(|| "-".into(), |c| c.request_id.clone())
}

/// Shadow mode (the route's `enforce = false`): records `why` as what the request would
/// have been answered (the first one counts; a failed signature is always noted) and
/// returns `true`, so the caller lets the request through instead. `false` on an
/// enforcing route: answer as usual.
pub(crate) fn shadowed<B>(req: &Request<B>, why: WouldReject) -> bool {
    let Some(Shadow(metrics)) = req.extensions().get::<Shadow>() else {
        return false;
    };
    if let Some(ctx) = req.extensions().get::<RequestContext>() {
        if why.unverified() {
            let _ = ctx.record.unverified.set(());
        }
        if ctx.record.would_reject.set(why).is_ok() {
            metrics.record(why);
            tracing::info!(request_id = %ctx.request_id, reason = why.reason(), "shadow mode: forwarding a request a check would have refused");
        }
    }
    true
}

/// Whether shadow mode let `req` through although its signature did not verify.
pub(crate) fn unverified<B>(req: &Request<B>) -> bool {
    req.extensions()
        .get::<RequestContext>()
        .is_some_and(|c| c.record.unverified.get().is_some())
}

/// A ready future carrying a rejection answer for `req`.
pub(crate) fn reject<B>(req: &Request<B>, rejection: Rejection) -> ResponseFuture {
    let resp = respond::rejection(&request_id(req), rejection);
    Box::pin(std::future::ready(Ok(resp)))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! An inner service that answers 200 with the body it received.
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    use crate::context::Outcome;

    /// 200 echoing the body; marks the outcome as forwarded.
    pub(crate) fn echo(
    ) -> tower::util::BoxCloneSyncService<Request<Bytes>, HttpResponse, Infallible> {
        tower::util::BoxCloneSyncService::new(tower::service_fn(|req: Request<Bytes>| async move {
            let mut resp = http::Response::new(Full::new(req.into_body()).into());
            resp.extensions_mut()
                .insert(Outcome::Forwarded(http::StatusCode::OK));
            Ok::<_, Infallible>(resp)
        }))
    }

    /// A request with a context, as the server would build it.
    pub(crate) fn request(body: &'static [u8]) -> Request<Bytes> {
        let mut req = Request::post("/hook")
            .body(Bytes::from_static(body))
            .unwrap();
        req.extensions_mut().insert(context("127.0.0.1"));
        req
    }

    /// A context for a client at `ip`.
    pub(crate) fn context(ip: &str) -> RequestContext {
        RequestContext {
            request_id: "test-req".into(),
            peer: std::net::SocketAddr::new(ip.parse().unwrap(), 1234),
            client_ip: ip.parse().unwrap(),
            peer_trusted: false,
            received: tokio::time::Instant::now(),
            https: false,
            record: Default::default(),
        }
    }

    /// Status and `error` field of a response.
    pub(crate) async fn status_reason(resp: HttpResponse) -> (u16, Option<String>) {
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let reason = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
        (status, reason)
    }
}
