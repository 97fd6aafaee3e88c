//! `bench run`: a preset against each target in turn (and the externals beside them, or the
//! targets of a remote stack), with results.json, results.csv, report.md and the charts.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Result};
use clap::Args;
use shared::Binary;

use super::args::{ExternalObserve, LoadArgs, StackArgs};
use super::{chosen_targets, exit_code, parse_targets, UsageError};
use crate::contract;
use crate::model::case;
use crate::model::external::{self, External, Named};
use crate::model::preset::{Extra, Scenario};
use crate::model::settings::Settings;
use crate::ops;
use crate::output::{folder, table};
use crate::remote;
use crate::stack::{peers, Stack};

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
    #[arg(long, value_name = "NAME=URL", value_parser = external::parse)]
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
    let (scenario, mut settings, tool) = args.load.settings()?;
    settings.ceiling |= args.ceiling;
    let names = parse_targets("--targets", &args.stack.targets)?;
    let private_db = args.stack.database_url.is_none();
    for case in case::expand(&scenario, &settings, &names) {
        case.settings.check_faults(private_db).map_err(UsageError)?;
    }
    check_soak(&args, &scenario, &settings)?;
    if matches!(scenario.extra, Extra::Sweep { .. }) {
        bail!(
            "{0} is a sweep preset: run `bench sweep --scenario {0}`",
            scenario.name
        );
    }
    let baseline = baseline_for(&scenario, args.baseline.as_deref())?;
    let (externals, remote_stack) = servers_beside(&args, &settings, &names)?;
    let out = folder::out_dir(args.load.out.as_deref(), scenario.name)?;
    eprintln!("bench: starting the stack");
    let mut options = args.stack.stack_options();
    if let Some(description) = &remote_stack {
        // The remote targets' database; this host's upstream nginx only serves the checks.
        options.database_url = Some(description.database_url.clone());
    }
    let stack = Stack::start(&options)?;
    if !externals.is_empty() && remote_stack.is_none() {
        // A server of the user's cannot know this port before the run: it may fetch a page
        // of its own, as long as it reports the same length every time.
        eprintln!(
            "bench: the upstream page for the externals' upstream backend: {}",
            stack.upstream_url()
        );
    }
    let (targets, missing_targets) = if remote_stack.is_some() {
        (Vec::new(), Vec::new())
    } else {
        chosen_targets(&stack, &args.stack.targets)?
    };
    say_left_out(&targets, &settings);
    let running_peers = start_peers(
        &stack,
        &settings,
        args.peers.as_ref().map_or(&[][..], |c| &c.0),
    )?;
    let mut plan = args.load.plan(
        scenario,
        settings,
        (targets, missing_targets),
        baseline,
        &out,
    );
    plan.externals = externals;
    plan.externals
        .extend(running_peers.iter().map(|p| p.external.clone()));
    if !running_peers.is_empty() {
        plan.peer_versions = peers::versions(&peers::python_dir());
    }
    plan.remote_versions = remote_stack.map(|d| d.versions).unwrap_or_default();
    plan.fault_every_s = args.fault_every.map(f64::from);
    let load = match plan.scenario.extra {
        Extra::Soak => crate::measure::soak::CLIENT.to_string(),
        _ => plan.settings.tool.to_string(),
    };
    eprintln!(
        "bench: {} ({}), {load} via {}",
        plan.scenario.name, plan.scenario.summary, plan.settings.via
    );
    let outcome = ops::run::run(&stack, &plan, tool, interrupted)?;
    println!("{}", table::table(&outcome.rows, &outcome.meta.baseline));
    super::results_line(
        &out,
        "report.html (report.md, results.json, results.csv, throughput.svg, latency.svg)",
    );
    if outcome.interrupted {
        bail!(
            "interrupted; the rows measured so far are in {}",
            out.display()
        );
    }
    let bad = outcome.rows.iter().filter(|r| !r.is_ok()).count();
    if bad > 0 {
        eprintln!("bench: {bad} row(s) failed or were refused; see the table");
    }
    Ok(exit_code(bad))
}

/// The soak preset loads every target at once with its own paced client and its own faults:
/// the flags that would change that are refused, and `--fault-every` is for it alone.
fn check_soak(args: &RunArgs, scenario: &Scenario, settings: &Settings) -> Result<()> {
    if scenario.extra != Extra::Soak {
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
fn baseline_for(scenario: &Scenario, asked: Option<&str>) -> Result<String> {
    let has_pgbench = matches!(scenario.extra, Extra::Leaderboard(_) | Extra::Limits);
    match asked {
        Some("pgbench") if has_pgbench => Ok("pgbench".into()),
        Some(name) => Ok(parse_targets("--baseline", &[name.to_string()])?[0]
            .name()
            .to_string()),
        None if matches!(scenario.extra, Extra::Leaderboard(_)) => Ok("pgbench".into()),
        None => Ok(Binary::SyncPool.name().to_string()),
    }
}

/// The servers measured beside the targets, or instead of them: the externals (each reached
/// once), or a remote stack's targets with its description. With `--peers`, their
/// environment must be ready and pgbouncer off; checked before anything starts.
fn servers_beside(
    args: &RunArgs,
    settings: &Settings,
    names: &[Binary],
) -> Result<(Vec<External>, Option<remote::Description>)> {
    if args.peers.is_some() {
        if settings.pgbouncer {
            return Err(UsageError(
                "--peers cannot run with --pgbouncer: the peers connect to PostgreSQL directly"
                    .into(),
            )
            .into());
        }
        peers::ready(&peers::python_dir()).map_err(anyhow::Error::msg)?;
    }
    Ok(match &args.remote {
        Some(source) => {
            let (description, remotes) = remote_targets(source, settings, names)?;
            (remotes, Some(description))
        }
        None => (
            args.observe.resolve(
                &args.external,
                args.stack.database_url.as_deref(),
                !args.load.no_verify,
            )?,
            None,
        ),
    })
}

/// Says which targets `--db-mode` leaves out (only the tokio targets pipeline).
fn say_left_out(targets: &[Binary], settings: &Settings) {
    let pooling: Vec<&str> = targets
        .iter()
        .filter(|b| !settings.db_mode.supported_by(**b))
        .map(|b| b.name())
        .collect();
    if !pooling.is_empty() {
        eprintln!(
            "bench: --db-mode {} is for the tokio targets; left out: {}",
            settings.db_mode,
            pooling.join(", ")
        );
    }
}

/// Starts the Python peers with the preset's settings, each observed as fully as a target.
fn start_peers(
    stack: &Stack,
    settings: &Settings,
    chosen: &[peers::Peer],
) -> Result<Vec<peers::RunningPeer>> {
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let dir = peers::python_dir();
    let mut running = Vec::new();
    for &peer in chosen {
        let started = stack.start_peer(peer, settings, &dir)?;
        eprintln!(
            "bench: peer {:<17} pid {}, {} ({}), beside {}",
            peer.name(),
            started.pid(),
            started.external.url,
            started.external.model.map_or(String::new(), |m| m.name()),
            peer.counterpart().name()
        );
        running.push(started);
    }
    Ok(running)
}

/// The targets of a remote stack's description (those of `names`, or all), as servers this
/// run did not start; refuses what a remote stack cannot have.
fn remote_targets(
    source: &str,
    settings: &Settings,
    names: &[Binary],
) -> Result<(remote::Description, Vec<External>)> {
    let refused = [
        (
            !settings.faults.is_empty(),
            "--fault (the faults act on this host's stack)",
        ),
        (settings.pgbouncer, "--pgbouncer"),
        (settings.idle_connections > 0, "--idle-connections"),
        (settings.pin, "--pin"),
    ];
    refuse_any("--remote", &refused)?;
    let description =
        remote::Description::load(source).map_err(|e| UsageError(format!("{e:#}")))?;
    let remotes = description
        .externals(source, names)
        .map_err(|e| UsageError(format!("{e:#}")))?;
    for remote in &remotes {
        contract::reach(remote).map_err(anyhow::Error::msg)?;
    }
    Ok((description, remotes))
}
