//! Chart primitives, drawn with plotters into SVG: the palette (a target keeps its colour in
//! every chart), bars with a bound marked, the legend. The charts themselves are in
//! [`run`] (a run's throughput and latency spectrum) and [`sweep`] (a sweep's lines, rate
//! curves and verdict heatmaps); an extra beside the load draws its own (a fault's timeline)
//! with these primitives.

pub mod hover;
pub mod run;
pub mod sweep;

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::model::row::Row;

pub const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A log-scale axis label in milliseconds: whole from 10 ms, one decimal from 1 ms, two below
/// (a sub-millisecond label must not read "0").
pub fn ms_label(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

pub fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("cannot draw the chart: {e:?}")
}

/// The legend in the upper left, then the file written.
pub fn legend_and_present<'a, X: Ranged, Y: Ranged>(
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

/// A value for a tooltip: whole from 100, two decimals from 1, three below.
pub fn figure(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// One bar per (label, value), and the bound, when there is one, as a red tick across it;
/// each bar's value and bound on hover.
pub fn bar_chart(
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
    let mut hover = hover::Hover::default();
    for (i, (label, value, bound)) in bars.iter().enumerate() {
        let i = i as i32;
        let bound_text = bound.map_or(String::new(), |b| format!(" (bound {})", figure(b)));
        hover.rect(
            &chart,
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), value.max(bound.unwrap_or(0.0))),
            ],
            format!("{label}: {} {y_desc}{bound_text}", figure(*value)),
        );
    }
    root.present().map_err(plot_error)?;
    hover.write_into(path)
}

/// A target's colour, the same in every sweep chart: by its place in `Binary::ALL`.
pub fn color_for(target: &str, fallback: usize) -> RGBColor {
    let index = shared::Binary::ALL
        .iter()
        .position(|b| target.starts_with(b.name()))
        .unwrap_or(fallback);
    COLORS[index % COLORS.len()]
}

/// The rows of one target, in the order the targets first appear.
pub fn by_target(rows: &[Row]) -> Vec<(String, Vec<&Row>)> {
    let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|(t, _)| *t == row.target) {
            Some((_, group)) => group.push(row),
            None => groups.push((row.target.clone(), vec![row])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_labels_keep_sub_millisecond_values() {
        assert_eq!(ms_label(0.25), "0.25");
        assert_eq!(ms_label(2.5), "2.5");
        assert_eq!(ms_label(120.4), "120");
    }
}
