//! The SVG charts, drawn with plotters: throughput bars with each row's bound marked, and
//! latency as a percentile spectrum per row (HdrHistogram's layout: x at −log10(1 − p), so
//! that P90, P99 and P99.9 are one step apart each and the tail gets the room it deserves).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::sweep::{Capacity, Vary};
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

/// The legend in the upper left, then the file written.
fn legend_and_present<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

/// Bars of 2xx req/s per row, with the Little's-law bound as a red tick above each bar that
/// has one.
pub fn throughput(path: &Path, scenario: &str, rows: &[Row]) -> Result<()> {
    let bars: Vec<(String, f64, Option<f64>)> = rows
        .iter()
        .map(|r| (r.target.clone(), r.requests_per_sec, r.bound_rps))
        .collect();
    bar_chart(
        path,
        &format!("{scenario}: 2xx requests/s (red: Little's-law bound)"),
        "requests/s",
        &bars,
    )
}

/// One bar per (label, value), and the bound, when there is one, as a red tick across it.
fn bar_chart(
    path: &Path,
    caption: &str,
    y_desc: &str,
    bars: &[(String, f64, Option<f64>)],
) -> Result<()> {
    let n = bars.len().max(1);
    let top = bars
        .iter()
        .flat_map(|(_, value, bound)| [Some(*value), *bound])
        .flatten()
        .fold(1e-3f64, f64::max)
        * 1.1;
    let width = (160 + 110 * n as u32).max(640);
    let root = SVGBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let labels: Vec<String> = bars.iter().map(|(label, _, _)| label.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        // A segmented a..b has a segment for every value of a..=b: n bars need 0..n-1.
        .build_cartesian_2d((0..n as i32 - 1).into_segmented(), 0f64..top)
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
        .y_desc(y_desc)
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
                    bars.iter()
                        .enumerate()
                        .map(|(i, (_, value, _))| (i as i32, *value)),
                ),
        )
        .map_err(plot_error)?;
    chart
        .draw_series(bars.iter().enumerate().filter_map(|(i, (_, _, bound))| {
            let bound = (*bound)?;
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

/// A row's points on the spectrum: P50 to P99.9, and the max apart.
type Spectrum<'a> = (&'a Row, Vec<(f64, f64)>, Option<(f64, f64)>);

/// Each row's P50, P90, P99, P99.9 and max on a percentile spectrum (log scale of
/// milliseconds). The max is the 1 − 1/N percentile of N responses, drawn as a hollow dot.
pub fn latency(path: &Path, scenario: &str, rows: &[Row]) -> Result<()> {
    let series: Vec<Spectrum> = rows
        .iter()
        .filter(|r| r.is_ok())
        .map(|r| {
            let m = &r.measurement;
            let points = [
                (50.0, m.p50_ms),
                (90.0, m.p90_ms),
                (99.0, m.p99_ms),
                (99.9, m.p999_ms),
            ]
            .iter()
            .filter_map(|(p, v)| Some((spectrum_x(*p), v.filter(|v| *v > 0.0)?)))
            .collect();
            let responses = (m.ok_responses + m.errors.non_2xx).max(2) as f64;
            let max = m
                .max_ms
                .filter(|v| *v > 0.0)
                .map(|v| (responses.log10().max(3.3), v));
            (r, points, max)
        })
        .collect();
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
        .y_label_formatter(&|ms| format!("{ms:.0}"))
        .y_labels(12)
        .x_desc("percentile")
        .y_desc("milliseconds")
        .draw()
        .map_err(plot_error)?;
    for (index, (row, points, max)) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
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
    legend_and_present(&mut chart, &root)
}

/// A target's colour, the same in every sweep chart: by its place in `Binary::ALL`.
fn color_for(target: &str, fallback: usize) -> RGBColor {
    let index = shared::Binary::ALL
        .iter()
        .position(|b| target.starts_with(b.name()))
        .unwrap_or(fallback);
    COLORS[index % COLORS.len()]
}

/// The rows of one target, in the order the targets first appear.
fn by_target(rows: &[Row]) -> Vec<(String, Vec<&Row>)> {
    let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|(t, _)| *t == row.target) {
            Some((_, group)) => group.push(row),
            None => groups.push((row.target.clone(), vec![row])),
        }
    }
    groups
}

/// One knob swept: requests/s against the knob's values, one line per target, and each
/// target's bound as a dashed line of the same colour.
pub fn knob_sweep(path: &Path, scenario: &str, vary: &Vary, rows: &[Row]) -> Result<()> {
    let labels: Vec<String> = vary.values.iter().map(|v| v.to_string()).collect();
    let position = |row: &Row| {
        let value = row.point.as_ref()?.get(vary.knob)?;
        vary.values
            .iter()
            .position(|v| v == value)
            .map(|i| i as f64)
    };
    let top = rows
        .iter()
        .flat_map(|r| [Some(r.requests_per_sec), r.bound_rps])
        .flatten()
        .fold(1.0f64, f64::max)
        * 1.1;
    let right = (labels.len().max(2) - 1) as f64;
    let root = SVGBackend::new(path, (820, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{scenario}: 2xx requests/s by {} (dashed: each target's bound)",
                vary.knob
            ),
            ("sans-serif", 18),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2f64..right + 0.2, 0f64..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_labels(labels.len() * 4)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .disable_x_mesh()
        .x_desc(vary.knob.name())
        .y_desc("requests/s")
        .draw()
        .map_err(plot_error)?;
    for (index, (target, group)) in by_target(rows).into_iter().enumerate() {
        let color = color_for(&target, index);
        let mut points: Vec<(f64, f64)> = group
            .iter()
            .filter(|r| r.is_ok())
            .filter_map(|r| Some((position(r)?, r.requests_per_sec)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut bounds: Vec<(f64, f64)> = group
            .iter()
            .filter_map(|r| Some((position(r)?, r.bound_rps?)))
            .collect();
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(target)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(plot_error)?;
        chart
            .draw_series(DashedLineSeries::new(bounds, 6, 4, color.stroke_width(1)))
            .map_err(plot_error)?;
    }
    legend_and_present(&mut chart, &root)
}

/// A rate sweep: p50 (thin, dashed) and p99 (thick) against the offered rate, log scale of
/// milliseconds, one colour per target; saturated points hollow; the objective as a
/// horizontal line; each target's capacity as a triangle on it.
pub fn rate_sweep(
    path: &Path,
    scenario: &str,
    rows: &[Row],
    capacity: &[Capacity],
    slo_p99_ms: f64,
) -> Result<()> {
    let rated: Vec<&Row> = rows
        .iter()
        .filter(|r| r.requested_rate.is_some() && r.is_ok())
        .collect();
    let right = rated
        .iter()
        .filter_map(|r| r.requested_rate)
        .max()
        .unwrap_or(1) as f64
        * 1.05;
    let values = rated
        .iter()
        .flat_map(|r| [r.measurement.p50_ms, r.measurement.p99_ms]);
    let (low, high) = values
        .flatten()
        .filter(|v| *v > 0.0)
        .chain([slo_p99_ms])
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let root = SVGBackend::new(path, (860, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{scenario}: latency by offered rate (thick p99, dashed p50; hollow: saturated)"
            ),
            ("sans-serif", 17),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..right, (low * 0.8..high * 1.25).log_scale().base(2.0))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("offered requests/s")
        .y_desc("milliseconds")
        .y_label_formatter(&|ms| format!("{ms:.0}"))
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, slo_p99_ms), (right, slo_p99_ms)],
            8,
            5,
            BLACK.stroke_width(1),
        ))
        .map_err(plot_error)?
        .label(format!("objective: p99 ≤ {slo_p99_ms} ms"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    let owned: Vec<Row> = rated.iter().map(|r| (*r).clone()).collect();
    for (index, (target, group)) in by_target(&owned).into_iter().enumerate() {
        let color = color_for(&target, index);
        let mut group = group;
        group.sort_by_key(|r| r.requested_rate);
        let at =
            |r: &Row, v: Option<f64>| Some((f64::from(r.requested_rate?), v.filter(|v| *v > 0.0)?));
        let p99: Vec<(f64, f64)> = group
            .iter()
            .filter_map(|r| at(r, r.measurement.p99_ms))
            .collect();
        let p50: Vec<(f64, f64)> = group
            .iter()
            .filter_map(|r| at(r, r.measurement.p50_ms))
            .collect();
        chart
            .draw_series(LineSeries::new(p99, color.stroke_width(3)))
            .map_err(plot_error)?
            .label(target.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        chart
            .draw_series(DashedLineSeries::new(p50, 5, 4, color.stroke_width(1)))
            .map_err(plot_error)?;
        chart
            .draw_series(group.iter().filter_map(|r| {
                let point = at(r, r.measurement.p99_ms)?;
                Some(if r.saturated == Some(true) {
                    Circle::new(point, 5, color.stroke_width(2))
                } else {
                    Circle::new(point, 4, color.filled())
                })
            }))
            .map_err(plot_error)?;
        chart
            .draw_series(
                capacity
                    .iter()
                    .filter(|c| c.target == target)
                    .filter_map(|c| c.capacity_rps)
                    .map(|rate| {
                        TriangleMarker::new((f64::from(rate), slo_p99_ms), 8, color.filled())
                    }),
            )
            .map_err(plot_error)?;
    }
    legend_and_present(&mut chart, &root)
}

/// Which side a ratio A/B is on: B ahead (< 1.0), a tie to 1.3, A clearly ahead (≥ 1.3).
pub fn verdict(ratio: f64) -> u8 {
    if ratio < 1.0 {
        0
    } else if ratio < 1.3 {
        1
    } else {
        2
    }
}

/// A diverging colour centred on 1.0: blue where B is ahead, white at 1.0, red where A is;
/// full strength at 4× either way.
fn diverging(ratio: f64) -> RGBColor {
    let t = (ratio.max(1e-3).log2() / 2.0).clamp(-1.0, 1.0);
    let fade = |full: u8| (255.0 - (255.0 - f64::from(full)) * t.abs()) as u8;
    if t >= 0.0 {
        RGBColor(fade(203), fade(24), fade(29))
    } else {
        RGBColor(fade(33), fade(102), fade(172))
    }
}

/// Two knobs swept: a heatmap of A's throughput over B's at every point, each cell annotated
/// with the ratio, and the cells on the border of a verdict (ratio crossing 1.0 or 1.3)
/// outlined: where the benchmark's conclusion flips.
pub fn heatmap(
    path: &Path,
    scenario: &str,
    x: &Vary,
    y: &Vary,
    a: &str,
    b: &str,
    rows: &[Row],
) -> Result<()> {
    let rps = |target: &str, xv: &super::sweep::Value, yv: &super::sweep::Value| {
        rows.iter()
            .find(|r| {
                r.target == target
                    && r.is_ok()
                    && r.point.as_ref().and_then(|p| p.get(x.knob)) == Some(xv)
                    && r.point.as_ref().and_then(|p| p.get(y.knob)) == Some(yv)
            })
            .map(|r| r.requests_per_sec)
    };
    let (nx, ny) = (x.values.len(), y.values.len());
    let ratios: Vec<Vec<Option<f64>>> = y
        .values
        .iter()
        .map(|yv| {
            x.values
                .iter()
                .map(|xv| match (rps(a, xv, yv), rps(b, xv, yv)) {
                    (Some(ra), Some(rb)) if rb > 0.0 => Some(ra / rb),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let size = (
        (160 + 110 * nx as u32).max(760),
        (150 + 70 * ny as u32).max(360),
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let xs: Vec<String> = x.values.iter().map(|v| v.to_string()).collect();
    let ys: Vec<String> = y.values.iter().map(|v| v.to_string()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{scenario}: {a} / {b} throughput (outlined: the verdict flips)"),
            ("sans-serif", 16),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)
        .map_err(plot_error)?;
    let label = |values: &[String], v: f64| {
        let i = v - 0.5;
        if (i - i.round()).abs() < 1e-6 && i >= 0.0 {
            values.get(i.round() as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(nx * 2 + 1)
        .y_labels(ny * 2 + 1)
        .x_label_formatter(&|v| label(&xs, *v))
        .y_label_formatter(&|v| label(&ys, *v))
        .x_desc(x.knob.name())
        .y_desc(y.knob.name())
        .draw()
        .map_err(plot_error)?;
    for (j, row) in ratios.iter().enumerate() {
        for (i, ratio) in row.iter().enumerate() {
            let (x0, y0) = (i as f64, j as f64);
            let fill = ratio.map_or(RGBColor(220, 220, 220), diverging);
            chart
                .draw_series([Rectangle::new(
                    [(x0 + 0.02, y0 + 0.02), (x0 + 0.98, y0 + 0.98)],
                    fill.filled(),
                )])
                .map_err(plot_error)?;
            let text = ratio.map_or("–".to_string(), |r| format!("{r:.2}"));
            chart
                .draw_series([Text::new(
                    text,
                    (x0 + 0.38, y0 + 0.55),
                    ("sans-serif", 16).into_font(),
                )])
                .map_err(plot_error)?;
            let Some(here) = ratio.map(verdict) else {
                continue;
            };
            let neighbours = [(0i64, 1i64), (0, -1), (1, 0), (-1, 0)];
            let flips = neighbours.iter().any(|(di, dj)| {
                let (ni, nj) = (i as i64 + di, j as i64 + dj);
                ni >= 0
                    && nj >= 0
                    && ratios
                        .get(nj as usize)
                        .and_then(|r| r.get(ni as usize))
                        .copied()
                        .flatten()
                        .is_some_and(|other| verdict(other) != here)
            });
            if flips {
                chart
                    .draw_series([Rectangle::new(
                        [(x0 + 0.04, y0 + 0.04), (x0 + 0.96, y0 + 0.96)],
                        BLACK.stroke_width(3),
                    )])
                    .map_err(plot_error)?;
            }
        }
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

/// A fault's timeline: the probe's 2xx per second (per 100 ms bucket) over the measured load,
/// one line per row, the fault windows shaded, and a mark below the axis for every bucket in
/// which a row's probe saw errors (one lane per row).
pub fn timeline(path: &Path, title: &str, rows: &[&Row]) -> Result<()> {
    let with: Vec<(&Row, &super::fault::Timeline)> = rows
        .iter()
        .filter_map(|r| Some((*r, r.timeline.as_ref()?)))
        .collect();
    let per_s = |t: &super::fault::Timeline, n: u32| f64::from(n) * 1000.0 / f64::from(t.bucket_ms);
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
        for (i, f) in row.faults.iter().enumerate() {
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
    for (index, (row, t)) in with.iter().enumerate() {
        let color = color_for(&row.target, index);
        let seconds = |i: usize| (i as f64 + 0.5) * f64::from(t.bucket_ms) / 1000.0;
        let points: Vec<(f64, f64)> =
            t.ok.iter()
                .enumerate()
                .map(|(i, n)| (seconds(i), per_s(t, *n)))
                .collect();
        let label = row.binary.clone().unwrap_or_else(|| row.target.clone());
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
    legend_and_present(&mut chart, &root)
}

/// `bench client`: wall time per client model, with each model's bound as a red tick.
pub fn client_wall(
    path: &Path,
    plan: &super::clientside::ClientPlan,
    rows: &[super::clientside::ClientRow],
) -> Result<()> {
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

    #[test]
    fn verdicts_split_at_one_and_one_point_three() {
        assert_eq!([0.9, 1.0, 1.29, 1.3, 5.0].map(verdict), [0, 1, 1, 2, 2]);
        assert_eq!(diverging(1.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(4.0), RGBColor(203, 24, 29));
        assert_eq!(diverging(0.25), RGBColor(33, 102, 172));
    }
}
