//! Many connections ("asyncio scales better memory-wise"): N idle keep-alive connections held
//! open on a target, each after one `GET /json`; what they cost in memory and threads (and
//! where it goes: accepted but silent, then stacks and heap after the request), how a
//! fresh connection's `/health` fares while they are held, and what the load tool gets beside
//! them compared with the same load alone.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::procfs;

/// What holding the idle connections cost: the row's `idle`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IdleReport {
    /// Connections asked for, opened (connect succeeded within 3 s), and answered (their
    /// `/json` came back within 3 s).
    pub asked: u32,
    pub opened: u32,
    pub answered: u32,
    /// When not every opened connection was answered: what the first unanswered one saw.
    pub first_unanswered: Option<String>,
    /// The target's resident memory before and with the connections held, and the growth per
    /// answered connection.
    pub rss_before_mib: f64,
    pub rss_held_mib: f64,
    pub kib_per_connection: Option<f64>,
    /// Where the growth goes, per connection (KiB). `accepted`: with the connections open and
    /// nothing sent yet (the model's own cost: a thread, a coroutine or a task, and the
    /// framework's connection state). `stack` and `heap`: the growth of the anonymous memory
    /// with the connections held after their request, split by
    /// [`procfs::AnonSplit`]; the heap part beyond `accepted` is what serving one request
    /// left behind (buffers kept while idle).
    #[serde(default)]
    pub kib_accepted: Option<f64>,
    #[serde(default)]
    pub kib_stack: Option<f64>,
    #[serde(default)]
    pub kib_heap: Option<f64>,
    pub threads_before: u64,
    pub threads_held: u64,
    /// `/health` on fresh connections while they are held (50 tries, 2 s each; the probe stops
    /// after 3 failures in a row).
    pub health_p50_ms: Option<f64>,
    pub health_p99_ms: Option<f64>,
    pub health_failed: u32,
    /// The same load without the idle connections (the row's own numbers are with them).
    pub load_alone_rps: f64,
    pub load_alone_p99_ms: Option<f64>,
}

/// Raises this process's open-file limit to its hard limit (targets started afterwards
/// inherit it) and checks that `needed` descriptors fit.
pub fn raise_fd_limit(needed: u64) -> Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit failed");
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            bail!("setrlimit failed");
        }
    }
    if limit.rlim_cur < needed {
        bail!(
            "the hard limit on open files is {}, and {needed} connections need more: raise it (ulimit -Hn, or LimitNOFILE) and run again",
            limit.rlim_cur
        );
    }
    Ok(limit.rlim_cur)
}

const REQUEST: &[u8] = b"GET /json HTTP/1.1\r\nHost: idle\r\n\r\n";

/// Whether the server at `addr` closes a connection after its answer (`Connection: close`,
/// as sync-pool does): such a server has no idle connections to hold.
pub fn closes_each_connection(addr: SocketAddr) -> bool {
    let answer = crate::client::Conn::open(addr).and_then(|mut conn| conn.get("/json"));
    answer.is_ok_and(|r| !r.reusable)
}

/// Idle connections held open on a target.
pub struct Held {
    streams: Vec<TcpStream>,
    /// The first `sent` streams have sent their request.
    sent: usize,
    pub opened: u32,
    pub answered: u32,
    pub first_unanswered: Option<String>,
}

impl Held {
    /// Opens up to `n` connections to `addr`; stops at the first connection refused or not
    /// accepted within 3 s. `silent`: nothing is sent yet ([`Held::ask`] sends); otherwise
    /// each sends its `GET /json` as soon as it is open, which a server that closes every
    /// connection after one answer needs (its workers would wait on silent ones).
    pub fn open(addr: SocketAddr, n: u32, silent: bool) -> Held {
        let mut streams = Vec::with_capacity(n as usize);
        for _ in 0..n {
            // 3 s: a SYN dropped from a full listen backlog is sent again after 1 s.
            let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
                break;
            };
            if !silent && stream.write_all(REQUEST).is_err() {
                break;
            }
            streams.push(stream);
        }
        Held {
            opened: streams.len() as u32,
            sent: if silent { 0 } else { streams.len() },
            streams,
            answered: 0,
            first_unanswered: None,
        }
    }

    /// Sends `GET /json` on every open connection that has not sent it, then reads the
    /// answers in order; stops reading at the first answer not back within 3 s (a target out
    /// of threads answers no more). The connections stay open.
    pub fn ask(&mut self) {
        let sent = self.sent
            + self.streams[self.sent..]
                .iter()
                .take_while(|s| (&**s).write_all(REQUEST).is_ok())
                .count();
        self.streams.truncate(sent);
        self.sent = sent;
        self.opened = sent as u32;
        let mut buf = [0u8; 1024];
        for stream in &mut self.streams {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
            let started = Instant::now();
            match stream.read(&mut buf) {
                Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200") => self.answered += 1,
                Ok(0) => {
                    self.first_unanswered = Some("closed by the target without an answer".into());
                    break;
                }
                Ok(n) => {
                    let line = String::from_utf8_lossy(&buf[..n]);
                    self.first_unanswered =
                        Some(format!("answered {:?}", line.lines().next().unwrap_or("")));
                    break;
                }
                Err(_) => {
                    self.first_unanswered = Some(format!(
                        "no answer within {:.1} s (the connection was accepted; the request waits)",
                        started.elapsed().as_secs_f64()
                    ));
                    break;
                }
            }
        }
    }
}

impl Held {
    pub fn count(&self) -> usize {
        self.streams.len()
    }
}

/// `/health` on a fresh connection, `tries` times: the latencies (ms) and the failures.
pub fn health(addr: SocketAddr, tries: u32) -> (Vec<f64>, u32) {
    let mut latencies = Vec::new();
    let mut failed = 0;
    let mut in_a_row = 0;
    for _ in 0..tries {
        let started = Instant::now();
        let ok = (|| -> Result<bool> {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            stream.write_all(b"GET /health HTTP/1.1\r\nHost: idle\r\nConnection: close\r\n\r\n")?;
            let mut buf = [0u8; 256];
            let n = stream.read(&mut buf).context("no answer")?;
            Ok(buf[..n].starts_with(b"HTTP/1.1 200"))
        })()
        .unwrap_or(false);
        if ok {
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            in_a_row = 0;
        } else {
            failed += 1;
            in_a_row += 1;
            if in_a_row == 3 {
                break;
            }
        }
    }
    (latencies, failed)
}

/// The target's resident memory (MiB) and threads now.
pub fn footprint(pid: u32) -> (f64, u64) {
    procfs::rss_and_threads(pid).unwrap_or((0.0, 0))
}
