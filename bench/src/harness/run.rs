//! `bench run` and `bench compare` over a started stack: verify, measure each case, write the
//! results. The CLI only parses flags into [`Plan`] and prints.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use shared::Binary;

use super::external::External;
use super::report::{self, Machine, Meta};
use super::scenario::{self, Case, Scenario, Settings};
use super::tools::{self, Tool};
use super::{set_relative, Row, Runner, Spread};
use crate::stack::Stack;

/// What to run.
pub struct Plan {
    pub scenario: Scenario,
    pub settings: Settings,
    pub targets: Vec<Binary>,
    /// Servers the harness did not start (`--external`), measured beside the targets.
    pub externals: Vec<External>,
    /// The versions on a remote stack's host (`--remote`).
    pub remote_versions: Vec<(String, String)>,
    pub missing_targets: Vec<String>,
    /// The name every row's `relative` divides by: a target, or `pgbench`.
    pub baseline: String,
    pub verify: bool,
    pub out: PathBuf,
    pub progress: bool,
}

/// Runs the contract checks on `targets`; returns each failing target with its first failure.
pub fn verify(stack: &Stack, targets: &[Binary]) -> Result<Vec<(Binary, String)>> {
    let mut refused = Vec::new();
    for &binary in targets {
        let outcomes = crate::checks::run_on_stack(stack, binary)?;
        if let Some(why) = tally(binary.name(), "", &outcomes) {
            refused.push((binary, why));
        }
    }
    Ok(refused)
}

/// Runs the contract checks on an external server against the stack's database and
/// upstream; returns its first failure, if any.
pub fn verify_external(stack: &Stack, external: &External) -> Result<Option<String>> {
    let subject = crate::checks::Subject {
        binary: external.binary,
        name: external.name.clone(),
        direct: external.addr,
        proxied: external.remote.as_ref().and_then(|r| r.via_nginx),
        database_url: stack.database_url().to_string(),
        upstream: Some(stack.upstream_addr),
        rows: crate::checks::TABLE_ROWS,
    };
    let outcomes = crate::checks::run_all(&subject);
    let note = format!(" ({})", external.url);
    Ok(tally(&external.name, &note, &outcomes)
        .map(|why| format!("{why} (measure it anyway with --no-verify)")))
}

/// Prints how many checks `name` passed; returns its first failure as the reason to refuse it.
fn tally(name: &str, note: &str, outcomes: &[crate::checks::Outcome]) -> Option<String> {
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .map(|e| format!("{}: {e:#}", o.check))
        })
        .collect();
    eprintln!(
        "bench: verify {name:<12} {}/{} checks pass{note}",
        outcomes.len() - failures.len(),
        outcomes.len()
    );
    failures
        .first()
        .map(|first| format!("failed the contract check {first}"))
}

/// The progress of `total` measurements (rounds, or a sweep's rows), with the time left.
pub fn progress_bar(total: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}, about {eta} left  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

impl Plan {
    /// The targets refused by the contract checks, with why (none when not verifying).
    pub fn refused(&self, stack: &Stack) -> Result<Vec<(Binary, String)>> {
        if self.verify {
            verify(stack, &self.targets)
        } else {
            Ok(Vec::new())
        }
    }

    /// The runner of this plan's cases, with pgbouncer in front when the plan asks for it.
    pub fn runner<'a>(
        &self,
        stack: &'a Stack,
        tool: &Tool,
        interrupted: &'a AtomicBool,
    ) -> Result<Runner<'a>> {
        Runner::new(
            stack,
            tool.clone(),
            &self.out.join("work"),
            interrupted,
            self.settings.pgbouncer.then_some(self.settings.sessions),
        )
    }
}

/// Versions of everything that shaped the numbers.
pub fn versions(stack: &Stack, tool: &Tool, pgbouncer: bool) -> Vec<(String, String)> {
    let mut out = vec![
        ("bench".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        (tool.kind.name().to_string(), tool.version.clone()),
    ];
    let command_line = |program: &str, args: &[&str]| -> Option<String> {
        let o = Command::new(program).args(args).output().ok()?;
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        text.lines().next().map(|l| l.trim().to_string())
    };
    if let Some(v) = command_line("git", &["rev-parse", "--short", "HEAD"]) {
        out.push(("git commit".into(), v));
    }
    if let Some(v) = command_line("rustc", &["-V"]) {
        out.push(("rustc".into(), v));
    }
    if let Ok(mut client) = stack.postgres.connect() {
        if let Ok(row) = client.query_one("SELECT version()", &[]) {
            out.push(("postgresql".into(), row.get(0)));
        }
    }
    if let Some(nginx) = crate::stack::process::find_program("nginx", &["/usr/sbin"]) {
        if let Some(v) = command_line(&nginx.to_string_lossy(), &["-v"]) {
            out.push(("nginx".into(), v));
        }
    }
    if pgbouncer {
        if let Some(v) = tools::dpkg_version("pgbouncer") {
            out.push(("pgbouncer".into(), v));
        }
    }
    out
}

pub fn now() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

/// Everything about a run but its rows, when it ends.
pub fn meta(stack: &Stack, plan: &Plan, tool: &Tool, started: String) -> Meta {
    Meta {
        suite: "rust-web-perf",
        bench_version: env!("CARGO_PKG_VERSION"),
        scenario: plan.scenario.name.to_string(),
        source: plan.scenario.source.to_string(),
        started,
        finished: now(),
        settings: plan.settings.clone(),
        baseline: plan.baseline.clone(),
        machine: Machine::read(),
        versions: {
            let mut all = versions(stack, tool, plan.settings.pgbouncer);
            all.extend(
                plan.remote_versions
                    .iter()
                    .map(|(name, version)| (format!("{name} (stack host)"), version.clone())),
            );
            all
        },
        missing_targets: plan.missing_targets.clone(),
    }
}

/// The outcome of `bench run`: the rows, and where they were written.
pub struct Outcome {
    pub rows: Vec<Row>,
    pub meta: Meta,
    pub interrupted: bool,
}

pub fn run(stack: &Stack, plan: &Plan, tool: Tool, interrupted: &AtomicBool) -> Result<Outcome> {
    let started = now();
    let cases = scenario::expand(&plan.scenario, &plan.settings, &plan.targets);
    // Only the targets with a row are verified (the limits rows measure none).
    let measured: Vec<Binary> = plan
        .targets
        .iter()
        .copied()
        .filter(|b| cases.iter().any(|c| c.subject.name() == Some(b.name())))
        .collect();
    let mut refused: Vec<(String, String)> = if plan.verify {
        verify(stack, &measured)?
            .into_iter()
            .map(|(b, why)| (b.name().to_string(), why))
            .collect()
    } else {
        Vec::new()
    };
    let mut externals = plan.externals.clone();
    for external in &mut externals {
        if !plan.verify {
            continue;
        }
        match verify_external(stack, external)? {
            Some(why) => refused.push((external.name.clone(), why)),
            None => external.verified = true,
        }
    }
    let cases = if externals.iter().any(|e| e.remote.is_some()) {
        let binaries: Vec<Binary> = externals.iter().filter_map(|e| e.binary).collect();
        let cases = scenario::expand(&plan.scenario, &plan.settings, &binaries);
        scenario::onto_remote(cases, &externals)
    } else {
        scenario::with_externals(cases, &externals)
    };
    let rounds: u64 = cases
        .iter()
        .map(|c| u64::from(c.settings.rounds.max(1)))
        .sum();
    let bar = progress_bar(rounds, plan.progress);
    let mut runner = plan.runner(stack, &tool, interrupted)?;
    let bar_for_rounds = bar.clone();
    runner.on_round = Box::new(move |_| bar_for_rounds.inc(1));
    let mut rows = Vec::new();
    let mut was_interrupted = false;
    for case in &cases {
        bar.set_message(case.label.clone());
        if let Some((_, why)) = refused
            .iter()
            .find(|(name, _)| Some(name.as_str()) == case.subject.name())
        {
            rows.push(Row::refused(case, &tool, why));
            bar.inc(u64::from(case.settings.rounds.max(1)));
            continue;
        }
        match runner.measure(case) {
            Ok(row) => {
                if !row.is_ok() {
                    bar.println(format!(
                        "bench: {} failed: {}",
                        row.target,
                        row.failure.as_deref().unwrap_or("")
                    ));
                }
                rows.push(row);
            }
            Err(_) => {
                was_interrupted = true;
                break;
            }
        }
    }
    bar.finish_and_clear();
    set_relative(&mut rows, &plan.baseline);
    let meta = meta(stack, plan, &tool, started);
    report::write_all(&plan.out, &meta, &rows)?;
    Ok(Outcome {
        rows,
        meta,
        interrupted: was_interrupted,
    })
}

/// `bench compare`: the result.
#[derive(Serialize)]
pub struct Comparison {
    #[serde(flatten)]
    pub meta: Meta,
    pub a: String,
    pub b: String,
    pub rounds: Vec<RoundPair>,
    /// A's throughput over B's, per round.
    pub ratio: Spread,
    pub a_rps: Spread,
    pub b_rps: Spread,
    /// (max − min) / median of each target's rounds: the noise between rounds.
    pub a_noise: f64,
    pub b_noise: f64,
    pub results: Vec<Row>,
}

#[derive(Serialize)]
pub struct RoundPair {
    pub a_rps: f64,
    pub b_rps: f64,
    pub ratio: Option<f64>,
}

/// A and B in turn, `rounds` times each (A B A B …), each round on a fresh process (an
/// external server is the same process throughout).
pub fn compare(
    stack: &Stack,
    plan: &Plan,
    sides: [scenario::Subject; 2],
    tool: Tool,
    interrupted: &AtomicBool,
    on_pair: &dyn Fn(usize, &RoundPair),
) -> Result<Comparison> {
    let started = now();
    if let Some((binary, why)) = plan.refused(stack)?.first() {
        bail!("{} is refused: {why}", binary.name());
    }
    let mut sides = sides;
    for side in &mut sides {
        if let scenario::Subject::External(external) = side {
            if plan.verify {
                if let Some(why) = verify_external(stack, external)? {
                    bail!("{} is refused: {why}", external.name);
                }
                external.verified = true;
            }
        }
    }
    let settings = Settings {
        rounds: 1,
        ..plan.settings.clone()
    };
    let case = |side: &scenario::Subject| Case {
        label: side.label(),
        subject: side.clone(),
        settings: settings.clone(),
        group: String::new(),
    };
    let runner = plan.runner(stack, &tool, interrupted)?;
    let bar = progress_bar(u64::from(plan.settings.rounds) * 2, plan.progress);
    let mut rows = Vec::new();
    let mut pairs = Vec::new();
    for round in 0..plan.settings.rounds as usize {
        let mut pair = [0.0; 2];
        for (i, side) in sides.iter().enumerate() {
            let case = case(side);
            bar.set_message(format!("round {} {}", round + 1, case.label));
            let row = runner.measure(&case)?;
            bar.inc(1);
            if !row.is_ok() {
                bail!(
                    "{} failed in round {}: {}",
                    case.label,
                    round + 1,
                    row.failure.as_deref().unwrap_or("")
                );
            }
            pair[i] = row.requests_per_sec;
            rows.push(row);
        }
        let result = RoundPair {
            a_rps: pair[0],
            b_rps: pair[1],
            ratio: (pair[1] > 0.0).then(|| pair[0] / pair[1]),
        };
        bar.suspend(|| on_pair(round + 1, &result));
        pairs.push(result);
    }
    bar.finish_and_clear();
    let ratios: Vec<f64> = pairs.iter().filter_map(|p| p.ratio).collect();
    let a_all: Vec<f64> = pairs.iter().map(|p| p.a_rps).collect();
    let b_all: Vec<f64> = pairs.iter().map(|p| p.b_rps).collect();
    let noise = |s: Spread| {
        if s.median > 0.0 {
            (s.max - s.min) / s.median
        } else {
            0.0
        }
    };
    let (a_rps, b_rps) = (Spread::of(&a_all), Spread::of(&b_all));
    let comparison = Comparison {
        meta: meta(stack, plan, &tool, started),
        a: sides[0].label(),
        b: sides[1].label(),
        ratio: Spread::of(&ratios),
        a_rps,
        b_rps,
        a_noise: noise(a_rps),
        b_noise: noise(b_rps),
        rounds: pairs,
        results: rows,
    };
    let json = serde_json::to_string_pretty(&comparison)?;
    std::fs::write(plan.out.join("compare.json"), json + "\n")?;
    Ok(comparison)
}
