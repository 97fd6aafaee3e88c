//! `bench compare`: A and B in turn, round by round, with the ratio per pair, its spread,
//! and the noise between rounds; `compare.json`.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use clap::Args;

use super::args::{ExternalObserve, LoadArgs, StackArgs};
use super::{parse_targets, UsageError};
use crate::model::case::Subject;
use crate::ops;
use crate::ops::compare::CompareRequest;

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
    let prepared = ops::compare::prepare(request(&args)?)?;
    let [a, b] = prepared.names();
    if a == b {
        eprintln!("bench: comparing {a} with itself: the ratio shows the noise alone");
    }
    println!("{:<6} {:>12} {:>12} {:>8}", "round", a, b, "A/B");
    let comparison = ops::compare::compare(&prepared, interrupted, &|round, pair| {
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
    super::results_line(
        &prepared.plan.out,
        "report.html (compare.json, report.md, rounds.svg)",
    );
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

/// The flags as a request, every usage error found before anything starts. A side is a
/// target's name, or NAME=URL: a server the harness did not start.
fn request(args: &CompareArgs) -> Result<CompareRequest> {
    let (scenario, mut settings, tool) = args.load.settings()?;
    super::not_the_soak(&scenario)?;
    settings
        .check_faults(args.database_url.is_none())
        .and_then(|()| settings.check_load())
        .map_err(UsageError)?;
    if args.load.overrides.rounds.is_none() {
        settings.rounds = 3;
    }
    if settings.rounds < 3 {
        return Err(UsageError(
            "--rounds must be at least 3: one pair says nothing about the noise".into(),
        )
        .into());
    }
    let urls = [&args.a, &args.b]
        .into_iter()
        .filter(|side| side.contains('='))
        .map(|side| crate::externals::parse(side).map_err(UsageError))
        .collect::<Result<Vec<_>, _>>()?;
    let mut externals = args
        .observe
        .assemble(&urls, args.database_url.as_deref(), !args.load.no_verify)?
        .into_iter();
    let mut side = |text: &String| -> Result<Subject> {
        Ok(if text.contains('=') {
            Subject::External(Box::new(
                externals.next().expect("one external per NAME=URL"),
            ))
        } else {
            Subject::Target(parse_targets("compare A/B", std::slice::from_ref(text))?[0])
        })
    };
    Ok(CompareRequest {
        sides: [side(&args.a)?, side(&args.b)?],
        scenario,
        settings,
        tool,
        options: StackArgs {
            targets: Vec::new(),
            database_url: args.database_url.clone(),
        }
        .stack_options(),
        out: args.load.out.clone(),
        verify: !args.load.no_verify,
        accept_unchecked: args.load.accept_unchecked,
    })
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
