//! `report.html`: a results folder as one self-contained page. The verdict in a sentence, the
//! folder's charts inlined (each value on hover, from the charts' own `<title>`s), then
//! `report.md` as HTML (the table, sortable with a few lines of inline script and plain
//! without them; what its columns mean; the sections; machine and versions), then the command
//! that reproduces the run. No network: no fonts, no CDN, nothing fetched.
//!
//! The same page shell serves `bench report`'s `index.html` ([`index`]) and `bench diff`'s
//! `diff.html`.

pub mod index;
pub mod markdown;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::output::chart::hover::escape;

/// What a results folder's page says beyond its `report.md`.
pub struct Page<'a> {
    pub title: &'a str,
    /// One sentence with its numbers.
    pub verdict: &'a str,
    /// The folder's `report.md`.
    pub markdown: &'a str,
    /// The command line that made the folder.
    pub command: &'a str,
}

/// Writes `dir/report.html` from `page` and the SVG charts in `dir`.
pub fn write_report(dir: &Path, page: &Page) -> Result<()> {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<header><h1>{}</h1>\n<p class=\"verdict\">{}</p></header>",
        escape(page.title),
        markdown::inline(page.verdict)
    );
    let charts = charts_in(dir, page.markdown)?;
    if !charts.is_empty() {
        body += "<section class=\"charts\">\n";
        for chart in &charts {
            body += &figure(chart)?;
        }
        body += "</section>\n";
    }
    body += "<section class=\"report\">\n";
    body += &markdown::to_html(page.markdown);
    body += "</section>\n";
    let (command, first) = reproduce(page.command);
    let first = match first {
        Some(note) => format!("<p>{}</p>\n", escape(&note)),
        None => String::new(),
    };
    let _ = writeln!(
        body,
        "<section class=\"reproduce\"><h2>Reproduce</h2>\n{first}<pre><code>{}</code></pre>\n<p>The files beside this page: <a href=\"results.json\">results.json</a>, <a href=\"results.csv\">results.csv</a>, <a href=\"report.md\">report.md</a>.</p></section>",
        escape(&command)
    );
    let path = dir.join("report.html");
    std::fs::write(&path, document(page.title, &body))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The command to show under "Reproduce", and what must be running before it: a run with
/// servers the harness did not start needs them up at their URLs first (and a stack of
/// `bench up` for `--remote`), and the pids it named were that run's, so they are shown as
/// `PID`, to be the new process's.
pub fn reproduce(command: &str) -> (String, Option<String>) {
    let words: Vec<&str> = command.split(' ').collect();
    let mut shown = Vec::new();
    let mut pid_next = false;
    for word in &words {
        if pid_next && !word.starts_with("--") {
            let name = word.split_once('=').map_or("", |(name, _)| name);
            shown.push(format!("{name}=PID"));
            continue;
        }
        pid_next = *word == "--external-pid";
        shown.push(word.to_string());
    }
    let mut first = Vec::new();
    if words.contains(&"--external") {
        first.push("start the servers named by --external at their URLs, against the database given by --database-url".to_string());
    }
    if words.contains(&"--external-pid") {
        first.push("give --external-pid the pid of each as it runs now (the parent's, for a multi-process server)".to_string());
    }
    if words.contains(&"--remote") {
        first.push(
            "have `bench up --listen-host` serve the stack the --remote URL describes".to_string(),
        );
    }
    let note = (!first.is_empty()).then(|| format!("First, {}.", first.join("; ")));
    (shown.join(" "), note)
}

/// A whole page: the style, the body, the sorting script.
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}<script>{SCRIPT}</script>\n</body>\n</html>\n",
        escape(title)
    )
}

/// The SVG files of `dir`: those `markdown` shows as images first, in its order, then the
/// rest by name.
fn charts_in(dir: &Path, markdown: &str) -> Result<Vec<PathBuf>> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    all.sort();
    let mut ordered: Vec<PathBuf> = markdown::images(markdown)
        .iter()
        .map(|file| dir.join(file))
        .filter(|p| all.contains(p))
        .collect();
    ordered.dedup();
    for path in all {
        if !ordered.contains(&path) {
            ordered.push(path);
        }
    }
    Ok(ordered)
}

/// One chart inlined, with a link to its file.
fn figure(path: &Path) -> Result<String> {
    let svg =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let svg = match svg.find("<svg") {
        Some(start) => &svg[start..],
        None => anyhow::bail!("{} is not an SVG file", path.display()),
    };
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    Ok(format!(
        "<figure id=\"{}\">\n{}<figcaption><a href=\"{}\">{}</a> (hover a bar, point or cell for its value)</figcaption></figure>\n",
        markdown::chart_id(file),
        svg.trim_end(),
        escape(file),
        escape(file)
    ))
}

/// The command line this process was started with, quoted for a POSIX shell, the program
/// by its file name (`bench run --scenario grinberg`), and its secrets left out (a report is
/// shared; see [`redacted`]).
pub fn command_line() -> String {
    let mut args = std::env::args();
    let program = args
        .next()
        .map(|p| {
            Path::new(&p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "bench".into());
    std::iter::once(program)
        .chain(args.map(|a| shell_quote(&redacted(&a))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` without what a URL's user part keeps secret: a status endpoint's token
/// (`http://TOKEN@HOST:PORT/…`, as `bench up` prints it) becomes `TOKEN`, a database password
/// (`postgres://user:PASSWORD@…`) `***`.
pub fn redacted(arg: &str) -> String {
    let Some(scheme) = arg.find("://") else {
        return arg.to_string();
    };
    let (head, rest) = arg.split_at(scheme + 3);
    let authority = rest.find('/').map_or(rest, |end| &rest[..end]);
    let Some(at) = authority.rfind('@') else {
        return arg.to_string();
    };
    let user = &rest[..at];
    let hidden = match user.split_once(':') {
        Some((name, _)) => format!("{name}:***"),
        None if head.ends_with("http://") || head.ends_with("https://") => "TOKEN".to_string(),
        None => user.to_string(),
    };
    format!("{head}{hidden}{}", &rest[at..])
}

/// `arg` as one word for a POSIX shell: as is when it is plain, else in single quotes.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,@%+-".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem auto;max-width:1200px;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.3rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.verdict{font-size:1.15rem;background:#f3f6fa;border-left:4px solid #1f77b4;padding:.6rem .9rem}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;flex:1 1 560px;max-width:100%}
figure svg{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}
.table{overflow-x:auto}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem}
th,td{border:1px solid #ddd;padding:.25rem .45rem;white-space:nowrap}
th{background:#f5f5f5;position:sticky;top:0}
table[data-sortable] th{cursor:pointer}
th[aria-sort=ascending]::after{content:' \\25B2'}
th[aria-sort=descending]::after{content:' \\25BC'}
td.num,th.num{text-align:right}
td.wrap{white-space:normal;min-width:16rem}
#runs td{white-space:normal}
#runs td:last-child{min-width:24rem}
tbody tr:nth-child(even){background:#fafafa}
code{background:#f3f3f3;padding:0 .2rem}
pre{background:#f3f3f3;padding:.6rem;overflow-x:auto}
pre code{background:none;padding:0}
.better{color:#137333}.worse{color:#b3261e;font-weight:600}.noise{color:#666}
svg.spark{vertical-align:middle}
";

/// Sorts a table by the column clicked (numbers as numbers, the rest as text; a second click
/// reverses) and marks the table ready, so that a test sees the script ran.
const SCRIPT: &str = "
(function () {
  function key(cell) {
    var text = cell ? cell.textContent.trim() : '';
    var number = text.match(/^[-+]?[0-9]*[.]?[0-9]+(e[-+]?[0-9]+)?/i);
    return number ? parseFloat(number[0]) : text;
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.tabIndex = 0;
      th.title = 'sort by ' + th.textContent;
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var down = th.getAttribute('aria-sort') !== 'descending';
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
          return down ? -c : c;
        });
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', down ? 'descending' : 'ascending');
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
    table.setAttribute('data-sortable', 'ready');
  });
})();
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_only_when_a_shell_would_split_them() {
        assert_eq!(shell_quote("--scenario"), "--scenario");
        assert_eq!(shell_quote("tokio-axum=pool:19"), "tokio-axum=pool:19");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_report_keeps_no_token_and_no_password_of_the_command_line() {
        assert_eq!(
            redacted("http://0123456789abcdef01@10.0.0.5:8099/stack.json"),
            "http://TOKEN@10.0.0.5:8099/stack.json"
        );
        assert_eq!(
            redacted("--remote=http://0123456789abcdef01@[::1]:8099/stack.json"),
            "--remote=http://TOKEN@[::1]:8099/stack.json"
        );
        assert_eq!(
            redacted("postgres://bench_load:s3cret@10.0.0.5:5432/postgres"),
            "postgres://bench_load:***@10.0.0.5:5432/postgres"
        );
        for plain in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "http://127.0.0.1:8001/test",
            "mine=http://127.0.0.1:9000/test?a=b@c",
            "--scenario",
            "user@host",
        ] {
            assert_eq!(redacted(plain), plain);
        }
    }

    #[test]
    fn a_page_inlines_the_charts_in_the_order_the_report_shows_them() {
        let dir = std::env::temp_dir().join(format!("html-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a.svg", "b.svg", "c.svg"] {
            std::fs::write(dir.join(name), format!("<svg><text>{name}</text></svg>\n")).unwrap();
        }
        let md = "# t\n\n![c](c.svg)\n\n| x |\n|---|\n| 1 |\n";
        let page = Page {
            title: "t",
            verdict: "**x** won",
            markdown: md,
            command: "bench run --scenario 'a b'",
        };
        write_report(&dir, &page).unwrap();
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        let at = |s: &str| html.find(s).unwrap();
        assert!(at("<text>c.svg") < at("<text>a.svg") && at("<text>a.svg") < at("<text>b.svg"));
        assert!(at("class=\"verdict\"") < at("<figure") && at("<figure") < at("<table"));
        assert!(html.contains("<strong>x</strong> won"));
        assert!(html.contains("bench run --scenario &#39;a b&#39;"));
        assert!(
            !html.contains("src=\"http") && !html.contains("href=\"http"),
            "nothing fetched"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_reproduce_line_says_what_must_run_first_and_leaves_out_the_pid() {
        let (shown, first) = reproduce(
            "bench run --scenario quick --external mine=http://127.0.0.1:9000/test --external-pid mine=13332 --database-url postgres://x",
        );
        assert_eq!(
            shown,
            "bench run --scenario quick --external mine=http://127.0.0.1:9000/test --external-pid mine=PID --database-url postgres://x"
        );
        let first = first.unwrap();
        assert!(
            first.contains("start the servers named by --external")
                && first.contains("the parent's"),
            "{first}"
        );
        assert_eq!(
            reproduce("bench run --scenario quick"),
            ("bench run --scenario quick".into(), None)
        );
    }
}
