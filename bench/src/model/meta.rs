//! Everything about a run but its rows ([`Meta`]): the preset, its settings, the machine,
//! the versions. `results.json` is the meta with the rows beside it.

use serde::Serialize;

use super::settings::Settings;

/// The suite's name, as results and stack descriptions carry it.
pub const SUITE: &str = "rust-web-perf";

/// Everything about a run but its rows.
#[derive(Clone, Debug, Serialize)]
pub struct Meta {
    pub suite: &'static str,
    pub bench_version: &'static str,
    pub scenario: String,
    pub source: String,
    pub started: String,
    pub finished: String,
    pub settings: Settings,
    pub baseline: String,
    pub machine: Machine,
    pub versions: Vec<(String, String)>,
    /// Targets that were asked for but not built.
    pub missing_targets: Vec<String>,
    /// The command line that made the run, quoted for a shell.
    pub command: String,
    /// The suite's git commit (`+dirty` with uncommitted changes), when it runs from a
    /// checkout.
    pub commit: Option<String>,
}

/// The machine a run measured on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub os: String,
}

impl Machine {
    /// `2 CPUs (AMD EPYC), 23.5 GiB, Debian GNU/Linux 12, Linux 6.18.0`.
    pub fn describe(&self) -> String {
        format!(
            "{} CPUs ({}), {} GiB, {}, Linux {}",
            self.cpus, self.cpu_model, self.memory_gib, self.os, self.kernel
        )
    }
}
