//! `bench client`: the client side of the argument, N GETs of the upstream page per client
//! model, each against its bound.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::args::StackArgs;
use super::{exit_code, UsageError};
use crate::model::client;
use crate::model::plan::ClientPlan;
use crate::observe::machine;
use crate::ops;
use crate::output::{self, folder};

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Requests per model.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    requests: u32,
    /// nginx answers each request after this many milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    delay_ms: u32,
    /// Thread counts of the threads models.
    #[arg(long, value_delimiter = ',', default_value = "10,20", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    threads: Vec<u32>,
    /// Rounds per model; rows keep the median and the min–max.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Results folder [default: results/client-<time>].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn exec(args: ClientArgs) -> Result<ExitCode> {
    let plan = ClientPlan {
        requests: args.requests,
        delay_ms: args.delay_ms,
        models: client::models(&args.threads).map_err(|e| UsageError(e.to_string()))?,
        rounds: args.rounds,
    };
    let out = folder::out_dir(args.out.as_deref(), "client")?;
    let stack = crate::ops::prepare::stack(&StackArgs::default().stack_options())?;
    eprintln!(
        "bench: client: {} GETs of {} ms per model, {} round(s)",
        plan.requests, plan.delay_ms, plan.rounds
    );
    let rows = ops::client::measure_models(stack.upstream_addr, &plan)?;
    output::client::write_client(&out, &plan, &rows, &machine::read())?;
    println!("{}", output::client::client_table(&rows));
    super::results_line(
        &out,
        "report.html (report.md, results.json, results.csv, wall.svg)",
    );
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    Ok(exit_code(usize::from(errors > 0)))
}
