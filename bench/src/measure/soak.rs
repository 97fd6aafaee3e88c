//! The `soak` preset: every target at once, each on its own port (behind one nginx with a
//! port per target when the settings go via nginx), each under its own paced client at a
//! fixed rate, for as long as asked, with a PostgreSQL restart and an upstream outage every
//! so often (`model::soak::schedule`, carried out by the faults' own `inject`). Every
//! [`SAMPLE_EVERY_S`] the main thread samples each target's memory, threads, descriptors and
//! DB sessions; the clients tally every answer per second and per minute. At the end each
//! target's tallies and samples become its row, with the verdict in `soak`
//! (`SoakReport::judge`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::extras::fault::inject;
use super::paced::{Pace, Paced, Recorder};
use super::sample::CpuWatch;
use crate::contract;
use crate::model::case::{self, Subject};
use crate::model::fault::{Fault, ProbeEvent};
use crate::model::plan::Plan;
use crate::model::row::{Round, Row};
use crate::model::settings::{Endpoint, Settings, Via};
use crate::model::soak::{
    schedule, ErrorAt, ErrorKinds, SoakFault, SoakMinute, SoakReport, SoakSample, SAMPLE_EVERY_S,
};
use crate::model::tool::{percentile_of_sorted, Errors, Measurement};
use crate::observe::postgres::Observer;
use crate::observe::procfs;
use crate::stack::{Stack, Target};

/// Each target's rate when the settings give none (the preset's).
const DEFAULT_RATE: u32 = 300;
/// A soak request that takes longer is a timeout.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The name the rows give their load.
pub const CLIENT: &str = "paced";

/// Soaks every target of `plan` for its duration, faults every `every_s`; one row each.
pub fn run(stack: &Stack, plan: &Plan, every_s: f64, interrupted: &AtomicBool) -> Result<Vec<Row>> {
    let s = &plan.settings;
    let cases = case::expand(&plan.scenario, s, &plan.targets);
    let refused: Vec<(shared::Binary, String)> = if plan.verify {
        contract::check_targets(stack, &plan.targets, plan.accept_unchecked)?
            .into_iter()
            .filter_map(|(binary, verdict)| verdict.err().map(|why| (binary, why)))
            .collect()
    } else {
        Vec::new()
    };
    let mut running = Vec::new();
    let mut rows = Vec::new();
    for case in &cases {
        let Subject::Target(binary) = case.subject else {
            continue;
        };
        match refused.iter().find(|(b, _)| *b == binary) {
            Some((_, why)) => rows.push(Row::refused(case, why)),
            None => running.push((case, stack.launch(binary, &s.target_flags(binary))?)),
        }
    }
    let proxy = if s.via == Via::Nginx && !running.is_empty() {
        let routes: Vec<(String, SocketAddr)> = running
            .iter()
            .map(|(_, t)| (t.binary.name().to_string(), t.addr))
            .collect();
        Some(stack.proxy(&routes, s.upstream_keepalive, 1)?)
    } else {
        None
    };
    let addrs: Vec<SocketAddr> = match &proxy {
        Some((_, routes)) => routes.iter().map(|r| r.listen).collect(),
        None => running.iter().map(|(_, t)| t.addr).collect(),
    };
    let duration = Duration::from_secs(u64::from(s.duration_s));
    let faults: Vec<Fault> = schedule(duration.as_secs_f64(), every_s)
        .into_iter()
        .map(|(kind, at, lasts)| Fault::new(kind, Some(at), lasts))
        .collect();
    let pace = pace(s);
    let t0 = Instant::now();
    let clients: Vec<Paced<Tally>> = addrs
        .iter()
        .map(|addr| Paced::start(*addr, &pace, t0, Tally::default))
        .collect();
    let cpu: Vec<CpuWatch> = running
        .iter()
        .map(|(_, t)| CpuWatch::start(Some((t.pid(), false)), None, None))
        .collect();
    let pids: Vec<(u32, &'static str)> = running
        .iter()
        .map(|(_, t)| (t.pid(), shared::sql::application_name(t.binary)))
        .collect();
    let (times, samples) = std::thread::scope(|scope| {
        let injector = scope.spawn(|| inject(stack, None, &faults, s.duration_s, t0, interrupted));
        let samples = sample_until(stack, &pids, (t0, t0 + duration), interrupted);
        (injector.join().unwrap_or_default(), samples)
    });
    // Every client stops now, before any row is built, so that all count the same span.
    let tallies: Vec<Vec<Tally>> = clients.into_iter().map(|c| c.finish().0).collect();
    let elapsed = t0.elapsed().as_secs_f64();
    let soak_faults: Vec<SoakFault> = times
        .iter()
        .map(|t| SoakFault {
            kind: t.fault.kind,
            started_s: t.started_s,
            back_s: t.back_s,
        })
        .collect();
    let fault_error = times.iter().find_map(|t| t.error.clone());
    let finished = tallies.into_iter().zip(cpu).zip(running);
    for (i, ((tallies, cpu), (case, mut target))) in finished.enumerate() {
        let (cpu_s, _, _) = cpu.finish();
        let soak = Soak {
            settings: s,
            elapsed_s: elapsed,
            samples: samples.iter().map(|at| at[i].clone()).collect(),
            faults: &soak_faults,
        };
        let failure = fault_error
            .clone()
            .map(|e| format!("the fault could not be carried out: {e}"))
            .or_else(|| died(&mut target));
        let mut row = Row::build(case, vec![soak.round(tallies, cpu_s)], failure);
        row.tool = CLIENT.to_string();
        rows.push(row);
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
    }
    Ok(rows)
}

/// The paced client of each target: the settings' rate (300 req/s when none) over their
/// connections; with `/test`, one request in four through the upstream backend, so that an
/// upstream outage has something to break.
fn pace(s: &Settings) -> Pace {
    let paths = match s.path {
        Endpoint::Test => {
            let db = format!("/test?delay_ms={}&backend=db", s.delay_ms);
            let upstream = format!("/test?delay_ms={}&backend=upstream", s.delay_ms);
            vec![db.clone(), db.clone(), db, upstream]
        }
        other => vec![other.path().to_string()],
    };
    Pace {
        rate: s.rate.unwrap_or(DEFAULT_RATE),
        connections: s.connections as usize,
        timeout: TIMEOUT,
        paths,
    }
}

/// Why a target's row failed: it is no longer running.
fn died(target: &mut Target) -> Option<String> {
    target.death("the soak")
}

/// Samples every target every [`SAMPLE_EVERY_S`] until `end` (or Ctrl-C); one list of
/// samples (one per target) per moment. Says each minute how far the soak is.
fn sample_until(
    stack: &Stack,
    targets: &[(u32, &str)],
    (t0, end): (Instant, Instant),
    interrupted: &AtomicBool,
) -> Vec<Vec<SoakSample>> {
    let every = Duration::from_secs_f64(SAMPLE_EVERY_S);
    let total_min = end.saturating_duration_since(t0).as_secs().div_ceil(60);
    let mut observer: Option<Observer> = None;
    let mut moments = Vec::new();
    let mut said = 0;
    let mut next = t0 + every;
    while next <= end && !interrupted.load(Ordering::SeqCst) {
        while Instant::now() < next && !interrupted.load(Ordering::SeqCst) {
            std::thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(every / 10),
            );
        }
        let t_s = t0.elapsed().as_secs_f64();
        if observer.is_none() {
            // Gone with every PostgreSQL restart; back at the next sample after it.
            observer = Observer::connect(stack.database_url()).ok();
        }
        let moment = targets
            .iter()
            .map(|&(pid, app)| {
                let usage = procfs::usage(pid);
                let sessions = observer.as_mut().map(|o| o.sessions(app));
                if matches!(sessions, Some(Err(_))) {
                    observer = None;
                }
                SoakSample {
                    t_s,
                    rss_mib: usage.map(|u| u.rss_mib),
                    threads: usage.map(|u| u.threads),
                    fds: procfs::open_fds(pid),
                    sessions: sessions.and_then(|s| s.ok()).map(|s| s.total),
                    ..SoakSample::default()
                }
            })
            .collect();
        moments.push(moment);
        let minute = (t_s / 60.0) as u64;
        if minute > said {
            said = minute;
            eprintln!("bench: soak: {minute} of {total_min} min");
        }
        next += every;
    }
    moments
}

/// What a paced thread of the soak keeps: 2xx and errors per second, 2xx latencies per
/// minute, and each error's end.
#[derive(Default)]
struct Tally {
    seconds: Vec<(u64, ErrorKinds)>,
    minutes: Vec<Vec<f64>>,
    errors: Vec<ErrorAt>,
}

impl Recorder for Tally {
    fn record(&mut self, _path: usize, event: ProbeEvent) {
        let end_s = (event.start_ms + event.latency_ms) / 1000.0;
        let second = end_s as usize;
        if self.seconds.len() <= second {
            self.seconds.resize(second + 1, (0, ErrorKinds::default()));
        }
        let (ok, errors) = &mut self.seconds[second];
        if errors.count(event.outcome) {
            self.errors.push(ErrorAt {
                end_s,
                outcome: event.outcome,
            });
            return;
        }
        *ok += 1;
        let minute = second / 60;
        if self.minutes.len() <= minute {
            self.minutes.resize(minute + 1, Vec::new());
        }
        self.minutes[minute].push(event.latency_ms);
    }
}

/// One target's soak, to be made its round.
struct Soak<'a> {
    settings: &'a Settings,
    elapsed_s: f64,
    samples: Vec<SoakSample>,
    faults: &'a [SoakFault],
}

impl Soak<'_> {
    /// The target's round: the tallies of its paced threads as the measurement (2xx,
    /// percentiles, errors by kind), its peaks, its CPU, and the judged soak beside it.
    fn round(self, tallies: Vec<Tally>, cpu_s: Option<f64>) -> Round {
        let mut seconds: Vec<(u64, ErrorKinds)> = Vec::new();
        let mut minutes: Vec<Vec<f64>> = Vec::new();
        let mut errors: Vec<ErrorAt> = Vec::new();
        for tally in tallies {
            merge(&mut seconds, tally.seconds, |a, b| {
                a.0 += b.0;
                a.1.add(&b.1);
            });
            merge(&mut minutes, tally.minutes, |a, b| a.extend(b));
            errors.extend(tally.errors);
        }
        let mut samples = self.samples;
        let mut from = 0;
        for sample in &mut samples {
            let to = (sample.t_s as usize).min(seconds.len());
            for (ok, kinds) in &seconds[from.min(to)..to] {
                sample.ok += ok;
                sample.errors.add(kinds);
            }
            from = to;
        }
        let mut totals = ErrorKinds::default();
        seconds.iter().for_each(|(_, kinds)| totals.add(kinds));
        let minute_rows = minutes
            .iter_mut()
            .enumerate()
            .map(|(minute, latencies)| {
                latencies.sort_by(f64::total_cmp);
                let in_minute = seconds
                    .get(minute * 60..)
                    .unwrap_or_default()
                    .iter()
                    .take(60);
                let mut kinds = ErrorKinds::default();
                in_minute.for_each(|(_, k)| kinds.add(k));
                SoakMinute {
                    minute: minute as u32,
                    ok: latencies.len() as u64,
                    errors: kinds,
                    p99_ms: percentile_of_sorted(latencies, 99.0),
                }
            })
            .collect();
        let mut all: Vec<f64> = minutes.into_iter().flatten().collect();
        all.sort_by(f64::total_cmp);
        let measurement = measurement(&all, &totals, self.elapsed_s);
        let peak =
            |f: &dyn Fn(&SoakSample) -> Option<f64>| samples.iter().filter_map(f).reduce(f64::max);
        let rss_peak_mib = peak(&|s| s.rss_mib);
        let threads_peak = peak(&|s| s.threads.map(|t| t as f64)).map(|t| t as u64);
        let sessions_peak = peak(&|s| s.sessions.map(|n| n as f64)).map(|n| n as i64);
        let s = self.settings;
        let report = SoakReport {
            rate: s.rate.unwrap_or(DEFAULT_RATE),
            connections: s.connections,
            duration_s: self.elapsed_s,
            warmup_s: (self.elapsed_s / 5.0).min(300.0),
            samples,
            minutes: minute_rows,
            ..SoakReport::default()
        }
        .judge(self.faults, &errors);
        let mut round = Round {
            measurement,
            sessions_peak,
            rss_peak_mib,
            threads_peak,
            processes_peak: Some(1),
            cpu_s,
            ..Round::default()
        };
        round.beside.soak = Some(report);
        round
    }
}

/// Adds `more` into `into` element by element, growing it as needed.
fn merge<T: Default + Clone>(into: &mut Vec<T>, more: Vec<T>, add: impl Fn(&mut T, T)) {
    if into.len() < more.len() {
        into.resize(more.len(), T::default());
    }
    for (slot, value) in into.iter_mut().zip(more) {
        add(slot, value);
    }
}

/// The soak's totals as a load tool's measurement: 2xx, their percentiles, spectrum and mean,
/// errors.
fn measurement(sorted: &[f64], errors: &ErrorKinds, seconds: f64) -> Measurement {
    let errors = Errors {
        connect: errors.connect,
        read: errors.broken,
        timeout: errors.timeout,
        non_2xx: errors.non_2xx,
        ..Errors::default()
    };
    Measurement::of_sorted(sorted, errors, seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fault::ProbeOutcome;

    fn event(end_s: f64, outcome: ProbeOutcome) -> ProbeEvent {
        ProbeEvent {
            start_ms: end_s * 1000.0 - 20.0,
            latency_ms: 20.0,
            outcome,
        }
    }

    #[test]
    fn a_tally_counts_per_second_and_keeps_latencies_per_minute() {
        let mut tally = Tally::default();
        tally.record(0, event(0.5, ProbeOutcome::Ok));
        tally.record(0, event(61.2, ProbeOutcome::Ok));
        tally.record(3, event(61.7, ProbeOutcome::Status(502)));
        assert_eq!(tally.seconds.len(), 62);
        assert_eq!(tally.seconds[61].0, 1);
        assert_eq!(tally.seconds[61].1.non_2xx, 1);
        assert_eq!(tally.minutes.len(), 2);
        assert_eq!(tally.minutes[1], vec![20.0]);
        assert_eq!(tally.errors.len(), 1);
    }

    #[test]
    fn a_soak_round_puts_each_seconds_answers_in_its_sample() {
        let settings = crate::model::preset::find("soak").unwrap().settings;
        let mut a = Tally::default();
        let mut b = Tally::default();
        for i in 0..100 {
            a.record(0, event(f64::from(i) * 0.1 + 0.05, ProbeOutcome::Ok));
        }
        b.record(0, event(7.5, ProbeOutcome::Timeout));
        let samples = [5.0, 10.0]
            .map(|t_s| SoakSample {
                t_s,
                rss_mib: Some(10.0),
                ..SoakSample::default()
            })
            .to_vec();
        let round = Soak {
            settings: &settings,
            elapsed_s: 10.0,
            samples,
            faults: &[],
        }
        .round(vec![a, b], Some(1.0));
        let soak = round.beside.soak.unwrap();
        assert_eq!(soak.samples[0].ok, 50);
        assert_eq!(soak.samples[1].ok, 50);
        assert_eq!(soak.samples[1].errors.timeout, 1);
        assert_eq!(round.measurement.ok_responses, 100);
        assert_eq!(round.measurement.errors.total, 1);
        assert_eq!(soak.errors_outside_faults.timeout, 1);
        assert_eq!(soak.minutes[0].p99_ms, Some(20.0));
    }
}
