//! The soak preset's part of `report.md`: each target's verdict (slopes, errors outside the
//! faults, recovery), what each fault did to each target, and `soak.svg`, the samples over
//! time (one panel per figure, a line per target, the fault windows shaded).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::chart::hover::Hover;
use super::chart::{color_for, figure, plot_error};
use super::table::dash;
use super::Section;
use crate::model::row::Row;
use crate::model::soak::{
    SoakReport, SoakSample, FLAT_FDS_PER_H, FLAT_RSS_MIB_PER_H, JUDGED_AFTER_S, RECOVERY_LIMIT_S,
    SAMPLE_EVERY_S, SETTLE_S,
};

/// The soak's section and chart.
pub struct SoakSection;

fn soaked(rows: &[Row]) -> Vec<(&Row, &SoakReport)> {
    rows.iter()
        .filter_map(|r| Some((r, r.beside.soak.as_ref()?)))
        .collect()
}

fn name(row: &Row) -> &str {
    row.binary.as_deref().unwrap_or(&row.target)
}

impl Section for SoakSection {
    fn markdown(&self, _scenario: &str, rows: &[Row]) -> String {
        let soaked = soaked(rows);
        let Some((_, first)) = soaked.first() else {
            return String::new();
        };
        let mut out = format!(
            "Soak: {:.0} min, every target at once, each at {} req/s from its own paced client on {} connections. Slopes are least-squares over the samples (every {SAMPLE_EVERY_S:.0} s) after the warm-up ({:.0} s) and outside the faults (from a fault's start to {SETTLE_S:.0} s after the service is back); flat is at most {FLAT_RSS_MIB_PER_H} MiB/h of RSS and {FLAT_FDS_PER_H} descriptors/h, judged over at least {:.0} min. An error is a fault's when it ends in the fault's window (from its start to {RECOVERY_LIMIT_S:.0} s after the service is back, or to the next fault); outside every window, the target's.\n\n",
            first.duration_s / 60.0,
            first.rate,
            first.connections,
            first.warmup_s,
            JUDGED_AFTER_S / 60.0,
        );
        out += "| target | 2xx | errors outside faults | RSS MiB first → last | RSS MiB/h | descriptors first → last | descriptors/h | threads max | DB sessions min–max | P99 per minute ms min–max | slowest recovery s | verdict |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n";
        for (row, soak) in &soaked {
            let _ = writeln!(out, "{}", verdict_line(row, soak));
        }
        out += "\n";
        if soaked.iter().any(|(_, s)| !s.faults.is_empty()) {
            out += "What each fault did: errors in its window, and the time from the service being back to the target's last error in it.\n\n| target | fault | at s | lasted s | errors | recovered after s |\n|---|---|--:|--:|--:|--:|\n";
            for (row, soak) in &soaked {
                for f in &soak.faults {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.0} | {:.1} | {} | {} |",
                        name(row),
                        f.kind.name(),
                        f.started_s,
                        f.back_s - f.started_s,
                        f.errors.describe(),
                        f.recovered_after_s
                            .map_or(format!("not within {RECOVERY_LIMIT_S:.0}"), |s| format!(
                                "{s:.1}"
                            ))
                    );
                }
            }
            out += "\n";
        }
        out += "![soak](soak.svg)\n\n";
        out
    }

    fn charts(&self, dir: &Path, scenario: &str, rows: &[Row]) -> Result<()> {
        let soaked = soaked(rows);
        if soaked.is_empty() {
            return Ok(());
        }
        chart(&dir.join("soak.svg"), scenario, &soaked)
    }
}

/// A target's line of the verdict table.
fn verdict_line(row: &Row, soak: &SoakReport) -> String {
    let first_last = |value: &dyn Fn(&SoakSample) -> Option<f64>, digits: usize| {
        let mut values = soak.samples.iter().filter_map(value);
        match (values.next(), values.last()) {
            (Some(a), Some(b)) => format!("{a:.digits$} → {b:.digits$}"),
            _ => "–".to_string(),
        }
    };
    let range = |values: Vec<f64>, digits: usize| {
        let min = values.iter().copied().reduce(f64::min);
        let max = values.iter().copied().reduce(f64::max);
        match (min, max) {
            (Some(a), Some(b)) => format!("{a:.digits$}–{b:.digits$}"),
            _ => "–".to_string(),
        }
    };
    let sessions = soak
        .samples
        .iter()
        .filter_map(|s| s.sessions.map(|n| n as f64));
    let p99 = soak.minutes.iter().filter_map(|m| m.p99_ms);
    let slowest = soak
        .faults
        .iter()
        .map(|f| f.recovered_after_s.unwrap_or(f64::INFINITY))
        .reduce(f64::max);
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        name(row),
        row.measurement.ok_responses,
        soak.errors_outside_faults.describe(),
        first_last(&|s| s.rss_mib, 1),
        dash(soak.rss_slope_mib_per_h, 2),
        first_last(&|s| s.fds.map(|n| n as f64), 0),
        dash(soak.fd_slope_per_h, 1),
        dash(row.threads_peak.map(|n| n as f64), 0),
        range(sessions.collect(), 0),
        range(p99.collect(), 1),
        match slowest {
            Some(s) if s.is_finite() => format!("{s:.1}"),
            Some(_) => "not recovered".to_string(),
            None => "–".to_string(),
        },
        soak.verdict.summary()
    )
}

/// One panel of the chart: its title and the figure of a sample it draws.
type Panel = (&'static str, fn(&SoakSample) -> Option<f64>);

const PANELS: [Panel; 5] = [
    ("resident memory, MiB", |s| s.rss_mib),
    ("open descriptors", |s| s.fds.map(|n| n as f64)),
    ("DB sessions", |s| s.sessions.map(|n| n as f64)),
    ("threads", |s| s.threads.map(|n| n as f64)),
    ("errors per sample", |s| Some(s.errors.total() as f64)),
];

/// The samples over time: a panel per figure, a line per target, the fault windows shaded,
/// each point's value on hover; and P99 per minute in the last panel.
fn chart(path: &Path, scenario: &str, soaked: &[(&Row, &SoakReport)]) -> Result<()> {
    let right = soaked
        .iter()
        .map(|(_, s)| s.duration_s / 60.0)
        .fold(1.0, f64::max);
    let root = SVGBackend::new(path, (900, 1250)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (title, body) = root.split_vertically(40);
    title
        .titled(
            &format!("{scenario}: samples over time (faults shaded)"),
            ("sans-serif", 18),
        )
        .map_err(plot_error)?;
    let areas = body.split_evenly((PANELS.len() + 1, 1));
    let mut hover = Hover::default();
    let windows: Vec<(f64, f64)> = soaked[0]
        .1
        .faults
        .iter()
        .map(|f| (f.started_s / 60.0, (f.back_s + 1.0) / 60.0))
        .collect();
    for (area, (label, value)) in areas.iter().zip(PANELS) {
        let lines: Vec<(String, Vec<(f64, f64)>)> = soaked
            .iter()
            .map(|(row, soak)| {
                let points = soak
                    .samples
                    .iter()
                    .filter_map(|s| Some((s.t_s / 60.0, value(s)?)))
                    .collect();
                (name(row).to_string(), points)
            })
            .collect();
        panel(area, label, right, &windows, &lines, &mut hover)?;
    }
    let p99: Vec<(String, Vec<(f64, f64)>)> = soaked
        .iter()
        .map(|(row, soak)| {
            let points = soak
                .minutes
                .iter()
                .filter_map(|m| Some((f64::from(m.minute) + 0.5, m.p99_ms?)))
                .collect();
            (name(row).to_string(), points)
        })
        .collect();
    panel(
        &areas[PANELS.len()],
        "P99 per minute, ms",
        right,
        &windows,
        &p99,
        &mut hover,
    )?;
    root.present().map_err(plot_error)?;
    hover.write_into(path)
}

/// One panel: a line per target over minutes, the windows shaded, the legend in the first.
fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    label: &str,
    right: f64,
    windows: &[(f64, f64)],
    lines: &[(String, Vec<(f64, f64)>)],
    hover: &mut Hover,
) -> Result<()> {
    let top = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .caption(label, ("sans-serif", 14))
        .build_cartesian_2d(0f64..right, 0f64..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(
            windows.iter().map(|(from, to)| {
                Rectangle::new([(*from, 0.0), (*to, top)], RED.mix(0.15).filled())
            }),
        )
        .map_err(plot_error)?;
    for (index, (target, points)) in lines.iter().enumerate() {
        let color = color_for(target, index);
        // A point on hover every minute or so, not every sample.
        let step = (points.len() / 60).max(1);
        for &(x, y) in points.iter().step_by(step) {
            hover.dot(
                &chart,
                (x, y),
                format!("{target} at {x:.1} min: {label} {}", figure(y)),
            );
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(target.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}
