//! The `bench` command line. One file per subcommand, as cargo's `commands/`: its arguments
//! and a thin `exec` that parses them into a plan, calls the work in `ops`, prints, and
//! turns the outcome into an exit status. The argument groups several commands share are in
//! [`args`].
//!
//! A mistake in how a command was called is a [`UsageError`]: one line and exit status 2,
//! like clap's own. Anything else that fails is one line and status 1.

pub mod args;
mod client;
mod compare;
mod describe;
mod diff;
mod load;
mod report;
mod run;
mod scenarios;
mod sweep;
mod up;
mod verify;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use shared::Binary;

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    version,
    about = "Start the rust-web-perf stack, check the contract, compare the concurrency models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the stack and the chosen targets, direct and behind nginx, and print their URLs
    /// for any load tool; stays up until Ctrl-C.
    Up(up::UpArgs),
    /// Check the contract against targets: started here, or one already running (--url).
    Verify(verify::VerifyArgs),
    /// Run a scenario against each target in turn and write results.json, results.csv,
    /// report.md, SVG charts and report.html.
    Run(run::RunArgs),
    /// A and B in turn (A B A B …) for --rounds rounds each, with the ratio per pair and its
    /// min/median/max.
    Compare(compare::CompareArgs),
    /// Vary knobs over a grid of points (--vary KNOB=V1,V2,…) and run every target at each:
    /// the verdict as a map, open-loop capacity at a latency objective, heatmaps of the flip.
    Sweep(sweep::SweepArgs),
    /// The client side: N GETs of the upstream page (each answered after --delay-ms) made one
    /// after another, from T threads, as N futures on tokio, and as N may coroutines.
    Client(client::ClientArgs),
    /// Serve the description of a stack this bench did not start (a compose deployment) on
    /// a status endpoint, for `bench run --remote http://HOST:PORT/stack.json`; it has no
    /// samples of the processes, so their RSS, threads and CPU stay empty.
    Describe(describe::DescribeArgs),
    /// One index.html over many results folders (default: results/): a line per run with
    /// its verdict and a link to its report, and each target's figures over time.
    Report(report::ReportArgs),
    /// Two results folders of the same preset row by row: each figure better, worse or within
    /// the noise, as a Markdown table and diff.html; --fail-on-regression PCT for CI.
    Diff(diff::DiffArgs),
    /// List the presets, their parameters and the article each comes from.
    Scenarios,
    /// bench's own load client (--tool bench, the one that loads a --mix): a closed loop of a
    /// thread per connection, printing one JSON measurement with each class's figures.
    Load(load::LoadArgs),
}

pub fn main() -> ExitCode {
    let command = negative_numbers_are_values(Cli::command());
    let parsed = command
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(), // --help, --version
        Err(error) => {
            eprintln!("bench: {}", one_line(&error));
            return ExitCode::from(2);
        }
    };
    let interrupted = install_interrupt_handler();
    let result = match cli.command {
        Command::Up(args) => up::exec(args, &interrupted),
        Command::Verify(args) => verify::exec(args),
        Command::Run(args) => run::exec(args, &interrupted),
        Command::Compare(args) => compare::exec(args, &interrupted),
        Command::Sweep(args) => sweep::exec(args, &interrupted),
        Command::Client(args) => client::exec(args),
        Command::Describe(args) => describe::exec(args, &interrupted),
        Command::Report(args) => report::exec(args),
        Command::Diff(args) => diff::exec(args),
        Command::Scenarios => scenarios::exec(),
        Command::Load(args) => load::exec(args),
    };
    match result {
        Ok(code) => code,
        Err(error) if error.downcast_ref::<UsageError>().is_some() => {
            eprintln!("bench: {error:#}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--connections -1` hands `-1` to the flag's parser, which refuses it by the flag's name,
/// instead of clap taking it for an unknown short flag.
fn negative_numbers_are_values(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            if arg.get_action().takes_values() {
                arg.allow_negative_numbers(true)
            } else {
                arg
            }
        })
        .mut_subcommands(negative_numbers_are_values)
}

/// clap's refusal on one line: its message and any lines that name what was wrong, without
/// the usage and the pointer to --help.
fn one_line(error: &clap::Error) -> String {
    error
        .render()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}

pub use crate::UsageError;

/// Ctrl-C and SIGTERM set a flag that long waits poll; the stack then stops on the way out.
fn install_interrupt_handler() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let setter = flag.clone();
    if let Err(e) = ctrlc::set_handler(move || setter.store(true, Ordering::SeqCst)) {
        eprintln!("bench: warning: cannot catch Ctrl-C ({e}); stop with care");
    }
    flag
}

/// Success when nothing failed.
fn exit_code(failures: usize) -> ExitCode {
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Parses the target names `flag` gave; an unknown one is a [`UsageError`] naming the flag
/// and listing the valid names.
pub fn parse_targets(flag: &str, names: &[String]) -> Result<Vec<Binary>> {
    if names.is_empty() {
        return Ok(Binary::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| {
            Binary::from_name(name.trim()).ok_or_else(|| {
                UsageError(format!(
                    "{flag}: unknown target {name:?}; valid targets: {}",
                    Binary::ALL.map(Binary::name).join(", ")
                ))
                .into()
            })
        })
        .collect()
}

/// The preset `--scenario` names; an unknown one is a [`UsageError`].
pub fn find_preset(name: &str) -> Result<crate::model::preset::Preset> {
    crate::model::preset::find(name).map_err(|e| UsageError(format!("--scenario: {e:#}")).into())
}

/// Where a run's results are, and which files.
fn results_line(out: &std::path::Path, files: &str) {
    println!("Results: {}/{files}", out.display());
}

/// Refuses the soak preset in a command that measures one target at a time.
fn not_the_soak(scenario: &crate::model::preset::Preset) -> Result<()> {
    if scenario.shape == crate::model::preset::Shape::Soak {
        return Err(UsageError(
            "soak runs every target at once: run `bench run --scenario soak`".into(),
        )
        .into());
    }
    Ok(())
}
