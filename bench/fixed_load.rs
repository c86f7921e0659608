//! A fixed number of requests, for counting instructions (bench/instructions.sh): wrk
//! runs for a time, this runs for a count, so two runs do the same work.
//!
//!   fixed_load upstream 127.0.0.1:PORT
//!       answers every request `200 ok` (keep-alive), until killed;
//!   fixed_load send URL COUNT CONNECTIONS SECRET RUN
//!       sends COUNT POSTs of a fixed 1 KiB JSON body over CONNECTIONS keep-alive
//!       connections, signed as bench/run.sh's route expects (`X-Bench-Signature:
//!       sha256=<hex HMAC-SHA256 of the body>`), each with a unique `X-Bench-Delivery`
//!       (`RUN-<n>`); prints `FIXED_LOAD sent=N ok=N`; exits 1 if any answer was not 2xx.
//!       `FIXED_LOAD_BODY=BYTES` makes the body that long (default 1024);
//!       `FIXED_LOAD_HOLD=SECONDS` keeps every connection open that long after the last
//!       answer, printing `FIXED_LOAD holding` first (for measuring idle connections).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start a runtime: {e}")));
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["upstream", addr] => runtime.block_on(upstream(addr)),
        ["send", url, count, conns, secret, run] => {
            let count = count.parse().unwrap_or_else(|_| fail("COUNT is a number"));
            let conns = conns
                .parse()
                .unwrap_or_else(|_| fail("CONNECTIONS is a number"));
            runtime.block_on(send(url, count, conns, secret, run));
        }
        _ => fail(
            "usage: fixed_load upstream ADDR | fixed_load send URL COUNT CONNECTIONS SECRET RUN",
        ),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("fixed_load: {message}");
    std::process::exit(1)
}

async fn upstream(addr: &str) {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot bind {addr}: {e}")));
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|req: Request<Incoming>| async move {
                // Read the whole body, as an application would.
                drain(req.into_body()).await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            let _ = server::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Reads a body to its end, keeping nothing.
async fn drain(mut body: Incoming) {
    while let Some(Ok(_)) = body.frame().await {}
}

/// A JSON body of `size` bytes (at least a few dozen), the same bytes every time.
fn body(size: usize) -> Bytes {
    let mut b = br#"{"type":"bench.event","data":{"pad":""#.to_vec();
    let tail = br#""}}"#;
    b.resize(size.max(b.len() + tail.len()) - tail.len(), b'x');
    b.extend_from_slice(tail);
    Bytes::from(b)
}

async fn send(url: &str, count: usize, conns: usize, secret: &str, run: &str) {
    let uri: http::Uri = url.parse().unwrap_or_else(|_| fail("URL does not parse"));
    let authority = uri
        .authority()
        .unwrap_or_else(|| fail("URL has no host:port"))
        .to_string();
    let path = uri.path().to_owned();
    let env_number = |name: &str, default: u64| match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| fail(&format!("{name} is a number"))),
        Err(_) => default,
    };
    let body = body(env_number("FIXED_LOAD_BODY", 1024) as usize);
    let hold = std::time::Duration::from_secs(env_number("FIXED_LOAD_HOLD", 0));
    let done = Arc::new(tokio::sync::Barrier::new(conns.max(1) + 1));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| fail("bad secret"));
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let conns = conns.max(1);
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // Connection k sends requests k, k + conns, k + 2 conns, ...: the same share each,
    // and every connection at least one request while count >= conns.
    for k in 0..conns {
        let (authority, path, body, signature, run) = (
            authority.clone(),
            path.clone(),
            body.clone(),
            signature.clone(),
            run.to_owned(),
        );
        let (ok, done) = (ok.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&authority)
                .await
                .unwrap_or_else(|e| fail(&format!("cannot connect to {authority}: {e}")));
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) = client::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .unwrap_or_else(|e| fail(&format!("handshake: {e}")));
            tokio::spawn(conn);
            for n in (k..count).step_by(conns) {
                let req = Request::post(&path)
                    .header(http::header::HOST, &authority)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header("x-bench-signature", &signature)
                    .header("x-bench-delivery", format!("{run}-{n}"))
                    .body(Full::new(body.clone()))
                    .unwrap_or_else(|_| fail("cannot build a request"));
                if sender.ready().await.is_err() {
                    fail("the connection closed");
                }
                let resp = sender
                    .send_request(req)
                    .await
                    .unwrap_or_else(|e| fail(&format!("request failed: {e}")));
                let status = resp.status();
                drain(resp.into_body()).await;
                if status.is_success() {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!("fixed_load: answer {status}");
                }
            }
            // Keep the connection (sender and its task) open until every one is done.
            done.wait().await;
            tokio::time::sleep(hold).await;
            drop(sender);
        }));
    }
    done.wait().await;
    if !hold.is_zero() {
        println!("FIXED_LOAD holding");
    }
    for t in tasks {
        let _ = t.await;
    }
    let ok = ok.load(Ordering::Relaxed);
    println!("FIXED_LOAD sent={count} ok={ok}");
    if ok != count {
        std::process::exit(1);
    }
}
