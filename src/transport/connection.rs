//! One accepted connection: moved to the worker that serves it, TLS when configured, then
//! HTTP/1.1 or h2 (by ALPN) with the deadlines of `deadlines.rs`, until the client closes
//! it, it sits idle past `idle_timeout`, or shutdown asks it to finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::deadlines::{Activity, Deadlines, OnStall};
use super::descriptors::Slot;
use super::drain::Watcher;
use super::ConnectionSettings;
use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::respond::{self, HttpResponse};

/// While the descriptor budget is out, a connection idle this long is closed to make room;
/// one just accepted (or just answered) has this long to send its next request.
const EVICTABLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A connection's task, boxed so plain and TLS connections share one type.
pub(super) type ConnectionTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One accepted connection and what it is served with.
pub(super) struct Connection {
    gateway: Arc<Gateway>,
    peer: SocketAddr,
    drain: Watcher,
    settings: Arc<ConnectionSettings>,
    activity: Arc<Activity>,
    /// Its place in the descriptor budget, and the signal to close while idle when the
    /// budget runs out (`descriptors.rs`).
    budget: Option<(Slot, Arc<Notify>)>,
}

impl Connection {
    /// A connection from `peer`, served with the settings live right now.
    pub(super) fn new(
        gateway: Arc<Gateway>,
        peer: SocketAddr,
        drain: Watcher,
        budget: Option<(Slot, Arc<Notify>)>,
    ) -> Self {
        let settings = gateway.live().connections.clone();
        Connection {
            gateway,
            peer,
            drain,
            settings,
            activity: Activity::new(),
            budget,
        }
    }

    /// Resolves once the connection should close for want of requests: idle past
    /// `idle_timeout`, or idle while the descriptor budget is out.
    fn idle_end(&self, idle: std::time::Duration) -> impl Future<Output = ()> + Send + 'static {
        let activity = self.activity.clone();
        let pressure = self.budget.as_ref().map(|(_, p)| p.clone());
        async move {
            let pressed = async {
                let Some(pressure) = pressure else {
                    return std::future::pending().await;
                };
                loop {
                    pressure.notified().await;
                    // A connection just accepted gets a moment to send its request.
                    if !activity.busy() && activity.idle_for_at_least(EVICTABLE_AFTER) {
                        return;
                    }
                }
            };
            tokio::select! {
                () = activity.idle_for(idle) => {}
                () = pressed => {}
            }
        }
    }

    /// The task that serves it (on whichever runtime polls it).
    pub(super) fn serve(
        self,
        stream: TcpStream,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> ConnectionTask {
        match tls {
            Some(acceptor) => Box::pin(self.tls(stream, acceptor)),
            None => Box::pin(self.plain(stream)),
        }
    }

    /// Moves the socket to the runtime polling this future (a worker's, usually).
    fn rehome(stream: TcpStream) -> Option<TcpStream> {
        match stream.into_std().and_then(TcpStream::from_std) {
            Ok(moved) => Some(moved),
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand a connection to a worker");
                None
            }
        }
    }

    async fn plain(self, stream: TcpStream) {
        let Some(stream) = Self::rehome(stream) else {
            return;
        };
        self.http1(stream, false).await;
    }

    /// TLS, then h2 or HTTP/1.1 as negotiated by ALPN.
    async fn tls(self, stream: TcpStream, acceptor: tokio_rustls::TlsAcceptor) {
        let Some(stream) = Self::rehome(stream) else {
            return;
        };
        let peer = self.peer;
        // The handshake is bounded like a request head.
        let handshake = acceptor.accept(stream);
        let tls = match tokio::time::timeout(self.settings.limits.read, handshake).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return tracing::debug!(error = %e, client_ip = %peer.ip(), "TLS handshake failed")
            }
            Err(_) => return tracing::debug!(client_ip = %peer.ip(), "TLS handshake too slow"),
        };
        // ALPN decides (RFC 9113 §3.2): h2, else HTTP/1.1 with the same head deadline as
        // plain connections (no sniffing for a preface, which no timer bounds).
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            self.http2(tls).await;
        } else {
            self.http1(tls, true).await;
        }
    }

    /// The request handler for this connection: the gateway's front, with the request
    /// counted as activity while it runs.
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
        let (gateway, peer, activity) = (self.gateway.clone(), self.peer, self.activity.clone());
        service_fn(move |req| {
            let (gateway, activity) = (gateway.clone(), activity.clone());
            async move {
                let _busy = activity.enter();
                Ok::<_, Infallible>(gateway.handle(req, peer, https).await)
            }
        })
    }

    /// What a stalled head gets: counted under `_unknown` (no route can be named without a
    /// head) and answered 408.
    fn on_stall(&self) -> OnStall {
        let (gateway, peer) = (self.gateway.clone(), self.peer);
        Box::new(move || {
            let request_id = gateway.connection_rejection(Rejection::ReadTimeout, peer);
            Some(respond::rejection_http1(
                &request_id,
                Rejection::ReadTimeout,
            ))
        })
    }

    async fn http1<S>(mut self, stream: S, https: bool)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.settings.limits;
        let stream = Deadlines::http1(stream, self.activity.clone(), limits, self.on_stall());
        let settings = self.settings.clone();
        let conn = settings
            .http1
            .serve_connection(TokioIo::new(stream), self.service(https));
        tokio::pin!(conn);
        let idle_end = self.idle_end(limits.idle);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = self.drain.shutting_down() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
            () = idle_end => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            self.ended_with(&e);
        }
    }

    async fn http2<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.settings.limits;
        let stream = Deadlines::http2(stream, self.activity.clone(), limits);
        let settings = self.settings.clone();
        let conn = settings
            .http2
            .serve_connection(TokioIo::new(stream), self.service(true));
        tokio::pin!(conn);
        let idle_end = self.idle_end(limits.idle);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = self.drain.shutting_down() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
            () = idle_end => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            self.ended_with(&e);
        }
    }

    /// Counts what hyper's parser refused (it has answered 400 or 431 itself, before any
    /// request existed); everything else is the connection ending, which is routine.
    fn ended_with(&self, e: &hyper::Error) {
        let peer = self.peer;
        if e.is_parse_too_large() {
            self.gateway
                .connection_rejection(Rejection::HeadersTooLarge, peer);
        } else if e.is_parse() {
            self.gateway
                .connection_rejection(Rejection::BadRequest, peer);
        } else {
            tracing::debug!(error = %e, client_ip = %peer.ip(), "connection ended with an error");
        }
    }
}
