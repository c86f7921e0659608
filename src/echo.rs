//! `hookwall echo`: a tiny upstream for trying hookwall out. It answers every request
//! `200 {"received": <bytes>}` and, unless quiet, prints what it got: the request line,
//! every header, and the body (as text when it is UTF-8, else as hex). `hookwall demo`
//! runs it quietly as its upstream.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::layers::body_limit::read_capped;

/// Largest body the echo upstream reads; more is answered 413.
const MAX_ECHO_BODY: usize = 16 * 1024 * 1024;

/// What one request looked like, as printed.
fn describe(req: &http::request::Parts, body: &[u8]) -> String {
    let mut out = format!("{} {} {:?}\n", req.method, req.uri, req.version);
    for (name, value) in &req.headers {
        out.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    out.push('\n');
    match std::str::from_utf8(body) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&format!(
            "({} bytes, hex) {}",
            body.len(),
            hex::encode(body)
        )),
    }
    out.push_str("\n---\n");
    out
}

async fn answer(req: Request<Incoming>, print: bool) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(body) = read_capped(body, MAX_ECHO_BODY).await else {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"error\":\"body\"}")));
        *resp.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
        return resp;
    };
    if print {
        // One write per delivery, so concurrent ones do not interleave.
        let _ = std::io::stdout()
            .lock()
            .write_all(describe(&parts, &body).as_bytes());
    }
    let mut resp = Response::new(Full::new(Bytes::from(format!(
        "{{\"received\":{}}}",
        body.len()
    ))));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serves on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, print: bool) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| async move {
                Ok::<_, Infallible>(answer(req, print).await)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Starts a quiet echo upstream on a free loopback port (for `hookwall demo`).
pub(crate) async fn start_quiet() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, false));
    Ok(addr)
}
