//! The innermost service: sends the exact received bytes to the route's upstream over a
//! pooled keep-alive connection and passes its status and body back unchanged.
//!
//! Headers sent upstream (CONTRACT §4): the original ones minus hop-by-hop headers, with
//! `Host` set to the upstream's authority (the original in `X-Forwarded-Host`),
//! `X-Forwarded-For` / `X-Forwarded-Proto` (and other client-IP headers only from a trusted
//! proxy, see `client_headers`), `X-Request-Id`, `X-Hookwall-Route`,
//! `X-Hookwall-Verified` and, when dedup is on, `X-Hookwall-Delivery-Id`; in shadow mode
//! `X-Hookwall-Would-Reject: <reason>` (and no `X-Hookwall-Verified` for a request whose
//! signature or timestamp failed). Client-sent `X-Hookwall-*` headers are dropped so a
//! client can't impersonate the gateway. With `attest` (see `attest.rs`), the Standard
//! Webhooks headers hookwall signs are added here too, the one place every forwarded,
//! replayed and queued request passes.
//!
//! Failures: cannot connect (including a connect timeout) → `502 upstream_unreachable`;
//! connection lost after sending or an invalid answer → `502 upstream_error`; no complete
//! answer within the route's `timeout` → `504 upstream_timeout`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tower::Service;

use crate::attest::{Attestor, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use crate::context::{
    Attempt, DeliveryId, Outcome, ReplayOf, RequestContext, UpstreamAccepted, UpstreamFailure,
    VerifiedBy,
};
use crate::error::Rejection;
use crate::layers::request_id;
use crate::metrics::RouteMetrics;
use crate::respond::{self, AnswerBody, HttpResponse};
use crate::telemetry::{Telemetry, Trace, TRACEPARENT};
use crate::transport::workers;

mod client_headers;
mod pool;

use pool::{Pool, SendError, TlsTarget};
use rustls_pki_types::ServerName;

/// Upstream answers up to this size are read whole before the answer goes back (so one that
/// breaks off is still a clean `502`); longer ones are streamed to the client as they come,
/// which bounds memory per connection whatever their size (`respond/body.rs`).
const WHOLE_ANSWER_MAX: usize = 64 * 1024;
/// Idle upstream connections older than this are closed instead of reused.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

// Added on every forwarded request: parsed once here, not per request.
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_HOOKWALL_ROUTE: HeaderName = HeaderName::from_static("x-hookwall-route");
const X_HOOKWALL_VERIFIED: HeaderName = HeaderName::from_static("x-hookwall-verified");
const X_HOOKWALL_DELIVERY_ID: HeaderName = HeaderName::from_static("x-hookwall-delivery-id");
const X_HOOKWALL_REPLAY_OF: HeaderName = HeaderName::from_static("x-hookwall-replay-of");
const X_HOOKWALL_ATTEMPT: HeaderName = HeaderName::from_static("x-hookwall-attempt");
const X_HOOKWALL_WOULD_REJECT: HeaderName = HeaderName::from_static("x-hookwall-would-reject");

/// A Standard Webhooks provider's own headers, which hookwall's attestation replaces: the
/// provider's go upstream under these names instead, so nothing it sent is lost.
const PROVIDER_WEBHOOK_HEADERS: [(HeaderName, HeaderName); 3] = [
    (
        WEBHOOK_ID,
        HeaderName::from_static("x-hookwall-provider-webhook-id"),
    ),
    (
        WEBHOOK_TIMESTAMP,
        HeaderName::from_static("x-hookwall-provider-webhook-timestamp"),
    ),
    (
        WEBHOOK_SIGNATURE,
        HeaderName::from_static("x-hookwall-provider-webhook-signature"),
    ),
];

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including any named in `Connection`.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the names instead of nine removals.
    let any = headers
        .keys()
        .any(|k| HOP_BY_HOP.contains(k) || k.as_str() == "proxy-connection");
    if !any {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
}

/// Sets hookwall's Standard Webhooks headers, moving a provider's own out of their way.
fn attest(h: &mut HeaderMap, attestor: &Attestor, id: &str, body: &[u8]) {
    for (name, moved) in &PROVIDER_WEBHOOK_HEADERS {
        let values: Vec<HeaderValue> = h.get_all(name).iter().cloned().collect();
        h.remove(name);
        for v in values {
            h.append(moved.clone(), v);
        }
    }
    let signed = attestor.attest(id, body);
    // The id was checked to be a valid header value; the others are ASCII digits and base64.
    if let (Ok(id), Ok(sig)) = (
        HeaderValue::from_str(&signed.id),
        HeaderValue::from_str(&signed.signature),
    ) {
        h.insert(WEBHOOK_ID, id);
        h.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(signed.timestamp));
        h.insert(WEBHOOK_SIGNATURE, sig);
    }
}

/// `path?query` as a request target in origin form.
fn origin_form(path: &str, query: Option<&str>) -> Option<Uri> {
    let pq = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    Some(Uri::from(PathAndQuery::try_from(pq).ok()?))
}

/// `host:port` to connect to (IPv6 hosts keep their brackets; default ports 80 and 443).
fn connect_address(url: &Uri) -> Option<String> {
    let authority = url.authority()?;
    let default = if url.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    Some(format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(default)
    ))
}

/// The name an https upstream's certificate must carry (an IP address for an IP host).
fn server_name(url: &Uri) -> Option<ServerName<'static>> {
    let host = url.host()?.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

/// Why the upstream gave no answer, for the log line: the kind of failure and where.
fn failure_cause(e: &SendError, address: &str) -> String {
    let kind = match e {
        SendError::Unreachable(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::TimedOut => "connect timed out".to_owned(),
            _ => format!("cannot connect: {io}"),
        },
        SendError::Failed(h) if h.is_incomplete_message() => {
            "connection closed before the answer".to_owned()
        }
        SendError::Failed(h) => {
            // The io error under hyper's, when there is one (reset, broken pipe).
            let io = std::error::Error::source(h)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .map(|io| match io.kind() {
                    std::io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
                    _ => io.to_string(),
                });
            io.unwrap_or_else(|| h.to_string())
        }
    };
    format!("{kind} ({address})")
}

/// The start of an upstream answer.
enum AnswerStart {
    /// All of it: it ended within the first `max` bytes.
    Whole(Bytes),
    /// The first bytes read, and the rest still to come.
    Longer(Bytes, Incoming),
}

/// Reads an upstream answer's body until it ends or passes `max` bytes.
async fn read_start(mut body: Incoming, max: usize) -> Result<AnswerStart, hyper::Error> {
    let mut head = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            head.extend_from_slice(&data);
            if head.len() > max {
                return Ok(AnswerStart::Longer(head.freeze(), body));
            }
        }
    }
    Ok(AnswerStart::Whole(head.freeze()))
}

/// What a route forwards to, resolved once at build time.
#[derive(Debug)]
pub(crate) struct Upstream {
    /// One pool per worker thread (see `server::workers`), plus one for everything else,
    /// so a request never drives a connection owned by another thread.
    pools: Box<[Pool]>,
    /// `host:port`, for log lines about failures.
    address: String,
    path: String,
    query: Option<String>,
    /// The origin-form target as configured: what most requests (no query string) get.
    uri: Uri,
    host: HeaderValue,
    route: HeaderValue,
    verified: HeaderValue,
    strip: Vec<HeaderName>,
    add: Vec<(HeaderName, HeaderValue)>,
    attest: Option<Attestor>,
    telemetry: Arc<Telemetry>,
    timeout: Duration,
    metrics: Arc<RouteMetrics>,
}

/// Settings for [`Upstream::new`], all validated by config compile.
#[derive(Debug)]
pub(crate) struct UpstreamSettings<'a> {
    /// Absolute http URL.
    pub url: &'a Uri,
    /// Route name.
    pub route: &'a str,
    /// Provider name for `X-Hookwall-Verified`.
    pub provider: &'a str,
    /// Headers to remove (signature headers when `strip_signature`).
    pub strip: Vec<HeaderName>,
    /// Headers to set.
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// Whole-answer timeout.
    pub timeout: Duration,
    /// TLS client settings, for an `https://` upstream.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Signs what is sent with Standard Webhooks headers (`attest`).
    pub attest: Option<Attestor>,
    /// The span exporter, for the `forward` span.
    pub telemetry: Arc<Telemetry>,
}

impl Upstream {
    /// A pooled client for one route. `None` only if the URL has no scheme or authority,
    /// which config compile already refuses.
    pub(crate) fn new(s: UpstreamSettings<'_>, metrics: Arc<RouteMetrics>) -> Option<Self> {
        let authority = s.url.authority()?.clone();
        let address = connect_address(s.url)?;
        let tls = match &s.tls {
            Some(config) => Some(TlsTarget {
                connector: tokio_rustls::TlsConnector::from(config.clone()),
                server_name: server_name(s.url)?,
            }),
            None => None,
        };
        // A connect that hangs must be reported as unreachable (nothing was sent), so it
        // has to give up before the route timeout turns it into a 504.
        let connect_timeout = (s.timeout / 2).min(Duration::from_secs(5));
        let pools = (0..=workers::count())
            .map(|_| {
                Pool::new(
                    address.clone(),
                    tls.clone(),
                    connect_timeout,
                    UPSTREAM_IDLE_TIMEOUT,
                )
            })
            .collect();
        let upstream = Upstream {
            pools,
            address,
            host: HeaderValue::from_str(authority.as_str()).ok()?,
            path: s.url.path().to_owned(),
            query: s.url.query().map(str::to_owned),
            uri: origin_form(s.url.path(), s.url.query())?,
            route: HeaderValue::from_str(s.route).ok()?,
            verified: HeaderValue::from_str(s.provider).ok()?,
            strip: s.strip,
            add: s.add,
            attest: s.attest,
            telemetry: s.telemetry,
            timeout: s.timeout,
            metrics,
        };
        Some(upstream)
    }

    /// The pool of the worker thread this runs on.
    fn pool(&self) -> &Pool {
        let index = workers::current().map_or(0, |w| w + 1);
        &self.pools[index % self.pools.len()]
    }

    /// The upstream URI for a request: the configured path, the configured query joined
    /// with the request's own.
    fn uri_for(&self, incoming: &Uri) -> Option<Uri> {
        match (self.query.as_deref(), incoming.query()) {
            (_, None) => Some(self.uri.clone()),
            (Some(a), Some(b)) => origin_form(&self.path, Some(&format!("{a}&{b}"))),
            (None, Some(b)) => origin_form(&self.path, Some(b)),
        }
    }

    /// Rewrites the provider's headers into what the upstream receives.
    fn headers_for(&self, req: &mut Request<Bytes>) {
        let ctx = req.extensions().get::<RequestContext>().cloned();
        let delivery = req.extensions().get::<DeliveryId>().cloned();
        let replay_of = req.extensions().get::<ReplayOf>().cloned();
        let attempt = req.extensions().get::<Attempt>().copied();
        let traceparent = req.extensions().get::<Trace>().and_then(Trace::traceparent);
        let verified = req
            .extensions()
            .get::<VerifiedBy>()
            .and_then(|v| HeaderValue::from_str(&v.0).ok())
            .unwrap_or_else(|| self.verified.clone());
        let body = req.body().clone();
        let len = body.len();
        // HTTP/2 carries the host as the URI's authority, not a Host header.
        let authority = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        let h = req.headers_mut();
        strip_hop_by_hop(h);
        let spoofed: Vec<HeaderName> = h
            .keys()
            .filter(|k| k.as_str().starts_with("x-hookwall-"))
            .cloned()
            .collect();
        for name in spoofed.iter().chain(&self.strip) {
            h.remove(name);
        }
        if let Some(original) = h.remove(header::HOST).or(authority) {
            h.insert(X_FORWARDED_HOST, original);
        }
        h.insert(header::HOST, self.host.clone());
        if let Some(ctx) = &ctx {
            client_headers::rewrite(h, ctx.peer.ip(), ctx.peer_trusted);
            if !(ctx.peer_trusted && h.contains_key(&X_FORWARDED_PROTO)) {
                let proto = if ctx.https { "https" } else { "http" };
                h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
            }
            if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
                h.insert(X_REQUEST_ID, v);
            }
        }
        h.insert(X_HOOKWALL_ROUTE, self.route.clone());
        // Shadow mode: what hookwall would have answered; and no claim of a signature that
        // did not verify.
        let record = ctx.as_ref().map(|c| &c.record);
        if let Some(why) = record.and_then(|r| r.would_reject.get()) {
            h.insert(
                X_HOOKWALL_WOULD_REJECT,
                HeaderValue::from_static(why.reason()),
            );
        }
        let authentic = record.is_none_or(|r| r.unverified.get().is_none());
        if authentic {
            h.insert(X_HOOKWALL_VERIFIED, verified);
        }
        if let Some(DeliveryId(id)) = &delivery {
            if let Ok(v) = HeaderValue::from_str(id) {
                h.insert(X_HOOKWALL_DELIVERY_ID, v);
            }
        }
        if let Some(ReplayOf(entry)) = replay_of {
            if let Ok(v) = HeaderValue::from_str(&entry) {
                h.insert(X_HOOKWALL_REPLAY_OF, v);
            }
        }
        if let Some(Attempt(n)) = attempt {
            h.insert(X_HOOKWALL_ATTEMPT, HeaderValue::from(n));
        }
        // The upstream's request is a hop of the same trace: its parent is `forward`.
        if let Some(tp) = traceparent {
            h.insert(TRACEPARENT, tp);
        }
        for (name, value) in &self.add {
            h.insert(name.clone(), value.clone());
        }
        // Attesting says hookwall verified it: never for what shadow mode let through
        // unverified.
        if let Some(attestor) = self.attest.as_ref().filter(|_| authentic) {
            // The id the app sees is the one the journal and dedup know this delivery by.
            let id = delivery
                .as_ref()
                .map(|d| &*d.0)
                .filter(|id| HeaderValue::from_str(id).is_ok())
                .or(ctx.as_ref().map(|c| &*c.request_id));
            if let Some(id) = id {
                attest(h, attestor, id, &body);
            }
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }

    pub(crate) async fn send(self: Arc<Self>, mut req: Request<Bytes>) -> HttpResponse {
        let rid = request_id(&req);
        let record = req
            .extensions()
            .get::<RequestContext>()
            .map(|c| c.record.clone());
        let Some(uri) = self.uri_for(req.uri()) else {
            return respond::rejection(&rid, Rejection::UpstreamError);
        };
        // A replay carries no trace: its forward continues the stored request's, if any.
        let address = || {
            vec![opentelemetry::KeyValue::new(
                "server.address",
                self.address.clone(),
            )]
        };
        let span = match req.extensions().get::<Trace>() {
            Some(parent) => self.telemetry.child(
                parent,
                "forward",
                opentelemetry::trace::SpanKind::Client,
                address,
            ),
            None => self.telemetry.root(
                "forward",
                opentelemetry::trace::SpanKind::Client,
                Some(req.headers()),
                address,
            ),
        };
        req.extensions_mut().insert(span.clone());
        self.headers_for(&mut req);
        let (mut parts, body) = req.into_parts();
        // The answer goes back in the client's protocol version, whatever the upstream's.
        let client_version = parts.version;
        parts.uri = uri;
        parts.version = http::Version::HTTP_11;
        parts.extensions = http::Extensions::new();
        let out = Request::from_parts(parts, Full::new(body));

        let started = tokio::time::Instant::now();
        let mut accepted = false;
        let attempt = async {
            let (resp, lease) = self.pool().send(out).await.map_err(|e| {
                let rejection = match e {
                    SendError::Unreachable(_) => Rejection::UpstreamUnreachable,
                    SendError::Failed(_) => Rejection::UpstreamError,
                };
                (rejection, failure_cause(&e, &self.address))
            })?;
            accepted = resp.status().is_success();
            let (mut parts, body) = resp.into_parts();
            let read = read_start(body, WHOLE_ANSWER_MAX).await.map_err(|e| {
                let cause = format!("answer body broke off: {e} ({})", self.address);
                (Rejection::UpstreamError, cause)
            })?;
            let body = match read {
                AnswerStart::Whole(bytes) => {
                    lease.reuse();
                    AnswerBody::from(bytes)
                }
                AnswerStart::Longer(head, rest) => {
                    // The connection is busy until the client has taken the answer: it
                    // closes after it instead of going back to the pool.
                    drop(lease);
                    AnswerBody::streamed(head, rest, started + self.timeout)
                }
            };
            strip_hop_by_hop(&mut parts.headers);
            parts.version = client_version;
            Ok::<_, (Rejection, String)>(Response::from_parts(parts, body))
        };
        let result = tokio::time::timeout(self.timeout, attempt).await;
        let took = started.elapsed().as_secs_f64();
        self.metrics.upstream_duration.observe(took);
        if let Some(record) = &record {
            let _ = record.upstream_ms.set(took * 1000.0);
        }
        let mut resp = match result {
            Ok(Ok(mut resp)) => {
                let status = resp.status();
                resp.extensions_mut().insert(Outcome::Forwarded(status));
                resp
            }
            Ok(Err((rejection, cause))) => {
                let mut resp = respond::rejection(&rid, rejection);
                resp.extensions_mut().insert(UpstreamFailure(cause));
                resp
            }
            Err(_) => {
                let mut resp = respond::rejection(&rid, Rejection::UpstreamTimeout);
                let cause = format!(
                    "no answer within {} ({})",
                    humantime::format_duration(self.timeout),
                    self.address
                );
                resp.extensions_mut().insert(UpstreamFailure(cause));
                resp
            }
        };
        if accepted {
            resp.extensions_mut().insert(UpstreamAccepted);
        }
        span.end_with(&resp);
        resp
    }
}

/// The forwarding service: cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub(crate) struct Forward {
    upstream: Arc<Upstream>,
}

impl Forward {
    /// Forwards to `upstream`.
    pub(crate) fn new(upstream: Arc<Upstream>) -> Self {
        Forward { upstream }
    }
}

impl Service<Request<Bytes>> for Forward {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = crate::layers::ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The pool queues internally; there is no backpressure to report here (load
        // shedding happens before the stack).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let upstream = self.upstream.clone();
        Box::pin(async move { Ok(upstream.send(req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_addresses_for_names_ipv4_and_ipv6() {
        let address = |u: &str| connect_address(&u.parse::<Uri>().unwrap()).unwrap();
        assert_eq!(address("http://app.internal/x"), "app.internal:80");
        assert_eq!(address("https://app.internal/x"), "app.internal:443");
        assert_eq!(
            server_name(&"https://[::1]:8443/x".parse().unwrap()),
            Some(ServerName::try_from("::1").unwrap())
        );
        assert_eq!(address("http://127.0.0.1:3000/x"), "127.0.0.1:3000");
        assert_eq!(address("http://[::1]:3000/x"), "[::1]:3000");
        let parsed: std::net::SocketAddr = address("http://[::1]:3000/x").parse().unwrap();
        assert_eq!(parsed.port(), 3000);
        assert_eq!(origin_form("/", None).unwrap(), "/");
        assert_eq!(origin_form("/h", Some("a=1")).unwrap(), "/h?a=1");
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-secret-hop".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("content-type"));
    }
}
