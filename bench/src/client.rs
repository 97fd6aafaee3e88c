//! A small blocking HTTP/1.1 client for checks: raw requests, full responses. Built on the
//! shared response reader, with the head parsed here into headers.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use shared::upstream::{read_response_capturing, Captured};

/// The time a check waits for a response before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The connection may carry another request.
    pub reusable: bool,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One connection, possibly used for several requests.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn set_read_timeout(&self, timeout: Duration) -> Result<()> {
        Ok(self.stream.set_read_timeout(Some(timeout))?)
    }

    pub fn send(&mut self, raw: &[u8]) -> Result<()> {
        self.stream
            .write_all(raw)
            .context("cannot send the request")
    }

    /// Reads one response; `after_head` for the answer to a HEAD request.
    pub fn read(&mut self, after_head: bool) -> Result<Response> {
        let mut captured = Captured::default();
        let response = read_response_capturing(
            &mut self.stream,
            &mut self.buf,
            Some(&mut captured),
            after_head,
        )
        .map_err(|e| anyhow!("{}", e.into_app_error(TIMEOUT)))?;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Response::new(&mut headers);
        head.parse(&captured.head)
            .context("cannot parse the response head")?;
        Ok(Response {
            status: response.reply.status,
            reason: head.reason.unwrap_or("").to_string(),
            headers: head
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            body: captured.body,
            reusable: response.reusable,
        })
    }

    /// `GET target` on this connection, keep-alive.
    pub fn get(&mut self, target: &str) -> Result<Response> {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())?;
        self.read(false)
    }

    /// True when the server closes the connection within `wait`: a read sees end of file or a
    /// reset. False when the read times out (still open) or data arrives.
    pub fn is_closed_by_peer(&mut self, wait: Duration) -> bool {
        use std::io::Read;
        if !self.buf.is_empty() {
            return false;
        }
        let _ = self.stream.set_read_timeout(Some(wait));
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !shared::error::is_timeout(&e),
        }
    }
}

/// `method target` on a new connection, which is closed afterwards.
pub fn request(addr: SocketAddr, method: &str, target: &str) -> Result<Response> {
    request_with(addr, method, target, "")
}

/// `method target` with more header lines (each ending in CRLF), on a new connection.
fn request_with(addr: SocketAddr, method: &str, target: &str, headers: &str) -> Result<Response> {
    let mut conn = Conn::open(addr)?;
    conn.send(
        format!("{method} {target} HTTP/1.1\r\nHost: bench\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )?;
    conn.read(method == "HEAD")
}

/// `GET target` with `Authorization: Bearer TOKEN` when there is a token.
pub fn get_with_token(addr: SocketAddr, target: &str, token: Option<&str>) -> Result<Response> {
    let header = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    request_with(addr, "GET", target, &header)
}

/// `GET target` on a new connection.
pub fn get(addr: SocketAddr, target: &str) -> Result<Response> {
    request(addr, "GET", target)
}
