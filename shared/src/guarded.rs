//! The contract's connection limits for the hyper-based targets (tokio-axum, tokio-hyper,
//! compio-tpc), kept below the HTTP layer so that they keep exactly the rules the blocking
//! layer keeps:
//!
//! - a request head over 8 KiB: 431, then close (hyper's smallest buffer limit is 8 KiB of
//!   *buffer*, and axum does not expose it at all);
//! - a head still incomplete `--header-timeout-ms` after its first byte: 408, then close
//!   (hyper's `header_read_timeout` closes without a word, and also counts the idle time
//!   before the first byte);
//! - no byte for `--keep-alive-timeout-ms` between requests: closed without a word (hyper has
//!   no idle timeout).
//!
//! [`GuardedIo`] wraps the socket and watches the bytes that go by: a head ends at the first
//! empty line, a `Content-Length` body after it is skipped, and the first response byte
//! written after a whole head makes the connection idle again. The timers run only while the
//! HTTP layer waits to read, so a request that is being served (a 10 s `pg_sleep`) is never cut.
//!
//! The socket is anything with tokio's I/O traits (tokio's own, or compio's through its
//! compat layer), and the timers are the runtime's: a [`Clock`] ([`TokioClock`] for the tokio
//! targets, `compio_stack::CompioClock` for compio-tpc).

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::AppError;
use crate::http::{write_response, ConnectionHeader};
use crate::request::Reply;
use crate::ConnLimits;

/// A runtime's timers, as a guarded connection uses them: one sleep per connection, moved
/// from deadline to deadline.
pub trait Clock {
    type Sleep: Future<Output = ()>;
    /// A sleep that ends at `deadline`.
    fn sleep_until(deadline: Instant) -> Self::Sleep;
    /// Moves `sleep` to end at `deadline` instead.
    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant);
}

/// tokio's timers (the tokio targets' runtimes have them enabled).
#[cfg(feature = "tokio")]
pub struct TokioClock;

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    type Sleep = tokio::time::Sleep;

    fn sleep_until(deadline: Instant) -> tokio::time::Sleep {
        tokio::time::sleep_until(deadline.into())
    }

    fn reset(sleep: Pin<&mut tokio::time::Sleep>, deadline: Instant) {
        sleep.reset(deadline.into());
    }
}

/// Where the connection is, as seen from the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between requests, since this instant.
    Idle(Instant),
    /// Reading a head that started at this instant.
    Head(Instant),
    /// Skipping this many body bytes of a request that is being served.
    Body(usize),
    /// A whole request is being served.
    Busy,
}

/// A socket that keeps the contract's head limit, header timeout and idle timeout, with the
/// timers of `C`.
#[cfg(feature = "tokio")]
pub type GuardedIo<T> = Guarded<T, TokioClock>;

/// A socket that keeps the contract's head limit, header timeout and idle timeout, with the
/// timers of the runtime's [`Clock`].
pub struct Guarded<T, C: Clock> {
    inner: T,
    server: &'static str,
    limits: ConnLimits,
    phase: Phase,
    /// The head read so far (at most `max_head` bytes), to find its `Content-Length`.
    head: Vec<u8>,
    /// Made at the first wait that has a deadline, with the deadline it is set to.
    timer: Option<(Instant, Pin<Box<C::Sleep>>)>,
    /// A refusal (408 or 431) being written; then the reads end.
    refusal: Option<(Vec<u8>, usize)>,
    /// This connection's share of the descriptor budget, given back when it closes.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    clock: PhantomData<fn() -> C>,
}

impl<T, C: Clock> Guarded<T, C> {
    pub fn new(inner: T, server: &'static str, limits: ConnLimits) -> Guarded<T, C> {
        let now = Instant::now();
        Guarded {
            inner,
            server,
            limits,
            phase: Phase::Idle(now),
            head: Vec::new(),
            timer: None,
            refusal: None,
            _permit: None,
            clock: PhantomData,
        }
    }

    /// The same connection, holding `permit` until it is dropped.
    pub fn holding(mut self, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Guarded<T, C> {
        self._permit = permit;
        self
    }

    /// When the current phase times out, if it does.
    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Idle(since) => self.limits.keep_alive_timeout.map(|t| since + t),
            Phase::Head(started) => Some(started + self.limits.header_timeout),
            Phase::Body(_) | Phase::Busy => None,
        }
    }

    /// Follows the bytes the HTTP layer just read; `Err` when the head grew over the limit.
    fn observe(&mut self, bytes: &[u8]) -> Result<(), AppError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.phase {
                Phase::Body(left) => {
                    let n = left.min(rest.len());
                    rest = &rest[n..];
                    self.phase = if n == left {
                        Phase::Busy
                    } else {
                        Phase::Body(left - n)
                    };
                }
                Phase::Idle(_) | Phase::Busy => {
                    self.phase = Phase::Head(Instant::now());
                    self.head.clear();
                }
                Phase::Head(_) => {
                    // Look for the empty line that ends the head, across reads.
                    let before = self.head.len();
                    let room = self.limits.max_head + 1 - before.min(self.limits.max_head);
                    let take = rest.len().min(room);
                    self.head.extend_from_slice(&rest[..take]);
                    let from = before.saturating_sub(3);
                    match find_head_end(&self.head[from..]) {
                        Some(end) => {
                            let head_len = from + end;
                            if head_len > self.limits.max_head {
                                return Err(AppError::HeadersTooLarge);
                            }
                            let body = content_length(&self.head[..head_len]);
                            rest = &rest[head_len - before..];
                            self.phase = if body > 0 {
                                Phase::Body(body)
                            } else {
                                Phase::Busy
                            };
                        }
                        None if self.head.len() > self.limits.max_head => {
                            return Err(AppError::HeadersTooLarge)
                        }
                        None => rest = &[],
                    }
                }
            }
        }
        Ok(())
    }

    fn refuse(&mut self, error: &AppError) {
        let mut out = Vec::with_capacity(256);
        write_response(
            &mut out,
            self.server,
            &Reply::error(error),
            ConnectionHeader::Close,
            false,
        );
        self.refusal = Some((out, 0));
    }
}

/// The offset just past the first empty line (`\r\n\r\n`, or a bare `\n\n` as httparse
/// accepts), if there is one.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\n' {
            if bytes[i + 1] == b'\n' {
                return Some(i + 2);
            }
            if bytes[i + 1] == b'\r' && bytes.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// The `Content-Length` of a head, 0 when there is none. A malformed or conflicting value is
/// the HTTP layer's to refuse (400); here it counts as no body.
fn content_length(head: &[u8]) -> usize {
    const NAME: &[u8] = b"content-length:";
    head.split(|b| *b == b'\n')
        .filter(|line| line.len() > NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME))
        .filter_map(|line| {
            std::str::from_utf8(&line[NAME.len()..])
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .next()
        .unwrap_or(0)
}

impl<T: AsyncRead + AsyncWrite + Unpin, C: Clock> Guarded<T, C> {
    /// An answer is going out: from here the connection is idle until the next byte. The idle
    /// timer is armed with the writer's waker (the connection's task), because the HTTP layer
    /// may already be parked in a read that started while the request was served, and would
    /// otherwise never look at the timer.
    fn answering(&mut self, cx: &mut Context<'_>) {
        if self.phase != Phase::Busy {
            return;
        }
        self.phase = Phase::Idle(Instant::now());
        if let Some(deadline) = self.deadline() {
            let _ = self.arm(deadline).poll(cx);
        }
    }

    /// The timer, set to `deadline`.
    fn arm(&mut self, deadline: Instant) -> Pin<&mut C::Sleep> {
        let (set, timer) = self
            .timer
            .get_or_insert_with(|| (deadline, Box::pin(C::sleep_until(deadline))));
        if *set != deadline {
            C::reset(timer.as_mut(), deadline);
            *set = deadline;
        }
        timer.as_mut()
    }

    /// Writes the pending refusal; `Ready` once it is out (or the socket failed).
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some((out, written)) = self.refusal.as_mut() {
            if *written >= out.len() {
                let _ = Pin::new(&mut self.inner).poll_shutdown(cx);
                return Poll::Ready(());
            }
            match Pin::new(&mut self.inner).poll_write(cx, &out[*written..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    *written = out.len();
                }
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin, C: Clock> AsyncRead for Guarded<T, C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refusal.is_some() {
            // Refused: the answer goes out, then the HTTP layer reads the end of the stream.
            return this.poll_refusal(cx).map(|()| Ok(()));
        }
        let filled = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[filled..];
                if new.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                if let Err(error) = this.observe(&buf.filled()[filled..]) {
                    // Nothing of this read reaches the HTTP layer: it answers nothing.
                    buf.set_filled(filled);
                    this.refuse(&error);
                    return this.poll_refusal(cx).map(|()| Ok(()));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) = this.deadline() else {
                    return Poll::Pending;
                };
                if this.arm(deadline).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                match this.phase {
                    // Idle too long: the end of the stream, and the layer closes quietly.
                    Phase::Idle(_) => Poll::Ready(Ok(())),
                    _ => {
                        let waited = this.limits.header_timeout;
                        this.refuse(&AppError::RequestTimeout {
                            waited_ms: waited.as_millis() as u64,
                        });
                        this.poll_refusal(cx).map(|()| Ok(()))
                    }
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin, C: Clock> AsyncWrite for Guarded<T, C> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.answering(cx);
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.answering(cx);
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(ms: u64) -> ConnLimits {
        ConnLimits {
            max_head: 64,
            header_timeout: Duration::from_millis(ms),
            keep_alive_timeout: Some(Duration::from_millis(ms)),
        }
    }

    #[test]
    fn heads_end_at_the_empty_line_and_bodies_are_skipped() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        assert_eq!(
            content_length(b"POST / HTTP/1.1\r\ncontent-LENGTH: 12\r\n\r\n"),
            12
        );
        let mut io = GuardedIo::new((), "t", limits(1000));
        io.observe(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
            .unwrap();
        assert_eq!(io.phase, Phase::Body(3));
        io.observe(b"cdeGET /b HTTP/1.1\r\n").unwrap();
        assert!(matches!(io.phase, Phase::Head(_)));
        io.observe(b"\r\n").unwrap();
        assert_eq!(io.phase, Phase::Busy);
    }

    #[test]
    fn a_head_over_the_limit_is_refused_even_before_it_ends() {
        let mut io = GuardedIo::new((), "t", limits(1000));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(100));
        assert_eq!(io.observe(long.as_bytes()), Err(AppError::HeadersTooLarge));
        let mut io = GuardedIo::new((), "t", limits(1000));
        for _ in 0..10 {
            if io.observe(b"X-A: 0123456789\r\n").is_err() {
                return;
            }
        }
        panic!("a head split over many reads was never refused");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_head_gets_408_and_an_idle_connection_the_end_of_the_stream() {
        let (client, server) = tokio::io::duplex(4096);
        let mut guarded = GuardedIo::new(server, "t", limits(100));
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = guarded.read(&mut buf).await.unwrap();
        assert_eq!(n, 16);
        // Nothing more arrives: the read ends at the deadline, with the answer sent.
        let started = Instant::now();
        assert_eq!(guarded.read(&mut buf).await.unwrap(), 0);
        assert!(started.elapsed() >= Duration::from_millis(90));
        drop(guarded);
        let mut answer = String::new();
        client_read.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");

        let (_client, server) = tokio::io::duplex(4096);
        let mut idle = GuardedIo::new(server, "t", limits(100));
        let started = Instant::now();
        assert_eq!(idle.read(&mut buf).await.unwrap(), 0);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
