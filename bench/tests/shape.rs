//! The code's shape, checked on the sources as anyone can run it (`cargo test --test shape`):
//! what a new target or model must decide is matched exhaustively (no `_ =>` arm over
//! `Binary` or `Model`, no test of a target's name prefix), no file is over 600 lines, no
//! function over 100 (but the preset table), and no two modules of `bench` import each other,
//! directly or round a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 100;
/// The one function allowed past the limit: the table of presets, a row per preset.
const LONG_ALLOWED: &[(&str, &str)] = &[("bench/src/model/preset.rs", "all")];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `.rs` file under these folders of the repository, as (relative path, text).
fn sources(folders: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = folders.iter().map(|f| root().join(f)).collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root()).unwrap().display().to_string();
                out.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn ours() -> Vec<(String, String)> {
    sources(&["bench/src", "bench/tests", "shared/src", "servers"])
}

/// The code of a line: without a `//` comment (outside a string) and string contents.
fn code(line: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => {
                in_string = !in_string;
                out.push('"');
            }
            '/' if !in_string && chars.peek() == Some(&'/') => break,
            _ if in_string => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn no_file_is_over_600_lines() {
    let long: Vec<String> = ours()
        .iter()
        .filter(|(_, text)| text.lines().count() > MAX_FILE_LINES)
        .map(|(path, text)| format!("{path}: {} lines", text.lines().count()))
        .collect();
    assert!(long.is_empty(), "over {MAX_FILE_LINES} lines: {long:#?}");
}

/// Each function's name and length in lines, from its `fn` line to the `}` at its indent.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let after = ["pub(crate) ", "pub ", "async ", "const ", "unsafe "]
            .iter()
            .fold(trimmed, |t, p| t.strip_prefix(p).unwrap_or(t));
        let Some(rest) = after.strip_prefix("fn ") else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        let end = (i..lines.len())
            .find(|&j| lines[j].trim_end() == close)
            .unwrap_or(i);
        out.push((name, i + 1, end - i + 1));
    }
    out
}

#[test]
fn no_function_is_over_100_lines_but_the_preset_table() {
    let mut long = Vec::new();
    for (path, text) in ours() {
        for (name, line, length) in functions(&text) {
            let allowed = LONG_ALLOWED.contains(&(path.as_str(), name.as_str()));
            if length > MAX_FN_LINES && !allowed {
                long.push(format!("{path}:{line} {name}: {length} lines"));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_FN_LINES} lines: {long:#?}");
}

/// The `_ =>` arms of matches whose arms name `Binary::` or `Model::` variants: a new target
/// or model would fall into them silently.
fn wildcard_arms_over_models(text: &str) -> Vec<usize> {
    let lines: Vec<String> = text.lines().map(code).collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !(line.contains("match ") && line.trim_end().ends_with('{')) {
            continue;
        }
        // The match's body: to the line closing it at its own depth.
        let mut depth = 0i32;
        let mut arms = Vec::new();
        for (j, inner) in lines.iter().enumerate().skip(i) {
            if j > i && depth == 1 {
                arms.push((j, inner.trim_start().to_string()));
            }
            depth += inner.matches('{').count() as i32 - inner.matches('}').count() as i32;
            if depth <= 0 {
                break;
            }
        }
        let over_models = arms
            .iter()
            .any(|(_, arm)| arm.starts_with("Binary::") || arm.starts_with("Model::"));
        found.extend(
            arms.iter()
                .filter(|(_, arm)| {
                    over_models && (arm.starts_with("_ =>") || arm.starts_with("_ if"))
                })
                .map(|(j, _)| j + 1),
        );
    }
    found
}

#[test]
fn every_match_over_a_target_or_a_model_names_every_variant() {
    let mut found = Vec::new();
    for (path, text) in ours() {
        for line in wildcard_arms_over_models(&text) {
            found.push(format!("{path}:{line}"));
        }
        for (n, line) in text.lines().enumerate() {
            let prefix_test = ["tokio-", "sync-", "may-", "compio-"]
                .iter()
                .any(|p| line.contains(&format!("starts_with(\"{p}")));
            if prefix_test {
                found.push(format!("{path}:{} tests a target's name prefix", n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "decide by Binary::model() or an exhaustive match instead: {found:#?}"
    );
}

#[test]
fn the_shape_checks_catch_what_they_look_for() {
    let wildcard = "fn f(b: Binary) -> u32 {\n    match b {\n        Binary::SyncPool => 1,\n        _ => 2,\n    }\n}\n";
    assert_eq!(wildcard_arms_over_models(wildcard), [4]);
    let words = "match name {\n    \"a\" => 1,\n    _ => 2,\n}\n";
    assert!(wildcard_arms_over_models(words).is_empty());
    let f = functions("fn a() {\n    x();\n}\n\n    pub fn b() {\n    }\n");
    assert_eq!(f, [("a".to_string(), 1, 3), ("b".to_string(), 5, 2)]);
}

/// `bench`'s modules (`cli`, `model::row`, …), each with the modules its code names (its
/// tests left out).
fn bench_imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources(&["bench/src"]) {
        let module = module_of(&path);
        let parent: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        let targets = graph.entry(module.clone()).or_default();
        if path.ends_with("/tests.rs") {
            continue; // a module's tests may use anything
        }
        let until_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
        for line in until_tests.lines().map(code) {
            for (at, _) in line.match_indices("crate::") {
                targets.insert(path_after(&line[at + "crate::".len()..]));
            }
            for (at, _) in line.match_indices("super::") {
                if at >= 2 && &line[at - 2..at] == "::" {
                    continue;
                }
                // `super` of `a::b` (a/b.rs or a/b/mod.rs) is `a`.
                let mut base = parent.clone();
                base.pop();
                let rest = path_after(&line[at + "super::".len()..]);
                let mut full = base.join("::");
                if !rest.is_empty() {
                    full = if full.is_empty() {
                        rest
                    } else {
                        format!("{full}::{rest}")
                    };
                }
                targets.insert(full);
            }
        }
    }
    graph
}

/// `bench/src/model/row/mod.rs` → `model::row`.
fn module_of(path: &str) -> String {
    let inner = path
        .trim_start_matches("bench/src/")
        .trim_end_matches(".rs");
    let inner = inner.trim_end_matches("/mod").trim_end_matches("lib");
    inner.trim_end_matches('/').replace('/', "::")
}

/// The module path at the start of `text` (`model::row::{Row, …}` → `model::row`): the
/// lowercase segments.
fn path_after(text: &str) -> String {
    let mut segments = Vec::new();
    for segment in text.split("::") {
        let name: String = segment
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() || !name.chars().next().unwrap().is_lowercase() {
            break;
        }
        segments.push(name);
        if segment.len() != segments.last().unwrap().len() {
            break;
        }
    }
    segments.join("::")
}

/// Among the children of each module, an edge A → B when code under A names something
/// under B; a circle of such edges is a tangle of two layers that should be one, or split.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let child_of = |parent: &str, module: &str| -> Option<String> {
        let rest = if parent.is_empty() {
            module
        } else {
            module.strip_prefix(parent)?.strip_prefix("::")?
        };
        rest.split("::")
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let parents: BTreeSet<String> = graph
        .keys()
        .map(|m| {
            m.rsplit_once("::")
                .map_or(String::new(), |(p, _)| p.to_string())
        })
        .collect();
    let mut found = Vec::new();
    for parent in parents {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, targets) in graph {
            let Some(a) = child_of(&parent, from) else {
                continue;
            };
            for to in targets {
                if let Some(b) = child_of(&parent, to) {
                    if a != b
                        && graph
                            .keys()
                            .any(|k| child_of(&parent, k).as_deref() == Some(&b))
                    {
                        edges.entry(a.clone()).or_default().insert(b);
                    }
                }
            }
        }
        for start in edges.keys() {
            if let Some(circle) = circle_from(&edges, start) {
                let named: Vec<String> = circle
                    .iter()
                    .map(|c| {
                        if parent.is_empty() {
                            c.clone()
                        } else {
                            format!("{parent}::{c}")
                        }
                    })
                    .collect();
                if !found.iter().any(|f: &Vec<String>| same_circle(f, &named)) {
                    found.push(named);
                }
            }
        }
    }
    found
}

fn same_circle(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

/// A path from `start` back to itself, if there is one.
fn circle_from(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in edges.get(last).into_iter().flatten() {
            if next == start {
                return Some(path.clone());
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_two_modules_of_bench_import_each_other() {
    let found = circles(&bench_imports());
    assert!(found.is_empty(), "import circles: {found:#?}");
}

#[test]
fn the_circle_check_finds_a_circle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("model::a".into(), ["model::b::X".to_string()].into());
    graph.insert("model::b".into(), ["model::a".to_string()].into());
    graph.insert("model::c".into(), ["model::a".to_string()].into());
    assert_eq!(circles(&graph).len(), 1, "{:?}", circles(&graph));
    assert_eq!(module_of("bench/src/model/row/mod.rs"), "model::row");
    assert_eq!(path_after("model::row::{Row, Status};"), "model::row");
}
