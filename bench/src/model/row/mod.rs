//! One result row: what a case measured, with its configuration, bound and resources, as
//! `results.json` has it. A row is built from its parts: the case, the tool, and the rounds
//! measured (the round closest to the median throughput gives the latencies and resources).

use serde::{Deserialize, Serialize};

use super::beside::Beside;
use super::case::{Case, Subject};
use super::client_limit::ClientCost;
use super::described::Described;
use super::knob::Point;
use super::settings::{BoundBy, Settings};
pub use super::tool::LoopKind;
use super::tool::{Measurement, ToolCost};

/// How a row ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Measured.
    Ok,
    /// The target died, the tool failed, or no 2xx came back.
    Failed,
    /// The target failed the contract checks, so it was not measured.
    Refused,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Refused => "refused",
        }
    }
}

/// One result row of `results.json`. The field names are the documented ones
/// (docs/results.md); the tool's numbers are flattened in from its [`Measurement`]. Rows are
/// read back from a sweep's `results.jsonl` to resume it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// The row's label in tables and charts: its name (and its group's suffix), a server the
    /// harness did not start marked `[external]`, `[peer]` or `[remote HOST]`. `label` in
    /// results.json (filled from `target` for a file written before it had one).
    #[serde(rename = "label", default)]
    pub target: String,
    /// The name as given, without a mark: the target's, or the user's for a server the
    /// harness did not start (and its group's suffix). `target` in results.json.
    #[serde(rename = "target")]
    pub given: String,
    /// What the row measured: `target`, `external`, `peer`, `remote`, `pgbench` or
    /// `nginx-static`.
    #[serde(default)]
    pub kind: String,
    pub binary: Option<String>,
    pub model: String,
    /// Rows in the same group compare with each other.
    pub group: String,
    pub status: Status,
    pub failure: Option<String>,
    pub tool: String,
    #[serde(rename = "loop")]
    pub loop_kind: LoopKind,
    pub config: Settings,
    /// The target's flags, as passed.
    pub flags: Vec<String>,
    /// The median round's counts, latencies and errors.
    #[serde(flatten)]
    pub measurement: Measurement,
    /// The median of the rounds' throughputs (2xx only).
    pub requests_per_sec: f64,
    /// Each round's throughput, and their spread.
    pub rounds_rps: Vec<f64>,
    pub requests_per_sec_min: f64,
    pub requests_per_sec_max: f64,
    pub requested_rate: Option<u32>,
    pub achieved_rate: Option<f64>,
    /// Open loop only: the achieved rate was under 99% of the requested one.
    pub saturated: Option<bool>,
    pub db_sessions_peak: Option<i64>,
    pub threads_peak: Option<u64>,
    /// The watched process and its descendants (an external server's workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes_peak: Option<u64>,
    /// Resident memory, summed over the watched process and its descendants (a page shared
    /// between them counts in each): for a target, its one process's RSS.
    pub rss_peak_mib: Option<f64>,
    /// Proportional resident memory, summed over the same processes (a shared page counts
    /// once, split between its sharers): the figure to compare a multi-process server by.
    #[serde(default)]
    pub pss_peak_mib: Option<f64>,
    pub cpu_ms_per_request: Option<f64>,
    pub postgres_cpu_ms_per_request: Option<f64>,
    pub nginx_cpu_ms_per_request: Option<f64>,
    /// What the load tool cost, and whether it capped the row.
    #[serde(flatten)]
    pub client: ClientCost,
    pub bound_rps: Option<f64>,
    /// What sets the bound: requests waiting (Little's law) or the CPU their work needs.
    #[serde(default)]
    pub bound_by: Option<BoundBy>,
    pub efficiency: Option<f64>,
    pub relative: Option<f64>,
    /// `--per-connection` (wrk): how the answers were spread over the connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_requests: Option<ConnectionRequests>,
    /// What the extras beside the load measured (each absent when it did not run).
    #[serde(flatten)]
    pub beside: Beside,
    /// `--external`: a server the harness did not start (absent for the references).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalRow>,
    /// A sweep's point: the knob values of this row (absent outside sweeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<Point>,
    /// The contract checks that could not be made of its server (`--accept-unchecked`), each
    /// `check: why` (absent when every check was made).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
    /// Why the measured load was too short for its latencies (absent when it was not): see
    /// [`short_run`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_run: Option<String>,
}

/// `mine [external] db-restart@5s` → `mine db-restart@5s`: a label without its mark.
pub fn without_mark(label: &str) -> String {
    match (label.find(" ["), label.find(']')) {
        (Some(open), Some(close)) if close > open => {
            format!("{}{}", &label[..open], &label[close + 1..])
        }
        _ => label.to_string(),
    }
}

/// The kind of a row's subject, as results.json names it.
fn kind_of(subject: &Subject) -> &'static str {
    match subject {
        Subject::Target(_) => "target",
        Subject::External(e) if e.remote.is_some() => "remote",
        Subject::External(e) if e.peer => "peer",
        Subject::External(_) => "external",
        Subject::Pgbench => "pgbench",
        Subject::NginxStatic => "nginx-static",
    }
}

/// The share of the measured load a median or mean latency may take before the row is too
/// short to say much: a request that takes a tenth of the run is one of few per connection.
pub const SHORT_RUN_SHARE: f64 = 0.1;

/// The fewest answers per connection of a closed loop that say something about the spread.
pub const SHORT_RUN_PER_CONNECTION: f64 = 10.0;

/// Why a measured load was too short for what it measured: its P50 or mean latency over
/// [`SHORT_RUN_SHARE`] of its length, or (closed loop) fewer than
/// [`SHORT_RUN_PER_CONNECTION`] answers per connection. `None` when it was long enough.
pub fn short_run(m: &Measurement, loop_kind: LoopKind, connections: u32) -> Option<String> {
    if m.seconds <= 0.0 {
        return None;
    }
    let run_ms = m.seconds * 1000.0;
    let slow = [("P50", m.p50_ms), ("mean", m.mean_ms)]
        .into_iter()
        .find_map(|(what, ms)| {
            ms.filter(|ms| *ms > SHORT_RUN_SHARE * run_ms)
                .map(|ms| (what, ms))
        });
    if let Some((what, ms)) = slow {
        return Some(format!(
            "its {what} latency ({ms:.0} ms) is over {:.0}% of the {:.0} s measured: lengthen the run (--duration)",
            SHORT_RUN_SHARE * 100.0,
            m.seconds
        ));
    }
    let answered = (m.ok_responses + m.errors.non_2xx) as f64;
    let per_connection = answered / f64::from(connections.max(1));
    (loop_kind == LoopKind::Closed && per_connection < SHORT_RUN_PER_CONNECTION).then(|| {
        format!(
            "{per_connection:.1} answers per connection, under {SHORT_RUN_PER_CONNECTION:.0}: lengthen the run (--duration)"
        )
    })
}

/// What a row of an external server says about it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExternalRow {
    pub url: String,
    /// It passed the checks the measurement rests on; false when measured with `--no-verify`.
    pub verified: bool,
    /// `--external-model` (a peer's is the harness's): what bounds it, e.g. `pool:19`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The conformance rules it breaks (headers, limits, error codes), which change nothing
    /// measured: `check: what came back`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaks: Vec<String>,
    pub pid: Option<u32>,
    pub application_name: Option<String>,
    /// Why some columns are empty: what the harness cannot observe of a process it did not
    /// start, and the flag that fills them.
    pub unobserved: Option<String>,
    /// A target of a remote stack (`--remote`): which host measured what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_by: Option<String>,
    /// The upstream page it fetched with the upstream backend: the run's, or its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_page: Option<String>,
    /// The database it was checked and measured on (without its password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// What one round of one case measured, beyond the tool's numbers.
#[derive(Clone, Debug, Default)]
pub struct Round {
    pub measurement: Measurement,
    /// What the extras beside the load measured.
    pub beside: Beside,
    pub sessions_peak: Option<i64>,
    pub rss_peak_mib: Option<f64>,
    pub pss_peak_mib: Option<f64>,
    pub threads_peak: Option<u64>,
    pub processes_peak: Option<u64>,
    pub cpu_s: Option<f64>,
    pub postgres_cpu_s: Option<f64>,
    pub nginx_cpu_s: Option<f64>,
    /// What the load tool itself cost over the measured load.
    pub tool_cost: Option<ToolCost>,
}

/// How many 2xx each client connection got in the measured load: a model that serves its
/// connections unevenly shows it here before it shows in the percentiles.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConnectionRequests {
    pub connections: usize,
    pub min: u64,
    pub median: f64,
    pub max: u64,
    /// Coefficient of variation: standard deviation / mean (0 is perfectly even).
    pub cv: f64,
    /// Connections that got no answer at all.
    pub starved: usize,
}

impl ConnectionRequests {
    pub fn of(counts: &[u64]) -> Option<ConnectionRequests> {
        if counts.is_empty() {
            return None;
        }
        let values: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Some(ConnectionRequests {
            connections: counts.len(),
            min: counts.iter().copied().min().unwrap_or(0),
            median: Spread::of(&values).median,
            max: counts.iter().copied().max().unwrap_or(0),
            cv: if mean > 0.0 {
                variance.sqrt() / mean
            } else {
                0.0
            },
            starved: counts.iter().filter(|&&c| c == 0).count(),
        })
    }
}

/// How a row ended: failed (with why) when a round failed, when the target stopped answering
/// its idle connections, or when no 2xx came back; otherwise ok.
fn status_of(failure: Option<String>, chosen: &Round) -> (Status, Option<String>) {
    let m = &chosen.measurement;
    let stalled = chosen
        .beside
        .idle
        .as_ref()
        .filter(|i| i.answered < i.opened)
        .map(|i| {
            format!(
                "the target answered {} of {} idle connections, then stopped: {}; no load was run beside them",
                i.answered,
                i.opened,
                i.first_unanswered.as_deref().unwrap_or("no answer")
            )
        });
    match failure.or(stalled) {
        Some(why) => (Status::Failed, Some(why)),
        None if m.ok_responses == 0 => (
            Status::Failed,
            Some(format!(
                "no 2xx responses ({} errors: {:?})",
                m.errors.total, m.errors
            )),
        ),
        None => (Status::Ok, None),
    }
}

/// CPU milliseconds per answered request.
fn per_request(cpu_s: Option<f64>, answered: u64) -> Option<f64> {
    cpu_s
        .filter(|_| answered > 0)
        .map(|cpu| cpu * 1000.0 / answered as f64)
}

impl Row {
    /// What was measured: the target's binary, or `pgbench` / `nginx-static` (the first word of
    /// the label of a row without a target).
    pub fn subject_name(&self) -> &str {
        match &self.binary {
            Some(binary) => binary,
            None => self.target.split_whitespace().next().unwrap_or(""),
        }
    }

    /// The row of `case` from its rounds (none when it failed before the first ended).
    pub fn build(case: &Case, rounds: Vec<Round>, failure: Option<String>) -> Row {
        let s = &case.settings;
        let described = Described::of(case);
        let bound = described.bound(s);
        let in_flight = described.in_flight(s);
        let Described {
            binary,
            model,
            flags,
            ..
        } = described;
        let tool_name = match case.subject {
            Subject::Pgbench => "pgbench".to_string(),
            // The case's tool: the run's, or another for the limits' ceilings.
            _ => s.tool.name().to_string(),
        };
        let rounds_rps: Vec<f64> = rounds
            .iter()
            .map(|r| r.measurement.requests_per_sec())
            .collect();
        let spread = Spread::of(&rounds_rps);
        // The round closest to the median gives the latencies and resources of the row.
        let chosen = rounds
            .into_iter()
            .min_by(|a, b| {
                let da = (a.measurement.requests_per_sec() - spread.median).abs();
                let db = (b.measurement.requests_per_sec() - spread.median).abs();
                da.total_cmp(&db)
            })
            .unwrap_or_default();
        let m = &chosen.measurement;
        let answered = m.ok_responses + m.errors.non_2xx;
        let achieved_rate = s.rate.map(|_| {
            if m.seconds > 0.0 {
                answered as f64 / m.seconds
            } else {
                0.0
            }
        });
        // The load tool could not keep the rate: answered under 95% of it, or requests left
        // unsent at the deadline. Such a point measures the client as much as the target.
        let saturated = s
            .rate
            .zip(achieved_rate)
            .map(|(rate, achieved)| achieved < 0.95 * f64::from(rate) || m.unsent > 0);
        let (status, failure) = status_of(failure, &chosen);
        let loop_kind = if s.rate.is_some() {
            LoopKind::Open
        } else {
            LoopKind::Closed
        };
        let client = ClientCost::of(chosen.tool_cost, m, loop_kind, in_flight);
        Row {
            target: case.label.clone(),
            given: without_mark(&case.label),
            kind: kind_of(&case.subject).to_string(),
            binary,
            model,
            group: case.group.clone(),
            status,
            failure,
            tool: tool_name,
            loop_kind,
            config: s.clone(),
            flags,
            requests_per_sec: spread.median,
            requests_per_sec_min: spread.min,
            requests_per_sec_max: spread.max,
            rounds_rps,
            requested_rate: s.rate,
            saturated,
            achieved_rate,
            db_sessions_peak: chosen.sessions_peak,
            threads_peak: chosen.threads_peak,
            processes_peak: chosen.processes_peak,
            rss_peak_mib: chosen.rss_peak_mib,
            pss_peak_mib: chosen.pss_peak_mib,
            cpu_ms_per_request: per_request(chosen.cpu_s, answered),
            postgres_cpu_ms_per_request: per_request(chosen.postgres_cpu_s, answered),
            nginx_cpu_ms_per_request: per_request(chosen.nginx_cpu_s, answered),
            client,
            bound_rps: bound.map(|b| b.rps),
            bound_by: bound.map(|b| b.by),
            efficiency: bound
                .filter(|_| m.seconds > 0.0)
                .map(|b| spread.median / b.rps),
            relative: None,
            point: None,
            unchecked: Vec::new(),
            short_run: short_run(m, loop_kind, s.connections).filter(|_| status == Status::Ok),
            external: ExternalRow::of(&case.subject, s),
            connection_requests: ConnectionRequests::of(&m.per_connection),
            beside: chosen.beside.clone(),
            measurement: chosen.measurement,
        }
    }

    /// A refused target's row: it failed the contract checks, so it was not measured.
    pub fn refused(case: &Case, why: &str) -> Row {
        Row {
            status: Status::Refused,
            ..Row::build(case, Vec::new(), Some(why.to_string()))
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// A row read back from a file written before rows had a `label`: its `target` was the
    /// label.
    pub fn with_label(mut self) -> Row {
        if self.target.is_empty() {
            self.target = self.given.clone();
        }
        self
    }

    /// Its label without its group's (`tokio-axum`, not `tokio-axum db-restart@5s`).
    pub fn name(&self) -> &str {
        self.target
            .strip_suffix(self.group.as_str())
            .map_or(self.target.as_str(), str::trim_end)
    }
}

/// min, median, max.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return Spread {
                min: 0.0,
                median: 0.0,
                max: 0.0,
            };
        }
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Spread {
            min: sorted[0],
            median,
            max: sorted[n - 1],
        }
    }
}

/// Fills in `relative`: each row's throughput over the baseline's in its group. The baseline
/// is a target's name, or `pgbench` ([`Row::subject_name`]). A client-bound row has none, and
/// neither has its group when the baseline's row is client-bound: such a ratio would compare
/// the load tool with itself (the report names the rows left out).
pub fn set_relative(rows: &mut [Row], baseline: &str) {
    // A group's baseline is its first row of the baseline subject (the preset's own
    // configuration: tsutsumi's group also has sync-pool at each swept worker count); when
    // that row cannot be divided by, the group has no ratios rather than another row's.
    let mut bases: Vec<(String, Option<f64>)> = Vec::new();
    for r in rows.iter().filter(|r| r.subject_name() == baseline) {
        if !bases.iter().any(|(group, _)| *group == r.group) {
            let usable = r.is_ok() && !r.client.client_bound && r.requests_per_sec > 0.0;
            bases.push((r.group.clone(), usable.then_some(r.requests_per_sec)));
        }
    }
    for row in rows.iter_mut() {
        let base = bases
            .iter()
            .find(|(group, _)| *group == row.group)
            .and_then(|(_, base)| *base);
        row.relative = base
            .filter(|_| row.is_ok() && !row.client.client_bound)
            .map(|base| row.requests_per_sec / base);
    }
}

impl ExternalRow {
    /// What a row of an external server says of it; `None` for the suite's own targets.
    fn of(subject: &Subject, s: &Settings) -> Option<ExternalRow> {
        let Subject::External(e) = subject else {
            return None;
        };
        Some(ExternalRow {
            url: e.url.clone(),
            verified: e.verified,
            model: e.model.map(|m| m.name()),
            breaks: e.breaks.clone(),
            pid: e.pid,
            application_name: e.app.clone(),
            unobserved: e.unobserved(s.queries_the_database()),
            measured_by: e.measured_by(),
            upstream_page: e.upstream_page.clone(),
            database: e.database.clone(),
        })
    }
}

pub mod ceilings;
#[cfg(test)]
mod tests;
