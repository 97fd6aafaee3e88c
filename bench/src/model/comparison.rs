//! What `bench compare` found ([`Comparison`], `compare.json`): A and B round by round, the
//! ratio's spread and its bootstrap interval.

use serde::Serialize;

use super::meta::Meta;
use super::row::{Row, Spread};

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
pub const RESAMPLES: usize = 10_000;

/// The 95% percentile interval of resampled ratios.
pub fn interval95(mut ratios: Vec<f64>) -> [f64; 2] {
    ratios.sort_by(f64::total_cmp);
    let at = |p: f64| crate::model::tool::percentile_of_sorted(&ratios, p).unwrap_or(0.0);
    [at(2.5), at(97.5)]
}

/// The 95% percentile interval of mean(A) / mean(B) over paired resamples of the rounds,
/// from a fixed seed (the same rounds give the same interval).
pub fn bootstrap_ratio(pairs: &[(f64, f64)]) -> [f64; 2] {
    let n = pairs.len();
    if n == 0 {
        return [0.0, 0.0];
    }
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let ratios: Vec<f64> = (0..RESAMPLES)
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
    interval95(ratios)
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
