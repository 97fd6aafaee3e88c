//! Slow clients ("remote requests with long response times", smartphone users,
//! `--slow-clients`): K connections that each send their request a few bytes at a time over
//! about a second, read the answer a few bytes at a time, and start again, while the load
//! tool measures the normal clients. A small bounded client, one thread per slow connection,
//! that counts its own completed requests and errors; not a load tool.
//!
//! This extra owns its report section.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{Context, Extra, Running};
use crate::model::beside::SlowClientsReport;
use crate::model::row::{Round, Row};
use crate::observe::procfs;
use crate::output::table::dash;
use crate::output::Section;

/// `--slow-clients`: started before the warm-up, so that they are steady when the measured
/// load starts; their counts are from the measured load only.
pub struct Slow;

impl Extra for Slow {
    fn start<'a>(&self, ctx: &Context<'a>) -> Option<Box<dyn Running + 'a>> {
        let s = ctx.settings;
        (s.slow_clients > 0).then(|| {
            Box::new(SlowClients::start(ctx.addr, s.path.path(), s.slow_clients))
                as Box<dyn Running>
        })
    }
}

impl Running for SlowClients {
    fn load_starts(&mut self, _t0: Instant) {
        self.reset();
    }

    fn finish(self: Box<Self>, round: &mut Round) -> Result<()> {
        round.beside.slow_clients = Some((*self).finish());
        Ok(())
    }
}

impl Section for Slow {
    fn markdown(&self, _scenario: &str, rows: &[Row]) -> String {
        let slow: Vec<&Row> = rows
            .iter()
            .filter(|r| r.beside.slow_clients.is_some())
            .collect();
        if slow.is_empty() {
            return String::new();
        }
        let mut out = String::from("Slow clients, straight to the target beside the load tool's: each sends its request over about a second and reads the answer slowly, then starts again. What they completed during the measured load, and what the load tool got (compare with the same target without them).\n\n");
        out += "| target | slow clients | their requests completed | their errors | their CPU ms/req | load req/s | load P99 ms |\n|---|--:|--:|--:|--:|--:|--:|\n";
        for r in slow {
            if let Some(c) = &r.beside.slow_clients {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {:.0} | {} |",
                    r.binary.as_deref().unwrap_or(&r.target),
                    c.clients,
                    c.completed,
                    c.errors,
                    dash(c.cpu_ms_per_request, 3),
                    r.requests_per_sec,
                    dash(r.measurement.p99_ms, 1)
                );
            }
        }
        out + "\n"
    }
}

/// The request, sent `CHUNK` bytes at a time, `PAUSE` apart: about a second for the whole.
const CHUNK: usize = 3;
const PAUSE: Duration = Duration::from_millis(80);
/// The answer is read 32 bytes at a time, 20 ms apart.
const READ_CHUNK: usize = 32;
const READ_PAUSE: Duration = Duration::from_millis(20);

pub struct SlowClients {
    clients: u32,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    /// The CPU the slow clients' threads used since the last reset, in nanoseconds.
    cpu_ns: Arc<AtomicU64>,
    /// Detached at the end: see [`SlowClients::finish`].
    handles: Vec<JoinHandle<()>>,
}

impl SlowClients {
    /// Starts `clients` slow connections to `addr`, each asking for `path`.
    pub fn start(addr: SocketAddr, path: &str, clients: u32) -> SlowClients {
        let stop = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: slow-client\r\nUser-Agent: bench-slow\r\n\r\n");
        let handles = (0..clients)
            .map(|i| {
                let (stop, completed, errors) = (stop.clone(), completed.clone(), errors.clone());
                let cpu_ns = cpu_ns.clone();
                let request = request.clone().into_bytes();
                // Spread the starts over the first pause, so that they do not march in step.
                let offset = PAUSE * i / clients.max(1);
                std::thread::spawn(move || {
                    std::thread::sleep(offset);
                    let mut conn: Option<TcpStream> = None;
                    let mut cpu_before = procfs::thread_cpu_seconds();
                    while !stop.load(Ordering::SeqCst) {
                        match one_slow_request(addr, &request, &mut conn, &stop) {
                            Some(true) => completed.fetch_add(1, Ordering::SeqCst),
                            Some(false) => {
                                conn = None;
                                std::thread::sleep(PAUSE);
                                errors.fetch_add(1, Ordering::SeqCst)
                            }
                            None => break,
                        };
                        let cpu_now = procfs::thread_cpu_seconds();
                        let spent = ((cpu_now - cpu_before) * 1e9) as u64;
                        cpu_ns.fetch_add(spent, Ordering::SeqCst);
                        cpu_before = cpu_now;
                    }
                })
            })
            .collect();
        SlowClients {
            clients,
            stop,
            completed,
            errors,
            cpu_ns,
            handles,
        }
    }

    /// Resets the counts (at the start of the measured load).
    pub fn reset(&self) {
        self.completed.store(0, Ordering::SeqCst);
        self.errors.store(0, Ordering::SeqCst);
        self.cpu_ns.store(0, Ordering::SeqCst);
    }

    /// The counts since the last reset.
    pub fn report(&self) -> SlowClientsReport {
        let completed = self.completed.load(Ordering::SeqCst);
        let errors = self.errors.load(Ordering::SeqCst);
        let cpu_ms = self.cpu_ns.load(Ordering::SeqCst) as f64 / 1e6;
        SlowClientsReport {
            clients: self.clients,
            completed,
            errors,
            cpu_ms_per_request: (completed + errors > 0)
                .then(|| cpu_ms / (completed + errors) as f64),
        }
    }

    /// Stops every slow client: each ends at its next step, or when the target it waits on
    /// is stopped (a slow client can be blocked in a read for as long as the target keeps
    /// it waiting, so they are not waited for here).
    pub fn finish(self) -> SlowClientsReport {
        let report = self.report();
        self.stop.store(true, Ordering::SeqCst);
        drop(self.handles);
        report
    }
}

/// One request, slowly: `Some(true)` answered 2xx, `Some(false)` failed, `None` stopped.
fn one_slow_request(
    addr: SocketAddr,
    request: &[u8],
    conn: &mut Option<TcpStream>,
    stop: &AtomicBool,
) -> Option<bool> {
    if conn.is_none() {
        let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
            return Some(false);
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        *conn = Some(stream);
    }
    let stream = conn.as_mut()?;
    for chunk in request.chunks(CHUNK) {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        if stream.write_all(chunk).is_err() {
            return Some(false);
        }
        std::thread::sleep(PAUSE);
    }
    // The answer, slowly: the head, then Content-Length bytes of body.
    let mut answer = Vec::new();
    let mut buf = [0u8; READ_CHUNK];
    loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return Some(false),
            Ok(n) => n,
        };
        answer.extend_from_slice(&buf[..n]);
        if let Some((status, complete, close)) = parse(&answer) {
            if complete {
                if close {
                    *conn = None;
                }
                return Some((200..300).contains(&status));
            }
        }
        std::thread::sleep(READ_PAUSE);
    }
}

/// The status, whether the whole answer is in, and whether the server closes after it.
fn parse(answer: &[u8]) -> Option<(u16, bool, bool)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(answer).ok()? else {
        return None;
    };
    let status = response.code?;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let length: usize = header("content-length")?.parse().ok()?;
    let close = header("connection").is_some_and(|v| v == "close");
    Some((status, answer.len() >= head + length, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_complete_only_with_their_whole_body() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
        assert_eq!(parse(&head[..20]), None);
        let mut whole = head.to_vec();
        whole.extend_from_slice(b"ab");
        assert_eq!(parse(&whole), Some((200, false, true)));
        whole.extend_from_slice(b"cde");
        assert_eq!(parse(&whole), Some((200, true, true)));
    }
}
