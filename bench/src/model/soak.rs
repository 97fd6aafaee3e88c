//! A soak as values: every target under its own paced client for a long time, with a
//! PostgreSQL restart and an upstream outage every so often. What was sampled (memory,
//! threads, descriptors, DB sessions every few seconds; answers and errors per second; P99
//! per minute), and the verdict on each target: does its memory or its descriptor count
//! creep (the slope per hour after the warm-up, outside the faults, against a stated bound),
//! did it answer every request outside the fault windows, and did it recover after each
//! fault. The soak itself is `measure::soak`.

use serde::{Deserialize, Serialize};

use super::fault::{FaultKind, ProbeOutcome};

/// The most resident memory may grow per hour after the warm-up and still be flat: at the
/// soak's default 300 req/s, a leak of 4 bytes per request (about 4.1 MiB an hour) is over it.
pub const FLAT_RSS_MIB_PER_H: f64 = 4.0;
/// The most the open descriptors may grow per hour: one leaked per fault (six an hour at the
/// default spacing) is over it.
pub const FLAT_FDS_PER_H: f64 = 4.0;
/// Slopes are judged only over at least this much time after the warm-up (a shorter soak
/// reports them, but says it is too short to call them flat or not).
pub const JUDGED_AFTER_S: f64 = 600.0;
/// A fault's window: from its start until this long after the service is back. An error in
/// it is the fault's; outside every window, the target's.
pub const RECOVERY_LIMIT_S: f64 = 30.0;
/// The samples from a fault's start to this long after the service is back are left out of
/// the slopes: pools reconnect and descriptors come and go while a target recovers.
pub const SETTLE_S: f64 = 10.0;
/// How often the processes are sampled.
pub const SAMPLE_EVERY_S: f64 = 5.0;
/// How long a fault that lasts (the upstream outage) lasts, at most.
pub const OUTAGE_S: f64 = 5.0;

/// Errors by kind.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorKinds {
    /// Answers other than 2xx (a 502 or 503 during a fault).
    pub non_2xx: u64,
    pub connect: u64,
    pub timeout: u64,
    /// The connection broke mid-answer.
    pub broken: u64,
}

impl ErrorKinds {
    pub fn total(&self) -> u64 {
        self.non_2xx + self.connect + self.timeout + self.broken
    }

    /// Counts one request's outcome; false for a 2xx (not an error).
    pub fn count(&mut self, outcome: ProbeOutcome) -> bool {
        let kind = match outcome {
            ProbeOutcome::Ok => return false,
            ProbeOutcome::Status(_) => &mut self.non_2xx,
            ProbeOutcome::Connect => &mut self.connect,
            ProbeOutcome::Timeout => &mut self.timeout,
            ProbeOutcome::Io => &mut self.broken,
        };
        *kind += 1;
        true
    }

    pub fn add(&mut self, other: &ErrorKinds) {
        self.non_2xx += other.non_2xx;
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.broken += other.broken;
    }

    /// `3 (2 non-2xx, 1 timeout)`, or `0`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.non_2xx, "non-2xx"),
            (self.connect, "connect"),
            (self.timeout, "timeout"),
            (self.broken, "broken"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, kind)| format!("{n} {kind}"))
        .collect();
        match parts.len() {
            0 => "0".to_string(),
            _ => format!("{} ({})", self.total(), parts.join(", ")),
        }
    }
}

/// One sample of a target, every [`SAMPLE_EVERY_S`]: what its process held at that moment,
/// and the answers and errors since the previous sample.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SoakSample {
    /// Seconds into the soak.
    pub t_s: f64,
    pub rss_mib: Option<f64>,
    pub threads: Option<u64>,
    /// Open descriptors (`/proc/PID/fd`).
    pub fds: Option<u64>,
    /// Its sessions in `pg_stat_activity` (none while PostgreSQL restarts).
    pub sessions: Option<i64>,
    pub ok: u64,
    pub errors: ErrorKinds,
}

/// One minute of a target's answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SoakMinute {
    pub minute: u32,
    pub ok: u64,
    pub errors: ErrorKinds,
    /// Of the 2xx answers that minute.
    pub p99_ms: Option<f64>,
}

/// One fault of the soak, as carried out (the same times for every target).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SoakFault {
    pub kind: FaultKind,
    pub started_s: f64,
    /// When the service was back (PostgreSQL accepting again, nginx started).
    pub back_s: f64,
}

/// Each fault's window, in order: from its start until [`RECOVERY_LIMIT_S`] after the service
/// is back, or until the next fault starts if that is sooner. An error in it is the fault's.
pub fn windows(faults: &[SoakFault]) -> Vec<(f64, f64)> {
    faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let next = faults.get(i + 1).map_or(f64::INFINITY, |n| n.started_s);
            (f.started_s, (f.back_s + RECOVERY_LIMIT_S).min(next))
        })
        .collect()
}

/// What one fault did to one target.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultOutcome {
    pub kind: FaultKind,
    pub started_s: f64,
    pub back_s: f64,
    pub errors: ErrorKinds,
    /// From the service being back to the end of the target's last error in the window (0
    /// when it had none after); `None` when it was still failing at the window's end.
    pub recovered_after_s: Option<f64>,
}

/// A target's soak: its samples, minutes, faults and verdict (the row's `soak`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SoakReport {
    /// The paced client: requests per second, connections.
    pub rate: u32,
    pub connections: u32,
    pub duration_s: f64,
    /// The samples before this are the warm-up, left out of the slopes.
    pub warmup_s: f64,
    pub samples: Vec<SoakSample>,
    pub minutes: Vec<SoakMinute>,
    pub faults: Vec<FaultOutcome>,
    pub errors_outside_faults: ErrorKinds,
    /// Least-squares slopes over the samples after the warm-up and outside the faults (from a
    /// fault's start to [`SETTLE_S`] after the service is back).
    pub rss_slope_mib_per_h: Option<f64>,
    pub fd_slope_per_h: Option<f64>,
    pub verdict: SoakVerdict,
}

/// Each check of a soak: `None` when it could not be judged.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SoakVerdict {
    pub flat_memory: Option<bool>,
    pub flat_descriptors: Option<bool>,
    pub no_errors_outside_faults: bool,
    pub recovered_every_fault: bool,
}

impl SoakVerdict {
    /// Every check that could be judged passed.
    pub fn passed(&self) -> bool {
        self.flat_memory != Some(false)
            && self.flat_descriptors != Some(false)
            && self.no_errors_outside_faults
            && self.recovered_every_fault
    }

    /// One line: what failed, or `held`.
    pub fn summary(&self) -> String {
        let mut failed = Vec::new();
        if self.flat_memory == Some(false) {
            failed.push("memory grows");
        }
        if self.flat_descriptors == Some(false) {
            failed.push("descriptors grow");
        }
        if !self.no_errors_outside_faults {
            failed.push("errors outside the faults");
        }
        if !self.recovered_every_fault {
            failed.push("did not recover from a fault");
        }
        let too_short = self.flat_memory.is_none() || self.flat_descriptors.is_none();
        match (failed.is_empty(), too_short) {
            (true, false) => "held".to_string(),
            (true, true) => "held (too short to judge the slopes)".to_string(),
            (false, _) => failed.join(", "),
        }
    }
}

/// A request's end and outcome, for the fault windows (errors only: the 2xx are counted).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErrorAt {
    pub end_s: f64,
    pub outcome: ProbeOutcome,
}

impl SoakReport {
    /// Judges a target's soak from its samples, minutes and errors, and the soak's faults.
    pub fn judge(mut self, faults: &[SoakFault], errors: &[ErrorAt]) -> SoakReport {
        let mut outside = ErrorKinds::default();
        let mut outcomes: Vec<FaultOutcome> = faults
            .iter()
            .map(|f| FaultOutcome {
                kind: f.kind,
                started_s: f.started_s,
                back_s: f.back_s,
                errors: ErrorKinds::default(),
                recovered_after_s: Some(0.0),
            })
            .collect();
        let windows = windows(faults);
        let within = |t: f64| windows.iter().position(|(from, to)| t >= *from && t < *to);
        for error in errors {
            match within(error.end_s) {
                Some(i) => {
                    let outcome = &mut outcomes[i];
                    outcome.errors.count(error.outcome);
                    let after = (error.end_s - outcome.back_s).max(0.0);
                    outcome.recovered_after_s = outcome.recovered_after_s.map(|r| r.max(after));
                }
                None => {
                    outside.count(error.outcome);
                }
            }
        }
        for (outcome, (_, to)) in outcomes.iter_mut().zip(&windows) {
            // Failing until the last second of its window: not recovered within it.
            let limit = to - outcome.back_s - 1.0;
            if outcome.recovered_after_s.is_some_and(|r| r >= limit) {
                outcome.recovered_after_s = None;
            }
        }
        let steady: Vec<&SoakSample> = self
            .samples
            .iter()
            .filter(|s| {
                s.t_s >= self.warmup_s
                    && !faults
                        .iter()
                        .any(|f| s.t_s >= f.started_s && s.t_s < f.back_s + SETTLE_S)
            })
            .collect();
        let span = steady.last().map_or(0.0, |l| l.t_s) - steady.first().map_or(0.0, |f| f.t_s);
        let per_hour = |value: &dyn Fn(&SoakSample) -> Option<f64>| {
            let points: Vec<(f64, f64)> = steady
                .iter()
                .filter_map(|s| Some((s.t_s / 3600.0, value(s)?)))
                .collect();
            slope(&points)
        };
        self.rss_slope_mib_per_h = per_hour(&|s| s.rss_mib);
        self.fd_slope_per_h = per_hour(&|s| s.fds.map(|n| n as f64));
        let judged = span >= JUDGED_AFTER_S;
        let flat = |slope: Option<f64>, bound: f64| slope.filter(|_| judged).map(|s| s <= bound);
        self.verdict = SoakVerdict {
            flat_memory: flat(self.rss_slope_mib_per_h, FLAT_RSS_MIB_PER_H),
            flat_descriptors: flat(self.fd_slope_per_h, FLAT_FDS_PER_H),
            no_errors_outside_faults: outside.total() == 0,
            recovered_every_fault: outcomes.iter().all(|o| o.recovered_after_s.is_some()),
        };
        self.errors_outside_faults = outside;
        self.faults = outcomes;
        self
    }
}

/// The least-squares slope of `points` (y per unit of x); `None` with fewer than 3 points or
/// no spread in x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// When the faults of a soak of `duration_s` happen, one PostgreSQL restart and one upstream
/// outage in every `every_s`: the restart a third of the way into each period, the outage two
/// thirds; a fault whose window would not end before the soak does is left out.
pub fn schedule(duration_s: f64, every_s: f64) -> Vec<(FaultKind, f64, f64)> {
    let mut faults = Vec::new();
    if every_s <= 0.0 {
        return faults;
    }
    let outage = OUTAGE_S.min(every_s / 10.0);
    let mut start = 0.0;
    while start < duration_s {
        for (kind, at, lasts) in [
            (FaultKind::DbRestart, start + every_s / 3.0, 0.0),
            (FaultKind::UpstreamStop, start + every_s * 2.0 / 3.0, outage),
        ] {
            if at + lasts + RECOVERY_LIMIT_S < duration_s {
                faults.push((kind, at, lasts));
            }
        }
        start += every_s;
    }
    faults
}

/// The fault spacing when none is asked for: every 10 minutes, or three times in a soak
/// shorter than 30 minutes.
pub fn default_fault_every_s(duration_s: f64) -> f64 {
    if duration_s >= 1800.0 {
        600.0
    } else {
        (duration_s / 3.0).max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, rss: f64, fds: u64) -> SoakSample {
        SoakSample {
            t_s,
            rss_mib: Some(rss),
            fds: Some(fds),
            ..SoakSample::default()
        }
    }

    fn report(samples: Vec<SoakSample>) -> SoakReport {
        SoakReport {
            warmup_s: 60.0,
            samples,
            ..SoakReport::default()
        }
    }

    #[test]
    fn the_slope_of_a_line_is_its_gradient() {
        let points: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 1.0))
            .collect();
        assert!((slope(&points).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(slope(&points[..2]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }

    #[test]
    fn a_creeping_memory_fails_and_a_flat_one_holds_after_the_warm_up() {
        // 20 minutes, a sample every 5 s: the warm-up grows fast, then flat or 8 MiB/h.
        let flat = report(
            (0..240)
                .map(|i| {
                    let t = f64::from(i) * 5.0;
                    sample(t, if t < 60.0 { t } else { 60.0 }, 40)
                })
                .collect(),
        )
        .judge(&[], &[]);
        assert_eq!(flat.verdict.flat_memory, Some(true));
        assert_eq!(flat.verdict.flat_descriptors, Some(true));
        assert!(flat.verdict.passed(), "{:?}", flat.verdict);
        assert_eq!(flat.verdict.summary(), "held");
        let creeping = report(
            (0..240)
                .map(|i| {
                    let t = f64::from(i) * 5.0;
                    sample(t, 60.0 + t / 3600.0 * 8.0, 40 + (t / 600.0) as u64)
                })
                .collect(),
        )
        .judge(&[], &[]);
        assert!((creeping.rss_slope_mib_per_h.unwrap() - 8.0).abs() < 0.01);
        assert_eq!(creeping.verdict.flat_memory, Some(false));
        assert_eq!(creeping.verdict.flat_descriptors, Some(false));
        assert_eq!(creeping.verdict.summary(), "memory grows, descriptors grow");
    }

    #[test]
    fn a_short_soak_reports_its_slopes_without_judging_them() {
        let short = report(
            (0..24)
                .map(|i| sample(f64::from(i) * 5.0, 50.0, 40))
                .collect(),
        )
        .judge(&[], &[]);
        assert_eq!(short.rss_slope_mib_per_h, Some(0.0));
        assert_eq!(short.verdict.flat_memory, None);
        assert!(short.verdict.passed());
        assert_eq!(
            short.verdict.summary(),
            "held (too short to judge the slopes)"
        );
    }

    #[test]
    fn errors_in_a_fault_window_are_the_faults_and_the_rest_are_the_targets() {
        let faults = [SoakFault {
            kind: FaultKind::DbRestart,
            started_s: 100.0,
            back_s: 101.0,
        }];
        let at = |end_s, outcome| ErrorAt { end_s, outcome };
        let errors = [
            at(100.5, ProbeOutcome::Status(503)),
            at(102.5, ProbeOutcome::Status(503)),
            at(150.0, ProbeOutcome::Timeout),
        ];
        let judged = report(Vec::new()).judge(&faults, &errors);
        assert_eq!(judged.faults[0].errors.non_2xx, 2);
        assert_eq!(judged.faults[0].recovered_after_s, Some(1.5));
        assert_eq!(judged.errors_outside_faults.timeout, 1);
        assert!(!judged.verdict.no_errors_outside_faults);
        assert!(judged.verdict.recovered_every_fault);
        assert_eq!(judged.errors_outside_faults.describe(), "1 (1 timeout)");
        // Still failing at the end of the window: not recovered.
        let stuck = report(Vec::new()).judge(&faults, &[at(130.5, ProbeOutcome::Connect)]);
        assert_eq!(stuck.faults[0].recovered_after_s, None);
        assert!(!stuck.verdict.recovered_every_fault);
    }

    #[test]
    fn a_window_ends_where_the_next_fault_starts() {
        let fault = |kind, started_s: f64, back_s: f64| SoakFault {
            kind,
            started_s,
            back_s,
        };
        let faults = [
            fault(FaultKind::DbRestart, 10.0, 10.5),
            fault(FaultKind::UpstreamStop, 20.0, 23.0),
        ];
        assert_eq!(windows(&faults), vec![(10.0, 20.0), (20.0, 53.0)]);
        let at = |end_s| ErrorAt {
            end_s,
            outcome: ProbeOutcome::Status(502),
        };
        let judged = report(Vec::new()).judge(&faults, &[at(10.2), at(11.0), at(21.0), at(22.9)]);
        assert_eq!(judged.faults[0].errors.total(), 2);
        assert_eq!(judged.faults[0].recovered_after_s, Some(0.5));
        assert_eq!(judged.faults[1].errors.total(), 2);
        assert_eq!(judged.faults[1].recovered_after_s, Some(0.0));
        assert!(judged.verdict.passed());
    }

    #[test]
    fn faults_come_every_period_and_only_when_their_window_fits() {
        let faults = schedule(1800.0, 600.0);
        let kinds: Vec<FaultKind> = faults.iter().map(|f| f.0).collect();
        assert_eq!(faults.len(), 6);
        assert_eq!(kinds[..2], [FaultKind::DbRestart, FaultKind::UpstreamStop]);
        assert_eq!(faults[0].1, 200.0);
        assert_eq!(faults[1], (FaultKind::UpstreamStop, 400.0, 5.0));
        // 90 s, every 30 s: the last period's outage would end too late.
        let short = schedule(90.0, 30.0);
        assert!(short
            .iter()
            .all(|(_, at, lasts)| at + lasts + RECOVERY_LIMIT_S < 90.0));
        assert_eq!(short.len(), 4);
        assert_eq!(default_fault_every_s(1800.0), 600.0);
        assert_eq!(default_fault_every_s(120.0), 40.0);
    }
}
