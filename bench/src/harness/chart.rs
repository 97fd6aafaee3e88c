//! The SVG charts, drawn with plotters: throughput bars with each row's bound marked, and
//! latency percentile curves per row.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::Row;

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("cannot draw the chart: {e:?}")
}

/// Bars of 2xx req/s per row, with the Little's-law bound as a red tick above each bar that
/// has one.
pub fn throughput(path: &Path, scenario: &str, rows: &[Row]) -> Result<()> {
    let n = rows.len().max(1);
    let top = rows
        .iter()
        .flat_map(|r| [Some(r.requests_per_sec), r.bound_rps])
        .flatten()
        .fold(1.0f64, f64::max)
        * 1.1;
    let width = (160 + 110 * n as u32).max(640);
    let root = SVGBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let labels: Vec<String> = rows.iter().map(|r| r.target.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{scenario}: 2xx requests/s (red: Little's-law bound)"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n as i32).into_segmented(), 0f64..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(n)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc("requests/s")
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .margin(12)
                .style_func(|x, _| {
                    let i = match x {
                        SegmentValue::Exact(i) | SegmentValue::CenterOf(i) => *i,
                        SegmentValue::Last => 0,
                    };
                    COLORS[i as usize % COLORS.len()].filled()
                })
                .data(
                    rows.iter()
                        .enumerate()
                        .map(|(i, r)| (i as i32, r.requests_per_sec)),
                ),
        )
        .map_err(plot_error)?;
    chart
        .draw_series(rows.iter().enumerate().filter_map(|(i, r)| {
            let bound = r.bound_rps?;
            let i = i as i32;
            Some(PathElement::new(
                vec![
                    (SegmentValue::Exact(i), bound),
                    (SegmentValue::Exact(i + 1), bound),
                ],
                RED.stroke_width(3),
            ))
        }))
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

/// One line per row through P50, P90, P99, P99.9 and max, on a log scale of milliseconds.
pub fn latency(path: &Path, scenario: &str, rows: &[Row]) -> Result<()> {
    const POINTS: [&str; 5] = ["P50", "P90", "P99", "P99.9", "max"];
    let series: Vec<(&Row, Vec<(i32, f64)>)> = rows
        .iter()
        .filter(|r| r.is_ok())
        .map(|r| {
            let m = &r.measurement;
            let values = [m.p50_ms, m.p90_ms, m.p99_ms, m.p999_ms, m.max_ms];
            let points = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i as i32, v.filter(|v| *v > 0.0)?)))
                .collect();
            (r, points)
        })
        .collect();
    let all = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v));
    let (low, high) = all.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (low, high) = if high > 0.0 {
        (low * 0.8, high * 1.25)
    } else {
        (0.1, 10.0)
    };
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{scenario}: latency percentiles (ms, log scale)"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0i32..4i32, (low..high).log_scale().base(2.0))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|i| POINTS.get(*i as usize).unwrap_or(&"").to_string())
        .y_label_formatter(&|ms| format!("{ms:.0}"))
        .y_labels(12)
        .y_desc("milliseconds")
        .draw()
        .map_err(plot_error)?;
    for (index, (row, points)) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(row.target.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(plot_error)?;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}
