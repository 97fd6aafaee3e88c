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
    /// What one unit of `work=N` (a SHA-256 of 1 KiB) costs here, in µs on one thread
    /// (`observe::machine::calibrate_work`, at the start of a run).
    pub work_us_per_unit: f64,
}

/// The calibrated cost of a unit of work, set once per process.
static WORK_COST: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// Keeps `us_per_unit` as this process's cost of a unit of work (the first value set wins),
/// and returns the one kept.
pub fn set_work_cost(us_per_unit: f64) -> f64 {
    *WORK_COST.get_or_init(|| us_per_unit)
}

/// The cost of a unit of work, once calibrated.
pub fn work_cost() -> Option<f64> {
    WORK_COST.get().copied()
}

impl Machine {
    /// `2 CPUs (AMD EPYC), 23.5 GiB, Debian GNU/Linux 12, Linux 6.18.0; one unit of work …`.
    pub fn describe(&self) -> String {
        format!(
            "{} CPUs ({}), {} GiB, {}, Linux {}; one unit of work (SHA-256 of 1 KiB) {:.3} µs on one thread",
            self.cpus, self.cpu_model, self.memory_gib, self.os, self.kernel, self.work_us_per_unit
        )
    }
}
