use std::fmt;
use std::io::{self, BufRead, Read};
use std::mem::MaybeUninit;

/// PATCH (rust-web-perf): 16 was too few for ordinary browsers and proxies; 64 fit in the
/// 8 KiB head limit. A head is parsed first with [`FEW_HEADERS`] slots on the coroutine's stack,
/// and only a head with more is parsed again with `MAX_HEADERS` slots on the heap: 64 slots are
/// 2 KiB, and every stack page a connection has touched stays resident while it is idle.
pub(crate) const MAX_HEADERS: usize = 64;
/// PATCH: header slots on the stack (512 bytes); enough for wrk, curl and most browsers.
pub(crate) const FEW_HEADERS: usize = 16;

use bytes::{Buf, BufMut, BytesMut};
use may::net::TcpStream;


pub struct BodyReader<'buf, 'stream> {
    // remaining bytes for body
    req_buf: &'buf mut BytesMut,
    // the max body length limit
    body_limit: usize,
    // total read count
    total_read: usize,
    // used to read extra body bytes
    stream: &'stream mut TcpStream,
}

impl<'buf, 'stream> BodyReader<'buf, 'stream> {
    fn read_more_data(&mut self) -> io::Result<usize> {
        crate::http_server::reserve_buf(self.req_buf);
        let read_buf: &mut [u8] = unsafe { std::mem::transmute(self.req_buf.chunk_mut()) };
        let n = self.stream.read(read_buf)?;
        unsafe { self.req_buf.advance_mut(n) };
        Ok(n)
    }
}

impl<'buf, 'stream> Read for BodyReader<'buf, 'stream> {
    // the user should control the body reading, don't exceeds the body!
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.total_read >= self.body_limit {
            return Ok(0);
        }

        loop {
            if !self.req_buf.is_empty() {
                let min_len = buf.len().min(self.body_limit - self.total_read);
                let n = self.req_buf.reader().read(&mut buf[..min_len])?;
                self.total_read += n;
                return Ok(n);
            }

            if self.read_more_data()? == 0 {
                return Ok(0);
            }
        }
    }
}

impl<'buf, 'stream> BufRead for BodyReader<'buf, 'stream> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let remain = self.body_limit - self.total_read;
        if remain == 0 {
            return Ok(&[]);
        }
        if self.req_buf.is_empty() {
            self.read_more_data()?;
        }
        let n = self.req_buf.len().min(remain);
        Ok(&self.req_buf.chunk()[0..n])
    }

    fn consume(&mut self, amt: usize) {
        assert!(amt <= self.body_limit - self.total_read);
        assert!(amt <= self.req_buf.len());
        self.total_read += amt;
        self.req_buf.advance(amt)
    }
}

impl<'buf, 'stream> Drop for BodyReader<'buf, 'stream> {
    fn drop(&mut self) {
        // consume all the remaining bytes
        while let Ok(n) = self.fill_buf().map(|b| b.len()) {
            if n == 0 {
                break;
            }
            // println!("drop: {:?}", n);
            self.consume(n);
        }
    }
}

// we should hold the mut ref of req_buf
// before into body, this req_buf is only for holding headers
// after into body, this req_buf is mutable to read extra body bytes
// and the headers buf can be reused
pub struct Request<'buf, 'header, 'stream> {
    req: httparse::Request<'header, 'buf>,
    req_buf: &'buf mut BytesMut,
    stream: &'stream mut TcpStream,
    /// PATCH: whether the connection stays open after this request (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`).
    keep_alive: bool,
}

impl<'buf, 'header, 'stream> Request<'buf, 'header, 'stream> {
    pub fn method(&self) -> &str {
        self.req.method.unwrap()
    }

    pub fn path(&self) -> &str {
        self.req.path.unwrap()
    }

    pub fn version(&self) -> u8 {
        self.req.version.unwrap()
    }

    pub fn headers(&self) -> &[httparse::Header<'_>] {
        self.req.headers
    }

    /// PATCH: whether the server keeps the connection open after answering.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// PATCH: the body (at most [`crate::MAX_BODY`]) was read with the head and is skipped
    /// by the server; this reader is always empty.
    pub fn body(self) -> BodyReader<'buf, 'stream> {
        BodyReader {
            body_limit: 0,
            total_read: 0,
            stream: self.stream,
            req_buf: self.req_buf,
        }
    }
}

/// PATCH: why a request is answered by the server itself, with this status, and closed.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: usize,
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    pub(crate) fn new(status: usize, reason: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason,
            message: message.into(),
        }
    }
}

/// PATCH: what the headers say about the connection and the body.
fn inspect(req: &httparse::Request) -> Result<(bool, usize), Refusal> {
    let mut keep_alive = req.version == Some(1);
    let mut content_length: Option<usize> = None;
    for header in req.headers.iter() {
        if header.name.eq_ignore_ascii_case("connection") {
            let value = String::from_utf8_lossy(header.value).to_ascii_lowercase();
            for token in value.split(',').map(str::trim) {
                match token {
                    "close" => keep_alive = false,
                    "keep-alive" => keep_alive = true,
                    _ => {}
                }
            }
        } else if header.name.eq_ignore_ascii_case("content-length") {
            // PATCH (smuggling): digits only, and one header. Upstream took the last header and
            // accepted "+33", so `Content-Length: 33` then `Content-Length: 0` hid a second
            // request in the body (RFC 9112 section 6.3: 400, then close).
            let value = std::str::from_utf8(header.value).unwrap_or("").trim();
            let parsed = value
                .parse::<usize>()
                .ok()
                .filter(|_| !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| Refusal::new(400, "Bad Request", "bad Content-Length"))?;
            if content_length.is_some() {
                return Err(Refusal::new(
                    400,
                    "Bad Request",
                    "repeated Content-Length headers",
                ));
            }
            content_length = Some(parsed);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refusal::new(
                400,
                "Bad Request",
                "request bodies with Transfer-Encoding are not accepted",
            ));
        }
    }
    let body = content_length.unwrap_or(0);
    if body > crate::MAX_BODY {
        return Err(Refusal::new(413, "Payload Too Large", "request body too large"));
    }
    Ok((keep_alive, body))
}

impl<'buf, 'header, 'stream> fmt::Debug for Request<'buf, 'header, 'stream> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "<HTTP Request {} {}>", self.method(), self.path())
    }
}

/// PATCH: a complete request (head and body in the buffer), not yet (`Ok(None)`), or a
/// request the server refuses (malformed → 400, head over [`crate::MAX_HEAD`] or too many
/// headers → 431, body → 413 or 400). Upstream returned an error and closed without a word,
/// and panicked on a bad Content-Length.
pub fn decode<'header, 'buf, 'stream>(
    few: &'header mut [MaybeUninit<httparse::Header<'buf>>; FEW_HEADERS],
    many: &'header mut Vec<MaybeUninit<httparse::Header<'buf>>>,
    req_buf: &'buf mut BytesMut,
    stream: &'stream mut TcpStream,
) -> Result<Option<Request<'buf, 'header, 'stream>>, Refusal> {
    // safety: don't hold the reference of req_buf
    // so we can transfer the mutable reference to Request
    let buf: &[u8] = unsafe { std::mem::transmute(req_buf.chunk()) };
    let Some(head) = parse(few, many, buf)? else {
        return Ok(None);
    };
    // The body is skipped: no endpoint takes one.
    req_buf.advance(head.taken);

    Ok(Some(Request {
        req: head.req,
        req_buf,
        stream,
        keep_alive: head.keep_alive,
    }))
}

/// PATCH: a request parsed from the front of a buffer, before the buffer gives its bytes up.
pub(crate) struct Head<'header, 'buf> {
    pub req: httparse::Request<'header, 'buf>,
    /// The bytes of the head and its body, to take off the front of the buffer.
    pub taken: usize,
    pub keep_alive: bool,
}

/// PATCH: [`decode`]'s parse, with no socket: what the fuzz target runs
/// (`crate::fuzzing`).
pub(crate) fn parse<'header, 'buf>(
    few: &'header mut [MaybeUninit<httparse::Header<'buf>>; FEW_HEADERS],
    many: &'header mut Vec<MaybeUninit<httparse::Header<'buf>>>,
    buf: &'buf [u8],
) -> Result<Option<Head<'header, 'buf>>, Refusal> {
    let mut req = httparse::Request::new(&mut []);
    let parsed = match req.parse_with_uninit_headers(buf, few) {
        // PATCH: more than FEW_HEADERS: parsed again with MAX_HEADERS slots on the heap.
        Err(httparse::Error::TooManyHeaders) => {
            many.resize(MAX_HEADERS, MaybeUninit::uninit());
            req = httparse::Request::new(&mut []);
            req.parse_with_uninit_headers(buf, many.as_mut_slice())
        }
        other => other,
    };
    let status = match parsed {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(
                431,
                "Request Header Fields Too Large",
                "too many headers",
            ))
        }
        Err(e) => {
            return Err(Refusal::new(
                400,
                "Bad Request",
                format!("malformed request: {e}"),
            ))
        }
    };

    let len = match status {
        httparse::Status::Complete(amt) => amt,
        httparse::Status::Partial => {
            if buf.len() > crate::MAX_HEAD {
                return Err(Refusal::new(
                    431,
                    "Request Header Fields Too Large",
                    "request head over 8 KiB",
                ));
            }
            return Ok(None);
        }
    };
    if len > crate::MAX_HEAD {
        return Err(Refusal::new(
            431,
            "Request Header Fields Too Large",
            "request head over 8 KiB",
        ));
    }
    let (keep_alive, body) = inspect(&req)?;
    if buf.len() < len + body {
        // The body is still on its way.
        return Ok(None);
    }
    Ok(Some(Head {
        req,
        taken: len + body,
        keep_alive,
    }))
}
