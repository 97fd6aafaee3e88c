//! Results folders read back, for `bench report` (every run on one page) and `bench diff` (two
//! runs row by row): what made the folder, when, at which commit, and its rows.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::model::row::Row;

/// The command that wrote a results folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Run,
    Sweep,
    Compare,
    Client,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Sweep => "sweep",
            Kind::Compare => "compare",
            Kind::Client => "client",
        }
    }
}

/// One results folder.
pub struct Folder {
    pub dir: PathBuf,
    pub kind: Kind,
    /// The preset (`grinberg`); `client` for `bench client`.
    pub scenario: String,
    pub started: String,
    pub commit: Option<String>,
    /// The rows of a run, sweep or comparison (none for `bench client`).
    pub rows: Vec<Row>,
    /// The whole JSON file, for what only one kind has.
    pub json: Value,
}

impl Folder {
    /// The folder's page: `report.html`, or `report.md` for a folder written before it.
    pub fn page(&self) -> PathBuf {
        let html = self.dir.join("report.html");
        if html.exists() {
            html
        } else {
            self.dir.join("report.md")
        }
    }

    /// The folder's own name (`grinberg-20261126-081759`).
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    }

    /// The targets of its rows (without their groups), in order of appearance.
    pub fn targets(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for row in &self.rows {
            if !names.iter().any(|n| n == row.name()) {
                names.push(row.name().to_string());
            }
        }
        names
    }
}

/// Whether `dir` holds a results file.
pub fn is_results_folder(dir: &Path) -> bool {
    dir.join("results.json").is_file() || dir.join("compare.json").is_file()
}

/// Reads a results folder; an error names the folder and what is wrong with it.
pub fn read(dir: &Path) -> Result<Folder> {
    let (file, kind) = if dir.join("compare.json").is_file() {
        ("compare.json", Some(Kind::Compare))
    } else if dir.join("results.json").is_file() {
        ("results.json", None)
    } else {
        anyhow::bail!(
            "{} is not a results folder: it has no results.json or compare.json",
            dir.display()
        );
    };
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let kind = kind.unwrap_or(if json["command"] == "client" {
        Kind::Client
    } else if json.get("vary").is_some() {
        Kind::Sweep
    } else {
        Kind::Run
    });
    let rows = match kind {
        Kind::Client => Vec::new(),
        _ => serde_json::from_value::<Vec<crate::model::row::Row>>(json["results"].clone())
            .with_context(|| {
                format!(
                    "{}: its results are not rows of this bench version",
                    path.display()
                )
            })?
            .into_iter()
            .map(crate::model::row::Row::with_label)
            .collect(),
    };
    let text_of = |key: &str| json[key].as_str().map(str::to_string);
    Ok(Folder {
        dir: dir.to_path_buf(),
        kind,
        scenario: text_of("scenario").unwrap_or_else(|| "client".into()),
        started: text_of("started").unwrap_or_default(),
        commit: text_of("commit"),
        rows,
        json,
    })
}

/// The results folders among `dirs`: each one that is a results folder, and the results
/// folders directly inside each one that is not; oldest first (by start, then name).
pub fn collect(dirs: &[PathBuf]) -> Result<Vec<Folder>> {
    let mut folders = Vec::new();
    for dir in dirs {
        if is_results_folder(dir) {
            folders.push(read(dir)?);
            continue;
        }
        let entries = std::fs::read_dir(dir).with_context(|| {
            format!(
                "{} is not a results folder, nor a folder of them",
                dir.display()
            )
        })?;
        let mut inside: Vec<PathBuf> = entries
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| is_results_folder(p))
            .collect();
        if inside.is_empty() {
            anyhow::bail!(
                "{} is not a results folder and holds none (a results folder has results.json or compare.json)",
                dir.display()
            );
        }
        inside.sort();
        for path in inside {
            // A folder written by another bench version is left out, not fatal.
            match read(&path) {
                Ok(folder) => folders.push(folder),
                Err(e) => eprintln!("bench: skipped {}: {e:#}", path.display()),
            }
        }
    }
    folders.sort_by_cached_key(|f| {
        let time = httpdate::parse_http_date(&f.started).unwrap_or(std::time::UNIX_EPOCH);
        (time, f.dir.clone())
    });
    Ok(folders)
}
