//! Capped raw-body read: the only place a body is buffered.
//!
//! A declared `Content-Length` over the cap is refused before a byte is read; a chunked
//! body is refused as soon as it crosses the cap, so no client can make the gateway hold
//! more than `max_body`. Headers and body must arrive within `server.read_timeout`
//! (counted from when the request head was parsed). Rejections: `413 body_too_large`,
//! `408 read_timeout`, `400 bad_request` for malformed chunked framing. The inner service gets `Request<Bytes>`: the exact bytes received.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::Request;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;
use tower::{Layer, Service};

use super::{reject, request_id, ResponseFuture};
use crate::context::RequestContext;
use crate::error::{BoxError, Rejection};
use crate::respond;
use crate::respond::HttpResponse;

/// Why a capped read stopped.
#[derive(Debug)]
pub enum ReadError {
    /// More than the cap.
    TooLarge,
    /// The body broke off or was malformed.
    Broken(BoxError),
}

impl ReadError {
    /// Whether the body's framing was malformed (a bad chunk size line, say) rather than
    /// cut off: the client sent a bad request, it did not run out of time.
    fn malformed(&self) -> bool {
        let ReadError::Broken(e) = self else {
            return false;
        };
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
                );
            }
            source = err.source();
        }
        false
    }
}

/// Reads a whole body, failing as soon as it exceeds `max` bytes.
pub async fn read_capped<B>(body: B, max: usize) -> Result<Bytes, ReadError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    // `Limited` bounds the buffering, which is why this is the one allowed `collect`.
    #[allow(clippy::disallowed_methods)]
    let collected = Limited::new(body, max).collect().await;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ReadError::TooLarge),
        Err(e) => Err(ReadError::Broken(e)),
    }
}

/// Buffers the body up to `max_body` within the read deadline.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    max_body: usize,
    read_timeout: Duration,
}

impl BodyLimitLayer {
    /// A cap and a deadline, both already validated.
    pub fn new(max_body: usize, read_timeout: Duration) -> Self {
        BodyLimitLayer {
            max_body,
            read_timeout,
        }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit {
            inner,
            layer: *self,
        }
    }
}

/// The service built by [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
    layer: BodyLimitLayer,
}

impl<S, B> Service<Request<B>> for BodyLimit<S>
where
    S: Service<Request<Bytes>, Response = HttpResponse, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.layer.max_body as u64) {
            return reject(&req, Rejection::BodyTooLarge);
        }
        let ctx = req.extensions().get::<RequestContext>();
        let deadline =
            ctx.map_or_else(tokio::time::Instant::now, |c| c.received) + self.layer.read_timeout;
        let record = ctx.map(|c| c.record.clone());
        let max = self.layer.max_body;
        let id = request_id(&req);
        // The readied service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let read = tokio::time::timeout_at(deadline, read_capped(body, max)).await;
            let bytes = match read {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(ReadError::TooLarge)) => {
                    return Ok(respond::rejection(&id, Rejection::BodyTooLarge))
                }
                Ok(Err(e)) if e.malformed() => {
                    return Ok(respond::rejection(&id, Rejection::BadRequest))
                }
                // A body that broke off never completed within the read window either.
                Ok(Err(ReadError::Broken(_))) | Err(_) => {
                    return Ok(respond::rejection(&id, Rejection::ReadTimeout))
                }
            };
            if let Some(record) = record {
                let _ = record.body.set(bytes.clone());
            }
            inner.call(Request::from_parts(parts, bytes)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_support::*;
    use http_body_util::Full;
    use hyper::body::Frame;
    use std::pin::Pin;
    use tower::{ServiceBuilder, ServiceExt};

    /// A body that never yields a byte.
    struct Pending;

    impl Body for Pending {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }
    }

    fn with_ctx<B>(body: B) -> Request<B> {
        let mut req = Request::post("/hook").body(body).unwrap();
        req.extensions_mut().insert(context("127.0.0.1"));
        req
    }

    #[tokio::test]
    async fn exact_bytes_pass_through() {
        let svc = ServiceBuilder::new()
            .layer(BodyLimitLayer::new(16, Duration::from_secs(1)))
            .service(echo());
        let body = Bytes::from_static(b"{ \"a\" :\t1 }\xff");
        let resp = svc
            .oneshot(with_ctx(Full::new(body.clone())))
            .await
            .unwrap();
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), body);
    }

    #[tokio::test]
    async fn declared_length_over_cap_is_413_without_reading() {
        let svc = ServiceBuilder::new()
            .layer(BodyLimitLayer::new(16, Duration::from_secs(1)))
            .service(echo());
        // A body that would hang forever if read: the 413 must come from the header alone.
        let mut req = with_ctx(Pending);
        req.headers_mut()
            .insert(CONTENT_LENGTH, "104857600".parse().unwrap());
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(
            status_reason(resp).await,
            (413, Some("body_too_large".into()))
        );
    }

    #[tokio::test]
    async fn streamed_body_over_cap_is_413() {
        let svc = ServiceBuilder::new()
            .layer(BodyLimitLayer::new(4, Duration::from_secs(1)))
            .service(echo());
        let resp = svc
            .oneshot(with_ctx(Full::new(Bytes::from_static(b"12345"))))
            .await
            .unwrap();
        assert_eq!(
            status_reason(resp).await,
            (413, Some("body_too_large".into()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_body_is_408() {
        let svc = ServiceBuilder::new()
            .layer(BodyLimitLayer::new(16, Duration::from_secs(2)))
            .service(echo());
        let resp = svc.oneshot(with_ctx(Pending)).await.unwrap();
        assert_eq!(
            status_reason(resp).await,
            (408, Some("read_timeout".into()))
        );
    }
}
