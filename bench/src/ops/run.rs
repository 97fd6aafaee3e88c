//! `bench run`: a preset's cases, each target (and each external, or each target of a remote
//! stack) in turn, through one measuring session; `relative` against the baseline; the
//! results written.

use std::sync::atomic::AtomicBool;

use anyhow::Result;
use shared::Binary;

use crate::measure::session::{Plan, Session};
use crate::measure::tools::Tool;
use crate::measure::{self, extras};
use crate::model::case;
use crate::model::client_limit::set_ceilings;
use crate::model::external::External;
use crate::model::meta::Meta;
use crate::model::preset::Extra;
use crate::model::row::{set_relative, Row};
use crate::model::soak::default_fault_every_s;
use crate::model::tool::ToolKind;
use crate::output;
use crate::stack::Stack;

/// What `bench run` measured.
pub struct RunOutcome {
    pub rows: Vec<Row>,
    pub meta: Meta,
    pub interrupted: bool,
}

pub fn run(stack: &Stack, plan: &Plan, tool: Tool, interrupted: &AtomicBool) -> Result<RunOutcome> {
    if plan.scenario.extra == Extra::Soak {
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
