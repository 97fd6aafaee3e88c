//! The repository is self-contained: every relative link in a Markdown file, and every
//! `docs/...` path cited in the source, points at a file inside the repository. A clone of the
//! repository alone has the spec and the notes on each preset.

use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The repository's own text files: build output, git, fuzz corpora and the vendored crate's
/// upstream files are not ours to check.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | ".git" | "corpus" | "results" | "artifacts"
            ) {
                files(&path, out);
            }
        } else if [".md", ".rs", ".toml", ".yaml", ".sh", "Dockerfile"]
            .iter()
            .any(|ext| name.ends_with(ext))
            || path
                .parent()
                .and_then(|p| p.file_name())
                .is_some_and(|dir| dir == "scripts" || dir == ".ci")
        {
            out.push(path);
        }
    }
}

/// `a/b/../c` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The targets of `[text](target)` links.
fn markdown_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find(')') {
            links.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    links
}

/// `docs/...` paths cited in a text (in code, comments or prose).
fn docs_paths(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut paths = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("docs/") {
        let start = from + found;
        from = start + 5;
        // A path starts here, not inside another word or path (`mydocs/`, `x/docs/`).
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'/') {
            continue;
        }
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_-./".contains(c)))
            .map_or(text.len(), |n| start + n);
        let path = text[start..end].trim_end_matches(['.', '/']);
        if path.len() > "docs/".len() {
            paths.push(path.to_string());
        }
    }
    paths
}

#[test]
fn every_relative_link_and_cited_docs_path_exists_inside_the_repository() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(
        all.len() > 20,
        "only {} files found under {}",
        all.len(),
        root.display()
    );
    let mut broken = Vec::new();
    for file in &all {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        if shown.ends_with(".md") {
            for link in markdown_links(&text) {
                if link.is_empty()
                    || link.starts_with('#')
                    || link.contains("://")
                    || link.starts_with("mailto:")
                {
                    continue;
                }
                let path = link.split('#').next().unwrap_or("");
                let resolved = normalize(&file.parent().unwrap_or(&root).join(path));
                if !resolved.starts_with(&root) {
                    broken.push(format!("{shown}: {link} points outside the repository"));
                } else if !resolved.exists() {
                    broken.push(format!("{shown}: {link} does not exist"));
                }
            }
        }
        // The handbook beside the repository is not part of it: nothing may cite it.
        for handbook in ["CONTRACT.md", "REFERENCES.md", "STYLE.md"] {
            if text.contains(&format!("../shared/{handbook}")) {
                broken.push(format!(
                    "{shown}: cites ../shared/{handbook}, outside the repository"
                ));
            }
        }
        for cited in docs_paths(&text) {
            if !root.join(&cited).exists() {
                broken.push(format!("{shown}: cites {cited}, which does not exist"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken references:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_link_finders_see_what_they_should() {
    assert_eq!(
        markdown_links("see [the spec](docs/contract.md#limits) and [x](https://e.org)"),
        ["docs/contract.md#limits", "https://e.org"]
    );
    assert_eq!(
        docs_paths("//! see docs/contract.md, and mydocs/x or docs/."),
        ["docs/contract.md"]
    );
    assert_eq!(
        normalize(Path::new("/r/a/../../elsewhere/SPEC.md")),
        PathBuf::from("/elsewhere/SPEC.md")
    );
}
