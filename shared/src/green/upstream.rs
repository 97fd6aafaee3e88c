//! The cooperative upstream client: the shared fetch loop ([`crate::upstream::fetch`], also
//! the blocking client's) over `may::net::TcpStream`, so a fetch parks its coroutine, not the
//! worker thread, and idle connections behind may's mutex.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use may::net::TcpStream;
use may::sync::Mutex;

use crate::error::AppError;
use crate::request::UpstreamReply;
use crate::upstream::{self, Connection};
use crate::UpstreamUrl;

impl Connection for TcpStream {
    fn connect(addr: &SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(addr, timeout)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

pub struct Upstream {
    url: UpstreamUrl,
    idle: Mutex<Vec<TcpStream>>,
}

impl Upstream {
    pub fn new(url: &UpstreamUrl) -> Upstream {
        Upstream {
            url: url.clone(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// One GET with `?delay_ms=N`, read to the end and counted; 504 past the timeout, 502 on
    /// any other failure.
    pub fn fetch(&self, delay_ms: u32) -> Result<UpstreamReply, AppError> {
        upstream::fetch(
            &self.url,
            delay_ms,
            || self.idle.lock().ok().and_then(|mut idle| idle.pop()),
            |stream| {
                if let Ok(mut idle) = self.idle.lock() {
                    if idle.len() < upstream::MAX_IDLE {
                        idle.push(stream);
                    }
                }
            },
        )
    }
}
