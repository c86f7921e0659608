//! Per-connection deadlines, enforced on the connection's stream (TCP, or TLS over it):
//!
//! - **read_timeout** for a request head: from the first byte of a request to the moment the
//!   request reaches the front. A head that stalls (slowloris) is answered `408
//!   read_timeout` through the stream itself, where the protocol allows it, and the
//!   connection is closed. The body has its own deadline (`layers/body_limit.rs`).
//! - **write_timeout** for a client that stops reading: a write that makes no progress for
//!   this long ends the connection, so pipelined answers nobody reads cannot pile up.
//! - **idle_timeout** between requests (h1 keep-alive, h2 with no open stream), watched by
//!   the connection task through [`Activity`], which then closes the connection gracefully.
//!
//! hyper's own header timer is off: it also runs while a keep-alive connection sits idle,
//! which would make `idle_timeout` and `read_timeout` one setting.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The three connection timeouts of `[server]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// A request head must arrive within this.
    pub(crate) read: Duration,
    /// A write may make no progress for this long.
    pub(crate) write: Duration,
    /// A connection may sit between requests this long.
    pub(crate) idle: Duration,
}

/// What the front and the stream know of one connection: requests in progress, and since
/// when it has been idle.
#[derive(Debug)]
pub(crate) struct Activity {
    active: AtomicUsize,
    /// Requests that reached the front so far: a head that started before the last one did
    /// is finished.
    entered: AtomicUsize,
    idle_since: Mutex<Instant>,
    ended: Notify,
}

/// Marks one request in progress until dropped.
#[derive(Debug)]
pub(crate) struct Busy<'a>(&'a Activity);

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Activity {
            active: AtomicUsize::new(0),
            entered: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            ended: Notify::new(),
        })
    }

    /// A request reached the front.
    pub(crate) fn enter(&self) -> Busy<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.entered.fetch_add(1, Ordering::Relaxed);
        Busy(self)
    }

    /// Whether a request is in progress.
    pub(crate) fn busy(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    fn idle_since(&self) -> Instant {
        *self
            .idle_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether no request has been in progress for at least `idle`.
    pub(crate) fn idle_for_at_least(&self, idle: Duration) -> bool {
        !self.busy() && self.idle_since().elapsed() >= idle
    }

    /// Resolves once the connection has had no request in progress for `idle`.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the check, so an end in between is not missed.
            ended.as_mut().enable();
            if self.busy() {
                ended.await;
                continue;
            }
            let deadline = self.idle_since() + idle;
            if deadline <= Instant::now() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = ended => {}
            }
            if !self.busy() && self.idle_since() + idle <= Instant::now() {
                return;
            }
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::Relaxed) == 1 {
            *self
                .0
                .idle_since
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
            self.0.ended.notify_waiters();
        }
    }
}

/// Called when a request head stalls: counts and logs it, and gives the bytes of the 408
/// to send (`None` where the protocol has no place for one).
pub(crate) type OnStall = Box<dyn FnOnce() -> Option<Vec<u8>> + Send>;

/// A connection's stream with the head and write deadlines.
pub(crate) struct Deadlines<S> {
    inner: S,
    activity: Arc<Activity>,
    limits: Limits,
    /// h1 only: heads are timed (an h2 peer's pings would look like a head that never ends).
    heads: bool,
    /// The running head's deadline, and how many requests had entered when it started.
    head: Option<(Instant, usize)>,
    write_deadline: Option<Instant>,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    on_stall: Option<OnStall>,
}

impl<S> Deadlines<S> {
    /// Deadlines for an HTTP/1.1 connection; `on_stall` answers a stalled head.
    pub(crate) fn http1(
        inner: S,
        activity: Arc<Activity>,
        limits: Limits,
        on_stall: OnStall,
    ) -> Self {
        Self::new(inner, activity, limits, true, Some(on_stall))
    }

    /// Deadlines for an h2 connection (writes only; h2 has its own head framing and pings).
    pub(crate) fn http2(inner: S, activity: Arc<Activity>, limits: Limits) -> Self {
        Self::new(inner, activity, limits, false, None)
    }

    fn new(
        inner: S,
        activity: Arc<Activity>,
        limits: Limits,
        heads: bool,
        on_stall: Option<OnStall>,
    ) -> Self {
        Deadlines {
            inner,
            activity,
            limits,
            heads,
            head: None,
            write_deadline: None,
            read_timer: None,
            write_timer: None,
            on_stall,
        }
    }
}

/// Polls a timer set to `deadline` (made or moved as needed): ready once it has passed.
fn expired(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    let sleep = match timer {
        Some(sleep) => {
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            sleep
        }
        None => timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
    };
    sleep.as_mut().poll(cx).is_ready()
}

fn timed_out(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Deadlines<S> {
    /// Sends the stall answer, if any, without waiting: a client that is not reading does
    /// not get one.
    fn answer_stall(&mut self, cx: &mut Context<'_>) {
        let Some(answer) = self.on_stall.take().and_then(|f| f()) else {
            return;
        };
        let inner = Pin::new(&mut self.inner);
        if let Poll::Ready(Ok(n)) = inner.poll_write(cx, &answer) {
            if n == answer.len() {
                let _ = Pin::new(&mut self.inner).poll_flush(cx);
                let _ = Pin::new(&mut self.inner).poll_shutdown(cx);
            }
        }
    }

    fn write_progress<T>(
        &mut self,
        poll: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => {
                let deadline = *self
                    .write_deadline
                    .get_or_insert_with(|| Instant::now() + self.limits.write);
                if expired(&mut self.write_timer, deadline, cx) {
                    return Poll::Ready(Err(timed_out("client stopped reading (write_timeout)")));
                }
                Poll::Pending
            }
            done => {
                self.write_deadline = None;
                done
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if !this.heads {
            return poll;
        }
        let entered = this.activity.entered.load(Ordering::Relaxed);
        if this.activity.busy() || this.head.is_some_and(|(_, n)| n != entered) {
            // The head reached the front (its body has its own deadline there).
            this.head = None;
            if this.activity.busy() {
                return poll;
            }
        }
        match poll {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                // The first bytes of a head start its clock.
                this.head
                    .get_or_insert_with(|| (Instant::now() + this.limits.read, entered));
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.head {
                Some((deadline, _)) if expired(&mut this.read_timer, deadline, cx) => {
                    this.answer_stall(cx);
                    Poll::Ready(Err(timed_out("request head too slow (read_timeout)")))
                }
                _ => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.write_progress(poll, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.write_progress(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.write_progress(poll, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.write_progress(poll, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMITS: Limits = Limits {
        read: Duration::from_secs(2),
        write: Duration::from_secs(3),
        idle: Duration::from_secs(5),
    };

    #[tokio::test(start_paused = true)]
    async fn a_stalled_head_is_answered_and_cut_after_read_timeout() {
        let (client, server) = tokio::io::duplex(1024);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let activity = Activity::new();
        let mut stream = Deadlines::http1(
            server,
            activity,
            LIMITS,
            Box::new(|| Some(b"HTTP/1.1 408 x\r\n\r\n".to_vec())),
        );
        client_write
            .write_all(b"POST / HTTP/1.1\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(stream.read(&mut buf).await.unwrap() > 0);
        let started = Instant::now();
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMITS.read);
        let mut answer = Vec::new();
        client_read.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"HTTP/1.1 408 x\r\n\r\n");
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_reached_the_front_is_not_timed_afterwards() {
        let (client, server) = tokio::io::duplex(1024);
        let (_client_read, mut client_write) = tokio::io::split(client);
        let activity = Activity::new();
        let mut stream = Deadlines::http1(server, activity.clone(), LIMITS, Box::new(|| None));
        client_write
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(stream.read(&mut buf).await.unwrap() > 0);
        // The whole request came in one read; it is served and done.
        drop(activity.enter());
        assert!(tokio::time::timeout(LIMITS.read * 3, stream.read(&mut buf))
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_has_no_head_deadline_and_a_busy_one_none_either() {
        let (_client, server) = tokio::io::duplex(1024);
        let activity = Activity::new();
        let mut stream = Deadlines::http1(server, activity.clone(), LIMITS, Box::new(|| None));
        let mut buf = [0u8; 16];
        // Nothing arrived: this read just waits (the idle timer is the task's business).
        assert!(tokio::time::timeout(LIMITS.read * 3, stream.read(&mut buf))
            .await
            .is_err());
        let _busy = activity.enter();
        assert!(tokio::time::timeout(LIMITS.read * 3, stream.read(&mut buf))
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_after_write_timeout() {
        let (_client, server) = tokio::io::duplex(16);
        let mut stream = Deadlines::http2(server, Activity::new(), LIMITS);
        let started = Instant::now();
        let err = stream.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMITS.write);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_for_counts_from_the_end_of_the_last_request() {
        let activity = Activity::new();
        let busy = activity.enter();
        let started = Instant::now();
        let waiter = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.idle_for(LIMITS.idle).await })
        };
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert!(!waiter.is_finished(), "busy connections are never idle");
        drop(busy);
        waiter.await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(7) + LIMITS.idle);
    }
}
