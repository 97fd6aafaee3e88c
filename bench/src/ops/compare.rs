//! `bench compare`: A and B in turn (A B A B …), `rounds` times each, each round on a fresh
//! process (an external server is the same process throughout), through one measuring
//! session; the ratio per pair and its spread, and the noise between rounds.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Result};

use crate::measure::session::Session;
use crate::measure::tools::Tool;
use crate::model::case::{Case, Subject};
use crate::model::comparison::{bootstrap_ratio, Comparison, RoundPair};
use crate::model::external::External;
use crate::model::meta::Meta;
use crate::model::plan::{Plan, StackOptions};
use crate::model::preset::Preset;
use crate::model::row::{Row, Spread, Status};
use crate::model::settings::Settings;
use crate::output;
use crate::stack::Stack;

/// What `bench compare` was asked for, checked, before anything starts (cli/compare.rs fills
/// it from the flags).
pub struct CompareRequest {
    /// A and B: targets, or servers the harness did not start (not yet reached).
    pub sides: [Subject; 2],
    pub scenario: Preset,
    pub settings: Settings,
    pub tool: Tool,
    pub options: StackOptions,
    /// `--out` [default: a new folder in results/, made once the servers answered].
    pub out: Option<PathBuf>,
    pub verify: bool,
    pub accept_unchecked: bool,
}

/// A comparison ready to measure: its sides, its plan, and the stack.
pub struct Prepared {
    pub sides: [Subject; 2],
    pub plan: Plan,
    pub tool: Tool,
    pub stack: Stack,
}

impl Prepared {
    /// A's and B's names.
    pub fn names(&self) -> [String; 2] {
        names_of(&self.sides)
    }
}

fn names_of(sides: &[Subject; 2]) -> [String; 2] {
    sides
        .each_ref()
        .map(|side| side.name().unwrap_or_default().to_string())
}

/// Reaches the externals among the sides, makes the results folder, starts the stack and
/// makes the plan (the baseline is B).
pub fn prepare(request: CompareRequest) -> Result<Prepared> {
    let externals: Vec<External> = request
        .sides
        .iter()
        .filter_map(|side| match side {
            Subject::External(external) => Some((**external).clone()),
            _ => None,
        })
        .collect();
    super::prepare::reach(&externals)?;
    let targets = request
        .sides
        .iter()
        .filter_map(|side| match side {
            Subject::Target(binary) => Some(*binary),
            _ => None,
        })
        .collect();
    let sides = request.sides;
    let [a, b] = names_of(&sides);
    let out = output::folder::out_dir(request.out.as_deref(), &format!("compare-{a}-{b}"))?;
    let stack = super::prepare::stack(&request.options)?;
    let plan = Plan {
        scenario: request.scenario,
        settings: request.settings,
        targets,
        externals: Vec::new(),
        remote_versions: Vec::new(),
        peer_versions: Vec::new(),
        missing_targets: Vec::new(),
        baseline: b,
        verify: request.verify,
        accept_unchecked: request.accept_unchecked,
        out,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        fault_every_s: None,
    };
    Ok(Prepared {
        sides,
        plan,
        tool: request.tool,
        stack,
    })
}

/// The rounds, A then B in each, with `on_pair` called as each pair ends; compare.json and
/// the report written.
pub fn compare(
    prepared: &Prepared,
    interrupted: &AtomicBool,
    on_pair: &dyn Fn(usize, &RoundPair),
) -> Result<Comparison> {
    let (stack, plan, tool) = (&prepared.stack, &prepared.plan, prepared.tool.clone());
    let sides = prepared.sides.clone();
    let started = super::now();
    let rounds = plan.settings.rounds as usize;
    // The externals among the sides are verified in place: their labels say so.
    let mut sides = sides;
    let externals = sides.iter_mut().filter_map(|side| match side {
        Subject::External(external) => Some(&mut **external),
        _ => None,
    });
    let mut session = Session::open(
        stack,
        plan,
        &plan.targets,
        externals,
        tool,
        interrupted,
        rounds as u64 * 2,
    )?;
    let settings = Settings {
        rounds: 1,
        ..plan.settings.clone()
    };
    let cases = sides.clone().map(|side| Case {
        label: side.label(),
        subject: side,
        settings: settings.clone(),
        group: String::new(),
    });
    for case in &cases {
        let name = case.subject.name().unwrap_or_default();
        if let Some(why) = session.refusal(name) {
            bail!("{name} is refused: {why}");
        }
    }
    let mut rows = Vec::new();
    let mut pairs = Vec::new();
    for round in 1..=rounds {
        let mut pair = [0.0; 2];
        let mut client_bound = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            let Some(row) = session.measure(case, &format!(", round {round}")) else {
                bail!("interrupted");
            };
            match row.status {
                Status::Failed | Status::Refused => bail!(
                    "{} failed in round {round}: {}",
                    case.label,
                    row.failure.as_deref().unwrap_or("")
                ),
                Status::Ok => {}
            }
            pair[i] = row.requests_per_sec;
            if row.client.client_bound {
                client_bound.push(case.label.clone());
            }
            rows.push(row);
        }
        let result = RoundPair {
            a_rps: pair[0],
            b_rps: pair[1],
            ratio: (pair[1] > 0.0).then(|| pair[0] / pair[1]),
            client_bound,
        };
        session.suspend(|| on_pair(round, &result));
        pairs.push(result);
    }
    let ended = session.finish();
    let comparison = summarise(
        super::meta(stack, plan, &ended.tool, started),
        [sides[0].label(), sides[1].label()],
        pairs,
        rows,
    );
    output::compare::write_compare(&plan.out, &comparison)?;
    Ok(comparison)
}

/// The ratio's spread and each side's noise, from the pairs.
fn summarise(meta: Meta, [a, b]: [String; 2], pairs: Vec<RoundPair>, rows: Vec<Row>) -> Comparison {
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
    let paired: Vec<(f64, f64)> = pairs.iter().map(|p| (p.a_rps, p.b_rps)).collect();
    let ci = bootstrap_ratio(&paired);
    Comparison {
        meta,
        a,
        b,
        ratio: Spread::of(&ratios),
        ratio_ci95: ci,
        distinguishable: ci[0] > 1.0 || ci[1] < 1.0,
        client_bound_rounds: pairs.iter().filter(|p| !p.client_bound.is_empty()).count(),
        a_rps,
        b_rps,
        a_noise: noise(a_rps),
        b_noise: noise(b_rps),
        rounds: pairs,
        results: rows,
    }
}
