//! `bench up`: the stack and the chosen targets, direct and behind nginx, with their URLs
//! printed for any load tool; up until Ctrl-C.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::args::{OnOff, StackArgs, TokenArgs};
use super::UsageError;
use crate::model::plan::UpPlan;
use crate::ops;
use crate::ops::up::Up;
use crate::stack::StackOptions;

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Extra flags for every target, e.g. --flag workers=1 --flag delay-ms=20.
    #[arg(long = "flag", value_name = "NAME=VALUE")]
    flags: Vec<String>,
    /// nginx keeps connections to the targets open (HTTP/1.1) or not (bare proxy_pass).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    upstream_keepalive: OnOff,
    /// Serve the targets, the nginx proxy and the status endpoint on this address, for a load
    /// host elsewhere (`bench run --remote`). Anything but loopback is reachable from the
    /// network, and so is the private PostgreSQL, to a load role with a password.
    #[arg(long, default_value = "127.0.0.1")]
    listen_host: std::net::IpAddr,
    #[command(flatten)]
    token: TokenArgs,
    /// Start the targets with a preset's flags (its pool size, workers and delay), as
    /// `bench run --scenario` would; --flag still overrides them.
    #[arg(long)]
    scenario: Option<String>,
}

/// Parses `name=value` into a `--name value` flag pair.
fn parse_flag(text: &str) -> Result<(String, String)> {
    let (name, value) = text
        .split_once('=')
        .with_context(|| format!("--flag {text:?}: write NAME=VALUE, e.g. workers=1"))?;
    let name = name.trim_start_matches('-');
    Ok((format!("--{name}"), value.to_string()))
}

pub fn exec(args: UpArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let flags: Vec<(String, String)> = args
        .flags
        .iter()
        .map(|f| parse_flag(f))
        .collect::<Result<_>>()?;
    let host = args.listen_host;
    if host.is_unspecified() {
        return Err(UsageError(format!(
            "--listen-host {host}: give the address the load host reaches this one at (it goes into stack.json)"
        ))
        .into());
    }
    let token = args.token.token()?;
    if !host.is_loopback() {
        eprintln!(
            "bench: warning: serving on {host}: the targets, nginx, the status endpoint (with its token) and PostgreSQL (a load role with a password) are reachable from the network"
        );
    }
    eprintln!("bench: starting the stack");
    let mut up = ops::up::up(UpPlan {
        options: StackOptions {
            listen_host: Some(host),
            ..args.stack.stack_options()
        },
        binaries: args.stack.binaries()?,
        flags,
        scenario: args.scenario,
        upstream_keepalive: args.upstream_keepalive.is_on(),
        host,
        token,
    })?;
    print_up(&up);
    while !interrupted.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        for target in &mut up.targets {
            if let Err(e) = target.ensure_running() {
                bail!("{e:#}");
            }
        }
    }
    eprintln!("bench: stopping");
    Ok(ExitCode::SUCCESS)
}

/// The URLs of everything that is up, for any load tool.
fn print_up(up: &Up) {
    let status_url = up.description.status_url.as_deref().unwrap_or("");
    println!("PostgreSQL   {}", up.database_url);
    println!(
        "upstream     {} (nginx, echo_sleep; /static is nginx alone)",
        up.stack.upstream_url()
    );
    println!();
    println!(
        "{:<12} {:<28} {:<28} model",
        "target", "direct", "via nginx"
    );
    for (target, route) in up.targets.iter().zip(&up.proxied) {
        println!(
            "{:<12} {:<28} {:<28} {}",
            target.binary.name(),
            format!("http://{}/test", target.addr),
            format!("http://{}/test", route.listen),
            target.binary.describe()
        );
    }
    println!();
    println!("e.g.  wrk -c100 -d10s http://{}/test", up.proxied[0].listen);
    println!(
        "stack {} (also {status_url}/stack.json, with samples of these processes at /samples)",
        up.stack_json.display(),
    );
    println!("From another host: bench run --remote {status_url}/stack.json");
    println!(
        "Logs in {}. Ctrl-C stops everything.",
        up.stack.run_dir.display()
    );
}
