//! `bench compare`: A and B in turn (A B A B …), `rounds` times each, each round on a fresh
//! process (an external server is the same process throughout), through one measuring
//! session; the ratio per pair and its spread, and the noise between rounds.

use std::sync::atomic::AtomicBool;

use anyhow::{bail, Result};

use crate::measure::session::{Plan, Session};
use crate::measure::tools::Tool;
use crate::model::case::{Case, Subject};
use crate::model::comparison::{bootstrap_ratio, Comparison, RoundPair};
use crate::model::meta::Meta;
use crate::model::row::{Row, Spread, Status};
use crate::model::settings::Settings;
use crate::output;
use crate::stack::Stack;

pub fn compare(
    stack: &Stack,
    plan: &Plan,
    sides: [Subject; 2],
    tool: Tool,
    interrupted: &AtomicBool,
    on_pair: &dyn Fn(usize, &RoundPair),
) -> Result<Comparison> {
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
