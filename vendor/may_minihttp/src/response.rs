use std::io;
use std::sync::OnceLock;

use crate::request::Refusal;

/// PATCH (rust-web-perf): header lines a handler may add (upstream: 64, 1 KiB on the
/// coroutine's stack for every response). A handler of the suite adds at most two.
const RESPONSE_HEADERS: usize = 16;

use bytes::BytesMut;

/// PATCH (rust-web-perf): upstream always sent `Server: M`.
static SERVER_NAME: OnceLock<&'static str> = OnceLock::new();

/// Sets the `Server` header of every response (once, before the server starts).
pub fn set_server_name(name: &'static str) {
    let _ = SERVER_NAME.set(name);
}

fn server_name() -> &'static [u8] {
    SERVER_NAME.get().copied().unwrap_or("M").as_bytes()
}
pub struct Response<'a> {
    headers: [&'static str; RESPONSE_HEADERS],
    headers_len: usize,
    status_message: StatusMessage,
    body: Body,
    rsp_buf: &'a mut BytesMut,
    /// PATCH: the service asked to close the connection after this answer.
    close: bool,
}

enum Body {
    Str(&'static str),
    Vec(Vec<u8>),
    Dummy,
}

struct StatusMessage {
    code: usize,
    msg: &'static str,
}

impl<'a> Response<'a> {
    pub(crate) fn new(rsp_buf: &'a mut BytesMut) -> Response<'a> {
        let headers: [&'static str; RESPONSE_HEADERS] = [""; RESPONSE_HEADERS];

        Response {
            headers,
            headers_len: 0,
            body: Body::Dummy,
            status_message: StatusMessage {
                code: 200,
                msg: "Ok",
            },
            rsp_buf,
            close: false,
        }
    }

    /// PATCH (rust-web-perf): close the connection after this answer (`Connection: close`),
    /// as the server does for a request that asked to.
    #[inline]
    pub fn close(&mut self) -> &mut Self {
        self.close = true;
        self
    }

    /// PATCH: whether the service asked to close the connection after this answer.
    #[inline]
    pub(crate) fn closes(&self) -> bool {
        self.close
    }

    #[inline]
    pub fn status_code(&mut self, code: usize, msg: &'static str) -> &mut Self {
        self.status_message = StatusMessage { code, msg };
        self
    }

    /// Adds a header line. Panics past [`RESPONSE_HEADERS`] lines (upstream: past 64).
    #[inline]
    pub fn header(&mut self, header: &'static str) -> &mut Self {
        self.headers[self.headers_len] = header;
        self.headers_len += 1;
        self
    }

    #[inline]
    pub fn body(&mut self, s: &'static str) {
        self.body = Body::Str(s);
    }

    #[inline]
    pub fn body_vec(&mut self, v: Vec<u8>) {
        self.body = Body::Vec(v);
    }

    #[inline]
    pub fn body_mut(&mut self) -> &mut BytesMut {
        match self.body {
            Body::Dummy => {}
            Body::Str(s) => {
                self.rsp_buf.extend_from_slice(s.as_bytes());
                self.body = Body::Dummy;
            }
            Body::Vec(ref v) => {
                self.rsp_buf.extend_from_slice(v);
                self.body = Body::Dummy;
            }
        }
        self.rsp_buf
    }

    #[inline]
    fn body_len(&self) -> usize {
        match self.body {
            Body::Dummy => self.rsp_buf.len(),
            Body::Str(s) => s.len(),
            Body::Vec(ref v) => v.len(),
        }
    }

    #[inline]
    fn get_body(&mut self) -> &[u8] {
        match self.body {
            Body::Dummy => self.rsp_buf.as_ref(),
            Body::Str(s) => s.as_bytes(),
            Body::Vec(ref v) => v,
        }
    }
}

impl<'a> Drop for Response<'a> {
    fn drop(&mut self) {
        self.rsp_buf.clear();
    }
}

/// PATCH: `close` adds `Connection: close`; `head` leaves the body out (its length stays).
pub(crate) fn encode(mut rsp: Response, buf: &mut BytesMut, close: bool, head: bool) {
    buf.extend_from_slice(b"HTTP/1.1 ");
    let mut code = itoa::Buffer::new();
    buf.extend_from_slice(code.format(rsp.status_message.code).as_bytes());
    buf.extend_from_slice(b" ");
    buf.extend_from_slice(rsp.status_message.msg.as_bytes());
    buf.extend_from_slice(b"\r\nServer: ");
    buf.extend_from_slice(server_name());
    buf.extend_from_slice(b"\r\nDate: ");
    crate::date::append_date(buf);
    buf.extend_from_slice(b"\r\nContent-Length: ");
    let mut length = itoa::Buffer::new();
    buf.extend_from_slice(length.format(rsp.body_len()).as_bytes());

    // SAFETY: we already have bound check when insert headers
    let headers = unsafe { rsp.headers.get_unchecked(..rsp.headers_len) };
    for h in headers {
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(h.as_bytes());
    }
    if close {
        buf.extend_from_slice(b"\r\nConnection: close");
    }

    buf.extend_from_slice(b"\r\n\r\n");
    if !head {
        buf.extend_from_slice(rsp.get_body());
    }
}

/// PATCH: the server's own answer to a request it refuses, before closing: a one-line JSON
/// error body, as every other response of the suite.
pub(crate) fn encode_refusal(refusal: &Refusal, buf: &mut BytesMut) {
    let mut body = String::from("{\"error\":\"");
    for c in refusal.message.chars() {
        match c {
            '"' => body.push_str("\\\""),
            '\\' => body.push_str("\\\\"),
            c if (c as u32) < 0x20 => body.push(' '),
            c => body.push(c),
        }
    }
    body.push_str("\"}");
    buf.extend_from_slice(b"HTTP/1.1 ");
    let mut code = itoa::Buffer::new();
    buf.extend_from_slice(code.format(refusal.status).as_bytes());
    buf.extend_from_slice(b" ");
    buf.extend_from_slice(refusal.reason.as_bytes());
    buf.extend_from_slice(b"\r\nServer: ");
    buf.extend_from_slice(server_name());
    buf.extend_from_slice(b"\r\nDate: ");
    crate::date::append_date(buf);
    buf.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
    let mut length = itoa::Buffer::new();
    buf.extend_from_slice(length.format(body.len()).as_bytes());
    buf.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    buf.extend_from_slice(body.as_bytes());
}

#[cold]
pub(crate) fn encode_error(e: io::Error, buf: &mut BytesMut) {
    error!("error in service: err = {:?}", e);
    let msg_string = e.to_string();
    let msg = msg_string.as_bytes();

    buf.extend_from_slice(b"HTTP/1.1 500 Internal Server Error\r\nServer: ");
    buf.extend_from_slice(server_name());
    buf.extend_from_slice(b"\r\nDate: ");
    crate::date::append_date(buf);
    buf.extend_from_slice(b"\r\nContent-Length: ");
    let mut length = itoa::Buffer::new();
    buf.extend_from_slice(length.format(msg.len()).as_bytes());

    buf.extend_from_slice(b"\r\n\r\n");
    buf.extend_from_slice(msg);
}
