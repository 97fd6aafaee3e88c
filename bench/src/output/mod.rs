//! What a command writes: results folders ([`folder`]), `results.json`, `results.csv`
//! ([`csv`]), the table ([`table`]) and `report.md` ([`markdown`]) of a run, a sweep's files
//! ([`sweep`]), `bench client`'s ([`client`]), the SVG charts ([`chart`]), and over all of
//! them `report.html` ([`html`], its first sentence from [`verdict`]).
//!
//! Nothing here measures. A figure beyond the table (an extra beside the load: faults, idle
//! connections, slow clients) brings its own section and charts through [`Section`], so
//! that this module does not know which extras exist.

pub mod archive;
pub mod chart;
pub mod client;
pub mod compare;
pub mod csv;
pub mod diff;
pub mod folder;
pub mod html;
pub mod markdown;
pub mod mix;
pub mod soak;
pub mod sweep;
pub mod table;
pub mod verdict;

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::model::meta::Meta;
use crate::model::row::Row;

/// A part of `report.md` (and its charts) that belongs to a figure beyond the table.
pub trait Section {
    /// Its Markdown for these rows; empty when no row has its figures.
    fn markdown(&self, scenario: &str, rows: &[Row]) -> String;

    /// Writes its charts into `dir`, if it has any for these rows.
    fn charts(&self, _dir: &Path, _scenario: &str, _rows: &[Row]) -> Result<()> {
        Ok(())
    }
}

/// `results.json`: the meta, and the rows beside it.
#[derive(Serialize)]
struct Results<'a> {
    #[serde(flatten)]
    meta: &'a Meta,
    results: &'a [Row],
}

/// Writes a run's files into `dir`: `results.json`, `results.csv`, `report.md`, the
/// throughput and latency charts, and each section's charts.
pub fn write_run(dir: &Path, meta: &Meta, rows: &[Row], sections: &[&dyn Section]) -> Result<()> {
    write_json(
        dir,
        "results.json",
        &Results {
            meta,
            results: rows,
        },
    )?;
    fs::write(dir.join("results.csv"), csv::csv(rows))?;
    let report = markdown::run_report(meta, rows, sections);
    fs::write(dir.join("report.md"), &report)?;
    chart::run::throughput(&dir.join("throughput.svg"), &meta.scenario, rows)?;
    chart::run::latency(&dir.join("latency.svg"), &meta.scenario, rows)?;
    for section in sections {
        section.charts(dir, &meta.scenario, rows)?;
    }
    html::write_report(
        dir,
        &html::Page {
            title: &format!("{}: {}", meta.suite, meta.scenario),
            verdict: &verdict::run(&meta.scenario, &meta.baseline, rows),
            markdown: &report,
            command: &meta.command,
        },
    )
}

/// Writes `value` as pretty JSON to `dir/name`.
pub fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string_pretty(value)?;
    fs::write(dir.join(name), json + "\n")
        .with_context(|| format!("cannot write {}", dir.join(name).display()))
}
