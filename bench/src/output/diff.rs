//! `bench diff`'s output: the Markdown table it prints, and `diff.html` (the same table,
//! sortable, under a one-sentence verdict, with links to both runs' reports).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::archive::Folder;
use super::chart::figure;
use super::chart::hover::escape;
use super::html::{document, index::relative, markdown};
use super::verdict::plural;
use crate::model::diff::{Call, Diff};
use crate::model::meta::SUITE;

/// The verdict in one sentence: how many figures moved which way, and the worst change.
pub fn verdict(diff: &Diff) -> String {
    let (better, worse, noise) = (
        diff.count(Call::Better),
        diff.count(Call::Worse),
        diff.count(Call::Noise),
    );
    let mut out = format!(
        "{better} figure{} better, {worse} worse, {noise} within noise",
        plural(better)
    );
    let worst = diff
        .changes
        .iter()
        .filter(|c| c.call == Call::Worse)
        .max_by(|a, b| a.change.abs().total_cmp(&b.change.abs()));
    if let Some(w) = worst {
        let _ = write!(
            out,
            "; the worst: **{}**{} {} {:+.1}% ({} → {})",
            w.target,
            if w.point.is_empty() {
                String::new()
            } else {
                format!(" at {}", w.point)
            },
            w.figure,
            w.change * 100.0,
            figure(w.old),
            figure(w.new)
        );
    }
    out + "."
}

/// The changes as a Markdown table, then the rows only one side has.
pub fn markdown_table(diff: &Diff) -> String {
    let mut out = String::from(
        "| target | point | figure | old | new | change | verdict | noise from |\n|---|---|---|--:|--:|--:|---|---|\n",
    );
    for c in &diff.changes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:+.1}% | {} | {} |",
            c.target,
            c.point,
            c.figure,
            figure(c.old),
            figure(c.new),
            c.change * 100.0,
            c.call.name(),
            c.noise
        );
    }
    if !diff.only_old.is_empty() {
        let _ = writeln!(out, "\nOnly in OLD: {}.", diff.only_old.join(", "));
    }
    if !diff.only_new.is_empty() {
        let _ = writeln!(out, "\nOnly in NEW: {}.", diff.only_new.join(", "));
    }
    out
}

/// Writes `diff.html` to `out`.
pub fn write_html(
    out: &Path,
    old: &Folder,
    new: &Folder,
    diff: &Diff,
    command: &str,
) -> Result<()> {
    let base = out.parent().unwrap_or(Path::new("."));
    let link = |f: &Folder| -> Result<String> {
        Ok(format!(
            "<a href=\"{}\">{}</a>",
            escape(&relative(base, &f.page())?),
            escape(&f.dir.display().to_string())
        ))
    };
    let mut body = format!(
        "<header><h1>{SUITE}: diff of <code>{}</code></h1>\n<p class=\"verdict\">{}</p></header>\n<p>OLD: {} (started {}, commit {}). NEW: {} (started {}, commit {}).</p>\n",
        escape(&new.scenario),
        markdown::inline(&verdict(diff)),
        link(old)?,
        escape(&old.started),
        escape(old.commit.as_deref().unwrap_or("–")),
        link(new)?,
        escape(&new.started),
        escape(new.commit.as_deref().unwrap_or("–"))
    );
    body += "<div class=\"table\"><table class=\"sortable\">\n<thead><tr><th>target</th><th>point</th><th>figure</th><th class=\"num\">old</th><th class=\"num\">new</th><th class=\"num\">change</th><th>verdict</th><th>noise from</th></tr></thead>\n<tbody>\n";
    for c in &diff.changes {
        let class = match c.call {
            Call::Better => "better",
            Call::Worse => "worse",
            Call::Noise => "noise",
        };
        let _ = writeln!(
            body,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:+.1}%</td><td>{}</td><td>{}</td></tr>",
            escape(&c.target),
            escape(&c.point),
            c.figure,
            figure(c.old),
            figure(c.new),
            c.change * 100.0,
            c.call.name(),
            escape(&c.noise)
        );
    }
    body += "</tbody></table></div>\n";
    for (side, rows) in [("OLD", &diff.only_old), ("NEW", &diff.only_new)] {
        if !rows.is_empty() {
            let _ = writeln!(body, "<p>Only in {side}: {}.</p>", escape(&rows.join(", ")));
        }
    }
    body += "<h2>How the noise is judged</h2>\n<ul><li><strong>req/s</strong> with 3 or more rounds on both sides: within noise when the bootstrap 95% interval of new/old (each side's rounds resampled) holds 1; with 2 rounds, when the rounds' min–max ranges overlap.</li><li>Every other figure, and req/s of a single round: within noise when it moved less than the threshold (<code>--noise</code>).</li><li>Higher is better for req/s; lower for the latencies, CPU per request, memory and errors.</li></ul>\n";
    let _ = writeln!(
        body,
        "<h2>Reproduce</h2>\n<pre><code>{}</code></pre>",
        escape(command)
    );
    std::fs::write(out, document(&format!("{SUITE}: diff"), &body))
        .with_context(|| format!("cannot write {}", out.display()))
}
