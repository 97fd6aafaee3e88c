//! `bench report`'s `index.html`: every results folder on one page. A line per folder (when,
//! what made it, preset, targets, commit, its verdict, a link to its report), then per preset
//! and target of the runs their req/s, P99 and CPU per request over time as small charts,
//! each point's value and run on hover.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use super::{document, markdown::inline};
use crate::model::capacity::Capacity;
use crate::model::meta::SUITE;
use crate::model::row::Row;
use crate::output::archive::{Folder, Kind};
use crate::output::chart::figure;
use crate::output::chart::hover::escape;
use crate::output::verdict;

/// Writes `out` (an `index.html`) over `folders`, oldest first.
pub fn write_index(out: &Path, folders: &[Folder]) -> Result<()> {
    let base = out.parent().unwrap_or(Path::new("."));
    let mut body = String::new();
    let (first, last) = match (folders.first(), folders.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => anyhow::bail!("no results folder to index"),
    };
    let _ = writeln!(
        body,
        "<header><h1>{SUITE}: {} results folder{}</h1>\n<p class=\"verdict\">From {} to {}. The latest, {} <code>{}</code>: {}</p></header>",
        folders.len(),
        if folders.len() == 1 { "" } else { "s" },
        escape(&first.started),
        escape(&last.started),
        last.kind.name(),
        escape(&last.scenario),
        inline(&headline(last))
    );
    body += "<h2>Every run</h2>\n<div class=\"table\"><table class=\"sortable\" id=\"runs\">\n<thead><tr><th>started</th><th>report</th><th>command</th><th>preset</th><th>commit</th><th>targets</th><th>verdict</th></tr></thead>\n<tbody>\n";
    for folder in folders.iter().rev() {
        let link = relative(base, &folder.page())?;
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"wrap\">{}</td><td class=\"wrap\">{}</td></tr>",
            escape(&folder.started),
            escape(&link),
            escape(&folder.name()),
            folder.kind.name(),
            escape(&folder.scenario),
            escape(folder.commit.as_deref().unwrap_or("–")),
            escape(&folder.targets().join(", ")),
            inline(&headline(folder))
        );
    }
    body += "</tbody></table></div>\n";
    body += &over_time(folders);
    std::fs::write(out, document(&format!("{SUITE}: results"), &body))
        .with_context(|| format!("cannot write {}", out.display()))
}

/// A folder's verdict in one sentence, as its report says it.
pub fn headline(folder: &Folder) -> String {
    let json = &folder.json;
    match folder.kind {
        Kind::Run => verdict::run(
            &folder.scenario,
            json["baseline"].as_str().unwrap_or(""),
            &folder.rows,
        ),
        Kind::Sweep => {
            let capacity: Vec<Capacity> =
                serde_json::from_value(json["capacity"].clone()).unwrap_or_default();
            let slo = json["slo_p99_ms"].as_f64().unwrap_or(0.0);
            verdict::sweep(&folder.scenario, &folder.rows, &capacity, slo)
        }
        Kind::Compare => format!(
            "{} / {} = {:.2} over {} rounds ({})",
            json["a"].as_str().unwrap_or("A"),
            json["b"].as_str().unwrap_or("B"),
            json["ratio"]["median"].as_f64().unwrap_or(0.0),
            json["rounds"].as_array().map_or(0, Vec::len),
            if json["distinguishable"] == true {
                "beyond the noise"
            } else {
                "within the noise"
            }
        ),
        Kind::Client => {
            let rows = json["results"].as_array().cloned().unwrap_or_default();
            let said: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{} {:.2} s",
                        r["model"].as_str().unwrap_or("?"),
                        r["wall_s"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            format!("wall time per client model: {}", said.join(", "))
        }
    }
}

/// A run's rows by preset, target and group, over time: a line per series with a small chart
/// per figure.
fn over_time(folders: &[Folder]) -> String {
    type Series<'a> = ((String, String, String), Vec<(&'a Folder, &'a Row)>);
    let mut series: Vec<Series> = Vec::new();
    for folder in folders.iter().filter(|f| f.kind == Kind::Run) {
        for row in folder.rows.iter().filter(|r| r.is_ok()) {
            let key = (
                folder.scenario.clone(),
                row.name().to_string(),
                row.group.clone(),
            );
            match series.iter_mut().find(|(k, _)| *k == key) {
                Some((_, points)) => points.push((folder, row)),
                None => series.push((key, vec![(folder, row)])),
            }
        }
    }
    if series.is_empty() {
        return String::new();
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("<h2>Over time</h2>\n<p>Each run of a preset, oldest on the left; hover a point for its value and run. The figure after each chart is the latest.</p>\n<div class=\"table\"><table class=\"sortable\">\n<thead><tr><th>preset</th><th>target</th><th>group</th><th class=\"num\">runs</th><th class=\"num\">req/s</th><th class=\"num\">P99 ms</th><th class=\"num\">CPU ms/req</th></tr></thead>\n<tbody>\n");
    for ((scenario, target, group), points) in &series {
        let figures: [(&str, Reading); 3] = [
            ("req/s", |r| Some(r.requests_per_sec)),
            ("P99 ms", |r| r.measurement.p99_ms),
            ("CPU ms/req", |r| r.cpu_ms_per_request),
        ];
        let cells: Vec<String> = figures
            .iter()
            .map(|(name, get)| {
                let values: Vec<(String, Option<f64>)> = points
                    .iter()
                    .map(|(folder, row)| (when(folder), get(row)))
                    .collect();
                let last = values.last().and_then(|(_, v)| *v);
                format!(
                    "<td class=\"num\">{} {}</td>",
                    spark(target, name, &values),
                    last.map_or("–".into(), figure)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>{}</tr>",
            escape(scenario),
            escape(target),
            escape(group),
            points.len(),
            cells.concat()
        );
    }
    out + "</tbody></table></div>\n"
}

/// How a figure is read from a row.
type Reading = fn(&Row) -> Option<f64>;

/// A run as a point's label: its start and folder.
fn when(folder: &Folder) -> String {
    format!("{} ({})", folder.started, folder.name())
}

/// A small line chart of one figure over runs, each point's value on hover.
fn spark(target: &str, figure_name: &str, values: &[(String, Option<f64>)]) -> String {
    const W: f64 = 140.0;
    const H: f64 = 30.0;
    let known: Vec<f64> = values.iter().filter_map(|(_, v)| *v).collect();
    if known.is_empty() {
        return String::new();
    }
    let (low, high) = known
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if high > low { high - low } else { 1.0 };
    let step = W / (values.len().max(2) - 1) as f64;
    let at = |i: usize, v: f64| {
        let x = 4.0 + i as f64 * step;
        let y = 4.0 + (H - 8.0) * (1.0 - (v - low) / span);
        (x, y)
    };
    let mut line = String::new();
    let mut dots = String::new();
    for (i, (run, value)) in values.iter().enumerate() {
        if let Some(v) = value {
            let (x, y) = at(i, *v);
            let _ = write!(line, "{x:.1},{y:.1} ");
            let _ = write!(
                dots,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\"><title>{}: {} {} at {}</title></circle>",
                escape(target),
                figure(*v),
                escape(figure_name),
                escape(run)
            );
        }
    }
    format!(
        "<svg class=\"spark\" width=\"{}\" height=\"{H}\" viewBox=\"0 0 {} {H}\" role=\"img\" aria-label=\"{} {} over time\"><polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{}\"/><g fill=\"#1f77b4\">{dots}</g></svg>",
        W + 8.0,
        W + 8.0,
        escape(target),
        escape(figure_name),
        line.trim_end()
    )
}

/// `to` as a link from the folder `base`: relative when they share a root, else absolute.
pub fn relative(base: &Path, to: &Path) -> Result<String> {
    let absolute = |p: &Path| -> Result<PathBuf> {
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()?.join(p)
        })
    };
    let normal = |p: PathBuf| -> Vec<String> {
        let mut parts: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                Component::ParentDir => {
                    parts.pop();
                }
                Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
                _ => {}
            }
        }
        parts
    };
    let (base, to) = (normal(absolute(base)?), normal(absolute(to)?));
    let common = base.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); base.len() - common];
    parts.extend(to[common..].iter().cloned());
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_to_the_index() {
        let r = |a: &str, b: &str| relative(Path::new(a), Path::new(b)).unwrap();
        assert_eq!(r("/r", "/r/quick-1/report.html"), "quick-1/report.html");
        assert_eq!(
            r("/r/x", "/r/quick-1/report.html"),
            "../quick-1/report.html"
        );
        assert_eq!(r("/r/./x/..", "/r/q/report.md"), "q/report.md");
    }

    #[test]
    fn a_spark_has_a_point_per_known_value_with_its_run() {
        let svg = spark(
            "tokio-axum",
            "req/s",
            &[
                ("a".into(), Some(10.0)),
                ("b".into(), None),
                ("c".into(), Some(20.0)),
            ],
        );
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("<title>tokio-axum: 20.00 req/s at c</title>"));
    }
}
