//! Measuring: the one loop that every measuring command (`run`, `compare`, `sweep`) goes
//! through ([`session`]: verify, refuse or measure each case, progress, Ctrl-C), the runner
//! that turns a case into a row ([`runner`]: its rounds, the target's life, the load tool), the
//! load tools ([`tools`], one file each), the samplers of a round ([`sample`]) and the extras
//! beside the load ([`extras`]: faults, idle connections, slow clients, one file each).
//!
//! A round starts the target fresh (behind its own nginx when the case goes via nginx),
//! warms up, starts the samplers (DB sessions and memory every 100 ms, CPU from /proc before
//! and after) and the extras, runs the load tool, and stops everything. A target that fails
//! the contract checks is refused before any load; one that dies during its run is a failed
//! row, and the run goes on.

pub mod extras;
pub mod load;
pub mod paced;
pub mod runner;
pub mod sample;
pub mod session;
pub mod soak;
pub mod tools;

use std::time::Duration;

pub use runner::Runner;
pub use session::Session;

/// Sampling interval of the DB sessions and memory samplers.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
