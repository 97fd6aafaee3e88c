//! `bench client`'s files: `results.json`, `results.csv`, `report.md` and the wall-time chart.

use std::path::Path;

use anyhow::Result;

use super::chart::bar_chart;
use crate::model::client::ClientRow;
use crate::model::meta::{Machine, SUITE};
use crate::model::plan::ClientPlan;

/// The table of `bench client`, as markdown.
pub fn client_table(rows: &[ClientRow]) -> String {
    let mut out = String::from(
        "| model | wall s (min–max) | req/s | bound s | efficiency | errors | peak connections | RSS MiB | threads |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rows {
        out += &format!(
            "| {} | {:.3} ({:.3}–{:.3}) | {:.0} | {:.3} | {:.2} | {} | {} | {:.1} | {} |\n",
            r.model,
            r.wall_s,
            r.wall_s_min,
            r.wall_s_max,
            r.requests_per_sec,
            r.bound_s,
            r.efficiency,
            r.errors,
            r.peak_connections,
            r.rss_peak_mib,
            r.threads_peak
        );
    }
    out
}

/// The columns of `results.csv`: the fields of a row, in the order of `results.json`.
const CSV_COLUMNS: [&str; 13] = [
    "model",
    "requests",
    "delay_ms",
    "wall_s",
    "wall_s_min",
    "wall_s_max",
    "requests_per_sec",
    "bound_s",
    "efficiency",
    "errors",
    "peak_connections",
    "rss_peak_mib",
    "threads_peak",
];

/// `results.csv`: a line per model, each value as `results.json` has it.
fn csv(rows: &[ClientRow]) -> Result<String> {
    let mut out = CSV_COLUMNS.join(",") + "\n";
    for row in rows {
        let fields = serde_json::to_value(row)?;
        let values: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|name| match &fields[*name] {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect();
        out += &values.join(",");
        out.push('\n');
    }
    Ok(out)
}

/// results.json, results.csv, report.md, wall.svg and report.html into `dir`.
pub fn write_client(
    dir: &Path,
    plan: &ClientPlan,
    rows: &[ClientRow],
    machine: &Machine,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::json!({
        "suite": SUITE,
        "command": "client",
        "plan": plan,
        "machine": machine,
        "results": rows,
    });
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    std::fs::write(dir.join("results.csv"), csv(rows)?)?;
    let report = format!(
        "# {SUITE}: `bench client`\n\n{} GETs of the upstream nginx page, each answered after {} ms, made by each client model ({} round(s); the median round, and min–max). The bound is the least wall time the model can take: N × d one after another, ⌈N / T⌉ × d from T threads, d when every request overlaps.\n\n{}\n![wall time](wall.svg)\n\nMachine: {}.\n",
        plan.requests,
        plan.delay_ms,
        plan.rounds,
        client_table(rows),
        machine.describe()
    );
    std::fs::write(dir.join("report.md"), &report)?;
    client_wall(&dir.join("wall.svg"), plan, rows)?;
    super::html::write_report(
        dir,
        &super::html::Page {
            title: &format!("{SUITE}: bench client"),
            verdict: &super::verdict::client(rows),
            markdown: &report,
            command: &super::html::command_line(),
        },
    )
}
/// `bench client`: wall time per client model, with each model's bound as a red tick.
fn client_wall(path: &Path, plan: &ClientPlan, rows: &[ClientRow]) -> Result<()> {
    let bars: Vec<(String, f64, Option<f64>)> = rows
        .iter()
        .map(|r| (r.model.clone(), r.wall_s, Some(r.bound_s)))
        .collect();
    bar_chart(
        path,
        &format!(
            "bench client: {} GETs of {} ms, wall time (red: the model's bound)",
            plan.requests, plan.delay_ms
        ),
        "seconds",
        &bars,
    )
}
