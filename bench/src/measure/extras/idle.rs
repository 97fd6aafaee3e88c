//! Many connections ("asyncio scales better memory-wise", `--idle-connections`): N idle
//! keep-alive connections held open on a target, each after one `GET /json`; what they cost
//! in memory and threads (and where it goes: accepted but silent, then stacks and heap after
//! the request), how a fresh connection's `/health` fares while they are held, and what the
//! load tool gets beside them compared with the same load alone.
//!
//! This extra owns its round (the load alone, then held connections, then the load beside
//! them) and its report section.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::{Context, Extra, Load};
use crate::model::beside::IdleReport;
use crate::model::row::{Round, Row};
use crate::model::settings::Settings;
use crate::model::tool::{percentile_of_sorted, Measurement};
use crate::observe::procfs;
use crate::output::table::dash;
use crate::output::Section;

/// `--idle-connections`: the load alone, then the connections held (memory, threads and
/// `/health` measured with them held), then the same load beside them: the round's
/// measurement.
pub struct IdleConnections;

impl Extra for IdleConnections {
    fn round(&self, ctx: &Context, load: &Load) -> Option<Result<Round>> {
        (ctx.settings.idle_connections > 0).then(|| round(ctx, load))
    }
}

fn round(ctx: &Context, load: &Load) -> Result<Round> {
    let s = ctx.settings;
    // Without a process to look at (an external without --external-pid), the memory
    // columns stay empty; the rest is measured.
    let footprint = || ctx.pid.map_or((0.0, 0), self::footprint);
    let anon = || ctx.pid.and_then(procfs::anon_split);
    // The same load, as a plain round: alone first, then (without a second warm-up) beside
    // the held connections.
    let mut alone = Settings {
        idle_connections: 0,
        ..s.clone()
    };
    let baseline = load(&alone, false)?;
    let (rss_before_mib, threads_before) = footprint();
    let anon_before = anon();
    // Open and silent first, for the cost of an accepted connection before any request; a
    // server that closes each connection gets its requests at once.
    let silent = !closes_each_connection(ctx.addr);
    let mut held = Held::open(ctx.addr, s.idle_connections, silent);
    // The target accepts what the backlog holds; then its cost before any request.
    std::thread::sleep(Duration::from_secs(1));
    let (rss_accepted_mib, _) = footprint();
    held.ask();
    let (rss_held_mib, threads_held) = footprint();
    let anon_held = anon();
    let (mut latencies, health_failed) = health(ctx.addr, 50);
    latencies.sort_by(f64::total_cmp);
    alone.warmup_s = 0;
    // A target that stopped answering the held connections (sync-thread at --max-threads)
    // has nothing left for the load: it is not run, and the row says so (no 2xx), with
    // what the first unanswered connection saw.
    let mut round = if held.answered < held.opened {
        Round {
            measurement: Measurement {
                seconds: f64::from(s.duration_s),
                ..Measurement::default()
            },
            ..Round::default()
        }
    } else {
        load(&alone, true)?
    };
    let answered = held.answered;
    let per = |kib: f64, n: u32| (n > 0 && ctx.pid.is_some()).then(|| kib / f64::from(n));
    let grown = anon_before.zip(anon_held);
    round.beside.idle = Some(IdleReport {
        asked: s.idle_connections,
        opened: held.opened,
        answered,
        first_unanswered: held.first_unanswered.clone(),
        rss_before_mib,
        rss_held_mib,
        kib_per_connection: per((rss_held_mib - rss_before_mib) * 1024.0, answered),
        kib_accepted: per((rss_accepted_mib - rss_before_mib) * 1024.0, held.opened)
            .filter(|_| silent),
        kib_stack: grown.and_then(|(b, h)| per(h.stack_kib as f64 - b.stack_kib as f64, answered)),
        kib_heap: grown.and_then(|(b, h)| per(h.heap_kib as f64 - b.heap_kib as f64, answered)),
        threads_before,
        threads_held,
        health_p50_ms: percentile_of_sorted(&latencies, 50.0),
        health_p99_ms: percentile_of_sorted(&latencies, 99.0),
        health_failed,
        load_alone_rps: baseline.measurement.requests_per_sec(),
        load_alone_p99_ms: baseline.measurement.p99_ms,
    });
    drop(held);
    Ok(round)
}

impl Section for IdleConnections {
    fn markdown(&self, _scenario: &str, rows: &[Row]) -> String {
        let held: Vec<&Row> = rows.iter().filter(|r| r.beside.idle.is_some()).collect();
        if held.is_empty() {
            return String::new();
        }
        let mut out = String::from("Idle keep-alive connections held on each target (each after one `GET /json`, the target's idle timeout off): memory and threads with them held (per connection, and where it goes: the growth with the connections open and nothing sent yet, then the anonymous memory's growth after the request split into stacks, threads' and coroutines', and the heap), `/health` on a fresh connection meanwhile, and the load beside them against the same load alone.\n\n");
        out += "| target | idle asked / opened / answered | KiB per connection | of which: accepted, silent / stack / heap | RSS MiB before → held | threads before → held | /health p50 / p99 ms (failed) | load req/s alone → beside them | load P99 ms alone → beside | the first unanswered |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n";
        for r in held {
            if let Some(i) = &r.beside.idle {
                let _ = writeln!(
                    out,
                    "| {} | {} / {} / {} | {} | {} / {} / {} | {:.1} → {:.1} | {} → {} | {} / {} ({}) | {:.0} → {:.0} | {} → {} | {} |",
                    r.binary.as_deref().unwrap_or(&r.target),
                    i.asked,
                    i.opened,
                    i.answered,
                    dash(i.kib_per_connection, 1),
                    dash(i.kib_accepted, 1),
                    dash(i.kib_stack, 1),
                    dash(i.kib_heap, 1),
                    i.rss_before_mib,
                    i.rss_held_mib,
                    i.threads_before,
                    i.threads_held,
                    dash(i.health_p50_ms, 2),
                    dash(i.health_p99_ms, 2),
                    i.health_failed,
                    i.load_alone_rps,
                    r.requests_per_sec,
                    dash(i.load_alone_p99_ms, 1),
                    dash(r.measurement.p99_ms, 1),
                    i.first_unanswered.as_deref().unwrap_or("–")
                );
            }
        }
        out + "\n"
    }
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
