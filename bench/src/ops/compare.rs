//! `bench compare`: A and B in turn (A B A B …), `rounds` times each, each round on a fresh
//! process (an external server is the same process throughout), through one measuring
//! session; the ratio per pair and its spread, and the noise between rounds.

use std::sync::atomic::AtomicBool;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::measure::session::{Plan, Session};
use crate::measure::tools::Tool;
use crate::model::case::{Case, Subject};
use crate::model::meta::Meta;
use crate::model::row::{Row, Spread, Status};
use crate::model::settings::Settings;
use crate::output;
use crate::stack::Stack;

/// `compare.json`.
#[derive(Serialize)]
pub struct Comparison {
    #[serde(flatten)]
    pub meta: Meta,
    pub a: String,
    pub b: String,
    pub rounds: Vec<RoundPair>,
    /// A's throughput over B's, per round.
    pub ratio: Spread,
    /// The ratio's 95% interval by bootstrap over the rounds (the pairs resampled, the ratio
    /// of their mean throughputs), and whether it excludes 1.0: a difference the rounds'
    /// noise cannot explain.
    pub ratio_ci95: [f64; 2],
    pub distinguishable: bool,
    /// Rounds in which a side's row was client-bound: their ratio compares the load tool too.
    pub client_bound_rounds: usize,
    pub a_rps: Spread,
    pub b_rps: Spread,
    /// (max − min) / median of each target's rounds: the noise between rounds.
    pub a_noise: f64,
    pub b_noise: f64,
    pub results: Vec<Row>,
}

/// One round of A and B.
#[derive(Serialize)]
pub struct RoundPair {
    pub a_rps: f64,
    pub b_rps: f64,
    pub ratio: Option<f64>,
    /// The sides whose row the client capped in this round (empty when none).
    pub client_bound: Vec<String>,
}

/// Bootstrap resamples for the ratio's interval: enough that the interval's ends move by
/// well under 1% between seeds.
const RESAMPLES: usize = 10_000;

/// The 95% percentile interval of mean(A) / mean(B) over paired resamples of the rounds,
/// from a fixed seed (the same rounds give the same interval).
pub fn bootstrap_ratio(pairs: &[(f64, f64)]) -> [f64; 2] {
    let n = pairs.len();
    if n == 0 {
        return [0.0, 0.0];
    }
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            let (mut a, mut b) = (0.0, 0.0);
            for _ in 0..n {
                let (x, y) = pairs[rng.usize(..n)];
                a += x;
                b += y;
            }
            (b > 0.0).then(|| a / b)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let at = |p: f64| crate::model::tool::percentile_of_sorted(&ratios, p).unwrap_or(0.0);
    [at(2.5), at(97.5)]
}

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
    output::write_json(&plan.out, "compare.json", &comparison)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_excludes_one_only_when_the_rounds_disagree_with_it() {
        // A is 5x B in every round, with 2% noise: far from 1.
        let apart = [(5000.0, 1000.0), (5100.0, 990.0), (4950.0, 1010.0)];
        let [low, high] = bootstrap_ratio(&apart);
        assert!(4.8 < low && low <= high && high < 5.2, "{low} {high}");
        // A and B within each other's noise: the interval straddles 1.
        let noise = [
            (1000.0, 980.0),
            (990.0, 1010.0),
            (1020.0, 1000.0),
            (970.0, 1005.0),
        ];
        let [low, high] = bootstrap_ratio(&noise);
        assert!(low < 1.0 && 1.0 < high, "{low} {high}");
        // The same rounds give the same interval.
        assert_eq!(bootstrap_ratio(&noise), [low, high]);
    }
}
