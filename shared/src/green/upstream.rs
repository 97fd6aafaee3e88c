//! The cooperative upstream client: the blocking client's logic (`crate::blocking::Upstream`)
//! over `may::net::TcpStream`, so a fetch parks its coroutine, not the worker thread. The
//! protocol code (request bytes, response framing) is the shared `crate::upstream`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use may::net::TcpStream;
use may::sync::Mutex;

use crate::error::AppError;
use crate::request::UpstreamReply;
use crate::upstream::{self, upstream_timeout, ReadError};
use crate::UpstreamUrl;

/// Idle connections kept for reuse, at most.
const MAX_IDLE: usize = 1024;

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
        let started = Instant::now();
        let deadline = started + upstream_timeout(delay_ms);
        let request = upstream::request_bytes(&self.url, delay_ms);
        let mut buf = Vec::new();
        loop {
            let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let is_reused = reused.is_some();
            let mut stream = match reused {
                Some(stream) => stream,
                None => connect(self.url.addr, deadline, started)?,
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
                .and_then(|()| upstream::read_response(&mut stream, &mut buf));
            match attempt {
                Ok(response) => {
                    if response.reusable && buf.is_empty() {
                        if let Ok(mut idle) = self.idle.lock() {
                            if idle.len() < MAX_IDLE {
                                idle.push(stream);
                            }
                        }
                    }
                    return Ok(response.reply);
                }
                Err(e) if is_reused && closed_under_us(&e) => continue,
                Err(e) => return Err(e.into_app_error(started.elapsed())),
            }
        }
    }
}

fn connect(addr: SocketAddr, deadline: Instant, started: Instant) -> Result<TcpStream, AppError> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .min(upstream::UPSTREAM_GRACE)
        .max(Duration::from_millis(1));
    let stream = TcpStream::connect_timeout(&addr, left).map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            AppError::UpstreamTimeout {
                waited_ms: started.elapsed().as_millis() as u64,
            }
        }
        _ => AppError::UpstreamFailed(format!("cannot connect to {addr}: {e}")),
    })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A reused connection the server had closed: safe to retry on a new one. Not a timeout.
fn closed_under_us(error: &ReadError) -> bool {
    match error {
        ReadError::ClosedBeforeResponse => true,
        ReadError::Io(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        ReadError::Protocol(_) => false,
    }
}
