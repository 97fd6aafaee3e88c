//! A sweep's charts: one knob as lines per target with their bounds, a rate sweep's latency
//! curves with the objective and each capacity, and two knobs as a heatmap of the verdict.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::hover::Hover;
use super::{by_target, color_for, figure, legend_and_present, plot_error};
use crate::model::capacity::Capacity;
use crate::model::knob::{Value, Vary};
use crate::model::row::Row;

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
                "{scenario}: 2xx requests/s by {} (dashed: each target's bound; hollow: client-bound)",
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
    let mut hover = Hover::default();
    for (index, (target, group)) in by_target(rows).into_iter().enumerate() {
        let color = color_for(&target, index);
        for r in group.iter().filter(|r| r.is_ok()) {
            if let (Some(x), Some(text)) = (position(r), knob_tip(&target, vary, r)) {
                hover.dot(&chart, (x, r.requests_per_sec), text);
            }
        }
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
        // A client-bound point is hollow: the load tool may have set its number.
        chart
            .draw_series(group.iter().filter(|r| r.is_ok()).filter_map(|r| {
                let point = (position(r)?, r.requests_per_sec);
                Some(if r.client.client_bound {
                    Circle::new(point, 5, color.stroke_width(2))
                } else {
                    Circle::new(point, 3, color.filled())
                })
            }))
            .map_err(plot_error)?;
        chart
            .draw_series(DashedLineSeries::new(bounds, 6, 4, color.stroke_width(1)))
            .map_err(plot_error)?;
    }
    legend_and_present(&mut chart, &root)?;
    hover.write_into(path)
}

/// A point's value on hover in a knob's chart.
fn knob_tip(target: &str, vary: &Vary, r: &Row) -> Option<String> {
    let value = r.point.as_ref()?.get(vary.knob)?;
    let bound = r
        .bound_rps
        .map_or(String::new(), |b| format!(", bound {}", figure(b)));
    Some(format!(
        "{target} at {}={value}: {} req/s{bound}",
        vary.knob,
        figure(r.requests_per_sec)
    ))
}

/// A point's values on hover in a rate sweep's chart.
fn rate_tip(target: &str, r: &Row) -> String {
    let m = &r.measurement;
    format!(
        "{target} offered {} req/s: served {}, p50 {} ms, p99 {} ms",
        r.requested_rate.unwrap_or(0),
        figure(r.requests_per_sec),
        m.p50_ms.map_or("–".into(), figure),
        m.p99_ms.map_or("–".into(), figure),
    )
}

/// Each point's values on hover in a rate sweep's chart, at its p99 and its p50.
fn rate_marks<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    hover: &mut Hover,
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    target: &str,
    group: &[&Row],
) {
    for r in group {
        let rate = r.requested_rate.map(f64::from);
        for value in [r.measurement.p99_ms, r.measurement.p50_ms] {
            if let Some(point) = rate.zip(value.filter(|v| *v > 0.0)) {
                hover.dot(chart, point, rate_tip(target, r));
            }
        }
    }
}

/// A rate sweep's axes: the highest offered rate (with a margin), and the lowest and highest
/// latency drawn (the objective included).
fn rate_axes(rated: &[&Row], slo_p99_ms: f64) -> (f64, f64, f64) {
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
    (right, low, high)
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
    let (right, low, high) = rate_axes(&rated, slo_p99_ms);
    let root = SVGBackend::new(path, (860, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{scenario}: latency by offered rate (thick p99, dashed p50; hollow: saturated or client-bound)"
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
        .y_label_formatter(&|ms| super::ms_label(*ms))
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
    let mut hover = Hover::default();
    for (index, (target, group)) in by_target(&owned).into_iter().enumerate() {
        let (color, mut group) = (color_for(&target, index), group);
        group.sort_by_key(|r| r.requested_rate);
        let at =
            |r: &Row, v: Option<f64>| Some((f64::from(r.requested_rate?), v.filter(|v| *v > 0.0)?));
        rate_marks(&mut hover, &chart, &target, &group);
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
                Some(if r.saturated == Some(true) || r.client.client_bound {
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
    legend_and_present(&mut chart, &root)?;
    hover.write_into(path)
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

/// A's throughput over B's at each point of two knobs: one row per value of `y`, one column
/// per value of `x`; empty where either has no ok row.
fn ratios(x: &Vary, y: &Vary, a: &str, b: &str, rows: &[Row]) -> Vec<Vec<Option<f64>>> {
    let rps = |target: &str, xv: &Value, yv: &Value| {
        rows.iter()
            .find(|r| {
                r.target == target
                    && r.is_ok()
                    && r.point.as_ref().and_then(|p| p.get(x.knob)) == Some(xv)
                    && r.point.as_ref().and_then(|p| p.get(y.knob)) == Some(yv)
            })
            .map(|r| r.requests_per_sec)
    };
    y.values
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
        .collect()
}

/// Whether A's or B's row at each point of two knobs was client-bound (laid out as
/// [`ratios`]): such a cell's ratio compares the load tool too, and the map says so.
fn capped(x: &Vary, y: &Vary, a: &str, b: &str, rows: &[Row]) -> Vec<Vec<bool>> {
    let at = |xv: &Value, yv: &Value| {
        rows.iter().any(|r| {
            (r.target == a || r.target == b)
                && r.client.client_bound
                && r.point.as_ref().and_then(|p| p.get(x.knob)) == Some(xv)
                && r.point.as_ref().and_then(|p| p.get(y.knob)) == Some(yv)
        })
    };
    y.values
        .iter()
        .map(|yv| x.values.iter().map(|xv| at(xv, yv)).collect())
        .collect()
}

/// Whether the verdict at cell (`i`, `j`) differs from a neighbour's: the cell is on the
/// border where the verdict flips.
fn flips(ratios: &[Vec<Option<f64>>], i: usize, j: usize) -> bool {
    let Some(here) = ratios[j][i].map(verdict) else {
        return false;
    };
    let neighbours = [(0i64, 1i64), (0, -1), (1, 0), (-1, 0)];
    neighbours.iter().any(|(di, dj)| {
        let (ni, nj) = (i as i64 + di, j as i64 + dj);
        ni >= 0
            && nj >= 0
            && ratios
                .get(nj as usize)
                .and_then(|r| r.get(ni as usize))
                .copied()
                .flatten()
                .is_some_and(|other| verdict(other) != here)
    })
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
    let ratios = ratios(x, y, a, b, rows);
    let capped = capped(x, y, a, b, rows);
    let (nx, ny) = (x.values.len(), y.values.len());
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
            format!(
                "{scenario}: {a} / {b} throughput (outlined: the verdict flips; c: client-bound)"
            ),
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
    let mut hover = Hover::default();
    for (j, row) in ratios.iter().enumerate() {
        for (i, ratio) in row.iter().enumerate() {
            let (x0, y0) = (i as f64, j as f64);
            let verdict = ratio.map_or("no ratio: a row is missing or failed".to_string(), |r| {
                format!("{a} / {b} = {r:.2}")
            });
            hover.rect(
                &chart,
                [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                format!("{}={}, {}={}: {verdict}", x.knob, xs[i], y.knob, ys[j]),
            );
            let fill = ratio.map_or(RGBColor(220, 220, 220), diverging);
            chart
                .draw_series([Rectangle::new(
                    [(x0 + 0.02, y0 + 0.02), (x0 + 0.98, y0 + 0.98)],
                    fill.filled(),
                )])
                .map_err(plot_error)?;
            let mark = if capped[j][i] { " c" } else { "" };
            let text = ratio.map_or("–".to_string(), |r| format!("{r:.2}{mark}"));
            chart
                .draw_series([Text::new(
                    text,
                    (x0 + 0.38, y0 + 0.55),
                    ("sans-serif", 16).into_font(),
                )])
                .map_err(plot_error)?;
            if flips(&ratios, i, j) {
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
    hover.write_into(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_split_at_one_and_one_point_three() {
        assert_eq!([0.9, 1.0, 1.29, 1.3, 5.0].map(verdict), [0, 1, 1, 2, 2]);
        assert_eq!(diverging(1.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(4.0), RGBColor(203, 24, 29));
        assert_eq!(diverging(0.25), RGBColor(33, 102, 172));
    }
}
