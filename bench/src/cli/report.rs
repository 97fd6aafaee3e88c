//! `bench report`: one `index.html` over many results folders, each run a line with a link to
//! its report, and per preset and target its figures over time.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::UsageError;
use crate::output::archive;
use crate::output::html::index;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Results folders, or folders of them [default: results].
    dirs: Vec<PathBuf>,
    /// Where to write the page [default: index.html in the folder of results folders, or
    /// beside the first results folder].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn exec(args: ReportArgs) -> Result<ExitCode> {
    let dirs = if args.dirs.is_empty() {
        vec![PathBuf::from("results")]
    } else {
        args.dirs
    };
    let folders = archive::collect(&dirs).map_err(|e| UsageError(format!("{e:#}")))?;
    let out = match args.out {
        Some(out) => out,
        None if archive::is_results_folder(&dirs[0]) => dirs[0]
            .parent()
            .map_or(PathBuf::from("index.html"), |p| p.join("index.html")),
        None => dirs[0].join("index.html"),
    };
    index::write_index(&out, &folders)?;
    println!(
        "Index of {} results folder{}: {}",
        folders.len(),
        if folders.len() == 1 { "" } else { "s" },
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
