//! `bench diff`: two runs of a preset row by row (the same target, group and sweep point), each
//! figure's change, and whether it is better, worse, or within the noise.
//!
//! The noise of req/s comes from the rounds when both rows have them: with 3 or more rounds
//! each, a bootstrap 95% interval of new/old (the rounds of each side resampled); with 2, the
//! rounds' min–max ranges overlapping. A figure without rounds (one round, or the latencies,
//! CPU and memory, which are per row) is within the noise when it moved less than the
//! threshold (`--noise`, 5% by default).

use serde::Serialize;

use super::comparison::{interval95, RESAMPLES};
use super::row::Row;

/// Which way a figure moved, beyond its noise or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Call {
    Better,
    Worse,
    Noise,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::Better => "better",
            Call::Worse => "worse",
            Call::Noise => "within noise",
        }
    }
}

/// One figure of one matched row.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub target: String,
    /// The row's group and sweep point (`delay-ms=20 connections=100`), empty for a plain run.
    pub point: String,
    pub figure: &'static str,
    pub old: f64,
    pub new: f64,
    /// (new − old) / old.
    pub change: f64,
    pub call: Call,
    /// What the noise was judged from.
    pub noise: String,
}

/// Everything `bench diff` found.
#[derive(Debug, Serialize)]
pub struct Diff {
    pub changes: Vec<Change>,
    /// Rows of one side that the other has not (target and point).
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
}

impl Diff {
    pub fn count(&self, call: Call) -> usize {
        self.changes.iter().filter(|c| c.call == call).count()
    }

    /// The changes that are worse by more than `pct` percent.
    pub fn regressions(&self, pct: f64) -> Vec<&Change> {
        self.changes
            .iter()
            .filter(|c| c.call == Call::Worse && c.change.abs() * 100.0 > pct)
            .collect()
    }
}

/// A figure: its name, whether more is better, and how to read it from a row.
type Figure = (&'static str, bool, fn(&Row) -> Option<f64>);

const FIGURES: [Figure; 6] = [
    ("req/s", true, |r| Some(r.requests_per_sec)),
    ("P50 ms", false, |r| r.measurement.p50_ms),
    ("P99 ms", false, |r| r.measurement.p99_ms),
    ("CPU ms/req", false, |r| r.cpu_ms_per_request),
    ("RSS MiB", false, |r| r.rss_peak_mib),
    ("errors", false, |r| Some(r.measurement.errors.total as f64)),
];

/// Where a row sits: its target, group and point.
fn key(row: &Row) -> (String, String) {
    let mut point = row.group.clone();
    if let Some(p) = &row.point {
        if !point.is_empty() {
            point.push(' ');
        }
        point += &p.label();
    }
    (row.target.clone(), point)
}

/// The rows of `old` and `new` matched, every figure compared; `noise_pct` is the threshold
/// for a figure without rounds.
pub fn diff(old: &[Row], new: &[Row], noise_pct: f64) -> Diff {
    let mut changes = Vec::new();
    let mut only_new = Vec::new();
    let mut matched = Vec::new();
    for n in new.iter().filter(|r| r.is_ok()) {
        let k = key(n);
        let Some(o) = old.iter().find(|o| o.is_ok() && key(o) == k) else {
            only_new.push(label(&k));
            continue;
        };
        matched.push(k.clone());
        for (figure, more_is_better, get) in FIGURES {
            let (Some(a), Some(b)) = (get(o), get(n)) else {
                continue;
            };
            if figure == "errors" && a == 0.0 && b == 0.0 {
                continue;
            }
            let change = (b - a) / if a.abs() > 0.0 { a.abs() } else { 1.0 };
            let (within, noise) = if figure == "req/s" {
                rounds_noise(&o.rounds_rps, &n.rounds_rps)
                    .unwrap_or_else(|| threshold(change, noise_pct))
            } else {
                threshold(change, noise_pct)
            };
            let call = if within {
                Call::Noise
            } else if (change > 0.0) == more_is_better {
                Call::Better
            } else {
                Call::Worse
            };
            changes.push(Change {
                target: k.0.clone(),
                point: k.1.clone(),
                figure,
                old: a,
                new: b,
                change,
                call,
                noise,
            });
        }
    }
    let only_old = old
        .iter()
        .filter(|r| r.is_ok())
        .map(key)
        .filter(|k| !matched.contains(k))
        .map(|k| label(&k))
        .collect();
    Diff {
        changes,
        only_old,
        only_new,
    }
}

fn label((target, point): &(String, String)) -> String {
    if point.is_empty() {
        target.clone()
    } else {
        format!("{target} at {point}")
    }
}

fn threshold(change: f64, pct: f64) -> (bool, String) {
    (change.abs() * 100.0 <= pct, format!("±{pct}%"))
}

/// Within the noise of the rounds, when both sides have at least two.
fn rounds_noise(old: &[f64], new: &[f64]) -> Option<(bool, String)> {
    if old.len() < 2 || new.len() < 2 {
        return None;
    }
    if old.len() >= 3 && new.len() >= 3 {
        let [low, high] = bootstrap_ratio_unpaired(old, new);
        return Some((
            low <= 1.0 && 1.0 <= high,
            format!("95% interval of new/old {low:.3}–{high:.3}"),
        ));
    }
    let range = |v: &[f64]| {
        v.iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
    };
    let ((a0, a1), (b0, b1)) = (range(old), range(new));
    Some((a0 <= b1 && b0 <= a1, "the rounds' min–max".into()))
}

/// The 95% percentile interval of mean(new) / mean(old), each side's rounds resampled on its
/// own, from a fixed seed.
pub fn bootstrap_ratio_unpaired(old: &[f64], new: &[f64]) -> [f64; 2] {
    let mut rng = fastrand::Rng::with_seed(0xd1ff);
    let mean_of = |rng: &mut fastrand::Rng, v: &[f64]| {
        (0..v.len()).map(|_| v[rng.usize(..v.len())]).sum::<f64>() / v.len() as f64
    };
    let ratios: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            let a = mean_of(&mut rng, old);
            let b = mean_of(&mut rng, new);
            (a > 0.0).then(|| b / a)
        })
        .collect();
    interval95(ratios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_decide_the_noise_of_throughput() {
        // Apart in every round: the interval excludes 1.
        let (within, _) = rounds_noise(&[1000.0, 1010.0, 990.0], &[800.0, 805.0, 795.0]).unwrap();
        assert!(!within);
        // Mixed: within.
        let (within, _) = rounds_noise(&[1000.0, 960.0, 1040.0], &[990.0, 1030.0, 970.0]).unwrap();
        assert!(within);
        // Two rounds: ranges.
        assert!(rounds_noise(&[100.0, 110.0], &[108.0, 120.0]).unwrap().0);
        assert!(!rounds_noise(&[100.0, 110.0], &[111.0, 120.0]).unwrap().0);
        // One round: no rounds noise, the threshold decides.
        assert!(rounds_noise(&[100.0], &[120.0, 121.0]).is_none());
        assert!(threshold(0.049, 5.0).0 && !threshold(-0.051, 5.0).0);
    }
}
