//! `bench sweep`: the verdict as a map over configuration and offered load.
//!
//! One preset measures one point, and Grinberg's lesson is that the point decides the verdict.
//! A sweep varies knobs (`--vary delay-ms=0,10,20,40 --vary connections=19,100,400`), runs every
//! chosen target at every point of their cartesian product, and draws where the verdict flips.
//! Varying `rate` makes it an open-loop sweep (oha `-q RATE --latency-correction`): each row
//! records the offered and the achieved rate, and a target's capacity is the highest offered
//! rate at which it still meets a latency objective without saturating.
//!
//! Rows are appended to `results.jsonl` as each finishes, so an interrupted sweep keeps its
//! points and `--resume DIR` skips them. The order of the targets is shuffled at every point
//! with a recorded seed, so that the drift of a shared machine does not always hit the same one.

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use shared::{Binary, Offload};

use crate::measure::session::Session;
use crate::measure::tools::Tool;
use crate::model::capacity::{capacities, Capacity};
use crate::model::case::{Case, Subject};
use crate::model::knob::{order, points, Point};
use crate::model::plan::SweepPlan;
use crate::model::row::{set_relative, Row};
use crate::model::settings::Settings;
use crate::output::sweep::{read_jsonl, write_sweep, SweepFiles};
use crate::stack::Stack;

/// The outcome of a sweep.
pub struct SweepOutcome {
    pub rows: Vec<Row>,
    pub capacity: Vec<Capacity>,
    pub charts: Vec<PathBuf>,
    pub interrupted: bool,
    pub skipped: usize,
}

/// Each point's cases: every target the point applies to (only the tokio targets pipeline:
/// a point in pipelined mode has no row for the others), in the point's shuffled order, each
/// of `plan.offload` followed by itself with `--offload blocking`, as `NAME offload`.
fn cases_at(plan: &SweepPlan, index: usize, point: &Point) -> Vec<Case> {
    let base = &plan.base;
    let mut settings = base.settings.clone();
    point.apply(&mut settings);
    let mut cases = Vec::new();
    for binary in order(&base.targets, plan.seed, index) {
        if !settings.db_mode.supported_by(binary) {
            continue;
        }
        cases.push(Case {
            label: binary.name().to_string(),
            subject: Subject::Target(binary),
            settings: settings.clone(),
            group: point.label(),
        });
        if plan.offload.contains(&binary) {
            cases.push(Case {
                label: offload_label(binary),
                subject: Subject::Target(binary),
                settings: Settings {
                    offload: Offload::Blocking,
                    ..settings.clone()
                },
                group: point.label(),
            });
        }
    }
    cases
}

/// The label of a target's rows with `--offload blocking` beside its own.
pub fn offload_label(binary: Binary) -> String {
    format!("{} offload", binary.name())
}

/// Runs the sweep: every target at every point, rows appended to `results.jsonl` as they
/// finish; `results.json`, `results.csv`, `report.md` and the charts at the end, and when
/// interrupted.
pub fn sweep(
    stack: &Stack,
    plan: &SweepPlan,
    tool: Tool,
    interrupted: &AtomicBool,
) -> Result<SweepOutcome> {
    let started = super::now();
    let base = &plan.base;
    fs::create_dir_all(&base.out)?;
    let mut rows = if plan.resume {
        read_jsonl(&base.out)?
    } else {
        Vec::new()
    };
    let skipped = rows.len();
    let points = points(&plan.varies);
    let all: Vec<(usize, &Point, Vec<Case>)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p, cases_at(plan, i, p)))
        .collect();
    let rounds = all
        .iter()
        .flat_map(|(_, _, cases)| cases)
        .map(|c| u64::from(c.settings.rounds.max(1)))
        .sum();
    let mut session = Session::open(stack, base, &base.targets, [], tool, interrupted, rounds)?;
    let mut jsonl = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(base.out.join("results.jsonl"))
        .context("cannot open results.jsonl")?;
    'points: for (index, point, cases) in &all {
        for case in cases {
            let done = rows
                .iter()
                .any(|r| r.point.as_ref() == Some(*point) && r.target == case.label);
            if done {
                session.skip(case);
                continue;
            }
            let at = format!(
                " at {} (point {}/{})",
                point.label(),
                index + 1,
                points.len()
            );
            let Some(mut row) = session.measure(case, &at) else {
                break 'points;
            };
            row.point = Some((*point).clone());
            writeln!(jsonl, "{}", serde_json::to_string(&row)?)?;
            jsonl.flush()?;
            rows.push(row);
        }
    }
    let ended = session.finish();
    set_relative(&mut rows, &base.baseline);
    let capacity = capacities(&rows, plan.slo_p99_ms);
    let meta = super::meta(stack, base, &ended.tool, started);
    let files = SweepFiles {
        dir: &base.out,
        varies: &plan.varies,
        seed: plan.seed,
        slo_p99_ms: plan.slo_p99_ms,
        targets: base.targets.len(),
        heatmaps: heatmap_pairs(plan, &rows),
    };
    let charts = write_sweep(&files, &meta, &rows, &capacity)?;
    Ok(SweepOutcome {
        rows,
        capacity,
        charts,
        interrupted: ended.interrupted,
        skipped,
    })
}

/// The pairs to draw heatmaps of: those asked for; with targets measured with offload too,
/// every async, green or thread-per-core target and each offload series against sync-pool;
/// else the best async or green target (by mean throughput over the points) against it.
fn heatmap_pairs(plan: &SweepPlan, rows: &[Row]) -> Vec<(String, String)> {
    if !plan.heatmaps.is_empty() {
        return plan
            .heatmaps
            .iter()
            .map(|(a, b)| (a.name().to_string(), b.name().to_string()))
            .collect();
    }
    if !plan.base.targets.contains(&Binary::SyncPool) {
        return Vec::new();
    }
    if !plan.offload.is_empty() {
        let sync = || "sync-pool".to_string();
        return plan
            .base
            .targets
            .iter()
            .filter(|b| b.model().overlaps_requests())
            .flat_map(|b| {
                let mut pairs = vec![(b.name().to_string(), sync())];
                if plan.offload.contains(b) {
                    pairs.push((offload_label(*b), sync()));
                }
                pairs
            })
            .collect();
    }
    let mean = |binary: Binary| {
        let values: Vec<f64> = rows
            .iter()
            .filter(|r| r.target == binary.name() && r.is_ok())
            .map(|r| r.requests_per_sec)
            .collect();
        values.iter().sum::<f64>() / values.len().max(1) as f64
    };
    plan.base
        .targets
        .iter()
        .filter(|b| b.model().overlaps_requests())
        .max_by(|a, b| mean(**a).total_cmp(&mean(**b)))
        .map(|best| vec![(best.name().to_string(), "sync-pool".to_string())])
        .unwrap_or_default()
}
