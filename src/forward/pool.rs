//! Keep-alive HTTP/1.1 connections to one upstream, for one worker thread.
//!
//! Why not hyper-util's pooled client: it spawns a task per request to watch the
//! connection become idle again, rewrites the URI and locks a shared pool on every call;
//! here each worker thread has its own pool (see `server::workers`), a connection goes back
//! to it as soon as its answer was read in full, and a request that a reused connection
//! never started (the upstream closed it while idle) is sent again on another.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections kept per worker; more concurrent requests open more, then close them.
const MAX_IDLE: usize = 256;

/// A connected stream, before HTTP.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Why a request got no answer.
#[derive(Debug)]
pub(super) enum SendError {
    /// No connection could be opened: nothing was sent.
    Unreachable(std::io::Error),
    /// The connection failed after the request may have been sent, or the answer was not
    /// valid HTTP.
    Failed(hyper::Error),
}

/// TLS to an `https://` upstream: the client settings and the name to verify.
#[derive(Clone)]
pub(super) struct TlsTarget {
    pub(super) connector: tokio_rustls::TlsConnector,
    pub(super) server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// One worker's connections to one upstream.
#[derive(Debug)]
pub(super) struct Pool {
    /// `host:port` to connect to.
    address: String,
    /// Set for `https://` upstreams.
    tls: Option<TlsTarget>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// Oldest at the front; taken from the back (the warmest connection).
    idle: Mutex<VecDeque<(SendRequest<Full<Bytes>>, Instant)>>,
}

/// A connection in use. [`Lease::reuse`] returns it to the pool once its answer was read
/// in full; dropped otherwise, it closes.
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    sender: SendRequest<Full<Bytes>>,
}

impl Lease<'_> {
    /// The answer was read to its end: the connection can carry the next request.
    pub(super) fn reuse(self) {
        self.pool.put(self.sender);
    }
}

impl Pool {
    /// A pool for `address` (`host:port`), over TLS when `tls` is set; connects on demand.
    pub(super) fn new(
        address: String,
        tls: Option<TlsTarget>,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Pool {
            address,
            tls,
            connect_timeout,
            idle_timeout,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// Sends `req` on an idle connection, or on a new one.
    pub(super) async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Lease<'_>), SendError> {
        while let Some(mut sender) = self.take_idle() {
            // An idle connection the upstream closed meanwhile reports not ready.
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok((resp, Lease { pool: self, sender })),
                Err(mut e) => match e.take_message() {
                    // Never started: safe to send again elsewhere.
                    Some(unsent) => req = unsent,
                    None => return Err(SendError::Failed(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        match sender.send_request(req).await {
            Ok(resp) => Ok((resp, Lease { pool: self, sender })),
            Err(e) => Err(SendError::Failed(e)),
        }
    }

    /// The most recently used idle connection that is still open and not too old.
    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((sender, since)) = idle.pop_back() {
            if !sender.is_closed() && since.elapsed() < self.idle_timeout {
                return Some(sender);
            }
        }
        None
    }

    fn put(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Connections a burst opened and no request used since are closed here, oldest
        // first, as are those beyond the cap.
        while let Some((oldest, since)) = idle.front() {
            let stale = oldest.is_closed() || since.elapsed() >= self.idle_timeout;
            if !stale && idle.len() < MAX_IDLE {
                break;
            }
            idle.pop_front();
        }
        idle.push_back((sender, Instant::now()));
    }

    /// A new connection (TCP, then TLS for https), its I/O driven by a task on this thread.
    /// The connect timeout bounds both: nothing is sent before they succeed.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let open = async {
            let stream = TcpStream::connect(&self.address)
                .await
                .map_err(SendError::Unreachable)?;
            let _ = stream.set_nodelay(true);
            match &self.tls {
                None => Ok(Stream::Plain(stream)),
                Some(t) => t
                    .connector
                    .connect(t.server_name.clone(), stream)
                    .await
                    .map(|s| Stream::Tls(Box::new(s)))
                    .map_err(|e| {
                        SendError::Unreachable(std::io::Error::new(
                            e.kind(),
                            format!("TLS handshake: {e}"),
                        ))
                    }),
            }
        };
        let stream = match tokio::time::timeout(self.connect_timeout, open).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(SendError::Unreachable(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                )))
            }
        };
        match stream {
            Stream::Plain(s) => Self::handshake(s).await,
            Stream::Tls(s) => Self::handshake(*s).await,
        }
    }

    async fn handshake<S>(stream: S) -> Result<SendRequest<Full<Bytes>>, SendError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Failed)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}
