//! The body of every answer on the proxy listener: a whole one (everything the gateway
//! says itself, and upstream answers that are small, which webhook handlers' are), or a
//! large upstream answer passed through as it arrives.
//!
//! Streaming is what bounds memory: a whole 8 MiB answer queued for a client that does not
//! read would stay in memory until `write_timeout`, once per such client. Streamed, the
//! upstream's bytes are read only as fast as the client takes them, so each connection
//! holds at most hyper's buffers, whatever the answer's size.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::BoxError;

/// An answer's body.
#[derive(Debug)]
pub enum AnswerBody {
    /// All of it, in memory.
    Whole(Full<Bytes>),
    /// An upstream answer: what was read already, then the rest as it arrives.
    Streamed(Box<Streamed>),
}

/// The rest of an upstream answer, read on demand until its deadline.
#[derive(Debug)]
pub struct Streamed {
    head: Option<Bytes>,
    rest: Incoming,
    /// The route's `timeout` bounds the whole answer, streamed or not.
    deadline: Pin<Box<Sleep>>,
}

impl AnswerBody {
    /// `head` (already read), then the rest of `rest`, which must end by `deadline`.
    pub(crate) fn streamed(head: Bytes, rest: Incoming, deadline: Instant) -> Self {
        AnswerBody::Streamed(Box::new(Streamed {
            head: (!head.is_empty()).then_some(head),
            rest,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }))
    }
}

impl From<Full<Bytes>> for AnswerBody {
    fn from(body: Full<Bytes>) -> Self {
        AnswerBody::Whole(body)
    }
}

impl From<Bytes> for AnswerBody {
    fn from(bytes: Bytes) -> Self {
        AnswerBody::Whole(Full::new(bytes))
    }
}

impl Streamed {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        loop {
            if self.deadline.as_mut().poll(cx).is_ready() {
                // Cut off: the client sees the answer end early, never a wrong one.
                let late: BoxError =
                    "the upstream's answer did not end within the route's timeout".into();
                return Poll::Ready(Some(Err(late)));
            }
            match Pin::new(&mut self.rest).poll_frame(cx) {
                // Trailers describe the upstream hop; they are not passed on.
                Poll::Ready(Some(Ok(frame))) if !frame.is_data() => {}
                other => return other.map_err(Into::into),
            }
        }
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            AnswerBody::Whole(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            AnswerBody::Streamed(s) => s.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AnswerBody::Whole(full) => full.is_end_stream(),
            AnswerBody::Streamed(s) => s.head.is_none() && s.rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AnswerBody::Whole(full) => full.size_hint(),
            AnswerBody::Streamed(s) => {
                let head = s.head.as_ref().map_or(0, |h| h.len() as u64);
                let rest = s.rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + head);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + head);
                }
                hint
            }
        }
    }
}
