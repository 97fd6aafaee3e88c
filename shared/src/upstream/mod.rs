//! The upstream fetch: the request bytes, a response reader for HTTP/1.1, and the fetch loop
//! with keep-alive reuse, timeouts and the retry on a connection the server had closed.
//!
//! It is generic over the socket ([`Connection`]), so the blocking client (a
//! `std::net::TcpStream`) and may-green's cooperative client (a `may::net::TcpStream`, whose
//! waits park the coroutine) share all of it. How each one waits is its model; the bytes on the
//! wire and the error mapping are the same.
//!
//! It counts the body rather than keeping it: the contract's answer is `{"status":S,"bytes":N}`.
//! It understands `Content-Length`, `Transfer-Encoding: chunked` (what nginx's echo module sends
//! to an HTTP/1.1 client) and read-to-close, and says whether the connection can be reused.

use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::UpstreamUrl;
use crate::error::{is_timeout, one_line, AppError};
use crate::request::UpstreamReply;

/// How long a fetch may take beyond the delay it asks for, before it is a 504.
pub const UPSTREAM_GRACE: Duration = Duration::from_secs(3);

/// The most response header bytes the reader accepts.
const MAX_HEAD: usize = 16 * 1024;

/// The deadline of one fetch: the delay asked of the upstream plus [`UPSTREAM_GRACE`].
pub fn upstream_timeout(delay_ms: u32) -> Duration {
    Duration::from_millis(u64::from(delay_ms)) + UPSTREAM_GRACE
}

/// The request bytes of one fetch, keep-alive.
pub fn request_bytes(url: &UpstreamUrl, delay_ms: u32) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rust-web-perf\r\nAccept: */*\r\n\r\n",
        url.target(delay_ms),
        url.authority
    )
    .into_bytes()
}

/// Maps an I/O error of a fetch: a timeout is 504, no descriptor left 503 (the server's own
/// limit), anything else 502.
pub fn io_error(error: &io::Error, waited: Duration) -> AppError {
    if crate::error::is_out_of_descriptors(error) {
        AppError::OutOfDescriptors("an upstream connection".into())
    } else if is_timeout(error) {
        AppError::UpstreamTimeout {
            waited_ms: waited.as_millis() as u64,
        }
    } else {
        AppError::UpstreamFailed(one_line(error))
    }
}

/// Idle keep-alive connections a client keeps for reuse, at most.
pub const MAX_IDLE: usize = 1024;

/// A socket the fetch loop can use: `std::net::TcpStream` for the sync targets, may's for
/// may-green (whose waits park the coroutine). Only how they wait differs.
pub trait Connection: Read + Write + Sized {
    /// Connects within `timeout`, with Nagle off.
    fn connect(addr: &SocketAddr, timeout: Duration) -> io::Result<Self>;
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Connection for std::net::TcpStream {
    fn connect(addr: &SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = std::net::TcpStream::connect_timeout(addr, timeout)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
}

/// The lock around a client's idle connections: std's mutex for the sync targets, may's for
/// may-green (which parks the coroutine, not the worker thread, when it is taken). The only
/// thing the two keep-alive clients do differently.
pub trait IdleLock<C>: Default {
    /// Runs `f` on the idle connections, with the lock held.
    fn with_idle<R>(&self, f: impl FnOnce(&mut Vec<C>) -> R) -> Option<R>;
}

impl<C> IdleLock<C> for std::sync::Mutex<Vec<C>> {
    fn with_idle<R>(&self, f: impl FnOnce(&mut Vec<C>) -> R) -> Option<R> {
        self.lock().ok().map(|mut idle| f(&mut idle))
    }
}

/// Places for fetches in flight: at most the number given, and a fetch that finds none waits
/// for one (std's condition variable for the sync targets, may's semaphore for may-green).
/// With `fanout=K` a connection can have K fetches in flight; the places keep their
/// connections within the descriptor budget's upstream part.
pub trait Gate {
    fn with_places(places: usize) -> Self;
    fn enter(&self);
    fn leave(&self);
}

/// The sync targets' places: a count and a condition variable.
pub struct BlockingGate {
    free: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Gate for BlockingGate {
    fn with_places(places: usize) -> BlockingGate {
        BlockingGate {
            free: std::sync::Mutex::new(places),
            freed: std::sync::Condvar::new(),
        }
    }

    fn enter(&self) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
    }

    fn leave(&self) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.freed.notify_one();
    }
}

/// A place held for one fetch, given back when dropped (a panic included).
struct Place<'a, G: Gate>(&'a G);

impl<G: Gate> Drop for Place<'_, G> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// A keep-alive client of the upstream page: [`fetch`] over connections of type `C`, up to
/// [`MAX_IDLE`] of them kept idle behind the lock `L`, at most as many fetches in flight as
/// the gate `G` has places.
pub struct KeepAliveClient<C, L, G> {
    url: UpstreamUrl,
    idle: L,
    gate: G,
    connection: PhantomData<fn() -> C>,
}

impl<C: Connection, L: IdleLock<C>, G: Gate> KeepAliveClient<C, L, G> {
    /// A client with `places` fetches in flight at most (`None`: no limit worth the name,
    /// 2^30, which may's semaphore can count).
    pub fn new(url: &UpstreamUrl, places: Option<usize>) -> KeepAliveClient<C, L, G> {
        KeepAliveClient {
            url: url.clone(),
            idle: L::default(),
            gate: G::with_places(places.unwrap_or(1 << 30)),
            connection: PhantomData,
        }
    }

    /// One GET with `?delay_ms=N`, read to the end and counted; 504 past the timeout, 502 on
    /// any other failure. It waits for a place first.
    pub fn fetch(&self, delay_ms: u32) -> Result<UpstreamReply, AppError> {
        self.gate.enter();
        let _place = Place(&self.gate);
        fetch(
            &self.url,
            delay_ms,
            || self.idle.with_idle(Vec::pop).flatten(),
            |stream| {
                self.idle.with_idle(|idle| {
                    if idle.len() < MAX_IDLE {
                        idle.push(stream);
                    }
                });
            },
        )
    }
}

/// One GET with `?delay_ms=N` over a kept-alive connection from `take_idle` (or a new one); the
/// body is read to the end and counted, and a connection that can serve again goes to
/// `keep_idle`. 504 past [`upstream_timeout`], 502 on any other failure. A reused connection
/// the server had already closed is retried on another: the request never reached a live
/// server.
pub fn fetch<C: Connection>(
    url: &UpstreamUrl,
    delay_ms: u32,
    take_idle: impl Fn() -> Option<C>,
    keep_idle: impl Fn(C),
) -> Result<UpstreamReply, AppError> {
    let started = Instant::now();
    let deadline = started + upstream_timeout(delay_ms);
    let request = request_bytes(url, delay_ms);
    let mut buf = Vec::new();
    loop {
        let reused = take_idle();
        let is_reused = reused.is_some();
        let mut stream = match reused {
            Some(stream) => stream,
            None => connect(&url.addr, deadline, started)?,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(AppError::UpstreamTimeout {
                waited_ms: started.elapsed().as_millis() as u64,
            });
        }
        let attempt = stream
            .set_read_timeout(Some(left))
            .and_then(|()| stream.write_all(&request))
            .map_err(ReadError::Io)
            .and_then(|()| read_response(&mut stream, &mut buf));
        match attempt {
            Ok(response) => {
                // Unread bytes would belong to no request: such a connection is not reused.
                if response.reusable && buf.is_empty() {
                    keep_idle(stream);
                }
                return Ok(response.reply);
            }
            Err(e) if is_reused && closed_under_us(&e) => continue,
            Err(e) => return Err(e.into_app_error(started.elapsed())),
        }
    }
}

fn connect<C: Connection>(
    addr: &SocketAddr,
    deadline: Instant,
    started: Instant,
) -> Result<C, AppError> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .min(UPSTREAM_GRACE)
        .max(Duration::from_millis(1));
    C::connect(addr, left).map_err(|e| match io_error(&e, started.elapsed()) {
        AppError::UpstreamFailed(_) => {
            AppError::UpstreamFailed(format!("cannot connect to {addr}: {e}"))
        }
        mapped => mapped,
    })
}

/// A reused keep-alive connection that the server had closed: retrying on a new one is safe,
/// as the request never reached a live server. A timeout is not that.
fn closed_under_us(error: &ReadError) -> bool {
    match error {
        ReadError::ClosedBeforeResponse => true,
        ReadError::Io(e) => !is_timeout(e),
        ReadError::Protocol(_) => false,
    }
}

/// A parsed response: what the contract reports, and whether the connection may be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    pub reply: UpstreamReply,
    pub reusable: bool,
}

/// Why a response could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed or timed out.
    Io(io::Error),
    /// The peer closed the connection before sending a single byte: on a reused keep-alive
    /// connection this means the server had already closed it, and the request may be retried.
    ClosedBeforeResponse,
    /// The bytes were not a valid HTTP/1.1 response.
    Protocol(String),
}

impl ReadError {
    pub fn into_app_error(self, waited: Duration) -> AppError {
        match self {
            ReadError::Io(e) => io_error(&e, waited),
            ReadError::ClosedBeforeResponse => {
                AppError::UpstreamFailed("the upstream closed the connection".into())
            }
            ReadError::Protocol(msg) => AppError::UpstreamFailed(format!("bad response: {msg}")),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads one response from `stream`. `buf` carries bytes read past a response to the next call:
/// keep it with the connection.
pub fn read_response(stream: &mut impl Read, buf: &mut Vec<u8>) -> Result<Response, ReadError> {
    read_response_capturing(stream, buf, None, false)
}

/// What a caller that inspects responses (the harness's checks) keeps of one: the raw head and
/// the decoded body.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

/// Reads one response, keeping its head and body in `capture` when given. `after_head` says
/// the request was a HEAD, whose response has headers only.
pub fn read_response_capturing(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    mut capture: Option<&mut Captured>,
    after_head: bool,
) -> Result<Response, ReadError> {
    if let Some(capture) = capture.as_deref_mut() {
        capture.head.clear();
        capture.body.clear();
    }
    let mut input = Cursor {
        stream,
        buf,
        pos: 0,
        sink: None,
    };
    // The head, from bytes left by the previous response first.
    let mut need_more = input.buf.is_empty();
    let (status, framing, keep_alive) = loop {
        if need_more && !input.fill()? {
            return Err(if input.buf.is_empty() {
                ReadError::ClosedBeforeResponse
            } else {
                ReadError::Protocol("connection closed inside the headers".into())
            });
        }
        need_more = true;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(input.buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let http10 = response.version == Some(0);
                let status = response.code.unwrap_or(0);
                let (mut framing, keep_alive) = framing_of(response.headers, http10)?;
                if after_head || status == 204 || status == 304 || status < 200 {
                    framing = Framing::Length(0);
                }
                input.pos = head_len;
                break (status, framing, keep_alive);
            }
            Ok(httparse::Status::Partial) if input.buf.len() > MAX_HEAD => {
                return Err(ReadError::Protocol("response headers over 16 KiB".into()))
            }
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(ReadError::Protocol(e.to_string())),
        }
    };
    // The body, counted, and kept only when captured.
    if let Some(capture) = capture {
        capture.head.extend_from_slice(&input.buf[..input.pos]);
        input.sink = Some(&mut capture.body);
    }
    let (bytes, reusable) = match framing {
        Framing::Length(len) => {
            input.skip(len)?;
            (len, keep_alive)
        }
        Framing::Chunked => (input.chunked_body()?, keep_alive),
        Framing::UntilClose => {
            let mut total = 0;
            loop {
                let available = input.buf.len() - input.pos;
                input.skip(available)?;
                total += available;
                if !input.fill()? {
                    break;
                }
            }
            (total, false)
        }
    };
    // Leave only the unread bytes for the next call.
    let pos = input.pos;
    input.buf.drain(..pos);
    Ok(Response {
        reply: UpstreamReply { status, bytes },
        reusable,
    })
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn framing_of(headers: &[httparse::Header], http10: bool) -> Result<(Framing, bool), ReadError> {
    let mut framing = Framing::UntilClose;
    let mut keep_alive = !http10;
    for header in headers {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let len = value
                .parse()
                .map_err(|_| ReadError::Protocol(format!("bad Content-Length {value:?}")))?;
            if !matches!(framing, Framing::Chunked) {
                framing = Framing::Length(len);
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().ends_with("chunked") {
                framing = Framing::Chunked;
            } else {
                return Err(ReadError::Protocol(format!(
                    "unsupported Transfer-Encoding {value:?}"
                )));
            }
        } else if header.name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            if value.contains("close") {
                keep_alive = false;
            } else if value.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    Ok((framing, keep_alive))
}

/// The unread part of a response: `buf[pos..]`, refilled from `stream` on demand. Consumed bytes
/// are dropped on each refill, so a large body never grows the buffer. Skipped body bytes go
/// to `sink` when there is one.
struct Cursor<'a, R> {
    stream: &'a mut R,
    buf: &'a mut Vec<u8>,
    pos: usize,
    sink: Option<&'a mut Vec<u8>>,
}

impl<R: Read> Cursor<'_, R> {
    /// Reads more bytes; `false` when the peer has closed.
    fn fill(&mut self) -> Result<bool, ReadError> {
        self.buf.drain(..self.pos);
        self.pos = 0;
        // Straight into the heap buffer: a chunk on a coroutine's stack would stay resident
        // for as long as the connection that made the request stays open.
        let start = self.buf.len();
        self.buf.resize(start + 4096, 0);
        let read = loop {
            match self.stream.read(&mut self.buf[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(start + read.as_ref().map_or(0, |n| *n));
        Ok(read? > 0)
    }

    fn fill_or_fail(&mut self, inside: &str) -> Result<(), ReadError> {
        if self.fill()? {
            Ok(())
        } else {
            Err(ReadError::Protocol(format!(
                "connection closed inside {inside}"
            )))
        }
    }

    /// Consumes `n` bytes of body.
    fn skip(&mut self, mut n: usize) -> Result<(), ReadError> {
        loop {
            let take = n.min(self.buf.len() - self.pos);
            if let Some(sink) = self.sink.as_deref_mut() {
                sink.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            }
            self.pos += take;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.fill_or_fail("the body")?;
        }
    }

    /// Consumes one CRLF-terminated line and returns it without the CRLF.
    fn line(&mut self) -> Result<String, ReadError> {
        loop {
            if let Some(i) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + i]).into_owned();
                self.pos += i + 2;
                return Ok(line);
            }
            if self.buf.len() - self.pos > 1024 {
                return Err(ReadError::Protocol(
                    "line over 1 KiB in a chunked body".into(),
                ));
            }
            self.fill_or_fail("a chunked body")?;
        }
    }

    /// Counts the data of a chunked body, through its trailers.
    fn chunked_body(&mut self) -> Result<usize, ReadError> {
        let mut total = 0usize;
        loop {
            let line = self.line()?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| ReadError::Protocol(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                while !self.line()?.is_empty() {}
                return Ok(total);
            }
            self.skip(size)?;
            if !self.line()?.is_empty() {
                return Err(ReadError::Protocol(
                    "chunk data not followed by CRLF".into(),
                ));
            }
            total += size;
        }
    }
}

#[cfg(test)]
mod tests;
