//! The harness end to end, in cargo's testsuite shape: one test binary, a module per topic.
//! `bench run`, `compare`, `sweep`, `client` and the rest on the real stack with the real load
//! tools, the faults a user will meet (a target dying mid-run, a name that does not exist), and
//! the pages in a real browser. The assertions are about the content of the results, not only
//! that files exist.
//!
//! The tests take one lock so that their loads never overlap; that is why they are one binary.
//! What several modules share is here; [`Bench`] writes a `bench` command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

#[path = "../common/browser.rs"]
mod browser;
#[path = "../common/mod.rs"]
mod common;

mod client;
mod compare;
mod externals;
mod extras;
mod faults;
mod input;
mod limits;
mod mix;
mod peers;
mod remote;
mod report;
mod run;
mod soak;
mod stack;
mod sweep;
mod work;

use bench::measure::{tools, Runner};
use bench::model::case::{Case, Subject};
use bench::model::fault::ProbeOutcome;
use bench::model::preset;
use bench::model::settings::Settings;
use bench::stack::{Stack, StackOptions};
use common::{bench, bench_with_pid, out_dir, read_json, run_within, show, Bench};
use serde_json::Value;
use shared::Binary;

static ONE_LOAD_AT_A_TIME: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_LOAD_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The field paths of a JSON value (a list is `[]`), as the samples list them.
fn field_paths(value: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = format!("{prefix}{key}");
                field_paths(inner, &format!("{path}."), out);
                out.insert(path);
            }
        }
        Value::Array(items) => {
            for item in items {
                field_paths(item, &format!("{prefix}[]."), out);
            }
        }
        _ => {}
    }
}

/// A checked-in sample of field paths (bench/tests/samples/NAME.keys).
fn sample(name: &str) -> std::collections::BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/samples/{name}.keys"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.trim_end_matches('?').to_string())
        .collect()
}

/// The fields of a sample every file must have: all but those marked optional (`?`).
fn required(name: &str) -> std::collections::BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/samples/{name}.keys"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.ends_with('?'))
        .map(str::to_string)
        .collect()
}

/// The results file at `path` keeps the format of the samples written before the harness was
/// redesigned: every field it has is in `all` (none renamed or added unnoticed), and it has
/// every field of `base` (none lost).
fn assert_format_kept(path: &Path, all: &str, base: &str) {
    let mut paths = std::collections::BTreeSet::new();
    field_paths(&read_json(path), "", &mut paths);
    let unknown: Vec<String> = paths.difference(&sample(all)).cloned().collect();
    assert!(
        unknown.is_empty(),
        "{}: fields not in tests/samples/{all}.keys: {unknown:?}",
        path.display()
    );
    let lost: Vec<String> = required(base).difference(&paths).cloned().collect();
    assert!(
        lost.is_empty(),
        "{}: fields of tests/samples/{base}.keys missing: {lost:?}",
        path.display()
    );
}

/// How many SVG charts the folder holds.
fn svg_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count()
}

/// The folder's `report.html`: its verdict, a figure per SVG chart of the folder (each with
/// values on hover), a table, and the command. (the `report` module loads one in a browser.)
fn assert_report_html(dir: &Path, verdict: &str) {
    let html = std::fs::read_to_string(dir.join("report.html"))
        .unwrap_or_else(|e| panic!("no report.html in {}: {e}", dir.display()));
    let said = html
        .split("<p class=\"verdict\">")
        .nth(1)
        .and_then(|v| v.split("</p>").next())
        .expect("a verdict");
    assert!(said.contains(verdict), "verdict {said:?} lacks {verdict:?}");
    let charts = svg_files(dir);
    assert!(charts > 0, "no chart in {}", dir.display());
    assert_eq!(
        html.matches("<figure").count(),
        charts,
        "a figure per chart"
    );
    assert!(html.matches("<title>").count() >= charts, "values on hover");
    assert!(html.contains("<table class=\"sortable\">") && html.contains("<h2>Reproduce</h2>"));
}

fn built_targets() -> Vec<Binary> {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_bench"));
    bench::stack::built_targets(exe.parent().unwrap())
}

/// Parses an SVG as XML, as a browser would, and returns its text.
fn parse_svg(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let document = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    text
}
