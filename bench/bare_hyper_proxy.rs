//! Baseline for the benchmark: the least a hyper reverse proxy can do, with none of
//! hookwall's checks. Each client connection gets its own keep-alive upstream connection;
//! bodies are passed through as they stream; everything runs on one current-thread tokio
//! runtime per CPU (as hookwall does). It shows what hyper itself costs per proxied
//! request on the machine, next to nginx and hookwall.
//!
//!   cargo build --release --example bare_hyper_proxy
//!   target/release/examples/bare_hyper_proxy 127.0.0.1:LISTEN 127.0.0.1:UPSTREAM

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_hyper_proxy LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let listen: SocketAddr = listen
        .parse()
        .unwrap_or_else(|e| fail(&format!("bad listen address: {e}")));
    let listener = std::net::TcpListener::bind(listen)
        .unwrap_or_else(|e| fail(&format!("cannot bind {listen}: {e}")));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<_> = (0..cpus)
        .map(|_| {
            let listener = listener
                .try_clone()
                .unwrap_or_else(|e| fail(&format!("cannot share the listener: {e}")));
            let upstream = upstream.clone();
            std::thread::spawn(move || serve(listener, upstream))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn fail(message: &str) -> ! {
    eprintln!("bare_hyper_proxy: {message}");
    std::process::exit(1)
}

/// One thread: accepts on the shared socket and serves what it accepted.
fn serve(listener: std::net::TcpListener, upstream: String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start a runtime: {e}")));
    runtime.block_on(async move {
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
            .unwrap_or_else(|e| fail(&format!("cannot use the listener: {e}")));
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(up) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = up.set_nodelay(true);
                let Ok((sender, conn)) = client::handshake::<_, Incoming>(TokioIo::new(up)).await
                else {
                    return;
                };
                tokio::spawn(conn);
                let sender = Arc::new(Mutex::new(sender));
                let service = service_fn(move |req: Request<Incoming>| {
                    let sender = sender.clone();
                    async move { Ok::<_, Infallible>(forward(&sender, req).await) }
                });
                let _ = server::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn forward(
    sender: &Mutex<client::SendRequest<Incoming>>,
    req: Request<Incoming>,
) -> Response<Body> {
    let mut sender = sender.lock().await;
    if sender.ready().await.is_err() {
        return bad_gateway();
    }
    match sender.send_request(req).await {
        Ok(resp) => resp.map(BodyExt::boxed),
        Err(_) => bad_gateway(),
    }
}

fn bad_gateway() -> Response<Body> {
    let mut resp = Response::new(
        Full::new(bytes::Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}
