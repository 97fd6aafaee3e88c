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
//! - `observe` and `client`: counting what runs, and a raw HTTP/1.1 client;
//! - `model`: plain values (settings, presets, cases, knobs, faults, rows), no I/O.

pub mod cli;
pub mod client;
pub mod contract;
pub mod measure;
pub mod model;
pub mod observe;
pub mod ops;
pub mod output;
pub mod remote;
pub mod stack;
