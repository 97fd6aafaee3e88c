//! The verdict at the top of every `report.html`: what the folder shows, in one sentence with
//! its numbers (Markdown inline: `code` and **bold**).

use std::fmt::Write as _;

use crate::model::capacity::Capacity;
use crate::model::client::ClientRow;
use crate::model::comparison::Comparison;
use crate::model::row::Row;

/// A run: per group of rows, who served the most and by how much against the baseline, and
/// each row's share of its bound.
pub fn run(scenario: &str, baseline: &str, rows: &[Row]) -> String {
    let failed = rows.iter().filter(|r| !r.is_ok()).count();
    if let Some(soak) = soak(scenario, rows, failed) {
        return soak;
    }
    if let Some(mix) = super::mix::verdict(scenario, rows) {
        return mix;
    }
    let mut groups: Vec<(&str, Vec<&Row>)> = Vec::new();
    for row in rows.iter().filter(|r| r.is_ok()) {
        match groups.iter_mut().find(|(g, _)| *g == row.group) {
            Some((_, members)) => members.push(row),
            None => groups.push((&row.group, vec![row])),
        }
    }
    if groups.is_empty() {
        return format!("No row of `{scenario}` was measured: {failed} failed or were refused (the table says why).");
    }
    let several = groups.len() > 1;
    let clauses: Vec<String> = groups
        .iter()
        .take(4)
        .map(|(group, members)| {
            let clause = group_clause(baseline, members, several);
            if several && !group.is_empty() {
                format!("{group}: {clause}")
            } else {
                clause
            }
        })
        .collect();
    let mut out = format!("At `{scenario}`, {}", clauses.join("; "));
    if groups.len() > 4 {
        let _ = write!(out, "; and {} more groups in the table", groups.len() - 4);
    }
    out.push('.');
    if failed > 0 {
        let _ = write!(
            out,
            " {failed} row{} failed or {} refused.",
            plural(failed),
            if failed == 1 { "was" } else { "were" }
        );
    }
    out
}

/// A soak: how many targets held, for how long and through how many faults, and what each
/// of the others did wrong.
fn soak(scenario: &str, rows: &[Row], failed: usize) -> Option<String> {
    let soaked: Vec<(&Row, &crate::model::soak::SoakReport)> = rows
        .iter()
        .filter_map(|r| Some((r, r.beside.soak.as_ref()?)))
        .collect();
    let (_, first) = soaked.first()?;
    let held = soaked.iter().filter(|(_, s)| s.verdict.passed()).count();
    let mut out = format!(
        "In `{scenario}` ({:.0} min, {} fault{}), {held} of {} target{} held",
        first.duration_s / 60.0,
        first.faults.len(),
        plural(first.faults.len()),
        soaked.len(),
        plural(soaked.len()),
    );
    let judged = soaked.iter().any(|(_, s)| s.verdict.flat_memory.is_some());
    out += if judged {
        ": no error outside the faults, recovered from each, flat memory and descriptors"
    } else {
        ": no error outside the faults, recovered from each (too short to judge the slopes)"
    };
    for (row, soak) in soaked.iter().filter(|(_, s)| !s.verdict.passed()) {
        let _ = write!(out, "; **{}**: {}", row.name(), soak.verdict.summary());
    }
    out.push('.');
    if failed > 0 {
        let _ = write!(out, " {failed} row{} failed or refused.", plural(failed));
    }
    Some(out)
}

/// The best row of a group against its baseline (or the runner-up when the baseline is
/// best), then each row's share of its bound (as a range when the run has several groups).
fn group_clause(baseline: &str, rows: &[&Row], brief: bool) -> String {
    let rps = |r: &Row| r.requests_per_sec;
    let best = rows
        .iter()
        .copied()
        .max_by(|a, b| rps(a).total_cmp(&rps(b)))
        .expect("a group has rows");
    let mut clause = match rows.len() {
        1 => format!(
            "**{}** served {:.0} req/s{}",
            best.name(),
            rps(best),
            best.measurement
                .p99_ms
                .map_or(String::new(), |p| format!(" (P99 {p:.1} ms)"))
        ),
        _ => {
            let base = rows
                .iter()
                .copied()
                .find(|r| r.target == baseline || r.binary.as_deref() == Some(baseline))
                .filter(|b| b.target != best.target)
                .or_else(|| {
                    rows.iter()
                        .copied()
                        .filter(|r| r.target != best.target)
                        .max_by(|a, b| rps(a).total_cmp(&rps(b)))
                })
                .expect("two rows");
            let ratio = if rps(base) > 0.0 {
                format!("{:.1}×", rps(best) / rps(base))
            } else {
                "infinitely many times".into()
            };
            format!(
                "**{}** served {ratio} {}'s requests ({:.0} vs {:.0} req/s)",
                best.name(),
                base.name(),
                rps(best),
                rps(base)
            )
        }
    };
    let shares: Vec<(&str, f64)> = rows
        .iter()
        .filter_map(|r| Some((r.name(), r.efficiency?)))
        .collect();
    if !shares.is_empty() && (brief || shares.len() > 8) {
        let (low, high) = shares
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), (_, e)| {
                (lo.min(*e), hi.max(*e))
            });
        let _ = write!(clause, ", each at {low:.2}–{high:.2} of its bound");
    } else if !shares.is_empty() {
        let said: Vec<String> = shares.iter().map(|(t, e)| format!("{t} {e:.2}")).collect();
        let _ = write!(clause, ", at this share of each bound: {}", said.join(", "));
    }
    let capped = rows.iter().filter(|r| r.client.client_bound).count();
    if capped > 0 {
        let _ = write!(clause, " ({capped} row{} client-bound)", plural(capped));
    }
    clause
}

/// `bench compare`: the ratio, its interval, and whether the rounds tell A from B.
pub fn compare(c: &Comparison) -> String {
    let call = if !c.distinguishable {
        "the rounds' noise cannot tell them apart".to_string()
    } else if c.ratio.median >= 1.0 {
        format!("**{}** is faster", c.a)
    } else {
        format!("**{}** is faster", c.b)
    };
    format!(
        "{} / {} = {:.2} (median of {} rounds, 95% interval {:.2}–{:.2}): {call}.",
        c.a,
        c.b,
        c.ratio.median,
        c.rounds.len(),
        c.ratio_ci95[0],
        c.ratio_ci95[1]
    )
}

/// A sweep: the capacities at the objective when the rate was swept, else who served the most
/// at how many of the points.
pub fn sweep(scenario: &str, rows: &[Row], capacity: &[Capacity], slo_p99_ms: f64) -> String {
    let known: Vec<String> = capacity
        .iter()
        .filter_map(|c| {
            let series = if c.series.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.series)
            };
            Some(format!("{}{series} {} req/s", c.target, c.capacity_rps?))
        })
        .collect();
    if !known.is_empty() {
        return format!(
            "Sweeping `{scenario}`, the most each target served with P99 ≤ {slo_p99_ms} ms: {}.",
            known.join(", ")
        );
    }
    let mut points: Vec<String> = Vec::new();
    let mut wins: Vec<(String, usize)> = Vec::new();
    let label = |r: &Row| r.point.as_ref().map(|p| p.label()).unwrap_or_default();
    for row in rows.iter().filter(|r| r.is_ok()) {
        let point = label(row);
        if points.contains(&point) {
            continue;
        }
        let best = rows
            .iter()
            .filter(|r| r.is_ok() && label(r) == point)
            .max_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec))
            .map(|r| r.target.clone())
            .unwrap_or_default();
        points.push(point);
        match wins.iter_mut().find(|(t, _)| *t == best) {
            Some((_, n)) => *n += 1,
            None => wins.push((best, 1)),
        }
    }
    if points.is_empty() {
        return format!("No point of the `{scenario}` sweep was measured (the table says why).");
    }
    wins.sort_by_key(|w| std::cmp::Reverse(w.1));
    let said: Vec<String> = wins
        .iter()
        .map(|(t, n)| format!("**{t}** at {n}"))
        .collect();
    format!(
        "Sweeping `{scenario}` over {} point{}, the most requests were served by {} of them.",
        points.len(),
        plural(points.len()),
        said.join(", ")
    )
}

/// `bench client`: the quickest and slowest model against their bounds.
pub fn client(rows: &[ClientRow]) -> String {
    let wall = |r: &&ClientRow| r.wall_s;
    let fastest = rows.iter().min_by(|a, b| wall(a).total_cmp(&wall(b)));
    let slowest = rows.iter().max_by(|a, b| wall(a).total_cmp(&wall(b)));
    match (fastest, slowest) {
        (Some(f), Some(s)) => format!(
            "{} GETs of {} ms: **{}** took {:.2} s (bound {:.2} s), **{}** {:.2} s (bound {:.2} s).",
            f.requests, f.delay_ms, f.model, f.wall_s, f.bound_s, s.model, s.wall_s, s.bound_s
        ),
        _ => "No client model was measured.".into(),
    }
}

/// `s` after a count other than one.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
