//! The proxy listener's transport: accept, hand each connection to a worker thread, TLS,
//! HTTP/1.1 or h2, per-connection deadlines, and the drain on shutdown.
//!
//! [`run`] accepts on the calling runtime and hands each connection to one of the worker
//! threads ([`workers`], round robin), which serves all of its requests through
//! [`Gateway::handle`](crate::gateway::Gateway) (the request front, `front.rs`). It serves
//! until `shutdown` resolves, then stops accepting at once and gives open connections
//! `server.shutdown_grace` to finish what they are doing.
//!
//! Settings a connection is served with ([`ConnectionSettings`]: read, write and idle
//! timeouts, header limits) belong to the live config, so a reload applies them to every
//! connection accepted after it.

mod connection;
mod deadlines;
mod descriptors;
mod drain;
pub(crate) mod tls;
pub mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::gateway::Gateway;

pub(crate) use descriptors::raise_open_files_limit;
pub(crate) use drain::Drain;

use connection::Connection;
use deadlines::Limits;
use descriptors::{Budget, Slot};
use workers::Workers;

/// Largest request head (request line + headers) accepted; hyper answers 431 beyond it.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields accepted in one request.
const MAX_HEADERS: usize = 100;
/// Most concurrent h2 streams per connection.
const MAX_H2_STREAMS: u32 = 256;
/// How long accept waits after a failure (usually: no file descriptor left) before trying
/// again, so a descriptor shortage neither spins nor stops the listener.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How connections are served: built from `[server]` whenever the config is, so a reload
/// applies to the connections accepted after it.
#[derive(Debug)]
pub(crate) struct ConnectionSettings {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    limits: Limits,
}

impl ConnectionSettings {
    /// The settings `[server]` asks for.
    pub(crate) fn new(server: &ServerConfig) -> Self {
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            // The head deadline is ours (`deadlines.rs`): hyper's own timer also runs while
            // a keep-alive connection sits idle, and idle connections get `idle_timeout`.
            .header_read_timeout(None)
            // Both: the buffer cap only applies while a head is incomplete, so a head that
            // arrives in one read is held to the limit by max_header_size.
            .max_buf_size(MAX_HEAD_BYTES)
            .max_header_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEADERS)
            .keep_alive(true);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(MAX_H2_STREAMS)
            .max_header_list_size(MAX_HEAD_BYTES as u32)
            // A peer that stops answering pings is dropped after about two read_timeouts.
            .keep_alive_interval(Some(server.read_timeout))
            .keep_alive_timeout(server.read_timeout);
        ConnectionSettings {
            http1: h1,
            http2: h2,
            limits: Limits {
                read: server.read_timeout,
                write: server.write_timeout,
                idle: server.idle_timeout,
            },
        }
    }
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
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            () = &mut shutdown => return None,
        }
    }
}

/// How often a listener at its connection cap asks idle connections again to close.
const PRESS_EVERY: Duration = Duration::from_millis(100);

/// A connection slot in `budget`: at once if one is free, else once idle connections,
/// asked to close, have made room; `None` once `shutdown` resolves.
async fn next_slot(
    budget: &Budget,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<Slot> {
    if let Some(slot) = budget.try_slot() {
        return Some(slot);
    }
    tracing::warn!(
        max_connections = budget.cap(),
        "proxy connections at the open-files budget: closing idle ones, new ones wait"
    );
    loop {
        budget.press();
        tokio::select! {
            slot = budget.slot() => return Some(slot),
            () = tokio::time::sleep(PRESS_EVERY) => {}
            () = &mut shutdown => return None,
        }
    }
}

/// Serves the proxy listener until `shutdown` resolves, then drains within the live
/// config's `shutdown_grace`.
pub async fn run(listener: TcpListener, gateway: Arc<Gateway>, shutdown: impl Future<Output = ()>) {
    let drain = Drain::new();
    let workers = match Workers::start(workers::count()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(error = %e, "cannot start worker threads; serving on the main runtime");
            None
        }
    };
    let budget = Budget::of_this_process();
    if let Some(b) = &budget {
        tracing::info!(
            max_connections = b.cap(),
            "proxy connections bounded by the open-files limit"
        );
    }
    tokio::pin!(shutdown);
    loop {
        let slot = match &budget {
            Some(b) => match next_slot(b, shutdown.as_mut()).await {
                Some(slot) => Some((slot, b.pressure())),
                None => break,
            },
            None => None,
        };
        let Some((stream, peer)) = next_connection(&listener, shutdown.as_mut()).await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection::new(gateway.clone(), peer, drain.watcher(), slot);
        let task = connection.serve(stream, gateway.tls_acceptor());
        match &workers {
            Some(workers) => workers.spawn(task),
            None => drop(tokio::spawn(task)),
        }
    }
    drop(listener);
    let grace = gateway.live().config().server.shutdown_grace;
    tracing::info!(grace = ?grace, "listener closed; draining in-flight requests");
    if drain.finish(grace).await {
        tracing::info!("all connections drained");
    } else {
        tracing::warn!("shutdown grace elapsed with requests still in flight");
    }
}
