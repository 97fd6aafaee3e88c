//! What a mixed load's report says: each class's figures in every row, and where a row of
//! the first class alone stands beside a mixed one, how much the other classes cost it.

use std::fmt::Write as _;

use crate::model::row::Row;
use crate::model::tool::ClassMeasurement;

/// A row of the first class alone beside the same subject's mixed row, and the first class's
/// figures in each.
pub struct Pair<'a> {
    pub name: &'a str,
    pub class: &'a str,
    pub alone: &'a ClassMeasurement,
    pub mixed: &'a ClassMeasurement,
}

impl Pair<'_> {
    /// The first class's P50 and P99 with the others, over alone.
    pub fn ratios(&self) -> (Option<f64>, Option<f64>) {
        let ratio =
            |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
        (
            ratio(self.mixed.measurement.p50_ms, self.alone.measurement.p50_ms),
            ratio(self.mixed.measurement.p99_ms, self.alone.measurement.p99_ms),
        )
    }
}

/// Each subject's first-class-alone row beside its mixed row (a mix whose first class alone
/// is the other's mix), in the order of the mixed rows.
pub fn pairs<'a>(rows: &'a [Row]) -> Vec<Pair<'a>> {
    let mut pairs = Vec::new();
    for mixed in rows.iter().filter(|r| r.is_ok()) {
        let Some(mix) = mixed.config.mix.as_ref().filter(|m| m.classes.len() > 1) else {
            continue;
        };
        let alone = rows.iter().find(|r| {
            r.is_ok()
                && r.subject_name() == mixed.subject_name()
                && r.config.mix.as_ref() == Some(&mix.first_alone())
        });
        let (Some(alone), Some(class)) = (alone, mix.classes.first()) else {
            continue;
        };
        let first = |r: &'a Row| r.measurement.classes.iter().find(|c| c.name == class.name);
        if let (Some(a), Some(m)) = (first(alone), first(mixed)) {
            pairs.push(Pair {
                name: mixed.subject_name(),
                class: &class.name,
                alone: a,
                mixed: m,
            });
        }
    }
    pairs
}

/// report.md's section on a mix: empty when no row has classes.
pub fn section(rows: &[Row]) -> String {
    let mixed: Vec<&Row> = rows
        .iter()
        .filter(|r| r.is_ok() && !r.measurement.classes.is_empty() && r.config.mix.is_some())
        .collect();
    if mixed.is_empty() {
        return String::new();
    }
    let f = |v: Option<f64>, d: usize| v.map_or("–".to_string(), |v| format!("{v:.d$}"));
    let mut out = String::from(
        "## Each class of the mix\n\nEvery request's class was drawn by weight and its latency \
         recorded in that class (bench's own client); req/s counts the class's 2xx answers.\n\n\
         | target | class | query | weight | req/s | P50 ms | P99 ms | P99.9 ms | max ms | errors |\n\
         |---|---|---|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in &mixed {
        for c in &r.measurement.classes {
            let m = &c.measurement;
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {:.0} | {} | {} | {} | {} | {} |",
                r.target,
                c.name,
                c.query,
                c.weight,
                c.requests_per_sec,
                f(m.p50_ms, 1),
                f(m.p99_ms, 1),
                f(m.p999_ms, 1),
                f(m.max_ms, 1),
                m.errors.total
            );
        }
    }
    out.push('\n');
    let pairs = pairs(rows);
    if let Some(first) = pairs.first() {
        let _ = write!(
            out,
            "### The `{}` class with the others, against alone\n\n\
             | target | P50 alone | P50 mixed | × | P99 alone | P99 mixed | × |\n\
             |---|--:|--:|--:|--:|--:|--:|\n",
            first.class
        );
        for pair in &pairs {
            let (p50, p99) = pair.ratios();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                pair.name,
                f(pair.alone.measurement.p50_ms, 1),
                f(pair.mixed.measurement.p50_ms, 1),
                f(p50, 2),
                f(pair.alone.measurement.p99_ms, 1),
                f(pair.mixed.measurement.p99_ms, 1),
                f(p99, 2),
            );
        }
        out.push('\n');
    }
    out
}

/// The verdict of a run with mixed and alone rows: what the other classes cost the first
/// class's P99, least and most. `None` without such pairs.
pub fn verdict(scenario: &str, rows: &[Row]) -> Option<String> {
    let pairs = pairs(rows);
    let mut ranked: Vec<(&str, f64)> = pairs
        .iter()
        .filter_map(|p| Some((p.name, p.ratios().1?)))
        .collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (least, most) = (ranked.first()?, ranked.last()?);
    let class = pairs.first()?.class;
    Some(format!(
        "At `{scenario}`, the other classes multiplied the `{class}` class's P99 by {:.2} in **{}** (the least) and by {:.2} in **{}** (the most), against the same load of `{class}` alone.",
        least.1, least.0, most.1, most.0
    ))
}
