//! oha: closed loop, or open loop at a rate (`-q`, with latency correction); JSON output,
//! latencies in seconds. Installed on demand with cargo (`measure::tools::locate`).

use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::model::settings::Settings;
use crate::model::tool::{Errors, Measurement, TIMEOUT_S};

/// oha's arguments.
pub fn args(command: &mut Command, url: &str, settings: &Settings, seconds: u32) {
    command.args([
        "--no-tui",
        "--output-format",
        "json",
        "-z",
        &format!("{seconds}s"),
        "-c",
        &settings.connections.max(1).to_string(),
        "-t",
        &format!("{TIMEOUT_S}s"),
        "--wait-ongoing-requests-after-deadline",
    ]);
    if let Some(rate) = settings.rate {
        command.args(["-q", &rate.to_string(), "--latency-correction"]);
    }
    if !settings.client_keepalive {
        command.arg("--disable-keepalive");
    }
    command.arg(url);
}

pub fn parse(stdout: &str) -> Result<Measurement> {
    let start = stdout.find('{').context("oha printed no JSON")?;
    let v: Value = serde_json::from_str(&stdout[start..]).context("oha's output is not JSON")?;
    let summary = &v["summary"];
    let seconds = summary["total"]
        .as_f64()
        .context("oha JSON has no summary.total")?;
    let mut ok = 0;
    let mut non_2xx = 0;
    if let Some(codes) = v["statusCodeDistribution"].as_object() {
        for (code, count) in codes {
            let count = count.as_u64().unwrap_or(0);
            if code.starts_with('2') {
                ok += count;
            } else {
                non_2xx += count;
            }
        }
    }
    let mut errors = Errors {
        non_2xx,
        ..Errors::default()
    };
    let mut unsent = 0;
    if let Some(kinds) = v["errorDistribution"].as_object() {
        for (message, count) in kinds {
            let count = count.as_u64().unwrap_or(0);
            let message = message.to_ascii_lowercase();
            if message.contains("aborted due to deadline") {
                // Requests oha had not sent when the duration ended: not the server's errors
                // (in-flight ones are waited for, see the command), but the rate not held.
                unsent += count;
                continue;
            }
            if message.contains("timeout") || message.contains("timed out") {
                errors.timeout += count;
            } else if message.contains("connect") {
                errors.connect += count;
            } else {
                errors.other += count;
            }
        }
    }
    let p = &v["latencyPercentiles"];
    let ms = |value: &Value| value.as_f64().map(|s| s * 1000.0);
    Ok(Measurement {
        unsent,
        ok_responses: ok,
        seconds,
        p50_ms: ms(&p["p50"]),
        p90_ms: ms(&p["p90"]),
        p99_ms: ms(&p["p99"]),
        p999_ms: ms(&p["p99.9"]),
        max_ms: ms(&summary["slowest"]),
        mean_ms: ms(&summary["average"]),
        latency_spectrum: spectrum(summary, p),
        errors: errors.with_total(),
        per_connection: Vec::new(),
        classes: Vec::new(),
    })
}

/// oha's percentiles (`p10` … `p99.99`) between its fastest and slowest request, in ms.
fn spectrum(summary: &Value, percentiles: &Value) -> Vec<[f64; 2]> {
    let ms = |value: &Value| value.as_f64().map(|s| s * 1000.0);
    let mut points: Vec<[f64; 2]> = percentiles
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some([key.strip_prefix('p')?.parse().ok()?, ms(value)?]))
        .collect();
    points.extend(ms(&summary["fastest"]).map(|fastest| [0.0, fastest]));
    points.extend(ms(&summary["slowest"]).map(|slowest| [100.0, slowest]));
    points.sort_by(|a, b| a[0].total_cmp(&b[0]));
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oha_json_is_read_in_seconds_and_split_by_status() {
        let out = r#"{"summary":{"successRate":1.0,"total":2.0,"slowest":0.05,"fastest":0.001,"average":0.01,"requestsPerSec":500.0},
            "latencyPercentiles":{"p10":0.001,"p50":0.01,"p90":0.02,"p99":0.03,"p99.9":0.04,"p99.99":0.05},
            "statusCodeDistribution":{"200":990,"503":10},"errorDistribution":{"operation timed out":2,"connection refused":1,"aborted due to deadline":7}}"#;
        let m = parse(out).unwrap();
        assert_eq!(m.ok_responses, 990);
        assert_eq!(m.p999_ms, Some(40.0));
        assert_eq!(m.max_ms, Some(50.0));
        assert_eq!(m.errors.timeout, 2);
        assert_eq!(m.errors.connect, 1);
        assert_eq!(m.errors.total, 13);
        assert_eq!(m.mean_ms, Some(10.0));
        let percentiles: Vec<f64> = m.latency_spectrum.iter().map(|p| p[0]).collect();
        assert_eq!(
            percentiles,
            [0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0]
        );
    }
}
