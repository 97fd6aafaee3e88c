//! `bench run`: [`prepare`] starts what a run needs (the stack, the Python peers) and
//! reaches what it measures (the externals, or a remote stack's targets); [`run`] measures a
//! preset's cases, each target (and each external, or each target of a remote stack) in turn,
//! through one measuring session, sets `relative` against the baseline and writes the results.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use shared::Binary;

use crate::measure::session::Session;
use crate::measure::tools::Tool;
use crate::measure::{self, extras};
use crate::model::case;
use crate::model::external::External;
use crate::model::meta::Meta;
use crate::model::plan::Plan;
use crate::model::plan::StackOptions;
use crate::model::preset::Preset;
use crate::model::preset::Shape;
use crate::model::row::ceilings::set_ceilings;
use crate::model::row::{set_relative, Row};
use crate::model::settings::Settings;
use crate::model::soak::default_fault_every_s;
use crate::model::tool::ToolKind;
use crate::output;
use crate::remote::Description;
use crate::stack::peers::{self, Peer, RunningPeer};
use crate::stack::Stack;
use crate::UsageError;

/// What `bench run` was asked for, checked, before anything starts (cli/run.rs fills it from
/// the flags).
pub struct RunRequest {
    pub scenario: Preset,
    pub settings: Settings,
    pub tool: Tool,
    /// The targets named with `--targets`; when `named` is false, every target built runs.
    pub targets: Vec<Binary>,
    pub named: bool,
    pub baseline: String,
    /// Servers beside the targets (`--external`), not yet reached.
    pub externals: Vec<External>,
    /// `--remote`: a stack.json file or the URL of a status endpoint.
    pub remote: Option<String>,
    /// `--peers`: the Python stacks to start beside the targets.
    pub peers: Vec<Peer>,
    pub fault_every_s: Option<f64>,
    pub options: StackOptions,
    /// `--out` [default: a new folder in results/, made once the servers answered].
    pub out: Option<PathBuf>,
    pub verify: bool,
    pub accept_unchecked: bool,
}

/// A run ready to measure. Fields drop in order: the peers stop before the stack.
pub struct Prepared {
    _peers: Vec<RunningPeer>,
    pub plan: Plan,
    pub tool: Tool,
    pub stack: Stack,
}

/// Reaches the externals or the remote stack, starts the stack (on the remote stack's
/// database for `--remote`) and the peers, and makes the plan.
pub fn prepare(request: RunRequest) -> Result<Prepared> {
    let RunRequest {
        scenario,
        settings,
        tool,
        ..
    } = request;
    if !request.peers.is_empty() {
        peers::ready(&peers::python_dir()).map_err(anyhow::Error::msg)?;
    }
    let remote_stack = match &request.remote {
        Some(source) => Some(remote_targets(source, &request.targets)?),
        None => None,
    };
    let externals = match &remote_stack {
        Some((_, remotes)) => remotes.clone(),
        None => request.externals,
    };
    super::prepare::reach(&externals)?;
    let out = output::folder::out_dir(request.out.as_deref(), scenario.name)?;
    let mut options = request.options;
    if let Some((description, _)) = &remote_stack {
        // The remote targets' database; this host's upstream nginx only serves the checks.
        options.database_url = Some(description.database_url.clone());
    }
    let stack = super::prepare::stack(&options)?;
    if !externals.is_empty() && remote_stack.is_none() {
        // A server of the user's cannot know this port before the run: it may fetch a page
        // of its own, as long as it reports the same length every time.
        eprintln!(
            "bench: the upstream page for the externals' upstream backend: {}",
            stack.upstream_url()
        );
    }
    let (targets, missing_targets) = match remote_stack {
        Some(_) => (Vec::new(), Vec::new()),
        None => super::prepare::targets(&stack, &request.targets, request.named)?,
    };
    say_left_out(&targets, &settings);
    let running_peers = start_peers(&stack, &settings, &request.peers)?;
    let mut plan = Plan {
        scenario,
        settings,
        targets,
        externals,
        remote_versions: remote_stack.map(|(d, _)| d.versions).unwrap_or_default(),
        peer_versions: Vec::new(),
        missing_targets,
        baseline: request.baseline,
        verify: request.verify,
        accept_unchecked: request.accept_unchecked,
        out,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        fault_every_s: request.fault_every_s,
    };
    plan.externals
        .extend(running_peers.iter().map(|p| p.external.clone()));
    if !running_peers.is_empty() {
        plan.peer_versions = peers::versions(&peers::python_dir());
    }
    Ok(Prepared {
        _peers: running_peers,
        plan,
        tool,
        stack,
    })
}

/// Says which targets `--db-mode` leaves out (only the targets on tokio-postgres pipeline).
fn say_left_out(targets: &[Binary], settings: &Settings) {
    let pooling: Vec<&str> = targets
        .iter()
        .filter(|b| !settings.db_mode.supported_by(**b))
        .map(|b| b.name())
        .collect();
    if !pooling.is_empty() {
        eprintln!(
            "bench: --db-mode {} is for the targets on tokio-postgres; left out: {}",
            settings.db_mode,
            pooling.join(", ")
        );
    }
}

/// Starts the Python peers with the preset's settings, each observed as fully as a target.
fn start_peers(stack: &Stack, settings: &Settings, chosen: &[Peer]) -> Result<Vec<RunningPeer>> {
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
/// run did not start.
fn remote_targets(source: &str, names: &[Binary]) -> Result<(Description, Vec<External>)> {
    let description = Description::load(source).map_err(|e| UsageError(format!("{e:#}")))?;
    let remotes = description
        .externals(source, names)
        .map_err(|e| UsageError(format!("{e:#}")))?;
    Ok((description, remotes))
}

/// What `bench run` measured.
pub struct RunOutcome {
    pub rows: Vec<Row>,
    pub meta: Meta,
    pub interrupted: bool,
}

pub fn run(stack: &Stack, plan: &Plan, tool: Tool, interrupted: &AtomicBool) -> Result<RunOutcome> {
    if plan.scenario.shape == Shape::Soak {
        return soak(stack, plan, tool, interrupted);
    }
    let started = super::now();
    let cases = case::expand(&plan.scenario, &plan.settings, &plan.targets);
    // Only the targets with a row are verified (the limits rows measure none).
    let measured: Vec<Binary> = plan
        .targets
        .iter()
        .copied()
        .filter(|b| cases.iter().any(|c| c.subject.name() == Some(b.name())))
        .collect();
    // The cases with the externals beside the targets, or the targets of a remote stack;
    // their labels say whether each external passed the checks.
    let all_cases = |externals: &[External]| {
        if externals.iter().any(|e| e.remote.is_some()) {
            let binaries: Vec<Binary> = externals.iter().filter_map(|e| e.binary).collect();
            let cases = case::expand(&plan.scenario, &plan.settings, &binaries);
            case::onto_remote(cases, externals)
        } else {
            case::with_externals(cases.clone(), externals)
        }
    };
    let rounds = all_cases(&plan.externals)
        .iter()
        .map(|c| u64::from(c.settings.rounds.max(1)))
        .sum();
    let mut externals = plan.externals.clone();
    let mut session = Session::open(
        stack,
        plan,
        &measured,
        &mut externals,
        tool,
        interrupted,
        rounds,
    )?;
    let cases = all_cases(&externals);
    let mut rows = Vec::new();
    for case in &cases {
        match session.measure(case, "") {
            Some(row) => rows.push(row),
            None => break,
        }
    }
    let ended = session.finish();
    set_relative(&mut rows, &plan.baseline);
    set_ceilings(&mut rows);
    let mut meta = super::meta(stack, plan, &ended.tool, started);
    // The other load tools a run used (the limits preset's ceilings) shaped its numbers too.
    for kind in ToolKind::ALL {
        let used = rows.iter().any(|r| r.tool == kind.name());
        if used && !meta.versions.iter().any(|(name, _)| name == kind.name()) {
            if let Ok(tool) = crate::measure::tools::locate(kind) {
                meta.versions.push((kind.name().to_string(), tool.version));
            }
        }
    }
    output::write_run(&plan.out, &meta, &rows, &extras::sections())?;
    Ok(RunOutcome {
        rows,
        meta,
        interrupted: ended.interrupted,
    })
}

/// The soak preset: every target at once (`measure::soak`), its rows and their soak section.
fn soak(stack: &Stack, plan: &Plan, tool: Tool, interrupted: &AtomicBool) -> Result<RunOutcome> {
    let started = super::now();
    let duration_s = f64::from(plan.settings.duration_s);
    let every_s = plan
        .fault_every_s
        .unwrap_or_else(|| default_fault_every_s(duration_s));
    let mut rows = measure::soak::run(stack, plan, every_s, interrupted)?;
    set_relative(&mut rows, &plan.baseline);
    let mut meta = super::meta(stack, plan, &tool, started);
    // The load is the harness's own paced client, not the preset's tool.
    meta.versions.retain(|(name, _)| name != tool.kind.name());
    let mut sections = extras::sections();
    sections.push(&output::soak::SoakSection);
    output::write_run(&plan.out, &meta, &rows, &sections)?;
    Ok(RunOutcome {
        rows,
        meta,
        interrupted: interrupted.load(std::sync::atomic::Ordering::SeqCst),
    })
}
