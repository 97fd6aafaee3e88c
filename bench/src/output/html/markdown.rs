//! The Markdown the reports are written in, as HTML: headings, paragraphs, lists, tables
//! (sortable with the page's script, plain without it), `code`, **bold**, links. Only what
//! `report.md` uses; an image line becomes a link to the chart the page shows above.

use std::fmt::Write as _;

use crate::output::chart::hover::escape;

/// `markdown` as HTML; the first `# ` heading is left out (the page has its own title).
pub fn to_html(markdown: &str) -> String {
    let mut out = String::new();
    let mut lines = markdown.lines().peekable();
    let mut titled = false;
    while let Some(line) = lines.next() {
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with("```") {
            // A fenced block, kept as it is (a failed row's log lines).
            out += "<pre>";
            for next in lines.by_ref() {
                if next.trim_end().starts_with("```") {
                    break;
                }
                out += &escape(next);
                out.push('\n');
            }
            out += "</pre>\n";
        } else if let Some((level, text)) = heading(trimmed) {
            if level == 1 && !titled {
                titled = true;
                continue;
            }
            let _ = writeln!(out, "<h{level}>{}</h{level}>", inline(text));
        } else if trimmed.starts_with('|') {
            let mut block = vec![trimmed];
            while let Some(next) = lines.next_if(|l| l.trim_start().starts_with('|')) {
                block.push(next.trim());
            }
            out += &table(&block);
        } else if is_item(trimmed) {
            out += "<ul>\n";
            let mut item = item_text(trimmed).to_string();
            while let Some(next) = lines.next_if(|l| !l.trim().is_empty() && !is_block(l)) {
                if is_item(next.trim_end()) {
                    let _ = writeln!(out, "<li>{}</li>", inline(&item));
                    item = item_text(next.trim_end()).to_string();
                } else {
                    item.push(' ');
                    item.push_str(next.trim());
                }
            }
            let _ = writeln!(out, "<li>{}</li>\n</ul>", inline(&item));
        } else if let Some((alt, file)) = image(trimmed) {
            let _ = writeln!(
                out,
                "<p class=\"chart-link\"><a href=\"#{}\">{} (chart above)</a></p>",
                chart_id(file),
                escape(alt)
            );
        } else {
            let mut paragraph = trimmed.to_string();
            while let Some(next) =
                lines.next_if(|l| !l.trim().is_empty() && !is_block(l) && !is_item(l.trim()))
            {
                paragraph.push(' ');
                paragraph.push_str(next.trim());
            }
            let _ = writeln!(out, "<p>{}</p>", inline(&paragraph));
        }
    }
    out
}

/// The id of an inlined chart's figure: `chart-` and its file name.
pub fn chart_id(file: &str) -> String {
    let name: String = file
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("chart-{name}")
}

/// The SVG files a Markdown text shows or links to (`](file.svg)`), in order.
pub fn images(markdown: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for piece in markdown.split("](").skip(1) {
        if let Some((file, _)) = piece.split_once(')') {
            if file.ends_with(".svg") && !file.contains('/') && !files.iter().any(|f| f == file) {
                files.push(file.to_string());
            }
        }
    }
    files
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    let text = line.get(level..)?.strip_prefix(' ')?;
    (1..=4).contains(&level).then_some((level, text))
}

fn is_item(line: &str) -> bool {
    line.starts_with("- ") || line.starts_with("* ")
}

fn item_text(line: &str) -> &str {
    &line[2..]
}

/// A line that starts a block of its own (so it ends a paragraph or a list item).
fn is_block(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('|')
        || line.starts_with('#')
        || line.starts_with("```")
        || image(line).is_some()
}

fn image(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("![")?;
    let (alt, rest) = rest.split_once("](")?;
    let file = rest.strip_suffix(')')?;
    Some((alt, file))
}

/// A Markdown table (head, separator, rows) as an HTML table; right-aligned where the
/// separator says `--:`.
fn table(block: &[&str]) -> String {
    let cells = |line: &str| -> Vec<String> {
        let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
        inner.split('|').map(|c| c.trim().to_string()).collect()
    };
    let mut out = String::from("<div class=\"table\"><table class=\"sortable\">\n<thead><tr>");
    let head = cells(block[0]);
    let right: Vec<bool> = block
        .get(1)
        .map(|sep| cells(sep).iter().map(|c| c.ends_with(':')).collect())
        .unwrap_or_default();
    for (i, name) in head.iter().enumerate() {
        let class = if right.get(i) == Some(&true) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", inline(name));
    }
    out += "</tr></thead>\n<tbody>\n";
    for line in block.iter().skip(2) {
        out += "<tr>";
        for (i, cell) in cells(line).iter().enumerate() {
            let class = if right.get(i) == Some(&true) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", inline(cell));
        }
        out += "</tr>\n";
    }
    out + "</tbody></table></div>\n"
}

/// Inline Markdown: escaped text, `code`, **bold**, [links](target).
pub fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('`') {
            if let Some(end) = after.find('`') {
                let _ = write!(out, "<code>{}</code>", escape(&after[..end]));
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix("**") {
            if let Some(end) = after.find("**") {
                let _ = write!(out, "<strong>{}</strong>", inline(&after[..end]));
                rest = &after[end + 2..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('[') {
            if let Some((label, target, tail)) = link(after) {
                let _ = write!(out, "<a href=\"{}\">{}</a>", escape(target), inline(label));
                rest = tail;
                continue;
            }
        }
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let next = rest[first..]
            .find(['`', '*', '['])
            .map_or(rest.len(), |i| i + first);
        out += &escape(&rest[..next]);
        rest = &rest[next..];
    }
    out
}

/// `label](target)` and what follows, from just after a `[`.
fn link(after: &str) -> Option<(&str, &str, &str)> {
    let (label, rest) = after.split_once("](")?;
    if label.contains('[') {
        return None;
    }
    let end = rest.find(')')?;
    Some((label, &rest[..end], &rest[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_becomes_headings_paragraphs_lists_and_a_sortable_table() {
        let md = "# title\n\nLoad: `wrk` **100** <c>.\n\n| target | req/s |\n|---|--:|\n| a | 10 |\n| b | 2 |\n\n- **req/s** counts\n  2xx only.\n- [bound](x.svg) is Little's.\n\n## More\n\n![latency](latency.svg)\n";
        let html = to_html(md);
        assert!(!html.contains("title"), "{html}");
        assert!(html.contains("<p>Load: <code>wrk</code> <strong>100</strong> &lt;c&gt;.</p>"));
        assert!(html.contains("<th>target</th><th class=\"num\">req/s</th>"));
        assert!(html.contains("<tr><td>a</td><td class=\"num\">10</td></tr>"));
        assert!(
            html.contains("<li><strong>req/s</strong> counts 2xx only.</li>"),
            "{html}"
        );
        assert!(html.contains("<li><a href=\"x.svg\">bound</a> is Little&#39;s.</li>"));
        assert!(html.contains("<h2>More</h2>"));
        assert!(html.contains("<a href=\"#chart-latency-svg\">latency (chart above)</a>"));
        assert_eq!(images(md), ["x.svg", "latency.svg"]);
    }

    #[test]
    fn a_fenced_block_is_kept_line_for_line_and_escaped() {
        let html = to_html("Why:\n```\nthread 'main' panicked at <x>\n| not a table\n```\nafter\n");
        assert_eq!(
            html,
            "<p>Why:</p>\n<pre>thread &#39;main&#39; panicked at &lt;x&gt;\n| not a table\n</pre>\n<p>after</p>\n"
        );
    }

    #[test]
    fn unclosed_marks_stay_text() {
        assert_eq!(inline("a * b ` c [d"), "a * b ` c [d");
        assert_eq!(inline("3**2"), "3**2");
        assert_eq!(inline("–`x`"), "–<code>x</code>");
    }
}
