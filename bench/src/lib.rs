//! The harness library: the stack launcher, the contract checks and the load runs, shared by
//! the `bench` binary and the tests. Data flows down: each layer uses only those below it.
//!
//! - `cli`: one file per subcommand, its arguments and a thin `exec`;
//! - `ops`: each command's work (`run`, `compare`, `sweep`, `client`, `up`);
//! - `measure`: the one measuring loop, the runner, the load tools, the extras beside the load;
//! - `output`: results folders, JSON, CSV, Markdown and charts;
//! - `remote`: a stack on another host (`stack.json`, the status endpoint);
//! - `contract`: the checks every target must pass;
//! - `stack`: the launcher (PostgreSQL, nginx, pgbouncer, targets);
//! - `observe` and `client`: counting what runs, and a raw HTTP/1.1 client; `externals`: the
//!   servers the harness did not start, from their URLs to addresses; `token`: the status
//!   endpoint's token and a URL's user part that carries it;
//! - `model`: plain values (settings, presets, cases, knobs, faults, rows), no I/O.

pub mod cli;
pub mod client;
pub mod contract;
pub mod externals;
pub mod measure;
pub mod model;
pub mod observe;
pub mod ops;
pub mod output;
pub mod remote;
pub mod stack;
pub mod token;

/// A mistake in how a command was called: exit status 2 and one line, like clap's own. `cli`
/// refuses flags with it; `ops` refuses what it learns only when it looks (a remote stack's
/// description).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
