//! `bench diff OLD NEW`: two results folders of the same preset row by row, each figure
//! better, worse or within the noise; a Markdown table on stdout and `diff.html`; with
//! `--fail-on-regression PCT`, exit status 1 when a figure got worse by more than PCT%.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::UsageError;
use crate::model::diff;
use crate::output::archive::{self, Folder, Kind};
use crate::output::{self, html};

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The earlier results folder.
    old: PathBuf,
    /// The later results folder, of the same preset.
    new: PathBuf,
    /// A figure without rounds to judge it by is within the noise when it moved less than
    /// this many percent.
    #[arg(long, default_value_t = 5.0, value_parser = percent)]
    noise: f64,
    /// Exit with status 1 when a figure got worse (beyond its noise) by more than this many
    /// percent.
    #[arg(long, value_parser = percent)]
    fail_on_regression: Option<f64>,
    /// Where to write the page [default: NEW/diff.html].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn percent(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(v) if (0.0..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a percentage from 0 to 1000")),
    }
}

/// A results folder `bench diff` can compare: a run or a sweep.
fn read(dir: &std::path::Path) -> Result<Folder> {
    let folder = archive::read(dir).map_err(|e| UsageError(format!("{e:#}")))?;
    match folder.kind {
        Kind::Run | Kind::Sweep => Ok(folder),
        kind => Err(UsageError(format!(
            "{} holds a `bench {}` result; bench diff compares two runs or two sweeps",
            dir.display(),
            kind.name()
        ))
        .into()),
    }
}

pub fn exec(args: DiffArgs) -> Result<ExitCode> {
    let old = read(&args.old)?;
    let new = read(&args.new)?;
    if old.kind != new.kind || old.scenario != new.scenario {
        return Err(UsageError(format!(
            "OLD is a {} of `{}` and NEW a {} of `{}`: bench diff compares two results of the same preset and command",
            old.kind.name(),
            old.scenario,
            new.kind.name(),
            new.scenario
        ))
        .into());
    }
    let found = diff::diff(&old.rows, &new.rows, args.noise);
    if found.changes.is_empty() {
        return Err(UsageError(format!(
            "no row of {} matches one of {} (same target, group and point)",
            args.old.display(),
            args.new.display()
        ))
        .into());
    }
    println!("{}\n", output::diff::verdict(&found));
    print!("{}", output::diff::markdown_table(&found));
    let out = args.out.unwrap_or_else(|| args.new.join("diff.html"));
    output::diff::write_html(&out, &old, &new, &found, &html::command_line())?;
    println!("\nPage: {}", out.display());
    if let Some(pct) = args.fail_on_regression {
        let regressions = found.regressions(pct);
        if !regressions.is_empty() {
            let said: Vec<String> = regressions
                .iter()
                .map(|c| format!("{} {} {:+.1}%", c.target, c.figure, c.change * 100.0))
                .collect();
            eprintln!(
                "bench: {} figure(s) worse by more than {pct}%: {}",
                regressions.len(),
                said.join(", ")
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
