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

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use shared::{Backend, Binary, DbMode};

use super::report::{self, Meta};
use super::row::{set_relative, Row};
use super::run::Plan;
use super::scenario::{Case, Settings, Subject, Via};
use super::tools::{Tool, ToolKind};
use crate::stack::Stack;

/// A flag of `bench run` that a sweep can vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Knob {
    DelayMs,
    Connections,
    PoolSize,
    Workers,
    Rate,
    Backend,
    Via,
    DbMode,
}

impl Knob {
    pub const ALL: [Knob; 8] = [
        Knob::DelayMs,
        Knob::Connections,
        Knob::PoolSize,
        Knob::Workers,
        Knob::Rate,
        Knob::Backend,
        Knob::Via,
        Knob::DbMode,
    ];

    /// The flag's name, as `bench run` spells it (without `--`).
    pub fn name(self) -> &'static str {
        match self {
            Knob::DelayMs => "delay-ms",
            Knob::Connections => "connections",
            Knob::PoolSize => "pool-size",
            Knob::Workers => "workers",
            Knob::Rate => "rate",
            Knob::Backend => "backend",
            Knob::Via => "via",
            Knob::DbMode => "db-mode",
        }
    }

    pub fn from_name(name: &str) -> Option<Knob> {
        Knob::ALL.into_iter().find(|k| k.name() == name)
    }

    fn names() -> String {
        Knob::ALL.map(Knob::name).join(", ")
    }

    /// A value of this knob, checked as `bench run` would check its flag.
    fn parse_value(self, text: &str) -> Result<Value, String> {
        let text = text.trim();
        match self {
            Knob::Backend => Backend::from_name(text)
                .map(|_| Value::Word(text.to_string()))
                .ok_or_else(|| format!("backend: {text:?} is not db or upstream")),
            Knob::Via => match text {
                "nginx" | "direct" => Ok(Value::Word(text.to_string())),
                _ => Err(format!("via: {text:?} is not nginx or direct")),
            },
            Knob::DbMode => DbMode::from_name(text)
                .map(|_| Value::Word(text.to_string()))
                .ok_or_else(|| format!("db-mode: {text:?} is not pool or pipelined")),
            _ => match text.parse::<u32>() {
                Ok(n) if n > 0 || self == Knob::DelayMs => Ok(Value::Number(n)),
                _ => Err(format!(
                    "{}: {text:?} is not a whole number{}",
                    self.name(),
                    if self == Knob::DelayMs {
                        ""
                    } else {
                        " above 0"
                    }
                )),
            },
        }
    }

    /// Sets this knob in `settings`.
    pub fn apply(self, value: &Value, settings: &mut Settings) {
        match (self, value) {
            (Knob::DelayMs, Value::Number(n)) => settings.delay_ms = *n,
            (Knob::Connections, Value::Number(n)) => settings.connections = *n,
            (Knob::PoolSize, Value::Number(n)) => settings.sessions = *n,
            (Knob::Workers, Value::Number(n)) => {
                settings.sync_workers = Some(*n);
                settings.async_workers = Some(*n);
            }
            (Knob::Rate, Value::Number(n)) => settings.rate = Some(*n),
            (Knob::Backend, Value::Word(w)) => {
                settings.backend = Backend::from_name(w).unwrap_or(settings.backend)
            }
            (Knob::DbMode, Value::Word(w)) => {
                settings.db_mode = DbMode::from_name(w).unwrap_or(settings.db_mode)
            }
            (Knob::Via, Value::Word(w)) => {
                settings.via = if w == "direct" {
                    Via::Direct
                } else {
                    Via::Nginx
                }
            }
            _ => {}
        }
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A knob's value: a number, or a word (`db`, `direct`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(u32),
    Word(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Word(w) => f.write_str(w),
        }
    }
}

/// One `--vary KNOB=V1,V2,…`.
#[derive(Clone, Debug, PartialEq)]
pub struct Vary {
    pub knob: Knob,
    pub values: Vec<Value>,
}

/// Parses `KNOB=V1,V2,…`; the message names what is wrong.
pub fn parse_vary(text: &str) -> Result<Vary, String> {
    let (name, list) = text.split_once('=').ok_or_else(|| {
        format!(
            "{text:?}: expected KNOB=V1,V2,… with KNOB one of {}",
            Knob::names()
        )
    })?;
    let knob = Knob::from_name(name.trim())
        .ok_or_else(|| format!("unknown knob {:?}; knobs: {}", name.trim(), Knob::names()))?;
    let values = list
        .split(',')
        .filter(|v| !v.trim().is_empty())
        .map(|v| knob.parse_value(v))
        .collect::<Result<Vec<_>, _>>()?;
    if values.is_empty() {
        return Err(format!("{knob}: the list of values is empty"));
    }
    Ok(Vary { knob, values })
}

/// Knobs given twice are an error, not a silent override.
pub fn check_distinct(varies: &[Vary]) -> Result<(), String> {
    for (i, vary) in varies.iter().enumerate() {
        if varies[..i].iter().any(|v| v.knob == vary.knob) {
            return Err(format!("--vary {} is given twice", vary.knob));
        }
    }
    Ok(())
}

/// A point of a sweep: one value per varied knob, in the order the knobs were given.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Point(pub Vec<(Knob, Value)>);

impl Point {
    /// `delay-ms=20 connections=100`.
    pub fn label(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn get(&self, knob: Knob) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == knob).map(|(_, v)| v)
    }

    /// The same point without `knob`: the series a rate sweep draws one curve of.
    pub fn without(&self, knob: Knob) -> Point {
        Point(self.0.iter().filter(|(k, _)| *k != knob).cloned().collect())
    }

    pub fn apply(&self, settings: &mut Settings) {
        for (knob, value) in &self.0 {
            knob.apply(value, settings);
        }
    }
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (knob, value) in &self.0 {
            map.serialize_entry(knob.name(), value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Point, D::Error> {
        struct PointVisitor;
        impl<'de> Visitor<'de> for PointVisitor {
            type Value = Point;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of knob names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Point, A::Error> {
                let mut values = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    let knob = Knob::from_name(&name).ok_or_else(|| {
                        serde::de::Error::custom(format!("unknown knob {name:?}"))
                    })?;
                    values.push((knob, value));
                }
                Ok(Point(values))
            }
        }
        deserializer.deserialize_map(PointVisitor)
    }
}

/// Every point of the cartesian product, the first knob varying slowest.
pub fn points(varies: &[Vary]) -> Vec<Point> {
    let mut points = vec![Point(Vec::new())];
    for vary in varies {
        points = points
            .into_iter()
            .flat_map(|point| {
                vary.values.iter().map(move |value| {
                    let mut values = point.0.clone();
                    values.push((vary.knob, value.clone()));
                    Point(values)
                })
            })
            .collect();
    }
    points
}

/// The order in which the targets run at point `index`: shuffled, reproducibly from `seed`.
pub fn order(targets: &[Binary], seed: u64, index: usize) -> Vec<Binary> {
    let mut order = targets.to_vec();
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(index as u64));
    rng.shuffle(&mut order);
    order
}

/// A target's capacity: the highest offered rate at which it kept the objective, with every
/// lower rate of its series kept too (a pass above a failure is noise, not capacity).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Capacity {
    pub target: String,
    /// The other knobs' values, when the rate is not the only one varied.
    pub series: String,
    /// `None` when even the lowest rate missed the objective.
    pub capacity_rps: Option<u32>,
    /// The lowest rate that missed it, and why.
    pub first_miss: Option<String>,
}

/// Capacities at a p99 objective, from the rows of a rate sweep.
pub fn capacities(rows: &[Row], slo_p99_ms: f64) -> Vec<Capacity> {
    let mut series: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let (Some(point), Some(_)) = (&row.point, row.requested_rate) else {
            continue;
        };
        if point.get(Knob::Rate).is_none() {
            continue;
        }
        series
            .entry((row.target.clone(), point.without(Knob::Rate).label()))
            .or_default()
            .push(row);
    }
    series
        .into_iter()
        .map(|((target, series), mut rows)| {
            rows.sort_by_key(|r| r.requested_rate);
            let mut capacity = None;
            let mut first_miss = None;
            for row in rows {
                let rate = row.requested_rate.unwrap_or(0);
                let p99 = row.measurement.p99_ms;
                let miss = if !row.is_ok() {
                    Some(format!("{rate}/s: {}", row.status.name()))
                } else if row.saturated == Some(true) {
                    Some(format!(
                        "{rate}/s: saturated ({:.0}/s answered)",
                        row.achieved_rate.unwrap_or(0.0)
                    ))
                } else if p99.is_none_or(|p| p > slo_p99_ms) {
                    Some(format!(
                        "{rate}/s: p99 {} ms",
                        p99.map_or("–".into(), |p| format!("{p:.1}"))
                    ))
                } else {
                    None
                };
                match miss {
                    Some(why) => {
                        first_miss = Some(why);
                        break;
                    }
                    None => capacity = Some(rate),
                }
            }
            Capacity {
                target,
                series,
                capacity_rps: capacity,
                first_miss,
            }
        })
        .collect()
}

/// What to sweep: a run's plan (its settings are every point's base), and the sweep's own.
pub struct SweepPlan {
    pub base: Plan,
    pub varies: Vec<Vary>,
    pub seed: u64,
    pub slo_p99_ms: f64,
    /// Pairs for heatmaps, besides the default (best async or green target / sync-pool).
    pub heatmaps: Vec<(Binary, Binary)>,
    pub resume: bool,
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

/// The outcome of a sweep.
pub struct SweepOutcome {
    pub rows: Vec<Row>,
    pub capacity: Vec<Capacity>,
    pub charts: Vec<PathBuf>,
    pub interrupted: bool,
    pub skipped: usize,
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
            serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not a row", path.display(), i + 1))
        })
        .collect()
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
    let started = super::run::now();
    let base = &plan.base;
    fs::create_dir_all(&base.out)?;
    let mut rows = if plan.resume {
        read_jsonl(&base.out)?
    } else {
        Vec::new()
    };
    let skipped = rows.len();
    let refused = base.refused(stack)?;
    let points = points(&plan.varies);
    // Only the tokio targets pipeline: a point in pipelined mode has no row for the others.
    let applies = |point: &Point, binary: Binary| {
        let mut settings = base.settings.clone();
        point.apply(&mut settings);
        settings.db_mode.supported_by(binary)
    };
    let total = points
        .iter()
        .map(|p| base.targets.iter().filter(|b| applies(p, **b)).count() as u64)
        .sum();
    let bar = super::run::progress_bar(total, base.progress);
    let runner = base.runner(stack, &tool, interrupted)?;
    let mut jsonl = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(base.out.join("results.jsonl"))
        .context("cannot open results.jsonl")?;
    let mut was_interrupted = false;
    'points: for (index, point) in points.iter().enumerate() {
        let mut settings = base.settings.clone();
        point.apply(&mut settings);
        for binary in order(&base.targets, plan.seed, index) {
            if !settings.db_mode.supported_by(binary) {
                continue;
            }
            let done = rows
                .iter()
                .any(|r| r.point.as_ref() == Some(point) && r.target == binary.name());
            if done {
                bar.inc(1);
                continue;
            }
            bar.set_message(format!(
                "point {}/{} {} {}",
                index + 1,
                points.len(),
                point.label(),
                binary.name()
            ));
            let case = Case {
                label: binary.name().to_string(),
                subject: Subject::Target(binary),
                settings: settings.clone(),
                group: point.label(),
            };
            let mut row = match refused.iter().find(|(b, _)| *b == binary) {
                Some((_, why)) => Row::refused(&case, &tool, why),
                None => match runner.measure(&case) {
                    Ok(row) => row,
                    Err(_) => {
                        was_interrupted = true;
                        break 'points;
                    }
                },
            };
            row.point = Some(point.clone());
            if !row.is_ok() {
                bar.println(format!(
                    "bench: {} at {} {}: {}",
                    row.target,
                    point.label(),
                    row.status.name(),
                    row.failure.as_deref().unwrap_or("")
                ));
            }
            writeln!(jsonl, "{}", serde_json::to_string(&row)?)?;
            jsonl.flush()?;
            rows.push(row);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    set_relative(&mut rows, &base.baseline);
    let capacity = capacities(&rows, plan.slo_p99_ms);
    let meta = super::run::meta(stack, base, &tool, started);
    let charts = write_all(plan, &meta, &rows, &capacity)?;
    Ok(SweepOutcome {
        rows,
        capacity,
        charts,
        interrupted: was_interrupted,
        skipped,
    })
}

/// The pairs to draw heatmaps of: those asked for, or the best async or green target (by mean
/// throughput over the points) against sync-pool.
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
        .filter(|b| b.name().starts_with("tokio-") || **b == Binary::MayGreen)
        .max_by(|a, b| mean(**a).total_cmp(&mean(**b)))
        .map(|best| vec![(best.name().to_string(), "sync-pool".to_string())])
        .unwrap_or_default()
}

fn write_all(
    plan: &SweepPlan,
    meta: &Meta,
    rows: &[Row],
    capacity: &[Capacity],
) -> Result<Vec<PathBuf>> {
    let json = serde_json::to_string_pretty(&SweepResults {
        meta,
        vary: plan
            .varies
            .iter()
            .map(|v| (v.knob.name(), v.values.clone()))
            .collect(),
        seed: plan.seed,
        slo_p99_ms: plan.slo_p99_ms,
        capacity: capacity.to_vec(),
        results: rows,
    })?;
    let out = &plan.base.out;
    fs::write(out.join("results.json"), json + "\n")?;
    fs::write(out.join("results.csv"), report::csv(rows))?;
    let mut charts = Vec::new();
    let knobs: Vec<Knob> = plan.varies.iter().map(|v| v.knob).collect();
    let scenario = plan.base.scenario.name;
    if knobs.contains(&Knob::Rate) {
        let path = out.join("rate.svg");
        super::chart::rate_sweep(&path, scenario, rows, capacity, plan.slo_p99_ms)?;
        charts.push(path);
    }
    let others: Vec<&Vary> = plan
        .varies
        .iter()
        .filter(|v| v.knob != Knob::Rate)
        .collect();
    if let [one] = others.as_slice() {
        if knobs.len() == 1 {
            let path = out.join("throughput.svg");
            super::chart::knob_sweep(&path, scenario, one, rows)?;
            charts.push(path);
        }
    }
    if let [x, y] = plan.varies.as_slice() {
        for (a, b) in heatmap_pairs(plan, rows) {
            let path = out.join(format!("heatmap-{a}-vs-{b}.svg"));
            super::chart::heatmap(&path, scenario, x, y, &a, &b, rows)?;
            charts.push(path);
        }
    }
    fs::write(
        out.join("report.md"),
        markdown(plan, meta, rows, capacity, &charts),
    )?;
    Ok(charts)
}

fn markdown(
    plan: &SweepPlan,
    meta: &Meta,
    rows: &[Row],
    capacity: &[Capacity],
    charts: &[PathBuf],
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let base = &plan.base;
    let _ = writeln!(out, "# rust-web-perf sweep: `{}`\n", base.scenario.name);
    let _ = writeln!(out, "From: {}.\n", base.scenario.source);
    let vary: Vec<String> = plan
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
        points(&plan.varies).len(),
        base.targets.len(),
        base.settings.duration_s,
        base.settings.warmup_s,
        base.settings.tool,
        plan.seed
    );
    let m = &meta.machine;
    let _ = writeln!(
        out,
        "Machine: {} CPUs ({}), {} GiB, {}. Started {}, finished {}.\n",
        m.cpus, m.cpu_model, m.memory_gib, m.os, meta.started, meta.finished
    );
    if !capacity.is_empty() {
        let _ = writeln!(
            out,
            "## Capacity at p99 ≤ {} ms\n\nThe highest offered rate a target answered without saturating (answered ≥ 95% of it, nothing left unsent) and with p99 within the objective, every lower rate included.\n\n| target | series | capacity req/s | first miss |\n|---|---|--:|---|",
            plan.slo_p99_ms
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
    }
    let _ = writeln!(out, "## Every point\n");
    for point in points(&plan.varies) {
        let label = point.label();
        let at: Vec<Row> = rows
            .iter()
            .filter(|r| r.point.as_ref() == Some(&point))
            .cloned()
            .collect();
        if at.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {label}\n");
        out += &report::table(&at, &meta.baseline);
        out.push('\n');
    }
    if !charts.is_empty() {
        out += "Charts: ";
        let links: Vec<String> = charts
            .iter()
            .filter_map(|c| c.file_name())
            .map(|name| {
                let name = name.to_string_lossy();
                format!("[{name}]({name})")
            })
            .collect();
        out += &links.join(", ");
        out += ".\n";
    } else if plan.varies.len() > 2 {
        out += "No chart: more than two knobs vary (the table above has every point).\n";
    }
    out
}

/// The tool of a sweep: oha whenever the rate varies (an open loop needs it).
pub fn tool_for(varies: &[Vary], asked: Option<ToolKind>, preset: ToolKind) -> Result<ToolKind> {
    let rate_varies = varies.iter().any(|v| v.knob == Knob::Rate);
    match (asked, rate_varies) {
        (Some(tool), true) if !tool.holds_a_rate() => {
            bail!("--vary rate needs an open-loop tool; {tool} cannot hold a rate (use --tool oha)")
        }
        (Some(tool), _) => Ok(tool),
        (None, true) => Ok(ToolKind::Oha),
        (None, false) => Ok(preset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_parses_knobs_and_refuses_bad_ones_by_name() {
        let vary = parse_vary("delay-ms=0,10,20").unwrap();
        assert_eq!(vary.knob, Knob::DelayMs);
        assert_eq!(vary.values, [0, 10, 20].map(Value::Number));
        assert_eq!(
            parse_vary("backend=db,upstream").unwrap().values,
            [Value::Word("db".into()), Value::Word("upstream".into())]
        );
        let unknown = parse_vary("threads=1,2").unwrap_err();
        assert!(
            unknown.contains("threads") && unknown.contains("delay-ms"),
            "{unknown}"
        );
        let empty = parse_vary("rate=").unwrap_err();
        assert!(empty.contains("rate") && empty.contains("empty"), "{empty}");
        let nan = parse_vary("connections=10,many").unwrap_err();
        assert!(nan.contains("connections") && nan.contains("many"), "{nan}");
        assert!(parse_vary("connections=0").is_err());
        assert!(parse_vary("via=tcp").unwrap_err().contains("via"));
        assert!(parse_vary("delay-ms").unwrap_err().contains("KNOB=V1"));
        let twice = [parse_vary("rate=1").unwrap(), parse_vary("rate=2").unwrap()];
        assert!(check_distinct(&twice).unwrap_err().contains("rate"));
    }

    #[test]
    fn points_are_the_cartesian_product_and_orders_are_reproducible() {
        let varies = [
            parse_vary("delay-ms=0,10").unwrap(),
            parse_vary("connections=19,100,400").unwrap(),
        ];
        let points = points(&varies);
        assert_eq!(points.len(), 6);
        assert_eq!(points[0].label(), "delay-ms=0 connections=19");
        assert_eq!(points[5].label(), "delay-ms=10 connections=400");
        let mut settings = super::super::scenario::find("grinberg").unwrap().settings;
        points[5].apply(&mut settings);
        assert_eq!((settings.delay_ms, settings.connections), (10, 400));
        let targets = Binary::ALL.to_vec();
        assert_eq!(order(&targets, 7, 3), order(&targets, 7, 3));
        let mut sorted = order(&targets, 7, 3);
        sorted.sort_by_key(|b| b.name());
        let mut all = targets.clone();
        all.sort_by_key(|b| b.name());
        assert_eq!(sorted, all);
        let json = serde_json::to_string(&points[5]).unwrap();
        assert_eq!(json, r#"{"delay-ms":10,"connections":400}"#);
        assert_eq!(serde_json::from_str::<Point>(&json).unwrap(), points[5]);
    }

    #[test]
    fn rate_sweeps_need_an_open_loop_tool() {
        let rate = [parse_vary("rate=100,200").unwrap()];
        assert_eq!(tool_for(&rate, None, ToolKind::Wrk).unwrap(), ToolKind::Oha);
        assert!(tool_for(&rate, Some(ToolKind::Wrk), ToolKind::Wrk).is_err());
        let delay = [parse_vary("delay-ms=1").unwrap()];
        assert_eq!(
            tool_for(&delay, None, ToolKind::Wrk).unwrap(),
            ToolKind::Wrk
        );
    }
}
