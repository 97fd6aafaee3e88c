//! The load tools: how each is started, and how its output becomes a [`Measurement`].
//!
//! Every tool gets the same request timeout ([`TIMEOUT_S`]), so that a slow response is an
//! error in every column, not a long latency in some and a timeout in others. wrk's
//! percentiles come from a Lua `done()` hook that prints JSON (p99.9 included; the maximum is
//! `latency.max`, never `percentile(100)`, which wrk reports as 0). ab has no p99.9; it stays
//! empty rather than invented. hey writes every request to CSV and the percentiles are computed
//! here. oha is installed on demand with cargo.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::scenario::Settings;
use crate::stack::process::find_program;

/// Request timeout for every tool, in seconds.
pub const TIMEOUT_S: u32 = 10;

/// The load tools the harness drives. Everything the harness knows of a tool is a match on
/// this enum: adding one is a variant and the matches the compiler points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    /// Closed loop, keep-alive; percentiles from a Lua hook (the default).
    Wrk,
    /// Closed loop, or open loop at a rate (`-q`, with latency correction).
    Oha,
    /// apache2-utils' ab: closed loop, HTTP/1.0.
    Ab,
    /// hey: closed loop, or a rate per worker.
    Hey,
}

impl ToolKind {
    pub const ALL: [ToolKind; 4] = [ToolKind::Wrk, ToolKind::Oha, ToolKind::Ab, ToolKind::Hey];

    pub fn name(self) -> &'static str {
        match self {
            ToolKind::Wrk => "wrk",
            ToolKind::Oha => "oha",
            ToolKind::Ab => "ab",
            ToolKind::Hey => "hey",
        }
    }

    /// The Debian package that has it; oha comes from crates.io instead.
    fn package(self) -> Option<&'static str> {
        match self {
            ToolKind::Wrk => Some("wrk"),
            ToolKind::Ab => Some("apache2-utils"),
            ToolKind::Hey => Some("hey"),
            ToolKind::Oha => None,
        }
    }

    /// The flag that makes it print its version, if it has one.
    fn version_flag(self) -> Option<&'static str> {
        match self {
            ToolKind::Wrk => Some("-v"),
            ToolKind::Ab => Some("-V"),
            ToolKind::Oha => Some("--version"),
            ToolKind::Hey => None,
        }
    }

    /// Whether it can send at a fixed rate (an open loop).
    pub fn holds_a_rate(self) -> bool {
        matches!(self, ToolKind::Oha | ToolKind::Hey)
    }

    /// Refuses a rate the tool cannot hold.
    pub fn check_rate(self, rate: Option<u32>) -> Result<()> {
        if rate.is_some() && !self.holds_a_rate() {
            bail!(
                "{} is a closed-loop tool and cannot hold --rate: use --tool oha",
                self.name()
            );
        }
        Ok(())
    }
}

impl std::fmt::Display for ToolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors by kind, as the tools count them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub non_2xx: u64,
    pub other: u64,
    pub total: u64,
}

impl Errors {
    fn with_total(mut self) -> Errors {
        self.total =
            self.connect + self.read + self.write + self.timeout + self.non_2xx + self.other;
        self
    }
}

/// What one tool run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Measurement {
    /// Responses with a 2xx status.
    pub ok_responses: u64,
    pub seconds: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub errors: Errors,
    /// Open loop: requests the tool had scheduled but not sent when the time was up (oha's
    /// "aborted due to deadline"); not the target's errors, but a sign the rate was not held.
    #[serde(default)]
    pub unsent: u64,
    /// wrk with `--per-connection`: the 2xx answered on each connection (one wrk thread per
    /// connection). Summarised in the row as `connection_requests`.
    #[serde(skip)]
    pub per_connection: Vec<u64>,
}

impl Measurement {
    pub fn requests_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ok_responses as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// A tool that exists on this machine, with its version.
#[derive(Clone, Debug)]
pub struct Tool {
    pub kind: ToolKind,
    pub program: PathBuf,
    pub version: String,
}

/// Finds `kind` (installing oha when missing); a missing tool names its Debian package.
pub fn locate(kind: ToolKind) -> Result<Tool> {
    let name = kind.name();
    let home_bin = std::env::var("HOME")
        .map(|home| format!("{home}/.cargo/bin"))
        .unwrap_or_default();
    let program = match (find_program(name, &[&home_bin]), kind.package()) {
        (Some(program), _) => program,
        (None, None) => install_oha(&home_bin)?,
        (None, Some(package)) => {
            bail!("{name} not found on PATH: install it with `apt-get install -y {package}`")
        }
    };
    let version = version_of(kind, &program);
    Ok(Tool {
        kind,
        program,
        version,
    })
}

fn install_oha(home_bin: &str) -> Result<PathBuf> {
    eprintln!("bench: oha not found; installing it with `cargo install --locked oha` (once)");
    let status = Command::new("cargo")
        .args(["install", "--locked", "oha", "--version", ">=1.14"])
        .status()
        .context("cannot run cargo to install oha")?;
    if !status.success() {
        bail!("`cargo install --locked oha` failed; install oha 1.14 or later by hand");
    }
    find_program("oha", &[home_bin]).context("oha was installed but is not on PATH")
}

fn version_of(kind: ToolKind, program: &Path) -> String {
    let first_line = |args: &[&str]| -> Option<String> {
        let out = Command::new(program).args(args).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    };
    kind.version_flag()
        .and_then(|flag| first_line(&[flag]))
        .or_else(|| {
            let version = dpkg_version(kind.package()?)?;
            Some(format!("{kind} {version} (Debian package)"))
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn dpkg_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The wrk script: `done()` prints one JSON line after a marker.
const WRK_SCRIPT: &str = r#"-- rust-web-perf: the summary as JSON (latency in microseconds).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"#;

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
/// holds scripts and per-request logs.
pub fn command(
    tool: &Tool,
    url: &str,
    settings: &Settings,
    seconds: u32,
    work_dir: &Path,
) -> Result<Command> {
    let c = settings.connections.max(1);
    tool.kind.check_rate(settings.rate)?;
    let mut command = Command::new(&tool.program);
    match tool.kind {
        ToolKind::Wrk => {
            let script = work_dir.join("bench.lua");
            let (text, threads) = if settings.per_connection {
                (format!("{WRK_SCRIPT}{WRK_PER_CONNECTION}"), c)
            } else {
                (WRK_SCRIPT.to_string(), c.min(2))
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
        }
        ToolKind::Oha => {
            command.args([
                "--no-tui",
                "--output-format",
                "json",
                "-z",
                &format!("{seconds}s"),
                "-c",
                &c.to_string(),
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
        ToolKind::Ab => {
            // -t bounds the time; a large -n keeps ab from stopping at its default 50,000.
            command.args([
                "-q",
                "-t",
                &seconds.to_string(),
                "-n",
                "100000000",
                "-c",
                &c.to_string(),
                "-s",
                &TIMEOUT_S.to_string(),
            ]);
            if settings.client_keepalive {
                command.arg("-k");
            }
            command.arg(url);
        }
        ToolKind::Hey => {
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
    }
    Ok(command)
}

/// Runs `command` to completion (or until `interrupted`, or `limit`), returning its stdout.
pub fn run_to_end(
    mut command: Command,
    limit: Duration,
    interrupted: &AtomicBool,
    stdout_file: &Path,
) -> Result<String> {
    let out = fs::File::create(stdout_file)?;
    let err_file = stdout_file.with_extension("stderr");
    let err = fs::File::create(&err_file)?;
    let program = format!("{:?}", command.get_program());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if interrupted.load(Ordering::SeqCst) || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            if interrupted.load(Ordering::SeqCst) {
                bail!("interrupted");
            }
            bail!("{program} ran over {limit:?} and was stopped");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = fs::read_to_string(stdout_file).unwrap_or_default();
    if !status.success() {
        let stderr = fs::read_to_string(&err_file).unwrap_or_default();
        bail!(
            "{program} failed ({status}): {}",
            stderr.lines().take(5).collect::<Vec<_>>().join(" / ")
        );
    }
    Ok(stdout)
}

/// Parses what `tool` printed.
pub fn parse(tool: ToolKind, stdout: &str) -> Result<Measurement> {
    match tool {
        ToolKind::Wrk => parse_wrk(stdout),
        ToolKind::Oha => parse_oha(stdout),
        ToolKind::Ab => parse_ab(stdout),
        ToolKind::Hey => parse_hey(stdout),
    }
}

fn parse_wrk(stdout: &str) -> Result<Measurement> {
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
    })
}

fn parse_oha(stdout: &str) -> Result<Measurement> {
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
        errors: errors.with_total(),
        per_connection: Vec::new(),
    })
}

fn parse_ab(stdout: &str) -> Result<Measurement> {
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
        unsent: 0,
        per_connection: Vec::new(),
    })
}

fn parse_hey(stdout: &str) -> Result<Measurement> {
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
    Ok(Measurement {
        ok_responses: ok,
        seconds: last_offset,
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        p999_ms: at(99.9),
        max_ms: latencies.last().copied(),
        errors: Errors {
            non_2xx,
            ..Errors::default()
        }
        .with_total(),
        unsent: 0,
        per_connection: Vec::new(),
    })
}

/// Nearest-rank percentile of sorted values.
pub fn percentile_of_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_summary_counts_only_2xx_and_takes_the_true_max() {
        let out = "Running 3s test @ http://127.0.0.1:1/test\n  2 threads and 8 connections\n\
                   BENCH_JSON {\"requests\":1000,\"duration_us\":2000000,\"connect\":1,\"read\":2,\"write\":0,\"status\":10,\"timeout\":3,\"p50\":5000,\"p90\":6000,\"p99\":9000,\"p999\":12000,\"max\":15500}\n";
        let m = parse(ToolKind::Wrk, out).unwrap();
        assert_eq!(m.ok_responses, 990);
        assert_eq!(m.requests_per_sec(), 495.0);
        assert_eq!(m.p999_ms, Some(12.0));
        assert_eq!(m.max_ms, Some(15.5));
        assert_eq!(m.errors.total, 16);
        assert!(parse(ToolKind::Wrk, "no summary").is_err());
    }

    #[test]
    fn ab_output_gives_counts_errors_and_percentiles_without_p999() {
        let out = "Concurrency Level:      8\nTime taken for tests:   2.000 seconds\n\
                   Complete requests:      400\nFailed requests:        3\n   (Connect: 1, Receive: 0, Length: 2, Exceptions: 0)\n\
                   Non-2xx responses:      4\n\
                   Percentage of the requests served within a certain time (ms)\n  50%      5\n  66%      6\n  90%      7\n  99%     11\n 100%     20 (longest request)\n";
        let m = parse(ToolKind::Ab, out).unwrap();
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
    }

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
        let m = parse(ToolKind::Hey, &out).unwrap();
        assert_eq!(m.ok_responses, 999);
        assert_eq!(m.errors.non_2xx, 1);
        assert_eq!(m.p50_ms, Some(500.0));
        assert_eq!(m.max_ms, Some(999.0));
        assert!((m.seconds - 2.0).abs() < 1e-9);
    }

    #[test]
    fn oha_json_is_read_in_seconds_and_split_by_status() {
        let out = r#"{"summary":{"successRate":1.0,"total":2.0,"slowest":0.05,"fastest":0.001,"average":0.01,"requestsPerSec":500.0},
            "latencyPercentiles":{"p10":0.001,"p50":0.01,"p90":0.02,"p99":0.03,"p99.9":0.04,"p99.99":0.05},
            "statusCodeDistribution":{"200":990,"503":10},"errorDistribution":{"operation timed out":2,"connection refused":1,"aborted due to deadline":7}}"#;
        let m = parse(ToolKind::Oha, out).unwrap();
        assert_eq!(m.ok_responses, 990);
        assert_eq!(m.p999_ms, Some(40.0));
        assert_eq!(m.max_ms, Some(50.0));
        assert_eq!(m.errors.timeout, 2);
        assert_eq!(m.errors.connect, 1);
        assert_eq!(m.errors.total, 13);
    }

    #[test]
    fn closed_loop_tools_refuse_a_rate() {
        let tool = Tool {
            kind: ToolKind::Wrk,
            program: "wrk".into(),
            version: String::new(),
        };
        let settings = Settings {
            rate: Some(10),
            ..super::super::scenario::find("quick").unwrap().settings
        };
        let error = command(
            &tool,
            "http://127.0.0.1:1/",
            &settings,
            1,
            Path::new("/tmp"),
        )
        .err()
        .unwrap();
        assert!(error.to_string().contains("--tool oha"));
        for kind in ToolKind::ALL {
            assert_eq!(kind.check_rate(Some(10)).is_ok(), kind.holds_a_rate());
            assert!(kind.check_rate(None).is_ok());
        }
    }
}
