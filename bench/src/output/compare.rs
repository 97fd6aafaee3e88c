//! `bench compare`'s files: `compare.json`, `report.md` (the ratio and its interval, a line per
//! round, every round's row), `rounds.svg` (the ratio per round) and `report.html`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::{chart, html, table, verdict, write_json};
use crate::model::comparison::Comparison;
use crate::model::meta::SUITE;

/// Writes the comparison's files into `dir`.
pub fn write_compare(dir: &Path, c: &Comparison) -> Result<()> {
    write_json(dir, "compare.json", c)?;
    let bars: Vec<(String, f64, Option<f64>)> = c
        .rounds
        .iter()
        .enumerate()
        .map(|(i, pair)| (format!("round {}", i + 1), pair.ratio.unwrap_or(0.0), None))
        .collect();
    chart::bar_chart(
        &dir.join("rounds.svg"),
        &format!("{} / {}: throughput ratio per round", c.a, c.b),
        "ratio",
        &bars,
    )?;
    let report = report(c);
    std::fs::write(dir.join("report.md"), &report)?;
    html::write_report(
        dir,
        &html::Page {
            title: &format!("{SUITE}: {} against {}", c.a, c.b),
            verdict: &verdict::compare(c),
            markdown: &report,
            command: &c.meta.command,
        },
    )
}

/// The comparison's `report.md`.
fn report(c: &Comparison) -> String {
    let mut out = format!("# {SUITE}: `{}` against `{}`\n\n", c.a, c.b);
    let _ = writeln!(
        out,
        "Preset `{}`, {} rounds of A then B, each on a fresh process. A / B = {:.2} (median; min {:.2}, max {:.2}); 95% interval by bootstrap over the rounds {:.2}–{:.2}. Noise between rounds (max − min over median): {} {:.1}%, {} {:.1}%.\n",
        c.meta.scenario,
        c.rounds.len(),
        c.ratio.median,
        c.ratio.min,
        c.ratio.max,
        c.ratio_ci95[0],
        c.ratio_ci95[1],
        c.a,
        c.a_noise * 100.0,
        c.b,
        c.b_noise * 100.0
    );
    out += "![ratio per round](rounds.svg)\n\n| round | A req/s | B req/s | A / B | client-bound |\n|--:|--:|--:|--:|---|\n";
    for (i, pair) in c.rounds.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {} | {} |",
            i + 1,
            pair.a_rps,
            pair.b_rps,
            table::dash(pair.ratio, 2),
            pair.client_bound.join(", ")
        );
    }
    out += "\nEvery round's rows:\n\n";
    out += &table::table(&c.results, &c.meta.baseline);
    let _ = writeln!(
        out,
        "\nMachine: {}. Started {}, finished {}.",
        c.meta.machine.describe(),
        c.meta.started,
        c.meta.finished
    );
    out
}
