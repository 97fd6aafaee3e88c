//! `bench load`: bench's own load client (`--tool bench`), which the harness starts as a child
//! process like any load tool: a closed loop over a mix of request classes, printing one JSON
//! measurement with each class's figures (`measure::load`). It can be run by hand against any
//! server of the contract too.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::measure::load::{self, LoadPlan};
use crate::model::mix::{self, Mix};

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The endpoint, e.g. http://127.0.0.1:8000/test (a query is ignored: each class brings
    /// its own).
    #[arg(long, value_parser = shared::UpstreamUrl::parse)]
    url: shared::UpstreamUrl,
    /// The classes: NAME:WEIGHT:PARAM=V[&PARAM=V…],… (default: every request alike).
    #[arg(long, value_parser = mix::parse, default_value = "all:1:")]
    mix: Mix,
    /// Concurrent connections, each a thread with its own closed loop.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Open loop at this many requests per second in all (each connection its share); a
    /// request's latency counts from when it was due. Without it, a closed loop.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    rate: Option<u32>,
    /// How long to load, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    seconds: u32,
    /// A new connection for every request.
    #[arg(long)]
    no_keepalive: bool,
    /// Seed of the draws of the classes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn exec(args: LoadArgs) -> Result<ExitCode> {
    let path = args.url.path_and_query.split('?').next().unwrap_or("/");
    let plan = LoadPlan {
        addr: args.url.addr,
        path: path.to_string(),
        mix: args.mix,
        connections: args.connections,
        rate: args.rate,
        seconds: args.seconds,
        keepalive: !args.no_keepalive,
        seed: args.seed,
    };
    let measurement = load::run(&plan);
    println!("{}", serde_json::to_string(&measurement)?);
    Ok(ExitCode::SUCCESS)
}
