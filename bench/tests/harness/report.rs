//! The pages people look at, in a real browser: `report.html` of a real `quick` run,
//! `index.html` over two runs (`bench report`) and `diff.html` (`bench diff`) between a run
//! and one with a slowed target, loaded by Debian's headless chromium (which
//! `scripts/install-deps --browser` installs) over the DevTools protocol. Each page loads
//! with nothing on the console, its script ran (every sortable table marked ready, a click
//! sorts), its tables have the rows of `results.json`, its charts are drawn with the targets'
//! names and values on hover; with the page's scripting off the tables and charts are all
//! still there. A screenshot of each page is written beside it for a person.

use std::path::Path;

use super::browser::{screenshot, Browser, Loaded};
use super::common::{bench, out_dir, read_json, show, Bench};
use super::{lock, svg_files};

/// Sorts the first table by its second column (a click on its head) and reads that column.
const SORT_BY_SECOND: &str = "(function () { var t = document.querySelector('table.sortable'); t.tHead.rows[0].cells[1].click(); return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[1].textContent; }); })()";

/// The `<tbody>` rows of the `n`th table of a DOM.
fn table_rows(dom: &str, n: usize) -> Vec<String> {
    let table = dom
        .split("<table")
        .nth(n + 1)
        .unwrap_or_else(|| panic!("no table {n}"));
    let body = table
        .split("<tbody>")
        .nth(1)
        .and_then(|b| b.split("</tbody>").next())
        .expect("a tbody");
    body.split("<tr")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap_or("").to_string())
        .collect()
}

/// The page loaded with its script: nothing on the console, every sortable table marked by
/// the script, and a click on the first table's second column sorts it (returned as text);
/// then without scripting: the same tables and charts, unmarked.
fn assert_loads(browser: &mut Browser, page: &Path) -> (Loaded, Vec<String>) {
    let with = browser.load(page, true, Some(SORT_BY_SECOND));
    assert!(
        with.console.is_empty(),
        "{} logged to the console: {:?}",
        page.display(),
        with.console
    );
    let sortable = with.dom.matches("class=\"sortable\"").count();
    assert!(sortable > 0, "{}: no sortable table", page.display());
    assert_eq!(
        with.dom.matches("data-sortable=\"ready\"").count(),
        sortable,
        "{}: the script did not run over every table",
        page.display()
    );
    let sorted: Vec<String> = with
        .evaluated
        .as_ref()
        .and_then(|v| v.as_array())
        .expect("the sort expression returns the column")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    let without = browser.load(page, false, None);
    assert!(
        !without.dom.contains("data-sortable=\"ready\""),
        "{}: scripting was not off",
        page.display()
    );
    assert_eq!(
        without.dom.matches("class=\"sortable\"").count(),
        sortable,
        "{}: tables differ without scripting",
        page.display()
    );
    assert_eq!(
        without.dom.matches("<tr").count(),
        with.dom.matches("<tr").count(),
        "{}: table rows differ without scripting",
        page.display()
    );
    assert_eq!(
        without.dom.matches("<svg").count(),
        with.dom.matches("<svg").count(),
        "{}: charts differ without scripting",
        page.display()
    );
    (with, sorted)
}

/// Whether numbers read from the cells' leading figures descend.
fn descending(cells: &[String]) -> bool {
    let numbers: Vec<f64> = cells
        .iter()
        .filter_map(|c| c.split_whitespace().next()?.parse().ok())
        .collect();
    numbers.len() == cells.len() && numbers.windows(2).all(|w| w[0] >= w[1])
}

fn targets_of(results: &serde_json::Value) -> Vec<String> {
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap().to_string())
        .collect()
}

/// A figure per SVG file of `dir` in the page, each with every target's name and values on
/// hover.
fn assert_a_figure_per_chart(dir: &Path, dom: &str, targets: &[String]) {
    let svgs = svg_files(dir);
    let figures: Vec<&str> = dom.split("<figure").skip(1).collect();
    assert_eq!(figures.len(), svgs, "a figure per chart file");
    for figure in &figures {
        assert!(figure.contains("<svg"), "an empty figure");
        for target in targets {
            assert!(figure.contains(target.as_str()), "a chart lacks {target}");
        }
        assert!(figure.contains("<title>"), "a chart has no values on hover");
    }
}

#[test]
fn the_report_index_and_diff_pages_load_in_a_real_browser() {
    let _one_load = lock();
    let root = out_dir("pages");
    let (first, second) = (root.join("quick-1"), root.join("quick-2"));
    let output = Bench::new("run").scenario("quick").out(&first).output();
    assert!(output.status.success(), "{}", show(&output));
    // The same preset with sync-pool down to one worker: a regression for diff to find.
    let output = Bench::new("run")
        .scenario("quick")
        .targets("tokio-axum,sync-pool")
        .arg("--workers", "1")
        .out(&second)
        .output();
    assert!(output.status.success(), "{}", show(&output));

    // report.html: the verdict, a chart per SVG file with the targets' names and hover
    // values, the table with a row per row of results.json.
    let results = read_json(&first.join("results.json"));
    let targets = targets_of(&results);
    let mut browser = Browser::start();
    let page = first.join("report.html");
    let (loaded, sorted) = assert_loads(&mut browser, &page);
    assert!(descending(&sorted), "req/s after a click: {sorted:?}");
    assert!(loaded.dom.contains("class=\"verdict\""));
    // (In the order of the click's sort: a row per row of results.json, each target once.)
    let rows = table_rows(&loaded.dom, 0);
    assert_eq!(rows.len(), targets.len(), "table rows: {rows:?}");
    for target in &targets {
        let cell = format!("<td>{target}</td>");
        assert_eq!(
            rows.iter().filter(|r| r.contains(&cell)).count(),
            1,
            "{target}: {rows:?}"
        );
    }
    assert_a_figure_per_chart(&first, &loaded.dom, &targets);
    assert!(loaded.dom.contains("bench run --scenario quick --out"));
    screenshot(&page, &first.join("report.png"));

    // index.html over both runs: a line each, linking each report, and a small chart per
    // target and figure.
    let output = Bench::new("report")
        .positional(root.to_str().unwrap())
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let index = root.join("index.html");
    let (loaded, _) = assert_loads(&mut browser, &index);
    let runs = table_rows(&loaded.dom, 0);
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in ["quick-1", "quick-2"] {
        let link = format!("href=\"{run}/report.html\"");
        assert_eq!(
            runs.iter().filter(|r| r.contains(&link)).count(),
            1,
            "{runs:?}"
        );
    }
    let series = table_rows(&loaded.dom, 1);
    assert_eq!(series.len(), targets.len(), "a line per target: {series:?}");
    let axum = series.iter().find(|r| r.contains("tokio-axum")).unwrap();
    assert_eq!(axum.matches("<svg").count(), 3, "req/s, P99, CPU: {axum}");
    assert_eq!(
        axum.matches("<circle").count(),
        6,
        "two runs per chart: {axum}"
    );
    screenshot(&index, &root.join("index.png"));

    // diff.html: sync-pool with one worker is worse, and --fail-on-regression says so.
    let output = Bench::new("diff")
        .positional(first.to_str().unwrap())
        .positional(second.to_str().unwrap())
        .arg("--fail-on-regression", "20")
        .output();
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("| sync-pool |  | req/s |") && stderr.contains("sync-pool req/s"),
        "{}",
        show(&output)
    );
    let diff = second.join("diff.html");
    let (loaded, _) = assert_loads(&mut browser, &diff);
    let lines = table_rows(&loaded.dom, 0);
    let slowed = lines
        .iter()
        .find(|l| l.contains("sync-pool") && l.contains("req/s"))
        .expect("a sync-pool req/s line");
    assert!(slowed.contains("worse"), "{slowed}");
    assert!(
        loaded.dom.contains("Only in OLD"),
        "the targets the second run left out"
    );
    screenshot(&diff, &second.join("diff.png"));
}

#[test]
fn report_and_diff_refuse_what_is_not_a_run_with_one_line_and_status_2() {
    let empty = out_dir("not-results");
    std::fs::create_dir_all(&empty).unwrap();
    for args in [
        vec!["report", empty.to_str().unwrap()],
        vec!["diff", empty.to_str().unwrap(), empty.to_str().unwrap()],
    ] {
        let output = bench(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{}", show(&output));
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("not a results folder"), "{stderr}");
    }
    // Two runs of different presets.
    let (a, b) = (out_dir("preset-a"), out_dir("preset-b"));
    for (dir, scenario) in [(&a, "quick"), (&b, "grinberg")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("results.json"),
            format!("{{\"scenario\":\"{scenario}\",\"started\":\"x\",\"results\":[]}}"),
        )
        .unwrap();
    }
    let output = Bench::new("diff")
        .positional(a.to_str().unwrap())
        .positional(b.to_str().unwrap())
        .output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    assert!(
        stderr.contains("`quick`") && stderr.contains("`grinberg`") && stderr.lines().count() == 1,
        "{stderr}"
    );
}
