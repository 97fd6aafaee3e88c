//! `bench run`: a preset against each target in turn (and the externals beside them, or the
//! targets of a remote stack), with results.json, results.csv, report.md and the charts.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Result};
use clap::Args;
use shared::Binary;

use super::args::{ExternalObserve, LoadArgs, StackArgs};
use super::{exit_code, parse_targets, UsageError};
use crate::model::case;
use crate::model::external::Named;
use crate::model::preset::{Preset, Shape};
use crate::model::settings::Settings;
use crate::ops;
use crate::ops::run::RunRequest;
use crate::output::table;
use crate::stack::peers;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// The target every row's `relative` is measured against, or `pgbench` [default:
    /// sync-pool; leaderboard: pgbench].
    #[arg(long)]
    baseline: Option<String>,
    /// A server the harness did not start, measured beside the targets (repeatable):
    /// NAME=URL with the URL its /test endpoint, e.g. mine=http://127.0.0.1:9000/test. It is
    /// checked against the contract first, on the database it reads (--database-url), unless
    /// --no-verify (then its rows say `unverified`).
    #[arg(long, value_name = "NAME=URL", value_parser = crate::externals::parse)]
    external: Vec<Named<String>>,
    #[command(flatten)]
    observe: ExternalObserve,
    /// Measure the stack another `bench up --listen-host` started, from its description: a
    /// stack.json file or the URL of its status endpoint (http://HOST:PORT/stack.json). The
    /// load, latencies and DB sessions are measured here; RSS, threads and CPU come from that
    /// host's samples. --targets picks among its targets.
    #[arg(long, value_name = "STACK.JSON|URL", conflicts_with_all = ["external", "database_url"])]
    remote: Option<String>,
    /// Also load nginx's /static page alone with the same tool and connections (the
    /// leaderboard and limits presets always do): the tool's ceiling on this machine, and
    /// each row's share of it (`of_tool_ceiling`).
    #[arg(long)]
    ceiling: bool,
    /// Also start the articles' own stacks and measure them beside the targets: `python`
    /// starts all four (flask-sync, flask-gevent, aiohttp, starlette-uvicorn; or name some,
    /// comma-separated) from peers/python/, installed by peers/python/install, with the
    /// preset's workers and sessions; their rows are marked [peer].
    #[arg(long, value_name = "python|NAMES", value_parser = peers::parse, conflicts_with = "remote")]
    peers: Option<peers::Chosen>,
    /// The soak preset: a PostgreSQL restart and an upstream outage in every period of this
    /// length, e.g. 10m [default: 10m, or a third of a soak shorter than 30m; 0 for none].
    #[arg(long, value_name = "DURATION", value_parser = super::args::parse_period)]
    fault_every: Option<u32>,
}

pub fn exec(args: RunArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let prepared = ops::run::prepare(request(&args)?)?;
    let plan = &prepared.plan;
    let load = match plan.scenario.shape {
        Shape::Soak => crate::measure::soak::CLIENT.to_string(),
        _ => plan.settings.tool.to_string(),
    };
    eprintln!(
        "bench: {} ({}), {load} via {}",
        plan.scenario.name, plan.scenario.summary, plan.settings.via
    );
    let outcome = ops::run::run(&prepared.stack, plan, prepared.tool.clone(), interrupted)?;
    println!("{}", table::table(&outcome.rows, &outcome.meta.baseline));
    super::results_line(
        &plan.out,
        "report.html (report.md, results.json, results.csv, throughput.svg, latency.svg)",
    );
    if outcome.interrupted {
        bail!(
            "interrupted; the rows measured so far are in {}",
            plan.out.display()
        );
    }
    let bad = outcome.rows.iter().filter(|r| !r.is_ok()).count();
    if bad > 0 {
        eprintln!("bench: {bad} row(s) failed or were refused; see the table");
    }
    Ok(exit_code(bad))
}

/// The flags as a request, every usage error found before anything starts.
fn request(args: &RunArgs) -> Result<RunRequest> {
    let (scenario, mut settings, tool) = args.load.settings()?;
    settings.ceiling |= args.ceiling;
    let targets = parse_targets("--targets", &args.stack.targets)?;
    let private_db = args.stack.database_url.is_none();
    for case in case::expand(&scenario, &settings, &targets) {
        case.settings
            .check_faults(private_db)
            .and_then(|()| case.settings.check_load())
            .map_err(UsageError)?;
    }
    check_soak(args, &scenario, &settings)?;
    if matches!(scenario.shape, Shape::Sweep { .. }) {
        return Err(UsageError(format!(
            "{0} is a sweep preset: run `bench sweep --scenario {0}`",
            scenario.name
        ))
        .into());
    }
    if args.remote.is_some() {
        refuse_any("--remote", &remote_refuses(&settings))?;
    }
    if args.peers.is_some() && settings.pgbouncer {
        return Err(UsageError(
            "--peers cannot run with --pgbouncer: the peers connect to PostgreSQL directly".into(),
        )
        .into());
    }
    let externals = args.observe.assemble(
        &args.external,
        args.stack.database_url.as_deref(),
        !args.load.no_verify,
    )?;
    Ok(RunRequest {
        baseline: baseline_for(&scenario, args.baseline.as_deref())?,
        out: args.load.out.clone(),
        scenario,
        settings,
        tool,
        targets,
        named: !args.stack.targets.is_empty(),
        externals,
        remote: args.remote.clone(),
        peers: args.peers.as_ref().map_or_else(Vec::new, |c| c.0.clone()),
        fault_every_s: args.fault_every.map(f64::from),
        options: args.stack.stack_options(),
        verify: !args.load.no_verify,
        accept_unchecked: args.load.accept_unchecked,
    })
}

/// What a remote stack cannot have: its faults and pgbouncer are the stack host's, and this
/// host neither holds idle connections on it nor pins its targets.
fn remote_refuses(settings: &Settings) -> [(bool, &'static str); 4] {
    [
        (
            !settings.faults.is_empty(),
            "--fault (the faults act on this host's stack)",
        ),
        (settings.pgbouncer, "--pgbouncer"),
        (settings.idle_connections > 0, "--idle-connections"),
        (settings.pin, "--pin"),
    ]
}

/// The soak preset loads every target at once with its own paced client and its own faults:
/// the flags that would change that are refused, and `--fault-every` is for it alone.
fn check_soak(args: &RunArgs, scenario: &Preset, settings: &Settings) -> Result<()> {
    if scenario.shape != Shape::Soak {
        if args.fault_every.is_some() {
            return Err(UsageError("--fault-every is for the soak preset".into()).into());
        }
        return Ok(());
    }
    let refused = [
        (
            !args.external.is_empty(),
            "--external (it soaks the targets it starts)",
        ),
        (
            args.peers.is_some(),
            "--peers (it soaks the targets it starts)",
        ),
        (
            args.remote.is_some(),
            "--remote (its faults act on this host's stack)",
        ),
        (
            !settings.faults.is_empty(),
            "--fault (it has its own: --fault-every)",
        ),
        (settings.pgbouncer, "--pgbouncer"),
        (settings.idle_connections > 0, "--idle-connections"),
        (settings.slow_clients > 0, "--slow-clients"),
        (settings.rounds > 1, "--rounds"),
        (args.ceiling, "--ceiling"),
    ];
    refuse_any("the soak preset", &refused)
}

/// A usage error naming the first of `flags` that is on: `WHAT cannot run with FLAG`.
fn refuse_any(what: &str, flags: &[(bool, &str)]) -> Result<()> {
    match flags.iter().find(|(on, _)| *on) {
        Some((_, flag)) => Err(UsageError(format!("{what} cannot run with {flag}")).into()),
        None => Ok(()),
    }
}

/// The name every row's `relative` divides by: the one asked for (a target, or `pgbench` in a
/// preset with pgbench rows), or the preset's own: pgbench for the leaderboard, else
/// sync-pool.
fn baseline_for(scenario: &Preset, asked: Option<&str>) -> Result<String> {
    let has_pgbench = matches!(scenario.shape, Shape::Leaderboard(_) | Shape::Limits);
    match asked {
        Some("pgbench") if has_pgbench => Ok("pgbench".into()),
        Some(name) => Ok(parse_targets("--baseline", &[name.to_string()])?[0]
            .name()
            .to_string()),
        None if matches!(scenario.shape, Shape::Leaderboard(_)) => Ok("pgbench".into()),
        None => Ok(Binary::SyncPool.name().to_string()),
    }
}
