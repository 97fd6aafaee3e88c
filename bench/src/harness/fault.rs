//! Faults as measured phases: `--fault KIND[@AT][:FOR]` stops or restarts one of the stack's
//! own processes during the measured load, while a probe (a second small client, at a fixed
//! low rate, on its own connections) records every answer and error on a 100 ms timeline. The
//! load tool's totals are kept as usual; the timeline and the recovery figures come from the
//! probe, so they do not depend on what the load tool can report.
//!
//! Only the stack's processes are touched: its PostgreSQL cluster, its upstream nginx, its
//! pgbouncer. Each fault is undone before the round ends, even when interrupted.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shared::Backend;

use super::scenario::{Endpoint, Settings};
use crate::client;
use crate::stack::{Pgbouncer, Stack};

/// What a fault does to the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A fast restart of the stack's PostgreSQL: every session is ended, the server is back
    /// as soon as it accepts connections.
    DbRestart,
    /// PostgreSQL stopped for FOR, then started.
    DbStop,
    /// The upstream nginx stopped for FOR, then started on the same port.
    UpstreamStop,
    /// pgbouncer's pool dropped and new clients refused for FOR (`DISABLE` and `KILL`, then
    /// `RESUME` and `ENABLE`).
    PoolDrain,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::DbRestart,
        FaultKind::DbStop,
        FaultKind::UpstreamStop,
        FaultKind::PoolDrain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::DbRestart => "db-restart",
            FaultKind::DbStop => "db-stop",
            FaultKind::UpstreamStop => "upstream-stop",
            FaultKind::PoolDrain => "pool-drain",
        }
    }

    fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the fault lasts FOR (a restart is over as soon as the server is back).
    fn lasts(self) -> bool {
        self != FaultKind::DbRestart
    }

    /// Whether PostgreSQL's processes change under the round (its CPU cannot be counted).
    pub fn replaces_postgres(self) -> bool {
        matches!(self, FaultKind::DbRestart | FaultKind::DbStop)
    }
}

/// One fault of a round: what, when (seconds into the measured load; a third of it when not
/// given) and for how long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub at_s: Option<f64>,
    pub for_s: f64,
}

/// How long a fault lasts when `:FOR` is not given.
pub const DEFAULT_FOR_S: f64 = 5.0;

impl Fault {
    pub const fn new(kind: FaultKind, at_s: Option<f64>, for_s: f64) -> Fault {
        Fault { kind, at_s, for_s }
    }

    /// Seconds into a measured load of `duration_s` at which the fault starts.
    pub fn at(&self, duration_s: u32) -> f64 {
        self.at_s.unwrap_or(f64::from(duration_s) / 3.0)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        if let Some(at) = self.at_s {
            write!(f, "@{at}s")?;
        }
        if self.kind.lasts() {
            write!(f, ":{}s", self.for_s)?;
        }
        Ok(())
    }
}

/// Seconds, as `5`, `5s`, `2.5s` or `500ms`.
fn seconds(text: &str) -> Option<f64> {
    let value = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse::<f64>().ok()? / 1000.0
    } else {
        text.strip_suffix('s').unwrap_or(text).parse::<f64>().ok()?
    };
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// Parses `KIND[@AT][:FOR]`, e.g. `db-restart`, `db-stop@5:3`, `upstream-stop@2s:500ms`.
pub fn parse(text: &str) -> Result<Fault, String> {
    let (rest, for_s) = match text.split_once(':') {
        Some((rest, duration)) => {
            let duration = seconds(duration).filter(|d| *d > 0.0).ok_or_else(|| {
                format!("{text:?}: FOR {duration:?} is not a duration above 0, such as 5s")
            })?;
            (rest, Some(duration))
        }
        None => (text, None),
    };
    let (kind, at_s) = match rest.split_once('@') {
        Some((kind, at)) => {
            let at = seconds(at).ok_or_else(|| {
                format!("{text:?}: AT {at:?} is not a time into the load, such as 5s")
            })?;
            (kind, Some(at))
        }
        None => (rest, None),
    };
    let kind = FaultKind::from_name(kind).ok_or_else(|| {
        format!(
            "{text:?}: unknown fault {kind:?}; faults: {}",
            FaultKind::ALL.map(FaultKind::name).join(", ")
        )
    })?;
    if for_s.is_some() && !kind.lasts() {
        return Err(format!(
            "{text:?}: {} has no duration (the server is back once it accepts connections)",
            kind.name()
        ));
    }
    Ok(Fault {
        kind,
        at_s,
        for_s: for_s.unwrap_or(DEFAULT_FOR_S),
    })
}

/// Why `faults` cannot run with `settings` (checked before the stack starts): a fault that
/// would touch something the run does not have, or that does not fit in the measured load.
pub fn check(faults: &[Fault], settings: &Settings, private_db: bool) -> Result<(), String> {
    let mut windows: Vec<(f64, f64, &Fault)> = Vec::new();
    for fault in faults {
        let why = match fault.kind {
            FaultKind::DbRestart | FaultKind::DbStop if !private_db => {
                Some("the database is not the stack's own (--database-url): only the private cluster is stopped")
            }
            FaultKind::DbRestart | FaultKind::DbStop if !settings.queries_the_database() => {
                Some("this load never queries the database (backend upstream, or /json)")
            }
            FaultKind::UpstreamStop
                if settings.backend != Backend::Upstream || settings.path != Endpoint::Test =>
            {
                Some("this load never fetches the upstream page: add --backend upstream")
            }
            FaultKind::PoolDrain if !settings.pgbouncer => {
                Some("there is no pgbouncer to drain: add --pgbouncer")
            }
            _ => None,
        };
        if let Some(why) = why {
            return Err(format!("--fault {fault}: {why}"));
        }
        let at = fault.at(settings.duration_s);
        let end = at + if fault.kind.lasts() { fault.for_s } else { 0.0 };
        if at <= 0.0 || end >= f64::from(settings.duration_s) {
            return Err(format!(
                "--fault {fault}: it must start after 0 s and end before the measured load does ({} s); give --duration or @AT:FOR",
                settings.duration_s
            ));
        }
        if let Some((_, _, other)) = windows.iter().find(|(a, b, _)| at <= *b && *a <= end) {
            return Err(format!(
                "--fault {fault} overlaps --fault {other}: one at a time"
            ));
        }
        windows.push((at, end, fault));
    }
    Ok(())
}

/// When a fault happened, in seconds into the measured load.
#[derive(Clone, Debug)]
pub struct FaultTimes {
    pub fault: Fault,
    pub started_s: f64,
    /// The service is back: PostgreSQL accepts connections, nginx listens, pgbouncer resumed.
    pub back_s: f64,
    /// The fault could not be carried out (the row then says why).
    pub error: Option<String>,
}

/// Carries out `faults` in order of their start, measured from `t0` (the start of the
/// measured load), and returns their times in that order. Each one is undone before the
/// next, and before returning even when `interrupted` is set.
pub fn inject(
    stack: &Stack,
    pgbouncer: Option<&Pgbouncer>,
    faults: &[Fault],
    duration_s: u32,
    t0: Instant,
    interrupted: &AtomicBool,
) -> Vec<FaultTimes> {
    let mut order: Vec<&Fault> = faults.iter().collect();
    order.sort_by(|a, b| a.at(duration_s).total_cmp(&b.at(duration_s)));
    let since = |t: Instant| t.duration_since(t0).as_secs_f64();
    // Sleeps until `until`, or less when interrupted.
    let sleep_until = |until: Instant| {
        while Instant::now() < until && !interrupted.load(Ordering::SeqCst) {
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
    };
    let mut times = Vec::new();
    for fault in order {
        sleep_until(t0 + Duration::from_secs_f64(fault.at(duration_s)));
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        let started = Instant::now();
        let hold = started + Duration::from_secs_f64(fault.for_s);
        let result = match fault.kind {
            FaultKind::DbRestart => stack.postgres.restart(),
            FaultKind::DbStop => stack.postgres.stop().and_then(|()| {
                sleep_until(hold);
                stack.postgres.start_again()
            }),
            FaultKind::UpstreamStop => {
                stack.upstream.stop();
                sleep_until(hold);
                stack.upstream.start_again()
            }
            FaultKind::PoolDrain => match pgbouncer {
                Some(bouncer) => {
                    let drained = bouncer.drain();
                    sleep_until(hold);
                    drained.and(bouncer.resume())
                }
                None => Err(anyhow::anyhow!("no pgbouncer to drain")),
            },
        };
        times.push(FaultTimes {
            fault: fault.clone(),
            started_s: since(started),
            back_s: since(Instant::now()),
            error: result.err().map(|e| format!("{fault}: {e:#}")),
        });
    }
    times
}

/// One probe request: when it started (ms into the measured load), how long it took, and how
/// it ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeEvent {
    pub start_ms: f64,
    pub latency_ms: f64,
    pub outcome: Outcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Status(u16),
    Connect,
    Timeout,
    Io,
}

/// The probe's connections and its total rate: low, so that it measures the target without
/// loading it.
pub const PROBE_CONNECTIONS: usize = 10;
pub const PROBE_RATE: u32 = 100;
/// A probe request that takes longer is a timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The probe: `PROBE_CONNECTIONS` threads, each sending `GET path` at a fixed pace on its own
/// keep-alive connection (opened again after any error), never catching up on a missed slot.
pub struct Probe {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<Vec<ProbeEvent>>>,
}

impl Probe {
    pub fn start(addr: SocketAddr, path: &str, t0: Instant) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let interval = Duration::from_secs(1) * PROBE_CONNECTIONS as u32 / PROBE_RATE;
        let handles = (0..PROBE_CONNECTIONS)
            .map(|i| {
                let stop = stop.clone();
                let path = path.to_string();
                let offset = interval * i as u32 / PROBE_CONNECTIONS as u32;
                std::thread::spawn(move || probe_loop(addr, &path, t0 + offset, interval, &stop))
            })
            .collect();
        Probe { stop, handles }
    }

    /// Stops the probe; every request it made, in order of start.
    pub fn finish(self) -> Vec<ProbeEvent> {
        self.stop.store(true, Ordering::SeqCst);
        let mut events: Vec<ProbeEvent> = self
            .handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        events.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
        events
    }
}

fn probe_loop(
    addr: SocketAddr,
    path: &str,
    first: Instant,
    interval: Duration,
    stop: &AtomicBool,
) -> Vec<ProbeEvent> {
    let t0 = first;
    let mut events = Vec::new();
    let mut conn: Option<client::Conn> = None;
    let mut slot = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let due = first + interval * slot;
        let now = Instant::now();
        if now < due {
            std::thread::sleep((due - now).min(Duration::from_millis(50)));
            continue;
        }
        // A slot missed while a request hung is skipped, not made up.
        slot = (now.duration_since(first).as_secs_f64() / interval.as_secs_f64()) as u32 + 1;
        let started = Instant::now();
        let outcome = probe_once(addr, path, &mut conn);
        events.push(ProbeEvent {
            start_ms: started.duration_since(t0).as_secs_f64() * 1000.0,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            outcome,
        });
    }
    events
}

fn probe_once(addr: SocketAddr, path: &str, conn: &mut Option<client::Conn>) -> Outcome {
    if conn.is_none() {
        match client::Conn::open(addr) {
            Ok(opened) => {
                let _ = opened.set_read_timeout(PROBE_TIMEOUT);
                *conn = Some(opened);
            }
            Err(_) => return Outcome::Connect,
        }
    }
    let Some(open) = conn.as_mut() else {
        return Outcome::Connect;
    };
    match open.get(path) {
        Ok(response) => {
            if !response.reusable {
                *conn = None;
            }
            if (200..300).contains(&response.status) {
                Outcome::Ok
            } else {
                Outcome::Status(response.status)
            }
        }
        Err(e) => {
            *conn = None;
            let timed_out = e.chain().any(|cause| {
                cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    matches!(
                        io.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                })
            });
            if timed_out {
                Outcome::Timeout
            } else {
                Outcome::Io
            }
        }
    }
}

/// The probe's answers and errors per 100 ms of the measured load (by the time each request
/// ended).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    pub bucket_ms: u32,
    /// 2xx per bucket.
    pub ok: Vec<u32>,
    /// Errors per bucket, all kinds together...
    pub errors: Vec<u32>,
    /// ...and by kind: an answer that was not 2xx, a refused connection, no answer within
    /// 2 s, a connection broken mid-request.
    pub non_2xx: Vec<u32>,
    pub connect: Vec<u32>,
    pub timeout: Vec<u32>,
    pub broken: Vec<u32>,
}

pub const BUCKET_MS: u32 = 100;

impl Timeline {
    pub fn of(events: &[ProbeEvent], duration_s: u32) -> Timeline {
        let buckets = (duration_s * 1000 / BUCKET_MS) as usize;
        let mut timeline = Timeline {
            bucket_ms: BUCKET_MS,
            ok: vec![0; buckets],
            errors: vec![0; buckets],
            non_2xx: vec![0; buckets],
            connect: vec![0; buckets],
            timeout: vec![0; buckets],
            broken: vec![0; buckets],
        };
        for event in events {
            let end = event.start_ms + event.latency_ms;
            let bucket = (end / f64::from(BUCKET_MS)) as usize;
            if end < 0.0 || bucket >= buckets {
                continue;
            }
            let kind = match event.outcome {
                Outcome::Ok => {
                    timeline.ok[bucket] += 1;
                    continue;
                }
                Outcome::Status(_) => &mut timeline.non_2xx,
                Outcome::Connect => &mut timeline.connect,
                Outcome::Timeout => &mut timeline.timeout,
                Outcome::Io => &mut timeline.broken,
            };
            kind[bucket] += 1;
            timeline.errors[bucket] += 1;
        }
        timeline
    }
}

/// What a fault cost, from the probe: the row's `faults`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultReport {
    /// As given: `KIND[@AT][:FOR]`.
    pub fault: String,
    pub kind: FaultKind,
    /// When it started and when the service was back, in seconds into the measured load.
    pub started_s: f64,
    pub back_s: f64,
    /// The probe's 2xx per second in the second before the fault.
    pub probe_2xx_per_s_before: f64,
    /// Probe errors that ended during the fault, and after the service was back.
    pub errors_during: u64,
    pub errors_after: u64,
    /// From the service being back to the first probe 2xx after it.
    pub first_2xx_after_back_ms: Option<f64>,
    /// From the service being back to the first 500 ms in which the probe got at least 90% of
    /// its 2xx rate before the fault; empty when that never happened within the load.
    pub recovered_90_after_back_ms: Option<f64>,
    /// The slowest probe request that overlapped the fault or the second after it.
    pub worst_latency_ms: f64,
    /// The target process was still running at the end (a target that died is a failed row).
    pub target_survived: bool,
}

/// The window in which recovery is judged.
const RECOVERY_WINDOW_MS: f64 = 500.0;

impl FaultReport {
    pub fn of(fault: &Fault, times: &FaultTimes, events: &[ProbeEvent]) -> FaultReport {
        let started = times.started_s * 1000.0;
        let back = times.back_s * 1000.0;
        let end = |e: &ProbeEvent| e.start_ms + e.latency_ms;
        let ok_between = |from: f64, to: f64| {
            events
                .iter()
                .filter(|e| e.outcome == Outcome::Ok && end(e) >= from && end(e) < to)
                .count() as f64
        };
        let before = ok_between(started - 1000.0, started);
        let errors = |from: f64, to: f64| {
            events
                .iter()
                .filter(|e| e.outcome != Outcome::Ok && end(e) >= from && end(e) < to)
                .count() as u64
        };
        let first_2xx = events
            .iter()
            .filter(|e| e.outcome == Outcome::Ok && end(e) >= back)
            .map(|e| end(e) - back)
            .reduce(f64::min);
        let last_end = events.iter().map(end).fold(0.0, f64::max);
        let needed = 0.9 * before * RECOVERY_WINDOW_MS / 1000.0;
        let mut recovered = None;
        let mut from = back;
        while from + RECOVERY_WINDOW_MS <= last_end {
            if ok_between(from, from + RECOVERY_WINDOW_MS) >= needed {
                recovered = Some(from - back);
                break;
            }
            from += f64::from(BUCKET_MS) / 2.0;
        }
        let worst = events
            .iter()
            .filter(|e| end(e) >= started && e.start_ms <= back + 1000.0)
            .map(|e| e.latency_ms)
            .fold(0.0, f64::max);
        FaultReport {
            fault: fault.to_string(),
            kind: fault.kind,
            started_s: times.started_s,
            back_s: times.back_s,
            probe_2xx_per_s_before: before,
            errors_during: errors(started, back),
            errors_after: errors(back, f64::INFINITY),
            first_2xx_after_back_ms: first_2xx,
            recovered_90_after_back_ms: recovered,
            worst_latency_ms: worst,
            target_survived: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_with_defaults_and_refuse_bad_ones_by_name() {
        assert_eq!(
            parse("db-restart").unwrap(),
            Fault::new(FaultKind::DbRestart, None, DEFAULT_FOR_S)
        );
        assert_eq!(
            parse("db-stop@5:3").unwrap(),
            Fault::new(FaultKind::DbStop, Some(5.0), 3.0)
        );
        assert_eq!(
            parse("upstream-stop@2.5s:500ms").unwrap(),
            Fault::new(FaultKind::UpstreamStop, Some(2.5), 0.5)
        );
        assert_eq!(
            parse("pool-drain@4").unwrap().to_string(),
            "pool-drain@4s:5s"
        );
        for (bad, named) in [
            ("db-crash", "db-crash"),
            ("db-stop@soon", "soon"),
            ("db-stop:0", "0"),
            ("db-restart:5", "no duration"),
            ("upstream-stop@-1", "-1"),
        ] {
            let message = parse(bad).unwrap_err();
            assert!(message.contains(named), "{bad}: {message}");
        }
    }

    #[test]
    fn a_fault_the_run_cannot_have_is_refused_before_the_load() {
        let grinberg = super::super::scenario::find("grinberg").unwrap().settings;
        let check = |fault: &str, settings: &Settings, private: bool| {
            check(&[parse(fault).unwrap()], settings, private)
        };
        assert!(check("db-restart", &grinberg, true).is_ok());
        assert!(check("pool-drain", &grinberg, true)
            .unwrap_err()
            .contains("--pgbouncer"));
        assert!(check("db-stop", &grinberg, false)
            .unwrap_err()
            .contains("--database-url"));
        assert!(check("upstream-stop", &grinberg, true)
            .unwrap_err()
            .contains("--backend upstream"));
        assert!(check("db-stop@8:5", &grinberg, true)
            .unwrap_err()
            .contains("before the measured load"));
        let two = [
            parse("db-stop@2:3").unwrap(),
            parse("db-restart@4").unwrap(),
        ];
        assert!(super::check(&two, &grinberg, true)
            .unwrap_err()
            .contains("overlaps"));
    }

    fn event(start_ms: f64, latency_ms: f64, outcome: Outcome) -> ProbeEvent {
        ProbeEvent {
            start_ms,
            latency_ms,
            outcome,
        }
    }

    #[test]
    fn recovery_is_timed_from_the_service_being_back() {
        // 100 probe answers per second, 10 ms each; errors from 3.0 s to 4.0 s; the service
        // back at 3.5 s; errors go on until 4.0 s, then 2xx again.
        let mut events = Vec::new();
        for i in 0..600 {
            let start = f64::from(i) * 10.0;
            let outcome = if (3000.0..4000.0).contains(&start) {
                Outcome::Status(503)
            } else {
                Outcome::Ok
            };
            events.push(event(start, 1.0, outcome));
        }
        let fault = parse("db-stop@3:0.5").unwrap();
        let times = FaultTimes {
            fault: fault.clone(),
            started_s: 3.0,
            back_s: 3.5,
            error: None,
        };
        let report = FaultReport::of(&fault, &times, &events);
        assert_eq!(report.probe_2xx_per_s_before, 100.0);
        assert_eq!(report.errors_during, 50);
        assert_eq!(report.errors_after, 50);
        let first = report.first_2xx_after_back_ms.unwrap();
        assert!((first - 501.0).abs() < 1e-6, "{first}");
        let recovered = report.recovered_90_after_back_ms.unwrap();
        assert!((450.0..=550.0).contains(&recovered), "{recovered}");
        let timeline = Timeline::of(&events, 6);
        assert_eq!(timeline.ok.len(), 60);
        assert_eq!(timeline.ok[0], 10);
        assert_eq!(timeline.errors[35], 10);
        assert_eq!(timeline.non_2xx[35], 10);
        assert_eq!(
            timeline.timeout[35] + timeline.connect[35] + timeline.broken[35],
            0
        );
        assert_eq!(timeline.ok[35], 0);
    }
}
