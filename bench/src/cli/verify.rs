//! `bench verify`: the contract's checks against the targets (started here) or against a
//! server already running (`--url`), one line per check.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use shared::Binary;

use super::args::StackArgs;
use super::{exit_code, parse_targets, UsageError};
use crate::contract::{self, CheckOutcome, Outcome, Server};
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
        // An nginx of the harness in front of it, as `bench run` loads it, so that the check
        // of the bodies through nginx is really made.
        let stack = crate::ops::prepare::stack(&args.stack.stack_options())?;
        let (_proxy, routes) = stack.proxy(&[(name.clone(), addr)], true, 1)?;
        let server = Server {
            binary,
            name: name.clone(),
            direct: addr,
            proxied: Some(routes[0].listen),
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
            let (verdict, summary) = contract::judge(&outcomes, false, false);
            let then = match verdict {
                Ok(checked) if checked.breaks.is_empty() && checked.unchecked.is_empty() => {
                    "bench run measures it"
                }
                Ok(_) => "bench run measures it, and its rows list the rules it breaks and the checks not made",
                Err(why) if why.starts_with("could not check") => {
                    "bench run refuses it (unless --accept-unchecked)"
                }
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

/// A line per check, then the tally: pass, FAIL (the server broke the rule) and CANNOT
/// CHECK (the harness could not tell) counted apart. Returns the failures, which alone make
/// the exit status.
fn print_outcomes(name: &str, outcomes: &[CheckOutcome]) -> usize {
    let (mut failures, mut unmade) = (0, 0);
    for outcome in outcomes {
        match outcome.outcome() {
            Outcome::Pass => println!("{name:<12} pass  {}", outcome.check),
            Outcome::Fail(why) => {
                failures += 1;
                println!("{name:<12} FAIL  {}: {why}", outcome.check);
            }
            Outcome::CannotCheck(why) => {
                unmade += 1;
                println!("{name:<12} CANNOT CHECK  {}: {why}", outcome.check);
            }
        }
    }
    let passed = outcomes.len() - failures - unmade;
    let not_made = match unmade {
        0 => String::new(),
        n => format!(", {n} could not be checked"),
    };
    println!(
        "{name:<12} {passed}/{} checks pass{not_made}",
        outcomes.len()
    );
    failures
}
