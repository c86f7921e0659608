//! The proxy listener: accept loop, per-request front (route match, load shedding, client
//! IP, context), metrics and the log line, and graceful shutdown.
//!
//! `run(listener, gateway, shutdown)` accepts on the calling runtime and hands each
//! connection to one of the worker threads (`workers.rs`, round robin), which serves all of
//! its requests. It serves until `shutdown` resolves, then stops accepting at once and
//! gives in-flight requests `server.shutdown_grace` to finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::header::ALLOW;
use http::{HeaderValue, Request};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::access_log::{AccessLog, Entry};
use crate::client_ip::{canonical, client_ip, is_in};
use crate::clock::{Clock, SystemClock};
use crate::config::{compile_file, CompileErrors, Config};
use crate::context::{Outcome, RequestContext, RequestIds};
use crate::dedup::{DedupStore, Stores};
use crate::error::Rejection;
use crate::metrics::Metrics;
use crate::respond::{self, HttpResponse};
use crate::router::Routes;
use crate::stack::Shared;
use crate::tls::Termination;

mod tracked_stream;
pub mod workers;

use tracked_stream::TrackedStream;
use workers::Workers;

/// Largest request head (request line + headers) accepted; hyper answers 431 beyond it.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields accepted in one request.
const MAX_HEADERS: usize = 100;

/// Everything the listeners share.
#[derive(Debug)]
pub struct Gateway {
    routes: ArcSwap<Routes>,
    shared: Shared,
    shedder: Arc<Semaphore>,
    ids: RequestIds,
    access_log: AccessLog,
    /// The certificate resolver and acceptor when `[server] tls` is set.
    tls: Option<Termination>,
}

/// Why a reload was refused.
#[derive(Debug)]
pub enum ReloadError {
    /// The file does not compile.
    Invalid(CompileErrors),
    /// It compiled but a route could not be built.
    Build(String),
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Invalid(e) => write!(f, "{e}"),
            ReloadError::Build(e) => f.write_str(e),
        }
    }
}

impl Gateway {
    /// A gateway for `config` with the system clock and the configured store.
    pub fn new(config: Config) -> Result<Arc<Self>, String> {
        let stores = crate::dedup::build(&config.dedup)?;
        Self::with_parts(config, stores, Arc::new(SystemClock))
    }

    /// A gateway with an explicit store and clock (tests, embedding).
    pub fn with_parts(
        config: Config,
        stores: Stores,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, String> {
        let shared = Shared {
            store: stores.dedup,
            redis: stores.redis,
            metrics: Arc::new(Metrics::default()),
            clock,
        };
        let shedder = Arc::new(Semaphore::new(
            config.server.max_concurrency.min(Semaphore::MAX_PERMITS),
        ));
        let tls = match &config.server.tls {
            Some((_, key)) => Some(Termination::new(key.clone())?),
            None => None,
        };
        let routes = Routes::build(Arc::new(config), &shared, None)?;
        Ok(Arc::new(Gateway {
            routes: ArcSwap::from_pointee(routes),
            shared,
            shedder,
            ids: RequestIds::default(),
            access_log: AccessLog::default(),
            tls,
        }))
    }

    /// The metric families.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The dedup store.
    pub fn store(&self) -> &Arc<dyn DedupStore> {
        &self.shared.store
    }

    /// The live route table.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load_full()
    }

    /// Re-reads the config file and swaps in the new table only if all of it builds.
    /// In-flight requests finish on the table they started with.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let current = self.routes.load_full();
        let result = compile_file(current.config.source())
            .map_err(ReloadError::Invalid)
            .and_then(|config| {
                Routes::build(Arc::new(config), &self.shared, Some(&current))
                    .map_err(ReloadError::Build)
            });
        match result {
            Ok(routes) => {
                self.reload_tls(&current.config, &routes.config);
                self.routes.store(Arc::new(routes));
                self.shared.metrics.reload(true);
                tracing::info!(config = %current.config.source().display(), "config reloaded");
                Ok(())
            }
            Err(e) => {
                self.shared.metrics.reload(false);
                tracing::error!(error = %e, "config reload refused; the previous config keeps serving");
                Err(e)
            }
        }
    }

    /// Serves a renewed certificate to new connections; open ones keep theirs.
    fn reload_tls(&self, old: &Config, new: &Config) {
        match (&self.tls, &new.server.tls) {
            (Some(tls), Some((_, key))) => tls.replace(key.clone()),
            (None, None) => {}
            _ => {
                tracing::warn!("turning TLS on or off needs a restart; the listener keeps its mode")
            }
        }
        if old.server.listen != new.server.listen || old.admin.listen != new.admin.listen {
            tracing::warn!("listen addresses change on restart only");
        }
    }

    /// The TLS acceptor, when the proxy listener terminates TLS.
    pub fn tls_acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.tls.as_ref().map(Termination::acceptor)
    }

    /// Handles one request on the proxy listener. Never fails: every problem is an answer.
    pub async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        https: bool,
    ) -> HttpResponse {
        let received = tokio::time::Instant::now();
        let request_id = self.ids.next_id();
        let routes = self.routes.load_full();
        let Some(route) = routes.get(req.uri().path()).cloned() else {
            let resp = respond::rejection(&request_id, Rejection::UnknownRoute);
            finish(
                &self,
                &routes.unknown,
                "_unknown",
                &request_id,
                peer.ip(),
                &resp,
                received,
            );
            return resp;
        };
        let metrics = route.metrics.clone();
        let name = route.config.name.as_str();
        let trusted = &routes.config.server.trusted_proxies;
        let client = client_ip(peer.ip(), req.headers(), trusted);

        let resp = if !route.config.methods.contains(req.method()) {
            let mut resp = respond::rejection(&request_id, Rejection::MethodNotAllowed);
            let allow = route
                .config
                .methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(v) = HeaderValue::from_str(&allow) {
                resp.headers_mut().insert(ALLOW, v);
            }
            resp
        } else if let Ok(_permit) = self.shedder.clone().try_acquire_owned() {
            self.shared.metrics.in_flight.inc();
            let _in_flight = InFlightGuard(&self.shared.metrics);
            req.extensions_mut().insert(RequestContext {
                request_id: request_id.clone(),
                peer,
                client_ip: client,
                peer_trusted: is_in(trusted, canonical(peer.ip())),
                received,
                https,
            });
            let Ok(resp) = route.service.clone().oneshot(req).await;
            resp
        } else {
            respond::rejection(&request_id, Rejection::Overloaded)
        };
        finish(&self, &metrics, name, &request_id, client, &resp, received);
        resp
    }
}

/// Decrements the in-flight gauge however the request ends (including cancellation).
struct InFlightGuard<'a>(&'a Metrics);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// Counts and logs a finished request.
fn finish(
    gateway: &Gateway,
    metrics: &crate::metrics::RouteMetrics,
    route: &str,
    request_id: &str,
    client: std::net::IpAddr,
    resp: &HttpResponse,
    received: tokio::time::Instant,
) {
    let outcome = respond::outcome_of(resp);
    let latency = received.elapsed();
    metrics.record(outcome);
    metrics.request_duration.observe(latency.as_secs_f64());
    gateway.access_log.record(&Entry {
        request_id,
        route,
        outcome,
        status: resp.status().as_u16(),
        latency,
        client,
    });
}

/// The next accepted connection, or `None` once `shutdown` resolves. Accept errors (usually
/// out of file descriptors) back off briefly instead of spinning or stopping the listener.
pub(crate) async fn next_connection(
    listener: &TcpListener,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => return None,
        }
    }
}

/// Serves the proxy listener until `shutdown` resolves, then drains within `grace`.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let read_timeout = gateway.routes().config.server.read_timeout;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    // TLS connections negotiate h2 or HTTP/1.1 by ALPN.
    let tls = gateway.tls_acceptor();
    let mut http2 = http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        // A peer that stops answering pings is dropped after about two read_timeouts.
        .keep_alive_interval(Some(read_timeout))
        .keep_alive_timeout(read_timeout);
    let builders = Arc::new(Builders {
        http1: builder,
        http2,
    });
    let workers = match Workers::start(workers::count()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(error = %e, "cannot start worker threads; serving on the main runtime");
            None
        }
    };
    tokio::pin!(shutdown);
    loop {
        let Some((stream, peer)) = next_connection(&listener, shutdown.as_mut()).await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let serve = Connection {
            gateway: gateway.clone(),
            peer,
            watcher: graceful.watcher(),
        };
        let task: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = match &tls {
            Some(acceptor) => {
                Box::pin(serve.tls(stream, acceptor.clone(), builders.clone(), read_timeout))
            }
            None => Box::pin(serve.plain(stream, builders.clone())),
        };
        match &workers {
            Some(workers) => workers.spawn(task),
            None => drop(tokio::spawn(task)),
        }
    }
    drop(listener);
    tracing::info!(grace = ?grace, "listener closed; draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(grace) => tracing::warn!("shutdown grace elapsed with requests still in flight"),
    }
}

/// The HTTP/1.1 and h2 connection settings, built once.
struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<hyper_util::rt::TokioExecutor>,
}

/// One accepted connection, served on whichever runtime polls it.
struct Connection {
    gateway: Arc<Gateway>,
    peer: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
}

impl Connection {
    /// The request handler for this connection.
    fn service(
        &self,
        https: bool,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = HttpResponse,
        Error = Infallible,
        Future = impl Future<Output = Result<HttpResponse, Infallible>> + Send,
    > + Clone
           + Send {
        let (gw, peer) = (self.gateway.clone(), self.peer);
        service_fn(move |req| {
            let gw = gw.clone();
            async move { Ok::<_, Infallible>(gw.handle(req, peer, https).await) }
        })
    }

    /// Moves the socket to the runtime polling this future (a worker's, usually).
    fn rehome(stream: tokio::net::TcpStream) -> Option<tokio::net::TcpStream> {
        Self::rehome_with(stream, |_| Ok(())).map(|(s, ())| s)
    }

    /// [`Self::rehome`], also keeping a second handle on the socket: hyper drops its own
    /// when a request head times out, and this one can still send the 408. Without a
    /// descriptor to spare (EMFILE) the connection is served all the same, minus that 408.
    fn rehome_with_spare(
        stream: tokio::net::TcpStream,
    ) -> Option<(tokio::net::TcpStream, Option<std::net::TcpStream>)> {
        Self::rehome_with(stream, |s| Ok(s.try_clone().ok()))
    }

    fn rehome_with<T>(
        stream: tokio::net::TcpStream,
        also: impl FnOnce(&std::net::TcpStream) -> std::io::Result<T>,
    ) -> Option<(tokio::net::TcpStream, T)> {
        let moved = stream.into_std().and_then(|s| {
            let extra = also(&s)?;
            Ok((tokio::net::TcpStream::from_std(s)?, extra))
        });
        match moved {
            Ok(moved) => Some(moved),
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand a connection to a worker");
                None
            }
        }
    }

    /// Plain HTTP/1.1.
    async fn plain(self, stream: tokio::net::TcpStream, builders: Arc<Builders>) {
        let Some((stream, spare)) = Self::rehome_with_spare(stream) else {
            return;
        };
        self.http1(stream, false, &builders.http1, spare).await;
    }

    /// HTTP/1.1 on a plain or TLS stream. A request head that stalls is counted as
    /// `read_timeout` and, given a `spare` handle on a plain socket, answered 408.
    async fn http1<S>(
        self,
        stream: S,
        https: bool,
        builder: &http1::Builder,
        spare: Option<std::net::TcpStream>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let reading = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stream = TrackedStream {
            inner: stream,
            reading: reading.clone(),
        };
        let service = self.service(https);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        if let Err(e) = self.watcher.watch(conn).await {
            let peer = self.peer;
            let stalled_head = reading.load(std::sync::atomic::Ordering::Relaxed);
            if e.is_timeout() && stalled_head {
                // The head did not arrive in time: no route can be named.
                let routes = self.gateway.routes();
                routes
                    .unknown
                    .record(Outcome::Rejected(Rejection::ReadTimeout));
                let request_id = self.gateway.ids.next_id();
                let answered = spare.is_some_and(|s| answer_stalled_head(s, &request_id));
                tracing::info!(request_id = %request_id, client_ip = %peer.ip(), reason = "read_timeout", answered_408 = answered, "request head too slow; connection closed");
            } else if !e.is_timeout() {
                tracing::debug!(error = %e, client_ip = %peer.ip(), "connection ended with an error");
            }
        }
    }

    /// TLS, then h2 or HTTP/1.1 as negotiated by ALPN.
    async fn tls(
        self,
        stream: tokio::net::TcpStream,
        acceptor: tokio_rustls::TlsAcceptor,
        builders: Arc<Builders>,
        read_timeout: Duration,
    ) {
        let Some(stream) = Self::rehome(stream) else {
            return;
        };
        let peer = self.peer;
        // The handshake is bounded like a request head.
        let tls_stream = match tokio::time::timeout(read_timeout, acceptor.accept(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return tracing::debug!(error = %e, client_ip = %peer.ip(), "TLS handshake failed")
            }
            Err(_) => return tracing::debug!(client_ip = %peer.ip(), "TLS handshake too slow"),
        };
        // ALPN decides (RFC 9113 §3.2): h2, else HTTP/1.1 with the same head timer as
        // plain connections (no sniffing for a preface, which no timer bounds).
        if tls_stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            return self.http1(tls_stream, true, &builders.http1, None).await;
        }
        let service = self.service(true);
        let conn = builders
            .http2
            .serve_connection(TokioIo::new(tls_stream), service);
        if let Err(e) = self.watcher.watch(conn).await {
            tracing::debug!(error = %e, client_ip = %peer.ip(), "h2 connection ended with an error");
        }
    }
}

/// Sends `408 read_timeout` on a socket whose request head stalled, then closes it. The
/// socket is non-blocking: if the client is not reading (a full send buffer), it just
/// closes, as it would have anyway.
fn answer_stalled_head(mut socket: std::net::TcpStream, request_id: &str) -> bool {
    use std::io::Write;
    let answer = respond::rejection_http1(request_id, Rejection::ReadTimeout);
    let sent = socket.write_all(&answer).is_ok();
    if sent {
        let _ = socket.shutdown(std::net::Shutdown::Write);
    }
    sent
}
