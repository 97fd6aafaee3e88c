//! apache2-utils' ab: closed loop, HTTP/1.0. It has no p99.9; that stays empty rather than
//! invented.

use std::process::Command;

use anyhow::{Context, Result};

use crate::model::settings::Settings;
use crate::model::tool::{Errors, Measurement, TIMEOUT_S};

/// ab's arguments: -t bounds the time; a large -n keeps ab from stopping at its default
/// 50,000.
pub fn args(command: &mut Command, url: &str, settings: &Settings, seconds: u32) {
    command.args([
        "-q",
        "-t",
        &seconds.to_string(),
        "-n",
        "100000000",
        "-c",
        &settings.connections.max(1).to_string(),
        "-s",
        &TIMEOUT_S.to_string(),
    ]);
    if settings.client_keepalive {
        command.arg("-k");
    }
    command.arg(url);
}

pub fn parse(stdout: &str) -> Result<Measurement> {
    let field = |label: &str| -> Option<&str> {
        stdout
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(str::trim)
    };
    let number = |label: &str| -> u64 {
        field(label)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let complete = field("Complete requests:").context("ab printed no summary")?;
    let complete: u64 = complete.parse().context("ab: bad Complete requests")?;
    let seconds: f64 = field("Time taken for tests:")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("ab: no Time taken for tests")?;
    let non_2xx = number("Non-2xx responses:");
    // "(Connect: 0, Receive: 0, Length: 0, Exceptions: 0)"
    let detail = |kind: &str| -> u64 {
        stdout
            .split(&format!("{kind}: "))
            .nth(1)
            .and_then(|rest| rest.split([',', ')']).next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let percentile = |p: &str| -> Option<f64> {
        stdout.lines().find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(p))
                .then(|| words.next()?.parse().ok())
                .flatten()
        })
    };
    Ok(Measurement {
        ok_responses: complete.saturating_sub(non_2xx),
        seconds,
        p50_ms: percentile("50%"),
        p90_ms: percentile("90%"),
        p99_ms: percentile("99%"),
        p999_ms: None,
        max_ms: percentile("100%"),
        mean_ms: total_mean(stdout),
        latency_spectrum: spectrum(stdout),
        errors: Errors {
            connect: detail("Connect"),
            read: detail("Receive"),
            write: number("Write errors:"),
            timeout: 0,
            non_2xx,
            other: detail("Length") + detail("Exceptions"),
            total: 0,
        }
        .with_total(),
        ..Measurement::default()
    })
}

/// The mean of "Connection Times (ms)"'s `Total:` line (min, mean, sd, median, max): the
/// mean time of a request. (ab's "Time per request … (mean)" is concurrency / throughput,
/// Little's law by construction, so it cannot check it.)
fn total_mean(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Total:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// ab's "Percentage of the requests served within a certain time" table: 50% to 100%, in ms.
fn spectrum(stdout: &str) -> Vec<[f64; 2]> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("Percentage of the requests"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let percent = words.next()?.strip_suffix('%')?.parse().ok()?;
            Some([percent, words.next()?.parse().ok()?])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ab_output_gives_counts_errors_and_percentiles_without_p999() {
        let out = "Concurrency Level:      8\nTime taken for tests:   2.000 seconds\n\
                   Complete requests:      400\nFailed requests:        3\n   (Connect: 1, Receive: 0, Length: 2, Exceptions: 0)\n\
                   Non-2xx responses:      4\n\
                   Connection Times (ms)\n              min  mean[+/-sd] median   max\n\
                   Connect:        0    0   0.1      0       1\n\
                   Total:          1    6   1.5      5      20\n\
                   Percentage of the requests served within a certain time (ms)\n  50%      5\n  66%      6\n  90%      7\n  99%     11\n 100%     20 (longest request)\n";
        let m = parse(out).unwrap();
        assert_eq!(m.ok_responses, 396);
        assert_eq!(m.seconds, 2.0);
        assert_eq!(
            (m.p50_ms, m.p90_ms, m.p99_ms),
            (Some(5.0), Some(7.0), Some(11.0))
        );
        assert_eq!(m.p999_ms, None);
        assert_eq!(m.max_ms, Some(20.0));
        assert_eq!(m.errors.connect, 1);
        assert_eq!(m.errors.other, 2);
        assert_eq!(m.errors.total, 7);
        assert_eq!(m.mean_ms, Some(6.0));
        assert_eq!(m.latency_spectrum.first(), Some(&[50.0, 5.0]));
        assert_eq!(m.latency_spectrum.last(), Some(&[100.0, 20.0]));
        assert_eq!(m.latency_spectrum.len(), 5);
    }
}
