//! The load tools as values: which tools there are ([`ToolKind`]) and what one run of a tool
//! measured ([`Measurement`]). How each tool is found, started and parsed is
//! `measure::tools`, one file per tool.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Open or closed loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoopKind {
    /// The tool sends the next request when an answer comes (wrk, ab).
    Closed,
    /// The tool sends at a fixed rate, whatever the answers (oha `-q`).
    Open,
}

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
    /// bench's own client (`bench load`): closed loop, a thread per connection, every
    /// request's latency recorded in its class; the one tool that loads a mix (`--mix`).
    Bench,
}

impl ToolKind {
    /// The load tools installed beside the harness (the limits preset measures each against
    /// nginx alone); bench's own client is [`ToolKind::Bench`].
    pub const ALL: [ToolKind; 4] = [ToolKind::Wrk, ToolKind::Oha, ToolKind::Ab, ToolKind::Hey];

    pub fn name(self) -> &'static str {
        match self {
            ToolKind::Wrk => "wrk",
            ToolKind::Oha => "oha",
            ToolKind::Ab => "ab",
            ToolKind::Hey => "hey",
            ToolKind::Bench => "bench",
        }
    }

    /// The Debian package that has it; oha comes from crates.io instead, and bench's own
    /// client is this program.
    pub fn package(self) -> Option<&'static str> {
        match self {
            ToolKind::Wrk => Some("wrk"),
            ToolKind::Ab => Some("apache2-utils"),
            ToolKind::Hey => Some("hey"),
            ToolKind::Oha | ToolKind::Bench => None,
        }
    }

    /// Whether it can load a mix of request classes and record each class's latency.
    pub fn loads_a_mix(self) -> bool {
        match self {
            ToolKind::Bench => true,
            ToolKind::Wrk | ToolKind::Oha | ToolKind::Ab | ToolKind::Hey => false,
        }
    }

    /// Refuses a mix the tool cannot load.
    pub fn check_mix(self, mixed: bool) -> Result<()> {
        if mixed && !self.loads_a_mix() {
            bail!(
                "--mix runs on bench's own client, which records each request's class; {} gives one spectrum for all requests: use --tool bench (the default with --mix)",
                self.name()
            );
        }
        Ok(())
    }

    /// The flag that makes it print its version, if it has one.
    pub fn version_flag(self) -> Option<&'static str> {
        match self {
            ToolKind::Wrk => Some("-v"),
            ToolKind::Ab => Some("-V"),
            ToolKind::Oha => Some("--version"),
            ToolKind::Hey | ToolKind::Bench => None,
        }
    }

    /// The threads that do its work at `connections`, out of `cpus` it may use: a tool
    /// cannot keep more cores busy than it has working threads.
    pub fn working_threads(self, connections: u32, per_connection: bool, cpus: u32) -> u32 {
        match self {
            // `wrk::args`: two threads, or one per connection with `--per-connection`.
            ToolKind::Wrk if per_connection => connections.max(1),
            ToolKind::Wrk => connections.clamp(1, 2),
            // ab is one event loop; oha's runtime and hey's Go scheduler use every CPU.
            ToolKind::Ab => 1,
            ToolKind::Oha | ToolKind::Hey => cpus,
            // bench load: a thread per connection.
            ToolKind::Bench => connections.max(1),
        }
    }

    /// Whether it can send at a fixed rate (an open loop).
    pub fn holds_a_rate(self) -> bool {
        matches!(self, ToolKind::Oha | ToolKind::Hey | ToolKind::Bench)
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
    pub fn with_total(mut self) -> Errors {
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
    /// The mean latency of the answered requests (for Little's law: throughput × mean).
    #[serde(default)]
    pub mean_ms: Option<f64>,
    /// The whole latency spectrum: `[percentile, ms]` pairs from 0 (the fastest) to 100
    /// (the slowest), as many as the tool reports (see [`SPECTRUM`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_spectrum: Vec<[f64; 2]>,
    pub errors: Errors,
    /// Open loop: requests the tool had scheduled but not sent when the time was up (oha's
    /// "aborted due to deadline"); not the target's errors, but a sign the rate was not held.
    #[serde(default)]
    pub unsent: u64,
    /// wrk with `--per-connection`: the 2xx answered on each connection (one wrk thread per
    /// connection). Summarised in the row as `connection_requests`.
    #[serde(skip)]
    pub per_connection: Vec<u64>,
    /// A mix (`--mix`, bench's own client): each class's figures, in the mix's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassMeasurement>,
}

/// One class of a mix, measured on its own: its requests' throughput, latencies and errors.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClassMeasurement {
    pub name: String,
    pub weight: u32,
    /// Its requests' query.
    pub query: String,
    pub requests_per_sec: f64,
    #[serde(flatten)]
    pub measurement: Measurement,
}

impl Measurement {
    /// The figures of a tool that keeps every answer: `sorted`, the latencies of the 2xx in ms
    /// in order, over `seconds`, with `errors` (bench's own client, the soak's paced ones).
    pub fn of_sorted(sorted: &[f64], errors: Errors, seconds: f64) -> Measurement {
        let at = |p| percentile_of_sorted(sorted, p);
        let (latency_spectrum, mean_ms) = spectrum_of_sorted(sorted);
        Measurement {
            ok_responses: sorted.len() as u64,
            seconds,
            p50_ms: at(50.0),
            p90_ms: at(90.0),
            p99_ms: at(99.0),
            p999_ms: at(99.9),
            max_ms: sorted.last().copied(),
            mean_ms,
            latency_spectrum,
            errors: errors.with_total(),
            ..Measurement::default()
        }
    }

    pub fn requests_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ok_responses as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The percentiles of a latency spectrum, where the tool has them all (wrk's histogram, and
/// the per-request logs of hey and pgbench): dense up to the median, then each "nine".
pub const SPECTRUM: [f64; 16] = [
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999,
    99.9999, 100.0,
];

/// The spectrum of sorted latencies at [`SPECTRUM`]'s percentiles, and their mean; empty when
/// there are none. Percentiles past what the count can resolve repeat the maximum.
pub fn spectrum_of_sorted(sorted: &[f64]) -> (Vec<[f64; 2]>, Option<f64>) {
    if sorted.is_empty() {
        return (Vec::new(), None);
    }
    let spectrum = SPECTRUM
        .iter()
        .filter_map(|&p| {
            let ms = if p == 0.0 {
                sorted[0]
            } else {
                percentile_of_sorted(sorted, p)?
            };
            Some([p, ms])
        })
        .collect();
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    (spectrum, Some(mean))
}

/// Nearest-rank percentile of sorted values.
pub fn percentile_of_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What the load tool itself cost over one run, measured around it by the harness: its CPU
/// (user + system, its whole process tree), the time its threads were ready to run but waited
/// for a CPU, over its wall time, and the cores it could keep busy (its working threads, at
/// most the CPUs it may run on).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ToolCost {
    pub cpu_s: f64,
    pub waited_s: f64,
    pub wall_s: f64,
    pub cores: u32,
}

impl ToolCost {
    /// The share of its cores the tool used: 1.0 is every core it could use, all the time.
    pub fn cpu_share(&self) -> Option<f64> {
        self.capacity_s().map(|c| self.cpu_s / c)
    }

    /// The share of its cores' time the tool was ready to run but had no CPU: a tool starved
    /// by the target, the database or anything else on its cores.
    pub fn wait_share(&self) -> Option<f64> {
        self.capacity_s().map(|c| self.waited_s / c)
    }

    fn capacity_s(&self) -> Option<f64> {
        let capacity = self.wall_s * f64::from(self.cores);
        (capacity > 0.0).then_some(capacity)
    }
}
