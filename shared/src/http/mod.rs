//! A blocking HTTP/1.1 server layer over `std::io`, on httparse: what sync-thread and sync-pool
//! serve connections with.
//!
//! One call of [`serve_connection`] owns one connection and answers its requests in order, on
//! the calling thread. It handles keep-alive and `Connection: close` (HTTP/1.0 and 1.1),
//! pipelined requests, requests split across any number of reads, and bad input:
//!
//! - request line and headers over 8 KiB, or over 100 headers: 431, then close;
//! - a body (no route takes one): up to 8 KiB is read and ignored, more is 413, chunked is
//!   400, then close;
//! - malformed bytes: 400, then close;
//! - a request still incomplete 10 s after its first byte (slowloris): 408, then close;
//! - no new request within 5 s on a kept-alive connection: closed silently.
//!
//! A thread is the scarce thing in the sync models, so the timeouts are what stop a slow or
//! idle client from holding one forever. Error answers carry the contract's JSON body.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::error::{is_timeout, AppError};
use crate::request::Reply;
use crate::shutdown::OpenConnections;

/// The most bytes of request line and headers.
pub const MAX_HEAD: usize = crate::config::MAX_HEAD;
/// The most body bytes read and ignored.
pub const MAX_BODY: usize = 8 * 1024;
const MAX_HEADERS: usize = 100;

/// Limits and timeouts of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_head: usize,
    pub max_body: usize,
    /// From a request's first byte to its last header.
    pub request_timeout: Duration,
    /// Between requests on a kept-alive connection; `None` waits for ever.
    pub idle_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::from(&crate::ConnLimits::default())
    }
}

impl From<&crate::ConnLimits> for Limits {
    fn from(conn: &crate::ConnLimits) -> Limits {
        Limits {
            max_head: conn.max_head,
            max_body: MAX_BODY,
            request_timeout: conn.header_timeout,
            idle_timeout: conn.keep_alive_timeout,
        }
    }
}

/// What the layer needs of a socket beyond `Read + Write`.
pub trait Transport: Read + Write {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Transport for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// A request line with what the layer decided from the headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: &'a str,
    pub target: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The client asked to keep the connection open.
    pub keep_alive: bool,
    /// Body bytes that follow the head.
    pub body_len: usize,
}

/// The outcome of parsing the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    /// More bytes are needed.
    Partial,
    /// A whole head of `head_len` bytes.
    Complete { head: Head<'a>, head_len: usize },
    /// The request cannot be served; answer the error and close.
    Invalid(AppError),
}

/// Parses a request head at the start of `buf`.
pub fn parse_head<'a>(buf: &'a [u8], limits: &Limits) -> Parse<'a> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head => {
            return Parse::Invalid(AppError::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => return Parse::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parse::Invalid(AppError::HeadersTooLarge),
        Err(e) => {
            return Parse::Invalid(AppError::MalformedRequest(format!(
                "malformed request: {e}"
            )))
        }
    };
    if head_len > limits.max_head {
        return Parse::Invalid(AppError::HeadersTooLarge);
    }
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Parse::Invalid(AppError::MalformedRequest("incomplete request line".into()));
    };
    let mut content_length: Option<usize> = None;
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value).unwrap_or("").trim();
            let parsed = match value.parse::<usize>() {
                Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Parse::Invalid(AppError::MalformedRequest("bad Content-Length".into()))
                }
            };
            if content_length.is_some() {
                return Parse::Invalid(AppError::MalformedRequest(
                    "repeated Content-Length headers".into(),
                ));
            }
            content_length = Some(parsed);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Invalid(AppError::MalformedRequest(
                "Transfer-Encoding request bodies are not accepted".into(),
            ));
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in std::str::from_utf8(header.value).unwrap_or("").split(',') {
                let token = token.trim();
                connection_close |= token.eq_ignore_ascii_case("close");
                connection_keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > limits.max_body {
        return Parse::Invalid(AppError::BodyTooLarge);
    }
    let keep_alive = if version == 1 {
        !connection_close
    } else {
        connection_keep_alive && !connection_close
    };
    Parse::Complete {
        head: Head {
            method,
            target,
            version,
            keep_alive,
            body_len,
        },
        head_len,
    }
}

/// Whether the response closes the connection, and how it says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// HTTP/1.1 keep-alive: no header needed.
    None,
    /// An HTTP/1.0 client that asked for keep-alive.
    KeepAlive,
    /// The server closes after this response.
    Close,
}

/// Appends a whole response to `out`. A response to HEAD has no body.
pub fn write_response(
    out: &mut Vec<u8>,
    server: &str,
    reply: &Reply,
    connection: ConnectionHeader,
    head_request: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(reply.status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reply.reason().as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(server.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(&crate::date::http_date());
    out.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
    out.extend_from_slice(reply.body.len().to_string().as_bytes());
    if let Some(allow) = reply.allow {
        out.extend_from_slice(b"\r\nAllow: ");
        out.extend_from_slice(allow.as_bytes());
    }
    match connection {
        ConnectionHeader::None => {}
        ConnectionHeader::KeepAlive => out.extend_from_slice(b"\r\nConnection: keep-alive"),
        ConnectionHeader::Close => out.extend_from_slice(b"\r\nConnection: close"),
    }
    out.extend_from_slice(b"\r\n\r\n");
    if !head_request {
        out.extend_from_slice(&reply.body);
    }
}

/// Accepts the next connection; `None` once a drain has shut the listener. When accept fails
/// otherwise (out of file descriptors, most likely), it says so and backs off 10 ms instead of
/// spinning.
pub fn accept(
    listener: &std::net::TcpListener,
    server: &str,
    connections: &OpenConnections,
) -> Option<std::net::TcpStream> {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Err(_) if connections.is_draining() => return None,
            Err(e) => {
                eprintln!("{server}: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// How many requests a connection serves: the model's choice, not the client's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// Requests one after another until the client closes or idles out (sync-thread).
    PerConnection,
    /// One request, answered with `Connection: close` (gunicorn's sync worker, sync-pool).
    OneRequest,
}

/// Serves one connection until it closes, as `keep_alive` says; `handle(method, path, query)`
/// makes each reply. Once `draining`
/// says so, the answer in progress is the last: it says `Connection: close`.
pub fn serve_connection<T, H>(
    stream: &mut T,
    server: &str,
    keep_alive: KeepAlive,
    limits: &Limits,
    draining: &dyn Fn() -> bool,
    mut handle: H,
) -> io::Result<()>
where
    T: Transport,
    H: FnMut(&str, &str, Option<&str>) -> Reply,
{
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(512);
    loop {
        // Wait for a whole head: idle time first, then the request timeout from its first byte.
        let mut started = (!buf.is_empty()).then(Instant::now);
        let (head_len, body_len) = loop {
            match parse_head(&buf, limits) {
                Parse::Complete { head, head_len } => break (head_len, head.body_len),
                Parse::Invalid(error) => return answer_and_close(stream, server, &error),
                Parse::Partial => {}
            }
            let timeout = match started {
                None => limits.idle_timeout,
                Some(t) => Some(limits.request_timeout.saturating_sub(t.elapsed())),
            };
            match read_more(stream, &mut buf, timeout) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    started.get_or_insert_with(Instant::now);
                }
                Err(e) if is_timeout(&e) => {
                    return match started {
                        // Idle keep-alive connection: close without a word.
                        None => Ok(()),
                        Some(_) => answer_and_close(stream, server, &request_timeout(limits)),
                    };
                }
                Err(e) => return Err(e),
            }
        };
        // Read any (small) body, so that the next request starts where it should.
        while buf.len() < head_len + body_len {
            let timeout = Some(
                limits
                    .request_timeout
                    .saturating_sub(started.map_or(Duration::ZERO, |t| t.elapsed())),
            );
            match read_more(stream, &mut buf, timeout) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {
                    return answer_and_close(stream, server, &request_timeout(limits))
                }
                Err(e) => return Err(e),
            }
        }
        let Parse::Complete { head, .. } = parse_head(&buf, limits) else {
            unreachable!("a head that parsed once parses again");
        };
        let (path, query) = crate::request::split_target(head.target);
        let reply = handle(head.method, path, query);
        let keep = keep_alive == KeepAlive::PerConnection && head.keep_alive && !draining();
        let connection = match (keep, head.version) {
            (false, _) => ConnectionHeader::Close,
            (true, 0) => ConnectionHeader::KeepAlive,
            (true, _) => ConnectionHeader::None,
        };
        out.clear();
        write_response(&mut out, server, &reply, connection, head.method == "HEAD");
        stream.write_all(&out)?;
        buf.drain(..head_len + body_len);
        if !keep {
            close_gracefully(stream, !buf.is_empty());
            return Ok(());
        }
    }
}

fn request_timeout(limits: &Limits) -> AppError {
    AppError::RequestTimeout {
        waited_ms: limits.request_timeout.as_millis() as u64,
    }
}

/// Reads what is there (at least one byte, or 0 at end of stream) into `buf`, waiting at most
/// `timeout` (`None`: for ever).
fn read_more<T: Transport>(
    stream: &mut T,
    buf: &mut Vec<u8>,
    timeout: Option<Duration>,
) -> io::Result<usize> {
    if timeout.is_some_and(|t| t.is_zero()) {
        return Err(io::ErrorKind::TimedOut.into());
    }
    stream.set_read_timeout(timeout)?;
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Answers a request that cannot be served, then closes.
fn answer_and_close<T: Transport>(
    stream: &mut T,
    server: &str,
    error: &AppError,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256);
    write_response(
        &mut out,
        server,
        &Reply::error(error),
        ConnectionHeader::Close,
        false,
    );
    stream.write_all(&out)?;
    close_gracefully(stream, true);
    Ok(())
}

/// Closes our side, and when the client may still be sending, reads a little of it first:
/// closing a socket with unread bytes resets it, and the reset can destroy the response in
/// flight. Bounded to 50 ms and 64 KiB.
fn close_gracefully<T: Transport>(stream: &mut T, unread: bool) {
    let _ = stream.flush();
    let _ = stream.shutdown_write();
    if !unread {
        return;
    }
    let deadline = Instant::now() + Duration::from_millis(50);
    let mut drained = 0;
    let mut chunk = [0u8; 4096];
    while drained < 64 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

#[cfg(test)]
mod tests;
