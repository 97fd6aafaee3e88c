//! How every target starts, in one shape: parse the flags (a bad one exits 2 with one line
//! naming it, before anything is bound), run the model's `serve`, and turn a start-up failure
//! (the port is taken, the runtime cannot start, the database's host does not resolve, the
//! signal handlers cannot be installed) into one line, `NAME: what failed`, and exit status 1,
//! the same in every target. A clean drain after SIGTERM exits 0.

use std::process::ExitCode;

use crate::{Binary, Config};

/// The `main` of every target: `serve` is its model, and returns once drained.
pub fn run(binary: Binary, serve: impl FnOnce(Config) -> Result<(), String>) -> ExitCode {
    let config = Config::from_env(binary);
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{}: {message}", binary.name());
            ExitCode::FAILURE
        }
    }
}
