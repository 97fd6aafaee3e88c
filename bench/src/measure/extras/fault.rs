//! Faults as measured phases (`--fault`): during the measured load, [`inject`] stops or
//! restarts one of the stack's own processes (its PostgreSQL cluster, its upstream nginx, its
//! pgbouncer), while a [`Probe`] (a second small client, at a fixed low rate, on its own
//! connections) records every answer and error on a 100 ms timeline. The load tool's totals
//! are kept as usual; the timeline and the recovery figures come from the probe, so they do
//! not depend on what the load tool can report. Each fault is undone before the round ends,
//! even when interrupted.
//!
//! This extra owns its figures' report section and its timeline chart.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use plotters::prelude::*;

use super::{Context, Extra, Running};
use crate::measure::paced::{Pace, Paced};
use crate::model::fault::{Fault, FaultKind, FaultReport, FaultTimes, ProbeEvent, Timeline};
use crate::model::row::{Round, Row};
use crate::output::chart::hover::Hover;
use crate::output::chart::{color_for, legend_and_present, plot_error};
use crate::output::table::dash;
use crate::output::Section;
use crate::stack::{Pgbouncer, Stack};

/// `--fault`: the faults of the round's settings, carried out during the measured load.
pub struct Faults;

impl Extra for Faults {
    fn start<'a>(&self, ctx: &Context<'a>) -> Option<Box<dyn Running + 'a>> {
        let s = ctx.settings;
        if s.faults.is_empty() {
            return None;
        }
        Some(Box::new(Faulting {
            stack: ctx.stack,
            pgbouncer: ctx.pgbouncer,
            interrupted: ctx.interrupted,
            faults: s.faults.clone(),
            duration_s: s.duration_s,
            addr: ctx.addr,
            path: s.path.path(),
            probe: None,
            times: Vec::new(),
        }))
    }
}

/// The faults of one round: the probe from the start of the measured load, the injector
/// during it.
struct Faulting<'a> {
    stack: &'a Stack,
    pgbouncer: Option<&'a Pgbouncer>,
    interrupted: &'a AtomicBool,
    faults: Vec<Fault>,
    duration_s: u32,
    addr: SocketAddr,
    path: &'static str,
    probe: Option<Probe>,
    times: Vec<FaultTimes>,
}

impl Running for Faulting<'_> {
    fn load_starts(&mut self, t0: Instant) {
        self.probe = Some(Probe::start(self.addr, self.path, t0));
    }

    fn during_load(&mut self, t0: Instant) {
        self.times = inject(
            self.stack,
            self.pgbouncer,
            &self.faults,
            self.duration_s,
            t0,
            self.interrupted,
        );
    }

    fn finish(self: Box<Self>, round: &mut Round) -> Result<()> {
        let (events, probe_cpu_s) = self.probe.map(Probe::finish).unwrap_or_default();
        if let Some(error) = self.times.iter().find_map(|t| t.error.clone()) {
            bail!("the fault could not be carried out: {error}");
        }
        if self.faults.iter().any(|f| f.kind.replaces_postgres()) {
            // Other PostgreSQL processes at the end than at the start.
            round.postgres_cpu_s = None;
        }
        round.beside.faults = self
            .times
            .iter()
            .map(|times| FaultReport::of(&times.fault, times, &events))
            .collect();
        let mut timeline = Timeline::of(&events, self.duration_s);
        timeline.probe_cpu_ms_per_request =
            (!events.is_empty()).then(|| probe_cpu_s * 1000.0 / events.len() as f64);
        round.beside.timeline = Some(timeline);
        Ok(())
    }
}

impl Section for Faults {
    fn markdown(&self, scenario: &str, rows: &[Row]) -> String {
        let faulted: Vec<&Row> = rows
            .iter()
            .filter(|r| !r.beside.faults.is_empty())
            .collect();
        if faulted.is_empty() {
            return String::new();
        }
        let mut out = String::from("Faults, from the probe (100 req/s, 10 a second on each of 10 connections of its own): errors while the fault lasted and after the service was back, the time from the service being back to the first 2xx and to 90% of the probe's 2xx rate before the fault, and the slowest probe request around it.\n\n");
        out += "| target | fault | at s | back after s | errors during | errors after | first 2xx ms | 90% ms | worst latency ms | survived |\n|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n";
        for r in faulted {
            for f in &r.beside.faults {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.1} | {:.2} | {} | {} | {} | {} | {:.0} | {} |",
                    r.binary.as_deref().unwrap_or(&r.target),
                    f.fault,
                    f.started_s,
                    f.back_s - f.started_s,
                    f.errors_during,
                    f.errors_after,
                    dash(f.first_2xx_after_back_ms, 0),
                    f.recovered_90_after_back_ms
                        .map_or("not within the load".to_string(), |ms| format!("{ms:.0}")),
                    f.worst_latency_ms,
                    if f.target_survived { "yes" } else { "no" }
                );
            }
        }
        out += "\n";
        for (file, _, _) in timelines(scenario, rows) {
            let _ = writeln!(out, "![timeline]({file})\n");
        }
        out
    }

    fn charts(&self, dir: &Path, scenario: &str, rows: &[Row]) -> Result<()> {
        for (file, title, group) in timelines(scenario, rows) {
            timeline(&dir.join(file), &title, &group)?;
        }
        Ok(())
    }
}

/// The timeline charts of a run with faults: one per group of rows that share their faults,
/// named after the group's first fault (`timeline-db-restart.svg`), or `timeline.svg` when
/// the whole run has the same ones.
fn timelines<'a>(scenario: &str, rows: &'a [Row]) -> Vec<(String, String, Vec<&'a Row>)> {
    let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
    for row in rows.iter().filter(|r| r.beside.timeline.is_some()) {
        match groups.iter_mut().find(|(g, _)| *g == row.group) {
            Some((_, members)) => members.push(row),
            None => groups.push((row.group.clone(), vec![row])),
        }
    }
    let single = groups.len() == 1;
    groups
        .into_iter()
        .map(|(group, members)| {
            let kind = members[0]
                .beside
                .faults
                .first()
                .map_or("fault", |f| f.kind.name());
            let file = if single {
                "timeline.svg".to_string()
            } else {
                format!("timeline-{kind}.svg")
            };
            let faults: Vec<String> = members[0]
                .beside
                .faults
                .iter()
                .map(|f| f.fault.clone())
                .collect();
            let title = match group.as_str() {
                "" => format!("{scenario}, {}", faults.join(", ")),
                group => format!("{scenario}, {group}"),
            };
            (file, title, members)
        })
        .collect()
}
/// A fault's timeline: the probe's 2xx per second (per 100 ms bucket) over the measured load,
/// one line per row, the fault windows shaded, and a mark below the axis for every bucket in
/// which a row's probe saw errors (one lane per row).
fn timeline(path: &Path, title: &str, rows: &[&Row]) -> Result<()> {
    let with: Vec<(&Row, &Timeline)> = rows
        .iter()
        .filter_map(|r| Some((*r, r.beside.timeline.as_ref()?)))
        .collect();
    let per_s = |t: &Timeline, n: u32| f64::from(n) * 1000.0 / f64::from(t.bucket_ms);
    let right = with
        .iter()
        .map(|(_, t)| t.ok.len() as f64 * f64::from(t.bucket_ms) / 1000.0)
        .fold(1.0, f64::max);
    let top = with
        .iter()
        .flat_map(|(_, t)| t.ok.iter().map(move |n| per_s(t, *n)))
        .fold(10.0, f64::max)
        * 1.15;
    let lane = top * 0.05;
    let bottom = -lane * (with.len() as f64 + 1.0);
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{title}: probe 2xx/s (fault shaded; errors marked below the axis)"),
            ("sans-serif", 17),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..right, bottom..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the measured load")
        .y_desc("probe 2xx per second")
        .y_label_formatter(&|v| {
            if *v < 0.0 {
                String::new()
            } else {
                format!("{v:.0}")
            }
        })
        .draw()
        .map_err(plot_error)?;
    // One shaded window per fault: from its earliest start to its latest return over the rows.
    let mut windows: Vec<(f64, f64)> = Vec::new();
    for (row, _) in &with {
        for (i, f) in row.beside.faults.iter().enumerate() {
            match windows.get_mut(i) {
                Some(w) => *w = (w.0.min(f.started_s), w.1.max(f.back_s)),
                None => windows.push((f.started_s, f.back_s)),
            }
        }
    }
    chart
        .draw_series(windows.iter().map(|(from, to)| {
            Rectangle::new(
                [(*from, 0.0), (to.max(from + 0.05), top)],
                RED.mix(0.12).filled(),
            )
        }))
        .map_err(plot_error)?;
    let mut hover = Hover::default();
    for (index, (row, t)) in with.iter().enumerate() {
        let color = color_for(&row.target, index);
        let seconds = |i: usize| (i as f64 + 0.5) * f64::from(t.bucket_ms) / 1000.0;
        let points: Vec<(f64, f64)> =
            t.ok.iter()
                .enumerate()
                .map(|(i, n)| (seconds(i), per_s(t, *n)))
                .collect();
        let label = row.binary.clone().unwrap_or_else(|| row.target.clone());
        for (i, &(x, y)) in points.iter().enumerate() {
            let errors = t.errors.get(i).copied().unwrap_or(0);
            let text = format!("{label} at {x:.1} s: {y:.0} 2xx/s, {errors} errors");
            hover.dot(&chart, (x, y), text);
        }
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        let y = -lane * (index as f64 + 1.0);
        chart
            .draw_series(
                t.errors
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, _)| Circle::new((seconds(i), y), 3, color.filled())),
            )
            .map_err(plot_error)?;
    }
    legend_and_present(&mut chart, &root)?;
    hover.write_into(path)
}

/// Carries out `faults` in order of their start, measured from `t0` (the start of the
/// measured load), and returns their times in that order. Each one is undone before the
/// next, and before returning even when `interrupted` is set.
pub fn inject(
    stack: &Stack,
    pgbouncer: Option<&Pgbouncer>,
    faults: &[Fault],
    duration_s: u32,
    t0: Instant,
    interrupted: &AtomicBool,
) -> Vec<FaultTimes> {
    let mut order: Vec<&Fault> = faults.iter().collect();
    order.sort_by(|a, b| a.at(duration_s).total_cmp(&b.at(duration_s)));
    let since = |t: Instant| t.duration_since(t0).as_secs_f64();
    // Sleeps until `until`, or less when interrupted.
    let sleep_until = |until: Instant| {
        while Instant::now() < until && !interrupted.load(Ordering::SeqCst) {
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
    };
    let mut times = Vec::new();
    for fault in order {
        sleep_until(t0 + Duration::from_secs_f64(fault.at(duration_s)));
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        let started = Instant::now();
        let hold = started + Duration::from_secs_f64(fault.for_s);
        let result = match fault.kind {
            FaultKind::DbRestart => stack.postgres.restart(),
            FaultKind::DbStop => stack.postgres.stop().and_then(|()| {
                sleep_until(hold);
                stack.postgres.start_again()
            }),
            FaultKind::UpstreamStop => {
                stack.upstream.stop();
                sleep_until(hold);
                stack.upstream.start_again()
            }
            FaultKind::PoolDrain => match pgbouncer {
                Some(bouncer) => {
                    let drained = bouncer.drain();
                    sleep_until(hold);
                    drained.and(bouncer.resume())
                }
                None => Err(anyhow::anyhow!("no pgbouncer to drain")),
            },
        };
        times.push(FaultTimes {
            fault: fault.clone(),
            started_s: since(started),
            back_s: since(Instant::now()),
            error: result.err().map(|e| format!("{fault}: {e:#}")),
        });
    }
    times
}

/// The probe's connections and its total rate: low, so that it measures the target without
/// loading it.
pub const PROBE_CONNECTIONS: usize = 10;
pub const PROBE_RATE: u32 = 100;
/// A probe request that takes longer is a timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The probe: a paced client of `PROBE_CONNECTIONS` threads at `PROBE_RATE` in all, keeping
/// every answer.
pub struct Probe(Paced<Vec<ProbeEvent>>);

impl Probe {
    pub fn start(addr: SocketAddr, path: &str, t0: Instant) -> Probe {
        let pace = Pace {
            rate: PROBE_RATE,
            connections: PROBE_CONNECTIONS,
            timeout: PROBE_TIMEOUT,
            paths: vec![path.to_string()],
        };
        Probe(Paced::start(addr, &pace, t0, Vec::new))
    }

    /// Stops the probe; every request it made, in order of start, and the CPU seconds its
    /// threads used (the probe's own cost, beside the load tool's).
    pub fn finish(self) -> (Vec<ProbeEvent>, f64) {
        let (threads, cpu_s) = self.0.finish();
        let mut events: Vec<ProbeEvent> = threads.into_iter().flatten().collect();
        events.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
        (events, cpu_s)
    }
}
