//! A run's charts: throughput bars with each row's bound marked, and latency as a percentile
//! spectrum per row (HdrHistogram's layout: x at −log10(1 − p), so that P90, P99 and P99.9
//! are one step apart each and the tail gets the room it deserves).

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::hover::Hover;
use super::{bar_chart, figure, legend_and_present, plot_error, COLORS};
use crate::model::row::Row;

/// Bars of 2xx req/s per row, with the Little's-law bound as a red tick above each bar that
/// has one; a row the client capped says so in its label.
pub fn throughput(path: &Path, scenario: &str, rows: &[Row]) -> Result<()> {
    let bars: Vec<(String, f64, Option<f64>)> = rows
        .iter()
        .map(|r| {
            let label = if r.client.client_bound {
                format!("{} (client-bound)", r.target)
            } else {
                r.target.clone()
            };
            (label, r.requests_per_sec, r.bound_rps)
        })
        .collect();
    bar_chart(
        path,
        &format!("{scenario}: 2xx requests/s (red: Little's-law bound)"),
        "requests/s",
        &bars,
    )
}

/// Where a percentile sits on the spectrum: −log10(1 − p), so 50% → 0.3, 90% → 1, 99% → 2.
pub fn spectrum_x(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).log10()
}

/// The percentile at a spectrum position, for the axis labels: 1 → "90%", 3 → "99.9%".
fn spectrum_label(x: f64) -> String {
    if x < 0.05 {
        return "0%".into();
    }
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.round() as i32 - 2).max(0) as usize;
    format!("{p:.decimals$}%")
}

/// A row's points on the spectrum: its percentiles up to what its count resolves, and the
/// max apart.
type Spectrum<'a> = (&'a Row, Vec<(f64, f64)>, Option<(f64, f64)>);

/// A row's spectrum: its `latency_spectrum` (P50 to P99.9 for a row without one) up to what
/// its count of responses resolves, and its max placed at 1 − 1/N.
fn spectrum_of(r: &Row) -> Spectrum<'_> {
    let m = &r.measurement;
    let responses = (m.ok_responses + m.errors.non_2xx).max(2) as f64;
    let resolved = responses.log10();
    let known: Vec<(f64, Option<f64>)> = if m.latency_spectrum.is_empty() {
        vec![
            (50.0, m.p50_ms),
            (90.0, m.p90_ms),
            (99.0, m.p99_ms),
            (99.9, m.p999_ms),
        ]
    } else {
        m.latency_spectrum
            .iter()
            .filter(|[p, _]| *p < 100.0)
            .map(|&[p, ms]| (p, Some(ms)))
            .collect()
    };
    let points = known
        .iter()
        .map(|&(p, v)| (spectrum_x(p), v))
        .filter(|&(x, _)| x <= resolved)
        .filter_map(|(x, v)| Some((x, v.filter(|v| *v > 0.0)?)))
        .collect();
    let max = m
        .max_ms
        .filter(|v| *v > 0.0)
        .map(|v| (resolved.max(3.3), v));
    (r, points, max)
}

/// Each row's whole latency spectrum as its tool reports it (`latency_spectrum`: from the
/// fastest through P99.99 where the count resolves it; P50 to P99.9 for rows without one) on a
/// percentile axis, log scale of milliseconds. The max is the 1 − 1/N percentile of N
/// responses, drawn as a hollow dot.
pub fn latency(path: &Path, scenario: &str, rows: &[Row]) -> Result<()> {
    let series: Vec<Spectrum> = rows.iter().filter(|r| r.is_ok()).map(spectrum_of).collect();
    let all = series
        .iter()
        .flat_map(|(_, points, max)| points.iter().map(|(_, v)| *v).chain(max.map(|(_, v)| v)));
    let (low, high) = all.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (low, high) = if high > 0.0 {
        (low * 0.8, high * 1.25)
    } else {
        (0.1, 10.0)
    };
    let right = series
        .iter()
        .filter_map(|(_, _, max)| max.map(|(x, _)| x))
        .fold(4.0f64, f64::max)
        .ceil()
        + 0.2;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{scenario}: latency by percentile (ms, log scale; hollow dot: max)"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..right, (low..high).log_scale().base(2.0))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_labels(right as usize + 1)
        .x_label_formatter(&|x| spectrum_label(*x))
        .y_label_formatter(&|ms| super::ms_label(*ms))
        .y_labels(12)
        .x_desc("percentile")
        .y_desc("milliseconds")
        .draw()
        .map_err(plot_error)?;
    let mut hover = Hover::default();
    for (index, (row, points, max)) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        for &(x, ms) in points {
            let text = format!(
                "{}: P{} {} ms",
                row.target,
                spectrum_label(x).trim_end_matches('%'),
                figure(ms)
            );
            hover.dot(&chart, (x, ms), text);
        }
        if let Some((x, ms)) = *max {
            hover.dot(
                &chart,
                (x, ms),
                format!("{}: max {} ms", row.target, figure(ms)),
            );
        }
        let mut line = points.clone();
        line.extend(*max);
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(row.target.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
            )
            .map_err(plot_error)?;
        chart
            .draw_series(
                max.iter()
                    .map(|&(x, y)| Circle::new((x, y), 5, color.stroke_width(2))),
            )
            .map_err(plot_error)?;
    }
    if series.is_empty() {
        return root.present().map_err(plot_error);
    }
    legend_and_present(&mut chart, &root)?;
    hover.write_into(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spectrum_gives_each_nine_one_step() {
        assert!((spectrum_x(90.0) - 1.0).abs() < 1e-9);
        assert!((spectrum_x(99.0) - 2.0).abs() < 1e-9);
        assert!((spectrum_x(99.9) - 3.0).abs() < 1e-9);
        assert!((spectrum_x(50.0) - std::f64::consts::LOG10_2).abs() < 1e-9);
        assert_eq!(spectrum_label(1.0), "90%");
        assert_eq!(spectrum_label(3.0), "99.9%");
        assert_eq!(spectrum_label(4.0), "99.99%");
        assert_eq!(spectrum_label(0.0), "0%");
    }
}
