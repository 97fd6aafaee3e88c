//! wrk: closed loop, keep-alive. Its percentiles come from a Lua `done()` hook that prints
//! JSON (p99.9 included; the maximum is `latency.max`, never `percentile(100)`, which wrk
//! reports as 0).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::model::settings::Settings;
use crate::model::tool::{Errors, Measurement, SPECTRUM, TIMEOUT_S};

/// The wrk script: `done()` prints one JSON line after a marker, with the mean of the requests
/// as timed and the histogram's spectrum at the percentiles put in place of `PERCENTILES`
/// ([`SPECTRUM`] without 0 and 100, which are `latency.min` and `latency.max`).
///
/// wrk corrects its histogram for coordinated omission before `done()`: every sample n of at
/// least 2e (e = duration / (requests / connections)) adds samples at n − e, n − 2e, … down to
/// above e. Its percentiles are kept as wrk reports them; but its mean then counts time no
/// request spent, and Little's law needs the requests' own. Undone: a final count F(m) above e
/// is the sum of the raw counts at m, m + e, m + 2e, …, so the raw count is the final count at
/// or below 2e, and the raw sum the final sum there plus e for each final sample above 2e.
/// With f the share of final samples at or below 2e (where `latency:percentile(p)` passes 2e,
/// found by bisection) and m̄ their mean (read back from 200 of their percentiles), the raw
/// mean is m̄ + e (1/f − 1). Each percentile scans the histogram up to its value, at most 2e.
const WRK_SCRIPT: &str = r#"-- rust-web-perf: the summary as JSON (latency in microseconds).
local function timed_mean(latency, summary, connections)
  local per = math.floor(summary.requests / connections)
  if per == 0 then return latency.mean end
  local e = math.floor(summary.duration / per)
  local function within(p)
    local value = latency:percentile(p)
    return value ~= 0 and value <= 2 * e
  end
  local low, high = 0, 100
  for _ = 1, 60 do
    local middle = (low + high) / 2
    if within(middle) then low = middle else high = middle end
  end
  if high <= 0 then return nil end
  local sum = 0
  for k = 1, 200 do
    sum = sum + latency:percentile(high * (k - 0.5) / 200)
  end
  return sum / 200 + e * (100 / high - 1)
end

done = function(summary, latency, requests)
  local e = summary.errors
  local spectrum = { string.format('[0,%d]', latency.min) }
  for _, p in ipairs({ PERCENTILES }) do
    table.insert(spectrum, string.format('[%s,%d]', p, latency:percentile(p)))
  end
  table.insert(spectrum, string.format('[100,%d]', latency.max))
  local mean = timed_mean(latency, summary, CONNECTIONS)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%s,"spectrum":[%s]}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, mean and string.format('%.1f', mean) or 'null',
    table.concat(spectrum, ',')))
end
"#;

fn summary_script(connections: u32) -> String {
    let inner: Vec<String> = SPECTRUM[1..SPECTRUM.len() - 1]
        .iter()
        .map(|p| p.to_string())
        .collect();
    WRK_SCRIPT
        .replace("PERCENTILES", &inner.join(", "))
        .replace("CONNECTIONS", &connections.to_string())
}

/// The wrk script of `--per-connection`: one thread per connection, each counting its 2xx;
/// `done()` prints the counts after the summary. (Defining `response` makes wrk hand every
/// answer to Lua, which costs some client CPU: a diagnostic, not the default.)
const WRK_PER_CONNECTION: &str = r#"
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end
init = function(args)
  answered = 0
end
response = function(status, headers, body)
  if status >= 200 and status < 300 then
    answered = answered + 1
  end
end
local summarise = done
done = function(summary, latency, requests)
  summarise(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    table.insert(counts, tostring(thread:get("answered") or 0))
  end
  io.write('BENCH_CONNECTIONS [' .. table.concat(counts, ',') .. ']\n')
end
"#;

/// The command that runs `tool` against `url` for `seconds` with `settings`' load. `work_dir`
/// wrk's arguments; its script is written into `work_dir`.
pub fn args(
    command: &mut Command,
    url: &str,
    settings: &Settings,
    seconds: u32,
    work_dir: &Path,
) -> Result<()> {
    let c = settings.connections.max(1);
    let script = work_dir.join("bench.lua");
    let (text, threads) = if settings.per_connection {
        (format!("{}{WRK_PER_CONNECTION}", summary_script(c)), c)
    } else {
        (summary_script(c), c.min(2))
    };
    fs::write(&script, text)?;
    command.args([
        "-t",
        &threads.to_string(),
        "-c",
        &c.to_string(),
        "-d",
        &format!("{seconds}s"),
        "--timeout",
        &format!("{TIMEOUT_S}s"),
        "-s",
    ]);
    command.arg(&script);
    if !settings.client_keepalive {
        command.args(["-H", "Connection: close"]);
    }
    command.arg(url);
    Ok(())
}

pub fn parse(stdout: &str) -> Result<Measurement> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_JSON "))
        .context("wrk printed no summary (is the Lua done() hook running?)")?;
    let v: Value = serde_json::from_str(line).context("wrk's summary is not JSON")?;
    let n = |key: &str| v[key].as_u64().unwrap_or(0);
    let ms = |key: &str| v[key].as_f64().map(|us| us / 1000.0);
    let requests = n("requests");
    let status_errors = n("status");
    let per_connection = match stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_CONNECTIONS "))
    {
        Some(counts) => serde_json::from_str::<Vec<u64>>(counts)
            .context("wrk's per-connection counts are not a JSON list")?,
        None => Vec::new(),
    };
    Ok(Measurement {
        ok_responses: requests.saturating_sub(status_errors),
        seconds: n("duration_us") as f64 / 1e6,
        p50_ms: ms("p50"),
        p90_ms: ms("p90"),
        p99_ms: ms("p99"),
        p999_ms: ms("p999"),
        max_ms: ms("max"),
        mean_ms: ms("mean"),
        latency_spectrum: v["spectrum"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .filter_map(|point| Some([point[0].as_f64()?, point[1].as_f64()? / 1000.0]))
                    .collect()
            })
            .unwrap_or_default(),
        errors: Errors {
            connect: n("connect"),
            read: n("read"),
            write: n("write"),
            timeout: n("timeout"),
            non_2xx: status_errors,
            other: 0,
            total: 0,
        }
        .with_total(),
        unsent: 0,
        per_connection,
        classes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_summary_counts_only_2xx_and_takes_the_true_max() {
        let out = "Running 3s test @ http://127.0.0.1:1/test\n  2 threads and 8 connections\n\
                   BENCH_JSON {\"requests\":1000,\"duration_us\":2000000,\"connect\":1,\"read\":2,\"write\":0,\"status\":10,\"timeout\":3,\"p50\":5000,\"p90\":6000,\"p99\":9000,\"p999\":12000,\"max\":15500,\"mean\":5200.5,\"spectrum\":[[0,900],[50,5000],[99.99,15000],[100,15500]]}\n";
        let m = parse(out).unwrap();
        assert_eq!(m.ok_responses, 990);
        assert_eq!(m.requests_per_sec(), 495.0);
        assert_eq!(m.p999_ms, Some(12.0));
        assert_eq!(m.max_ms, Some(15.5));
        assert_eq!(m.errors.total, 16);
        assert_eq!(m.mean_ms, Some(5.2005));
        assert_eq!(m.latency_spectrum.len(), 4);
        assert_eq!(m.latency_spectrum[2], [99.99, 15.0]);
        assert!(parse("no summary").is_err());
    }
}
