//! Faults as values: `--fault KIND[@AT][:FOR]` parsed (checked against a run's settings by
//! `Settings::check_faults`),
//! the probe's events, and what a fault cost (the row's `faults` and `timeline`). The
//! injector and the probe that produce them are `measure::extras::fault`.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    pub fn lasts(self) -> bool {
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

/// One probe request: when it started (ms into the measured load), how long it took, and how
/// it ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeEvent {
    pub start_ms: f64,
    pub latency_ms: f64,
    pub outcome: ProbeOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Ok,
    Status(u16),
    Connect,
    Timeout,
    Io,
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
    /// The probe's own CPU per request (its threads, in the harness), beside the load
    /// tool's.
    #[serde(default)]
    pub probe_cpu_ms_per_request: Option<f64>,
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
            probe_cpu_ms_per_request: None,
        };
        for event in events {
            let end = event.start_ms + event.latency_ms;
            let bucket = (end / f64::from(BUCKET_MS)) as usize;
            if end < 0.0 || bucket >= buckets {
                continue;
            }
            let kind = match event.outcome {
                ProbeOutcome::Ok => {
                    timeline.ok[bucket] += 1;
                    continue;
                }
                ProbeOutcome::Status(_) => &mut timeline.non_2xx,
                ProbeOutcome::Connect => &mut timeline.connect,
                ProbeOutcome::Timeout => &mut timeline.timeout,
                ProbeOutcome::Io => &mut timeline.broken,
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
                .filter(|e| e.outcome == ProbeOutcome::Ok && end(e) >= from && end(e) < to)
                .count() as f64
        };
        let before = ok_between(started - 1000.0, started);
        let errors = |from: f64, to: f64| {
            events
                .iter()
                .filter(|e| e.outcome != ProbeOutcome::Ok && end(e) >= from && end(e) < to)
                .count() as u64
        };
        let first_2xx = events
            .iter()
            .filter(|e| e.outcome == ProbeOutcome::Ok && end(e) >= back)
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

    fn event(start_ms: f64, latency_ms: f64, outcome: ProbeOutcome) -> ProbeEvent {
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
                ProbeOutcome::Status(503)
            } else {
                ProbeOutcome::Ok
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
