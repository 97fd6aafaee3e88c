//! `bench compare`: A and B in turn, round by round, with the ratio per pair, its spread,
//! and the noise between rounds; `compare.json`.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Result};
use clap::Args;
use shared::Binary;

use super::args::{ExternalObserve, LoadArgs, StackArgs};
use super::{parse_targets, UsageError};
use crate::measure::session::Plan;
use crate::model::case::Subject;
use crate::model::external;
use crate::ops;
use crate::output::folder;
use crate::stack::Stack;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The first target (the ratio's numerator), or NAME=URL for a server the harness did
    /// not start (see `bench run --external`).
    a: String,
    /// The second target, or NAME=URL.
    b: String,
    #[command(flatten)]
    observe: ExternalObserve,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Exit with status 1 when A / B is below RATIO beyond the rounds' noise (the upper end
    /// of its 95% interval is under RATIO): a CI job's regression check.
    #[arg(long, value_name = "RATIO", value_parser = positive_ratio)]
    fail_below: Option<f64>,
    #[command(flatten)]
    load: LoadArgs,
}

fn positive_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1000.0 => Ok(r),
        _ => Err(format!(
            "{text:?} is not a ratio above 0 (and at most 1000), e.g. 0.95"
        )),
    }
}

pub fn exec(args: CompareArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let (scenario, mut settings, tool) = args.load.settings()?;
    super::not_the_soak(&scenario)?;
    settings
        .check_faults(args.database_url.is_none())
        .map_err(UsageError)?;
    if args.load.overrides.rounds.is_none() {
        settings.rounds = 3;
    }
    if settings.rounds < 3 {
        bail!("--rounds must be at least 3: one pair says nothing about the noise");
    }
    // A side is a target's name, or NAME=URL: a server the harness did not start (`None`
    // below: the next of the externals, which keep the order of their URLs).
    let mut urls = Vec::new();
    let mut targets = Vec::new();
    let mut sides = Vec::new();
    for side in [&args.a, &args.b] {
        if side.contains('=') {
            urls.push(external::parse(side).map_err(UsageError)?);
            sides.push(None);
        } else {
            let binary = parse_targets("compare A/B", std::slice::from_ref(side))?[0];
            targets.push(binary);
            sides.push(Some(binary));
        }
    }
    let mut externals = args
        .observe
        .resolve(&urls, args.database_url.as_deref(), !args.load.no_verify)?
        .into_iter();
    let mut subject = |side: Option<Binary>| match side {
        Some(binary) => Subject::Target(binary),
        None => Subject::External(Box::new(
            externals.next().expect("one external per NAME=URL"),
        )),
    };
    let (a_side, b_side) = (subject(sides[0]), subject(sides[1]));
    let (a, b) = (
        a_side.name().unwrap_or_default().to_string(),
        b_side.name().unwrap_or_default().to_string(),
    );
    if a == b {
        eprintln!("bench: comparing {a} with itself: the ratio shows the noise alone");
    }
    let out = folder::out_dir(args.load.out.as_deref(), &format!("compare-{a}-{b}"))?;
    eprintln!("bench: starting the stack");
    let options = StackArgs {
        targets: Vec::new(),
        database_url: args.database_url.clone(),
    }
    .stack_options();
    let stack = Stack::start(&options)?;
    let plan = Plan {
        scenario,
        settings,
        targets: targets.clone(),
        externals: Vec::new(),
        remote_versions: Vec::new(),
        peer_versions: Vec::new(),
        missing_targets: Vec::new(),
        baseline: b.clone(),
        verify: !args.load.no_verify,
        out: out.clone(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        fault_every_s: None,
    };
    println!("{:<6} {:>12} {:>12} {:>8}", "round", a, b, "A/B");
    let sides = [a_side, b_side];
    let comparison =
        ops::compare::compare(&stack, &plan, sides, tool, interrupted, &|round, pair| {
            let mark = if pair.client_bound.is_empty() {
                String::new()
            } else {
                format!("  client-bound: {}", pair.client_bound.join(", "))
            };
            println!(
                "{round:<6} {:>12.0} {:>12.0} {:>8}{mark}",
                pair.a_rps,
                pair.b_rps,
                pair.ratio.map_or("–".into(), |r| format!("{r:.3}"))
            );
        })?;
    print_summary(&comparison, &a, &b);
    super::results_line(&out, "report.html (compare.json, report.md, rounds.svg)");
    let [low, high] = comparison.ratio_ci95;
    match args.fail_below {
        Some(floor) if high < floor => {
            eprintln!(
                "bench: {a} / {b} is below --fail-below {floor} beyond the noise (95% interval {low:.3}–{high:.3})"
            );
            Ok(ExitCode::FAILURE)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The ratio's spread, the noise, the interval and the client-bound rounds, after the table.
fn print_summary(comparison: &crate::model::comparison::Comparison, a: &str, b: &str) {
    let r = comparison.ratio;
    println!(
        "\n{a} / {b}: median {:.3}, min {:.3}, max {:.3} over {} rounds",
        r.median,
        r.min,
        r.max,
        comparison.rounds.len()
    );
    println!(
        "noise between rounds ((max − min) / median): {a} {:.1}%, {b} {:.1}%",
        comparison.a_noise * 100.0,
        comparison.b_noise * 100.0
    );
    let [low, high] = comparison.ratio_ci95;
    println!(
        "95% interval of the ratio (bootstrap over the rounds): {low:.3}–{high:.3}: {}",
        if comparison.distinguishable {
            "distinguishable from 1.0"
        } else {
            "not distinguishable from 1.0 (within the noise)"
        }
    );
    if comparison.client_bound_rounds > 0 {
        println!(
            "{} of {} rounds had a client-bound side: their ratio measures the load tool too (see compare.json)",
            comparison.client_bound_rounds,
            comparison.rounds.len()
        );
    }
}
