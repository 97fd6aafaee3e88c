//! The load runs: `bench run` and `bench compare`.
//!
//! For each case of a scenario: start the target fresh (behind its own nginx when `via` is
//! nginx), warm up, start the samplers (DB sessions every 100 ms, memory, CPU), run the load
//! tool, stop everything, and turn what was measured into a [`Row`]. A target that fails the
//! contract checks is refused before any load; one that dies during its run is a failed row,
//! and the run goes on.
//!
//! - `scenario`: the presets, their settings and expansion into cases, the Little's-law bound;
//! - `runner`: one case to one row (the rounds, the samplers, the target's life);
//! - `row`: the row and its parts, the median round, `relative`;
//! - `tools` and `pgbench`: the load tools' commands and parsers;
//! - `procfs`: CPU, memory and pinning from /proc;
//! - `run`: `bench run` and `bench compare` over a stack; `sweep`: `bench sweep`, the map over
//!   knobs and offered load; `report` and `chart`: the outputs.

pub mod chart;
pub mod clientside;
pub mod external;
pub mod fault;
pub mod idle;
pub mod pgbench;
pub mod procfs;
pub mod report;
pub mod row;
pub mod run;
pub mod runner;
pub mod scenario;
pub mod slow;
pub mod sweep;
pub mod tools;

use std::path::Path;
use std::time::Duration;

use shared::Binary;

pub use self::row::{set_relative, Row, Spread, Status};
pub use self::runner::Runner;

/// Sampling interval of the DB sessions and memory samplers.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The targets whose binaries are built, in `bin_dir`.
pub fn built_targets(bin_dir: &Path) -> Vec<Binary> {
    Binary::ALL
        .into_iter()
        .filter(|b| bin_dir.join(b.name()).is_file())
        .collect()
}
