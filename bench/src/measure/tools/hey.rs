//! hey: closed loop, or a rate per worker. It writes every request to CSV, and the
//! percentiles are computed here.

use std::process::Command;

use anyhow::{bail, Result};

use crate::model::settings::Settings;
use crate::model::tool::{
    percentile_of_sorted, spectrum_of_sorted, Errors, Measurement, TIMEOUT_S,
};

/// hey's arguments.
pub fn args(command: &mut Command, url: &str, settings: &Settings, seconds: u32) {
    let c = settings.connections.max(1);
    command.args([
        "-z",
        &format!("{seconds}s"),
        "-c",
        &c.to_string(),
        "-t",
        &TIMEOUT_S.to_string(),
        "-o",
        "csv",
    ]);
    if let Some(rate) = settings.rate {
        // hey's -q is per worker.
        let per_worker = (f64::from(rate) / f64::from(c)).max(1.0);
        command.args(["-q", &format!("{per_worker:.0}")]);
    }
    if !settings.client_keepalive {
        command.arg("-disable-keepalive");
    }
    command.arg(url);
}

pub fn parse(stdout: &str) -> Result<Measurement> {
    // response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
    let mut latencies = Vec::new();
    let mut ok = 0;
    let mut non_2xx = 0;
    let mut last_offset: f64 = 0.0;
    for line in stdout
        .lines()
        .skip_while(|l| !l.starts_with("response-time"))
        .skip(1)
    {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 8 {
            continue;
        }
        let (Ok(seconds), Ok(status), Ok(offset)) = (
            fields[0].parse::<f64>(),
            fields[6].parse::<u16>(),
            fields[7].parse::<f64>(),
        ) else {
            continue;
        };
        last_offset = last_offset.max(offset + seconds);
        if (200..300).contains(&status) {
            ok += 1;
            latencies.push(seconds * 1000.0);
        } else {
            non_2xx += 1;
        }
    }
    if ok + non_2xx == 0 {
        bail!("hey recorded no responses");
    }
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| percentile_of_sorted(&latencies, p);
    let (latency_spectrum, mean_ms) = spectrum_of_sorted(&latencies);
    Ok(Measurement {
        ok_responses: ok,
        seconds: last_offset,
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        p999_ms: at(99.9),
        max_ms: latencies.last().copied(),
        mean_ms,
        latency_spectrum,
        errors: Errors {
            non_2xx,
            ..Errors::default()
        }
        .with_total(),
        ..Measurement::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hey_csv_is_reduced_to_percentiles_here() {
        let mut out = String::from("response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset\n");
        for i in 1..=1000 {
            let status = if i == 1000 { 503 } else { 200 };
            out += &format!(
                "{:.4},0,0,0,0,0,{status},{:.4}\n",
                i as f64 / 1000.0,
                i as f64 / 1000.0
            );
        }
        let m = parse(&out).unwrap();
        assert_eq!(m.ok_responses, 999);
        assert_eq!(m.errors.non_2xx, 1);
        assert_eq!(m.p50_ms, Some(500.0));
        assert_eq!(m.max_ms, Some(999.0));
        assert!((m.seconds - 2.0).abs() < 1e-9);
        assert!((m.mean_ms.unwrap() - 500.0).abs() < 1e-9);
        assert_eq!(m.latency_spectrum.first(), Some(&[0.0, 1.0]));
        assert_eq!(m.latency_spectrum.last(), Some(&[100.0, 999.0]));
    }
}
