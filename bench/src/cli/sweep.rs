//! `bench sweep`: every target at every point of a grid of knobs (`--vary`, or a sweep
//! preset's), with the capacities of a rate sweep and the charts of the flip.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Result};
use clap::Args;
use shared::Binary;

use super::args::{LoadArgs, StackArgs};
use super::{exit_code, parse_targets, UsageError};
use crate::measure::tools;
use crate::model::knob::{self, Vary};
use crate::model::plan::SweepPlan;
use crate::model::preset::{Preset, Shape};
use crate::ops;
use crate::ops::sweep::SweepOutcome;
use crate::output::folder;

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// A knob and its values, e.g. delay-ms=0,10,20 (repeatable; every combination is a
    /// point). Knobs: delay-ms, connections, pool-size, workers, rate, backend, via, db-mode. A sweep
    /// preset (flip-map, capacity, sessions) brings its own; --vary replaces a preset's knob of
    /// the same name and adds any other.
    #[arg(long, value_name = "KNOB=V1,V2,…", value_parser = knob::parse_vary)]
    vary: Vec<Vary>,
    /// The latency objective of the capacity: the highest offered rate with p99 within it.
    #[arg(long, default_value_t = 100.0, value_parser = slo_ms)]
    slo_p99_ms: f64,
    /// Seed of the order of the targets at each point [default: from the clock].
    #[arg(long)]
    seed: Option<u64>,
    /// Continue the sweep in DIR: the points already in its results.jsonl are skipped.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Also draw the heatmap of A's throughput over B's, e.g. tokio-hyper/sync-thread
    /// (repeatable; two knobs) [default: the best async or green target / sync-pool].
    #[arg(long, value_name = "A/B")]
    heatmap: Vec<String>,
    /// Also measure these tokio targets with --offload blocking at every point, as rows
    /// `NAME offload` beside their own (repeatable) [default: the preset's; cpu-map's
    /// tokio-axum].
    #[arg(long, value_name = "TARGET")]
    also_offload: Vec<String>,
    /// The target every row's `relative` is measured against, at each point.
    #[arg(long, default_value = "sync-pool")]
    baseline: String,
}

pub fn exec(args: SweepArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let scenario = super::find_preset(&args.load.scenario)?;
    super::not_the_soak(&scenario)?;
    let (preset_targets, preset_offload) = match scenario.shape {
        Shape::Sweep {
            targets, offload, ..
        } => (targets, offload),
        _ => (&[][..], &[][..]),
    };
    let offload = if args.also_offload.is_empty() {
        preset_offload.to_vec()
    } else {
        parse_targets("--also-offload", &args.also_offload)?
    };
    if let Some(other) = offload
        .iter()
        .find(|b| !shared::Offload::Blocking.supported_by(**b))
    {
        return Err(UsageError(format!(
            "--also-offload {other}: only the tokio targets offload their work (tokio-axum, tokio-actix, tokio-hyper)"
        ))
        .into());
    }
    let varies = varies(&args, &scenario)?;
    let mut settings = scenario.settings.clone();
    args.load.overrides.apply(&mut settings);
    // A varied rate needs an open-loop tool (`tool_for`); so does a rate given as a flag.
    settings.tool = knob::tool_for(&varies, args.load.tool, settings.tool)?;
    if settings.mix.is_some() && args.load.tool.is_none() {
        settings.tool = crate::model::tool::ToolKind::Bench;
    }
    settings.tool.check_rate(settings.rate)?;
    settings
        .tool
        .check_mix(settings.mix.is_some())
        .map_err(|e| UsageError(format!("{e:#}")))?;
    settings
        .check_faults(args.stack.database_url.is_none())
        .map_err(UsageError)?;
    for point in knob::points(&varies) {
        let mut at = settings.clone();
        point.apply(&mut at);
        at.check_load()
            .map_err(|e| UsageError(format!("at {}: {e}", point.label())))?;
    }
    let tool = tools::locate(settings.tool)?;
    let baseline = parse_targets("--baseline", std::slice::from_ref(&args.baseline))?[0]
        .name()
        .to_string();
    let heatmaps = heatmaps(&args.heatmap)?;
    let names = if args.stack.targets.is_empty() {
        preset_targets
            .iter()
            .map(|b| b.name().to_string())
            .collect()
    } else {
        args.stack.targets.clone()
    };
    let chosen = parse_targets("--targets", &names)?;
    let out = match &args.resume {
        Some(dir) => {
            if !dir.join("results.jsonl").is_file() {
                bail!("--resume {}: no results.jsonl there", dir.display());
            }
            dir.clone()
        }
        None => folder::out_dir(args.load.out.as_deref(), scenario.name)?,
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let stack = ops::prepare::stack(&args.stack.stack_options())?;
    let targets = ops::prepare::targets(&stack, &chosen, !names.is_empty())?;
    eprintln!(
        "bench: sweep {} ({} points × {} targets, {} s each, {}), seed {seed}",
        scenario.name,
        knob::points(&varies).len(),
        targets.0.len(),
        settings.duration_s,
        settings.tool
    );
    let offload: Vec<Binary> = offload
        .into_iter()
        .filter(|b| targets.0.contains(b))
        .collect();
    let plan = SweepPlan {
        base: args.load.plan(scenario, settings, targets, baseline, &out),
        varies,
        seed,
        slo_p99_ms: args.slo_p99_ms,
        heatmaps,
        resume: args.resume.is_some(),
        offload,
    };
    let outcome = ops::sweep::sweep(&stack, &plan, tool, interrupted)?;
    print_outcome(&plan, &outcome, &out)
}

/// The knobs to vary: the preset's, each replaced by a `--vary` of the same knob, and any
/// other `--vary` added (e.g. `--scenario sessions --vary db-mode=pool,pipelined`). A knob
/// given twice, or both as a flag and in `--vary`, is refused.
fn varies(args: &SweepArgs, scenario: &Preset) -> Result<Vec<Vary>> {
    let preset_vary = match scenario.shape {
        Shape::Sweep { vary, .. } => vary,
        _ => &[][..],
    };
    knob::check_distinct(&args.vary).map_err(UsageError)?;
    let mut varies = preset_vary
        .iter()
        .map(|v| knob::parse_vary(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("preset {}: {e}", scenario.name))?;
    for vary in &args.vary {
        match varies.iter_mut().find(|v| v.knob == vary.knob) {
            Some(preset) => *preset = vary.clone(),
            None => varies.push(vary.clone()),
        }
    }
    if varies.is_empty() {
        return Err(UsageError(format!(
            "nothing to sweep: give --vary KNOB=V1,V2,… ({} is not a sweep preset)",
            scenario.name
        ))
        .into());
    }
    knob::check_distinct(&varies).map_err(UsageError)?;
    for (knob, _) in args.load.overrides.knobs() {
        if varies.iter().any(|v| v.knob == knob) {
            return Err(UsageError(format!(
                "--{knob} is given both as a flag and in --vary {knob}=…: choose one"
            ))
            .into());
        }
    }
    Ok(varies)
}

/// `--heatmap A/B` pairs.
fn heatmaps(pairs: &[String]) -> Result<Vec<(Binary, Binary)>> {
    pairs
        .iter()
        .map(|pair| {
            let (a, b) = pair
                .split_once('/')
                .ok_or_else(|| UsageError(format!("--heatmap {pair:?}: expected A/B")))?;
            let both = parse_targets("--heatmap", &[a.to_string(), b.to_string()])?;
            Ok((both[0], both[1]))
        })
        .collect()
}

/// Prints the capacities and where the files are; the exit status.
fn print_outcome(plan: &SweepPlan, outcome: &SweepOutcome, out: &Path) -> Result<ExitCode> {
    if outcome.skipped > 0 {
        eprintln!(
            "bench: resumed: {} rows were already there",
            outcome.skipped
        );
    }
    for capacity in &outcome.capacity {
        println!(
            "capacity at p99 <= {} ms: {} {}{}",
            plan.slo_p99_ms,
            capacity.target,
            capacity
                .capacity_rps
                .map_or("none".into(), |r| format!("{r} req/s")),
            capacity
                .first_miss
                .as_deref()
                .map_or(String::new(), |m| format!(" (first miss {m})"))
        );
    }
    let charts: String = outcome
        .charts
        .iter()
        .filter_map(|c| c.file_name())
        .map(|n| format!(", {}", n.to_string_lossy()))
        .collect();
    super::results_line(
        out,
        &format!("report.html (report.md, results.json, results.jsonl, results.csv{charts})"),
    );
    if outcome.interrupted {
        bail!(
            "interrupted; the rows measured so far are in {} (continue with --resume {})",
            out.display(),
            out.display()
        );
    }
    let bad = outcome.rows.iter().filter(|r| !r.is_ok()).count();
    if bad > 0 {
        eprintln!("bench: {bad} row(s) failed or were refused; see report.md");
    }
    Ok(exit_code(bad))
}

/// `--slo-p99-ms`: milliseconds above 0, at most ten minutes.
fn slo_ms(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ms) if ms > 0.0 && ms <= 600_000.0 => Ok(ms),
        _ => Err(format!(
            "{text:?} is not milliseconds above 0 and at most 600000"
        )),
    }
}
