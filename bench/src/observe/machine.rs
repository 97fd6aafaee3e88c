//! The machine a run measured on, from /proc and /etc/os-release.

use std::fs;
use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::model::meta::{self, Machine};

/// Units per calibration round (about 1–5 ms on a machine of today) and rounds.
const UNITS: u32 = 2_000;
const ROUNDS: usize = 7;

/// What one unit of `work=N` costs on this machine, in µs: one thread runs the targets' own
/// function (`shared::work::chain`) for [`ROUNDS`] rounds of [`UNITS`] units, and the median
/// round counts. Measured once per process, before any load (a busy machine would inflate it).
pub fn calibrate_work() -> f64 {
    if let Some(us) = meta::work_cost() {
        return us;
    }
    let rounds: Vec<(u32, Duration)> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            black_box(shared::work::chain(black_box(b"calibration"), UNITS));
            (UNITS, started.elapsed())
        })
        .collect();
    meta::set_work_cost(us_per_unit(&rounds))
}

/// The median of the rounds' µs per unit.
pub fn us_per_unit(rounds: &[(u32, Duration)]) -> f64 {
    let mut each: Vec<f64> = rounds
        .iter()
        .filter(|(units, _)| *units > 0)
        .map(|(units, took)| took.as_secs_f64() * 1e6 / f64::from(*units))
        .collect();
    each.sort_by(f64::total_cmp);
    each.get(each.len() / 2).copied().unwrap_or(0.0)
}

/// The machine this runs on.
pub fn read() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let os = fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpus: super::procfs::cpus(),
        cpu_model,
        memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        os,
        // Measured at the start of a run; else now (after the load, on a quiet machine).
        work_us_per_unit: calibrate_work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calibration_takes_the_median_round_of_the_targets_own_function() {
        let ms = Duration::from_millis;
        // 20,000 units in 2, 3 (twice), 9 and 4 ms: the median round is 3 ms, 0.15 µs each.
        let rounds = [
            (20_000, ms(2)),
            (20_000, ms(3)),
            (20_000, ms(9)),
            (20_000, ms(3)),
            (20_000, ms(4)),
        ];
        assert!((us_per_unit(&rounds) - 0.15).abs() < 1e-9);
        assert_eq!(us_per_unit(&[]), 0.0);
        // The calibration runs the work itself: the same result as a target's, and a cost
        // that is kept for the process.
        let us = calibrate_work();
        assert!(us > 0.0 && us.is_finite(), "{us}");
        assert_eq!(meta::work_cost(), Some(us));
        assert_eq!(calibrate_work(), us);
        assert_eq!(read().work_us_per_unit, us);
    }
}
