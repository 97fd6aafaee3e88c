//! A sweep's files: `results.jsonl` (a row per line, appended as each finishes, read back to
//! resume), and at the end `results.json`, `results.csv`, `report.md`, `report.html` and the charts (a
//! knob's lines, a rate sweep's curves, the verdict heatmaps of two knobs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::{chart, csv, html, table, verdict, write_json};
use crate::model::capacity::Capacity;
use crate::model::knob::{points, Knob, Value, Vary};
use crate::model::meta::{Meta, SUITE};
use crate::model::row::Row;

/// What a sweep's report says about the sweep itself.
pub struct SweepFiles<'a> {
    pub dir: &'a Path,
    pub varies: &'a [Vary],
    pub seed: u64,
    pub slo_p99_ms: f64,
    /// How many targets were swept.
    pub targets: usize,
    /// The pairs A/B to draw heatmaps of, when two knobs vary.
    pub heatmaps: Vec<(String, String)>,
}

/// `results.json` of a sweep: the run, the sweep's own settings, capacities, and the rows.
#[derive(Serialize)]
struct SweepResults<'a> {
    #[serde(flatten)]
    meta: &'a Meta,
    vary: BTreeMap<&'static str, Vec<Value>>,
    seed: u64,
    slo_p99_ms: f64,
    capacity: Vec<Capacity>,
    results: &'a [Row],
}

/// Rows already in `dir/results.jsonl` (a sweep to resume).
pub fn read_jsonl(dir: &Path) -> Result<Vec<Row>> {
    let path = dir.join("results.jsonl");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<Row>(line)
                .map(Row::with_label)
                .with_context(|| format!("{} line {}: not a row", path.display(), i + 1))
        })
        .collect()
}

/// Writes `results.json`, `results.csv`, the charts and `report.md`; returns the charts.
pub fn write_sweep(
    files: &SweepFiles,
    meta: &Meta,
    rows: &[Row],
    capacity: &[Capacity],
) -> Result<Vec<PathBuf>> {
    let results = SweepResults {
        meta,
        vary: files
            .varies
            .iter()
            .map(|v| (v.knob.name(), v.values.clone()))
            .collect(),
        seed: files.seed,
        slo_p99_ms: files.slo_p99_ms,
        capacity: capacity.to_vec(),
        results: rows,
    };
    write_json(files.dir, "results.json", &results)?;
    fs::write(files.dir.join("results.csv"), csv::csv(rows))?;
    let charts = charts(files, &meta.scenario, rows, capacity)?;
    let report = sweep_report(files, meta, rows, capacity, &charts);
    fs::write(files.dir.join("report.md"), &report)?;
    html::write_report(
        files.dir,
        &html::Page {
            title: &format!("{SUITE} sweep: {}", meta.scenario),
            verdict: &verdict::sweep(&meta.scenario, rows, capacity, files.slo_p99_ms),
            markdown: &report,
            command: &meta.command,
        },
    )?;
    Ok(charts)
}

/// The charts a sweep's knobs allow: a rate sweep's curves, one knob's lines, two knobs'
/// heatmaps.
fn charts(
    files: &SweepFiles,
    scenario: &str,
    rows: &[Row],
    capacity: &[Capacity],
) -> Result<Vec<PathBuf>> {
    let out = files.dir;
    let mut charts = Vec::new();
    let knobs: Vec<Knob> = files.varies.iter().map(|v| v.knob).collect();
    if knobs.contains(&Knob::Rate) {
        let path = out.join("rate.svg");
        chart::sweep::rate_sweep(&path, scenario, rows, capacity, files.slo_p99_ms)?;
        charts.push(path);
    }
    let others: Vec<&Vary> = files
        .varies
        .iter()
        .filter(|v| v.knob != Knob::Rate)
        .collect();
    if let [one] = others.as_slice() {
        if knobs.len() == 1 {
            let path = out.join("throughput.svg");
            chart::sweep::knob_sweep(&path, scenario, one, rows)?;
            charts.push(path);
        }
    }
    if let [x, y] = files.varies {
        for (a, b) in &files.heatmaps {
            let path = out.join(format!("heatmap-{a}-vs-{b}.svg").replace(' ', "-"));
            chart::sweep::heatmap(&path, scenario, x, y, a, b, rows)?;
            charts.push(path);
        }
    }
    Ok(charts)
}

/// A sweep's `report.md`: what varied, the capacities, a table per point, the charts.
fn sweep_report(
    files: &SweepFiles,
    meta: &Meta,
    rows: &[Row],
    capacity: &[Capacity],
    charts: &[PathBuf],
) -> String {
    let mut out = String::new();
    let s = &meta.settings;
    let _ = writeln!(out, "# {SUITE} sweep: `{}`\n", meta.scenario);
    let _ = writeln!(out, "From: {}.\n", meta.source);
    let vary: Vec<String> = files
        .varies
        .iter()
        .map(|v| {
            let values: Vec<String> = v.values.iter().map(Value::to_string).collect();
            format!("{} = {}", v.knob, values.join(", "))
        })
        .collect();
    let _ = writeln!(
        out,
        "Varied: {}; {} points × {} targets, {} s each after {} s warm-up, {}; targets in a shuffled order at every point (seed {}).\n",
        vary.join("; "),
        points(files.varies).len(),
        files.targets,
        s.duration_s,
        s.warmup_s,
        s.tool,
        files.seed
    );
    let _ = writeln!(
        out,
        "Machine: {}. Started {}, finished {}.\n",
        meta.machine.describe(),
        meta.started,
        meta.finished
    );
    out += &capacity_section(capacity, files.slo_p99_ms);
    out += &super::markdown::cpu_tails(rows);
    let capped: Vec<&Row> = rows.iter().filter(|r| r.client.client_bound).collect();
    if !capped.is_empty() {
        out += "## Client-bound points\n\nThe load tool, not the target, may have set these rows' numbers: their `relative` is left out, a capacity stops below them, and the heatmap marks their cells `c`.\n\n";
        for r in capped {
            let _ = writeln!(
                out,
                "- {} at {}: {}",
                r.target,
                r.point.as_ref().map_or(String::new(), |p| p.label()),
                r.client.client_bound_reason.as_deref().unwrap_or("")
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Every point\n");
    for point in points(files.varies) {
        let at: Vec<Row> = rows
            .iter()
            .filter(|r| r.point.as_ref() == Some(&point))
            .cloned()
            .collect();
        if at.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {}\n", point.label());
        out += &table::table(&at, &meta.baseline);
        out.push('\n');
    }
    if !charts.is_empty() {
        let links: Vec<String> = charts
            .iter()
            .filter_map(|c| c.file_name())
            .map(|name| {
                let name = name.to_string_lossy();
                format!("[{name}]({name})")
            })
            .collect();
        let _ = writeln!(out, "Charts: {}.", links.join(", "));
    } else if files.varies.len() > 2 {
        out += "No chart: more than two knobs vary (the table above has every point).\n";
    }
    out
}

/// The capacities of a rate sweep, as a table.
fn capacity_section(capacity: &[Capacity], slo_p99_ms: f64) -> String {
    if capacity.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Capacity at p99 ≤ {slo_p99_ms} ms\n\nThe highest offered rate a target answered without saturating (answered ≥ 95% of it, nothing left unsent), with p99 within the objective and the load tool not the limit (no client-bound row), every lower rate included.\n\n| target | series | capacity req/s | first miss |\n|---|---|--:|---|"
    );
    for c in capacity {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            c.target,
            if c.series.is_empty() {
                "–"
            } else {
                &c.series
            },
            c.capacity_rps.map_or("none".into(), |r| r.to_string()),
            c.first_miss
                .as_deref()
                .unwrap_or("none up to the highest rate")
        );
    }
    out.push('\n');
    out
}
