//! `bench verify`: the contract's checks against the targets (started here) or against a
//! server already running (`--url`), one line per check.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use shared::Binary;

use super::args::StackArgs;
use super::{exit_code, parse_targets, UsageError};
use crate::contract::{self, CheckOutcome, Server};
use crate::stack::Stack;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Check a server that is already running at this URL (e.g. http://127.0.0.1:8000),
    /// instead of starting the targets; needs --database-url, the database it reads.
    #[arg(long)]
    url: Option<String>,
    /// The reference binary behind --url, when it is one (its Server header and keep-alive
    /// model are then checked as that target's); without it, the server is checked as an
    /// external one.
    #[arg(long, requires = "url")]
    binary: Option<String>,
    /// With --url: the upstream nginx, to check the page length (host:port).
    #[arg(long)]
    upstream: Option<SocketAddr>,
    /// With --url: the target's --rows.
    #[arg(long, default_value_t = contract::TABLE_ROWS, value_parser = clap::value_parser!(i32).range(1..=i64::from(contract::TABLE_ROWS)))]
    rows: i32,
    /// With --url: the application_name of the server's DB sessions [default: the
    /// --binary's], so that the statement check tells its statements from other clients'.
    #[arg(long, requires = "url")]
    app: Option<String>,
}

pub fn exec(args: VerifyArgs) -> Result<ExitCode> {
    if let Some(url) = &args.url {
        let binary = match &args.binary {
            Some(name) => Some(parse_targets("--binary", std::slice::from_ref(name))?[0]),
            None => None,
        };
        let addr = crate::externals::address_of(url)
            .map_err(|why| UsageError(format!("--url {url}: {why}")))?;
        let database_url = args.stack.database_url.clone().context(
            "--url needs --database-url (or DATABASE_URL), to check bodies against rows",
        )?;
        let name = binary.map_or_else(|| url.clone(), |b| b.name().to_string());
        let server = Server {
            binary,
            name: name.clone(),
            direct: addr,
            proxied: None,
            database_url,
            upstream: args.upstream,
            rows: args.rows,
            app: args
                .app
                .clone()
                .or_else(|| binary.map(|b| shared::sql::application_name(b).to_string())),
        };
        let outcomes = contract::run_all(&server);
        let failed = print_outcomes(&name, &outcomes);
        if binary.is_none() {
            // What `bench run --external` makes of these outcomes.
            let (verdict, summary) = contract::judge(&outcomes);
            let then = match verdict {
                Ok(breaks) if breaks.is_empty() => "bench run measures it",
                Ok(_) => "bench run measures it, and its rows list the rules it breaks",
                Err(_) => "bench run refuses it (unless --no-verify)",
            };
            println!("{name} {summary}: {then}");
        }
        return Ok(exit_code(failed));
    }

    let binaries = args.stack.binaries()?;
    let stack = crate::ops::prepare::stack(&args.stack.stack_options())?;
    let failed = verify_targets(&stack, &binaries)?;
    Ok(exit_code(failed.len()))
}

/// Starts each target behind nginx and runs every check; prints a line per check. Returns the
/// targets that failed any.
fn verify_targets(stack: &Stack, binaries: &[Binary]) -> Result<Vec<Binary>> {
    let mut failed = Vec::new();
    for &binary in binaries {
        let outcomes = contract::run_on_stack(stack, binary)?;
        if print_outcomes(binary.name(), &outcomes) > 0 {
            failed.push(binary);
        }
    }
    Ok(failed)
}

fn print_outcomes(name: &str, outcomes: &[CheckOutcome]) -> usize {
    let mut failures = 0;
    for outcome in outcomes {
        match &outcome.result {
            Ok(()) => println!("{name:<12} pass  {}", outcome.check),
            Err(e) => {
                failures += 1;
                println!("{name:<12} FAIL  {}: {e:#}", outcome.check);
            }
        }
    }
    let passed = outcomes.len() - failures;
    println!("{name:<12} {passed}/{} checks pass", outcomes.len());
    failures
}
