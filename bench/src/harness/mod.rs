//! The load runs: `bench run` and `bench compare`.
//!
//! For each case of a scenario: start the target fresh (behind its own nginx when `via` is
//! nginx), warm up, start the samplers (DB sessions every 100 ms, memory, CPU), run the load
//! tool, stop everything, and turn what was measured into a [`Row`]. A target that fails the
//! contract checks is refused before any load; one that dies during its run is a failed row,
//! and the run goes on.

pub mod chart;
pub mod procfs;
pub mod report;
pub mod run;
pub mod scenario;
pub mod tools;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use shared::Binary;

use self::scenario::{Case, Settings, Subject};
use self::tools::{Errors, Measurement, Tool};
use crate::observe::Sampler;
use crate::stack::{Pgbouncer, Stack};

/// Sampling interval of the DB sessions and memory samplers.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One result row of `results.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub target: String,
    pub binary: Option<&'static str>,
    pub model: String,
    /// Rows in the same group compare with each other.
    pub group: String,
    /// `ok`, `failed` (died or errored during the run) or `refused` (failed the checks).
    pub status: &'static str,
    pub failure: Option<String>,
    pub tool: String,
    #[serde(rename = "loop")]
    pub loop_kind: &'static str,
    pub config: Settings,
    /// The target's flags, as passed.
    pub flags: Vec<String>,
    pub ok_responses: u64,
    pub seconds: f64,
    pub requests_per_sec: f64,
    /// Each round's throughput, and their spread.
    pub rounds_rps: Vec<f64>,
    pub requests_per_sec_min: f64,
    pub requests_per_sec_max: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub errors: Errors,
    pub requested_rate: Option<u32>,
    pub achieved_rate: Option<f64>,
    /// Open loop only: the achieved rate was under 99% of the requested one.
    pub saturated: Option<bool>,
    pub db_sessions_peak: Option<i64>,
    pub threads_peak: Option<u64>,
    pub rss_peak_mib: Option<f64>,
    pub cpu_ms_per_request: Option<f64>,
    pub postgres_cpu_ms_per_request: Option<f64>,
    pub nginx_cpu_ms_per_request: Option<f64>,
    pub bound_rps: Option<f64>,
    pub efficiency: Option<f64>,
    pub relative: Option<f64>,
}

/// What one round of one case measured, beyond the tool's numbers.
#[derive(Clone, Debug, Default)]
struct Round {
    measurement: Measurement,
    sessions_peak: Option<i64>,
    rss_peak_mib: Option<f64>,
    threads_peak: Option<u64>,
    cpu_s: Option<f64>,
    postgres_cpu_s: Option<f64>,
    nginx_cpu_s: Option<f64>,
}

/// Everything a run needs besides its cases.
pub struct Runner<'a> {
    pub stack: &'a Stack,
    pub tool: Tool,
    pub work_dir: PathBuf,
    pub interrupted: &'a AtomicBool,
    pgbouncer: Option<Pgbouncer>,
    /// Called after each round with the case label, for progress.
    pub on_round: Box<dyn Fn(&str) + 'a>,
}

impl<'a> Runner<'a> {
    pub fn new(
        stack: &'a Stack,
        tool: Tool,
        work_dir: &Path,
        interrupted: &'a AtomicBool,
        pgbouncer_sessions: Option<u32>,
    ) -> Result<Runner<'a>> {
        fs::create_dir_all(work_dir)?;
        let pgbouncer = match pgbouncer_sessions {
            Some(sessions) => Some(stack.pgbouncer(sessions)?),
            None => None,
        };
        Ok(Runner {
            stack,
            tool,
            work_dir: work_dir.to_path_buf(),
            interrupted,
            pgbouncer,
            on_round: Box::new(|_| {}),
        })
    }

    fn check_interrupted(&self) -> Result<()> {
        if self.interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// Measures `case` for `case.settings.rounds` rounds; never fails for the target's sake
    /// (that is a failed row), only when interrupted.
    pub fn measure(&self, case: &Case) -> Result<Row> {
        let mut rounds = Vec::new();
        let mut failure = None;
        for _ in 0..case.settings.rounds.max(1) {
            self.check_interrupted()?;
            let result = self.round(case);
            (self.on_round)(&case.label);
            match result {
                Ok(round) => rounds.push(round),
                Err(e) => {
                    self.check_interrupted()?;
                    failure = Some(format!("{e:#}"));
                    break;
                }
            }
        }
        Ok(make_row(case, &self.tool, rounds, failure))
    }

    fn round(&self, case: &Case) -> Result<Round> {
        match &case.subject {
            Subject::Target(binary) => self.round_target(case, *binary),
            Subject::Pgbench => self.round_pgbench(case),
            Subject::NginxStatic => {
                let url = format!("http://{}/static", self.stack.upstream_addr);
                let nginx = self.stack.upstream.pid();
                self.round_http(case, &url, None, Some(nginx))
            }
        }
    }

    fn round_target(&self, case: &Case, binary: Binary) -> Result<Round> {
        let s = &case.settings;
        let mut flags = s.target_flags(binary);
        if let Some(bouncer) = &self.pgbouncer {
            flags.push(("--database-url".into(), bouncer.url.clone()));
        }
        let mut target = self.stack.launch(binary, &flags)?;
        let proxy = if s.via == "nginx" {
            Some(self.stack.proxy(
                &[(binary.name().to_string(), target.addr)],
                s.upstream_keepalive,
                1,
            )?)
        } else {
            None
        };
        let addr = proxy
            .as_ref()
            .map_or(target.addr, |(_, routes)| routes[0].listen);
        if s.pin {
            procfs::pin(target.pid(), &[0]).context("cannot pin the target to CPU 0")?;
        }
        let url = format!("http://{addr}{}", s.path);
        let round = self.round_http(
            case,
            &url,
            Some((binary, target.pid())),
            proxy.as_ref().map(|(nginx, _)| nginx.pid()),
        );
        if !target.is_running() {
            bail!(
                "{} died during the run; its log ends:\n{}",
                binary.name(),
                crate::stack::process::tail(target.log(), 10)
            );
        }
        round
    }

    /// Warm-up, then the measured load against `url` with the samplers running.
    fn round_http(
        &self,
        case: &Case,
        url: &str,
        target: Option<(Binary, u32)>,
        nginx_pid: Option<u32>,
    ) -> Result<Round> {
        let s = &case.settings;
        if s.warmup_s > 0 {
            self.run_tool(url, s, s.warmup_s, "warmup")?;
        }
        let sessions = match target {
            Some((binary, _)) if s.path == "/test" && s.backend == "db" => Some(Sampler::start(
                self.stack.database_url(),
                shared::sql::application_name(binary),
                SAMPLE_EVERY,
            )?),
            _ => None,
        };
        let memory = target.map(|(_, pid)| procfs::MemorySampler::start(pid, SAMPLE_EVERY));
        let cpu = CpuWatch::start(
            target.map(|(_, pid)| pid),
            self.stack.postgres.server_pid(),
            nginx_pid,
        );
        let measurement = self.run_tool(url, s, s.duration_s, "load");
        let (cpu_s, postgres_cpu_s, nginx_cpu_s) = cpu.finish();
        let (rss, threads) = memory.map_or((None, None), |m| {
            let (rss, threads) = m.finish();
            (Some(rss), Some(threads))
        });
        let sessions_peak = match sessions {
            Some(sampler) => Some(sampler.finish()?.sessions),
            None => None,
        };
        Ok(Round {
            measurement: measurement?,
            sessions_peak,
            rss_peak_mib: rss,
            threads_peak: threads,
            cpu_s,
            postgres_cpu_s,
            nginx_cpu_s,
        })
    }

    fn run_tool(&self, url: &str, s: &Settings, seconds: u32, phase: &str) -> Result<Measurement> {
        let mut command = tools::command(&self.tool, url, s, seconds, &self.work_dir)?;
        if s.pin {
            pin_command(&mut command);
        }
        let out_file = self
            .work_dir
            .join(format!("{}-{phase}.out", self.tool.name));
        let limit = Duration::from_secs(u64::from(seconds) + u64::from(tools::TIMEOUT_S) + 30);
        let stdout = tools::run_to_end(command, limit, self.interrupted, &out_file)?;
        tools::parse(self.tool.name, &stdout)
            .with_context(|| format!("{} output in {}", self.tool.name, out_file.display()))
    }

    /// pgbench with the targets' statement and client count: the database's own limit.
    fn round_pgbench(&self, case: &Case) -> Result<Round> {
        let s = &case.settings;
        let program =
            crate::stack::process::find_program("pgbench", &["/usr/lib/postgresql/15/bin"])
                .context(
                    "pgbench not found: install it with `apt-get install -y postgresql-client`",
                )?;
        let dir = self.work_dir.join("pgbench");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let statement = if s.delay_ms > 0 {
            format!(
                "SELECT a, b FROM test, pg_sleep({}) WHERE a = :id;",
                shared::sql::sleep_seconds(s.delay_ms)
            )
        } else {
            "SELECT a, b FROM test WHERE a = :id;".to_string()
        };
        let script = dir.join("statement.sql");
        fs::write(
            &script,
            format!("\\set id random(1, 1000000)\n{statement}\n"),
        )?;
        let clients = s.connections.min(s.sessions.max(1));
        let mut command = std::process::Command::new(program);
        command
            .args(["-n", "-M", "prepared", "-c", &clients.to_string()])
            .args(["-j", &clients.min(2).to_string()])
            .args(["-T", &s.duration_s.to_string(), "-l", "--log-prefix"])
            .arg(dir.join("log"))
            .arg("-f")
            .arg(&script)
            .arg(self.stack.database_url())
            .env("PGAPPNAME", "pgbench");
        let sessions = Sampler::start(self.stack.database_url(), "pgbench", SAMPLE_EVERY)?;
        let cpu = CpuWatch::start(None, self.stack.postgres.server_pid(), None);
        let limit = Duration::from_secs(u64::from(s.duration_s) + 60);
        let stdout = tools::run_to_end(command, limit, self.interrupted, &dir.join("pgbench.out"));
        let (_, postgres_cpu_s, _) = cpu.finish();
        let peak = sessions.finish()?.sessions;
        stdout?;
        let measurement = read_pgbench_logs(&dir, s.duration_s)?;
        Ok(Round {
            measurement,
            sessions_peak: Some(peak),
            postgres_cpu_s,
            ..Round::default()
        })
    }
}

/// pgbench's per-transaction logs: `client txno latency_us script epoch epoch_us`.
fn read_pgbench_logs(dir: &Path, duration_s: u32) -> Result<Measurement> {
    let mut latencies = Vec::new();
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("log.") {
            continue;
        }
        for line in fs::read_to_string(entry.path())?.lines() {
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<f64>().ok())
            {
                latencies.push(us / 1000.0);
            }
        }
    }
    if latencies.is_empty() {
        bail!("pgbench logged no transactions in {}", dir.display());
    }
    latencies.sort_by(f64::total_cmp);
    let at = |p| tools::percentile_of_sorted(&latencies, p);
    Ok(Measurement {
        ok_responses: latencies.len() as u64,
        seconds: f64::from(duration_s),
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        p999_ms: at(99.9),
        max_ms: latencies.last().copied(),
        errors: Errors::default(),
    })
}

/// Runs the load tool on every CPU but 0 (the target's, with `--pin`).
fn pin_command(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let cpus = procfs::cpus();
    if cpus < 2 {
        return;
    }
    // SAFETY: only async-signal-safe calls (sched_setaffinity) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for cpu in 1..cpus {
                libc::CPU_SET(cpu, &mut set);
            }
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// CPU seconds of the target, PostgreSQL and the proxy nginx over the measured load.
struct CpuWatch {
    pids: [Option<u32>; 3],
    before: [Option<f64>; 3],
}

impl CpuWatch {
    fn start(target: Option<u32>, postgres: Option<u32>, nginx: Option<u32>) -> CpuWatch {
        let pids = [target, postgres, nginx];
        let before = read_cpu(&pids);
        CpuWatch { pids, before }
    }

    fn finish(self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let after = read_cpu(&self.pids);
        let delta = |i: usize| Some((after[i]? - self.before[i]?).max(0.0));
        (delta(0), delta(1), delta(2))
    }
}

fn read_cpu(pids: &[Option<u32>; 3]) -> [Option<f64>; 3] {
    [
        pids[0].and_then(|pid| procfs::cpu_seconds(pid, false)),
        pids[1].and_then(|pid| procfs::cpu_seconds(pid, true)),
        pids[2].and_then(|pid| procfs::cpu_seconds(pid, true)),
    ]
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

fn make_row(case: &Case, tool: &Tool, rounds: Vec<Round>, failure: Option<String>) -> Row {
    let s = &case.settings;
    let (binary, model, flags, concurrency) = match &case.subject {
        Subject::Target(b) => (
            Some(b.name()),
            b.model().to_string(),
            s.target_flags(*b)
                .into_iter()
                .map(|(f, v)| format!("{f} {v}"))
                .collect(),
            s.effective_concurrency(*b),
        ),
        Subject::Pgbench => (
            None,
            "pgbench: the database alone, same statement".to_string(),
            Vec::new(),
            Some(s.connections.min(s.sessions)),
        ),
        Subject::NginxStatic => (
            None,
            "nginx `return 200`: the HTTP path alone".to_string(),
            Vec::new(),
            None,
        ),
    };
    let tool_name = match case.subject {
        Subject::Pgbench => "pgbench".to_string(),
        _ => tool.name.to_string(),
    };
    let rps: Vec<f64> = rounds
        .iter()
        .map(|r| r.measurement.requests_per_sec())
        .collect();
    let spread = Spread::of(&rps);
    let median_rps = spread.median;
    // The round closest to the median gives the latencies and resources of the row.
    let chosen = rounds.iter().min_by(|a, b| {
        let da = (a.measurement.requests_per_sec() - median_rps).abs();
        let db = (b.measurement.requests_per_sec() - median_rps).abs();
        da.total_cmp(&db)
    });
    let bound = scenario::bound_rps(s, concurrency);
    let status = if failure.is_some() { "failed" } else { "ok" };
    let mut row = Row {
        target: case.label.clone(),
        binary,
        model,
        group: case.group.clone(),
        status,
        failure,
        tool: tool_name,
        loop_kind: if s.rate.is_some() { "open" } else { "closed" },
        config: s.clone(),
        flags,
        ok_responses: 0,
        seconds: 0.0,
        requests_per_sec: 0.0,
        rounds_rps: rps,
        requests_per_sec_min: 0.0,
        requests_per_sec_max: 0.0,
        p50_ms: None,
        p90_ms: None,
        p99_ms: None,
        p999_ms: None,
        max_ms: None,
        errors: Errors::default(),
        requested_rate: s.rate,
        achieved_rate: None,
        saturated: None,
        db_sessions_peak: None,
        threads_peak: None,
        rss_peak_mib: None,
        cpu_ms_per_request: None,
        postgres_cpu_ms_per_request: None,
        nginx_cpu_ms_per_request: None,
        bound_rps: bound,
        efficiency: None,
        relative: None,
    };
    let Some(round) = chosen else {
        return row;
    };
    let m = &round.measurement;
    row.ok_responses = m.ok_responses;
    row.seconds = m.seconds;
    row.requests_per_sec = median_rps;
    row.requests_per_sec_min = spread.min;
    row.requests_per_sec_max = spread.max;
    row.p50_ms = m.p50_ms;
    row.p90_ms = m.p90_ms;
    row.p99_ms = m.p99_ms;
    row.p999_ms = m.p999_ms;
    row.max_ms = m.max_ms;
    row.errors = m.errors.clone();
    if let Some(rate) = s.rate {
        let achieved = if m.seconds > 0.0 {
            (m.ok_responses + m.errors.non_2xx) as f64 / m.seconds
        } else {
            0.0
        };
        row.achieved_rate = Some(achieved);
        row.saturated = Some(achieved < 0.99 * f64::from(rate));
    }
    row.db_sessions_peak = round.sessions_peak;
    row.threads_peak = round.threads_peak;
    row.rss_peak_mib = round.rss_peak_mib;
    let answered = (m.ok_responses + m.errors.non_2xx) as f64;
    let per_request = |cpu: Option<f64>| {
        cpu.filter(|_| answered > 0.0)
            .map(|c| c * 1000.0 / answered)
    };
    row.cpu_ms_per_request = per_request(round.cpu_s);
    row.postgres_cpu_ms_per_request = per_request(round.postgres_cpu_s);
    row.nginx_cpu_ms_per_request = per_request(round.nginx_cpu_s);
    row.efficiency = bound.map(|b| median_rps / b);
    if m.ok_responses == 0 && row.failure.is_none() {
        row.status = "failed";
        row.failure = Some(format!(
            "no 2xx responses ({} errors: {:?})",
            m.errors.total, m.errors
        ));
    }
    row
}

/// A refused target's row: it failed the contract checks, so it was not measured.
pub fn refused_row(case: &Case, tool: &Tool, why: &str) -> Row {
    let mut row = make_row(case, tool, Vec::new(), Some(why.to_string()));
    row.status = "refused";
    row
}

/// Fills in `relative`: each row's throughput over the baseline's in its group.
pub fn set_relative(rows: &mut [Row], baseline: Binary) {
    let bases: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| r.binary == Some(baseline.name()) && r.status == "ok")
        .map(|r| (r.group.clone(), r.requests_per_sec))
        .collect();
    for row in rows.iter_mut() {
        let base = bases.iter().find(|(group, _)| *group == row.group);
        row.relative = match base {
            Some((_, base)) if *base > 0.0 && row.status == "ok" => {
                Some(row.requests_per_sec / base)
            }
            _ => None,
        };
    }
}

/// The targets whose binaries are built, in `bin_dir`.
pub fn built_targets(bin_dir: &Path) -> Vec<Binary> {
    Binary::ALL
        .into_iter()
        .filter(|b| bin_dir.join(b.name()).is_file())
        .collect()
}

/// The run's output folder: given, or `results/<scenario>-<UTC time>`.
pub fn out_dir(given: Option<&Path>, scenario: &str) -> Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("results").join(format!(
            "{scenario}-{}",
            compact_utc(std::time::SystemTime::now())
        )),
    };
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// `20261123-091650` (UTC), for folder names that sort by time.
pub fn compact_utc(time: std::time::SystemTime) -> String {
    // "Mon, 23 Nov 2026 09:16:50 GMT"
    let text = httpdate::fmt_http_date(time);
    let parts: Vec<&str> = text.split_whitespace().collect();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    match parts.as_slice() {
        [_, day, month, year, clock, _] => {
            let month = MONTHS.iter().position(|m| m == month).map_or(0, |i| i + 1);
            format!("{year}{month:02}{day}-{}", clock.replace(':', ""))
        }
        _ => text.replace([' ', ',', ':'], ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_folders_sort_by_time() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_425_410);
        assert_eq!(compact_utc(t), "20261123-091650");
    }

    fn tool() -> Tool {
        Tool {
            name: "wrk",
            program: "wrk".into(),
            version: "wrk 4".into(),
        }
    }

    fn case(binary: Binary) -> Case {
        Case {
            label: binary.name().into(),
            subject: Subject::Target(binary),
            settings: scenario::find("grinberg").unwrap().settings,
            group: String::new(),
        }
    }

    fn round(rps_times_ten: u64) -> Round {
        Round {
            measurement: Measurement {
                ok_responses: rps_times_ten,
                seconds: 10.0,
                p50_ms: Some(20.0),
                ..Measurement::default()
            },
            cpu_s: Some(1.0),
            sessions_peak: Some(19),
            ..Round::default()
        }
    }

    #[test]
    fn rows_take_the_median_round_and_keep_the_spread() {
        let row = make_row(
            &case(Binary::SyncPool),
            &tool(),
            vec![round(8000), round(9000), round(8500)],
            None,
        );
        assert_eq!(row.status, "ok");
        assert_eq!(row.requests_per_sec, 850.0);
        assert_eq!(
            (row.requests_per_sec_min, row.requests_per_sec_max),
            (800.0, 900.0)
        );
        assert_eq!(row.bound_rps, Some(950.0));
        assert!((row.efficiency.unwrap() - 850.0 / 950.0).abs() < 1e-9);
        // 1 CPU second over 8500 responses.
        assert!((row.cpu_ms_per_request.unwrap() - 1000.0 / 8500.0).abs() < 1e-9);
        assert_eq!(row.loop_kind, "closed");
    }

    #[test]
    fn failures_and_empty_runs_are_failed_rows_and_relative_skips_them() {
        let failed = make_row(
            &case(Binary::TokioAxum),
            &tool(),
            vec![],
            Some("died".into()),
        );
        assert_eq!(failed.status, "failed");
        let empty = make_row(&case(Binary::TokioHyper), &tool(), vec![round(0)], None);
        assert_eq!(empty.status, "failed");
        let base = make_row(&case(Binary::SyncPool), &tool(), vec![round(9000)], None);
        let fast = make_row(&case(Binary::TokioActix), &tool(), vec![round(27000)], None);
        let mut rows = vec![base, fast, failed, empty];
        set_relative(&mut rows, Binary::SyncPool);
        assert_eq!(rows[0].relative, Some(1.0));
        assert_eq!(rows[1].relative, Some(3.0));
        assert_eq!(rows[2].relative, None);
        assert_eq!(rows[3].relative, None);
    }
}
