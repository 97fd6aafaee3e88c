//! The `bench` command line: `up`, `verify` (and, with the harness, `run`, `compare`,
//! `scenarios`). Each command is a thin layer over the library.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use shared::Binary;

use crate::checks::{self, Subject};
use crate::stack::{Stack, StackOptions, Target};

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    version,
    about = "Start the rust-web-perf stack, check the contract, compare the concurrency models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the stack and the chosen targets, direct and behind nginx, and print their URLs
    /// for any load tool; stays up until Ctrl-C.
    Up(UpArgs),
    /// Check the contract against targets: started here, or one already running (--url).
    Verify(VerifyArgs),
}

/// Which targets, and the stack to run them on.
#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    /// Comma-separated targets [default: all]. Names: sync-thread, sync-pool, tokio-axum,
    /// tokio-actix, tokio-hyper, may-green.
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Use this PostgreSQL instead of a private cluster (sql/ is loaded into it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StackArgs {
    pub fn stack_options(&self) -> StackOptions {
        StackOptions {
            database_url: self.database_url.clone(),
            ..StackOptions::from_env()
        }
    }

    pub fn binaries(&self) -> Result<Vec<Binary>> {
        parse_targets(&self.targets)
    }
}

#[derive(Args, Debug)]
struct UpArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Extra flags for every target, e.g. --flag workers=1 --flag delay-ms=20.
    #[arg(long = "flag", value_name = "NAME=VALUE")]
    flags: Vec<String>,
    /// nginx keeps connections to the targets open (HTTP/1.1) or not (bare proxy_pass).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    upstream_keepalive: OnOff,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Check a target that is already running at this URL (e.g. http://127.0.0.1:8000),
    /// instead of starting them; needs --binary and --database-url.
    #[arg(long, requires = "binary")]
    url: Option<String>,
    /// The binary behind --url.
    #[arg(long)]
    binary: Option<String>,
    /// With --url: the upstream nginx, to check the page length (host:port).
    #[arg(long)]
    upstream: Option<SocketAddr>,
    /// With --url: the target's --rows.
    #[arg(long, default_value_t = 1_000_000)]
    rows: i32,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    pub fn is_on(self) -> bool {
        self == OnOff::On
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let interrupted = install_interrupt_handler();
    let result = match cli.command {
        Command::Up(args) => up(args, &interrupted),
        Command::Verify(args) => verify(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C and SIGTERM set a flag that long waits poll; the stack then stops on the way out.
fn install_interrupt_handler() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let setter = flag.clone();
    if let Err(e) = ctrlc::set_handler(move || setter.store(true, Ordering::SeqCst)) {
        eprintln!("bench: warning: cannot catch Ctrl-C ({e}); stop with care");
    }
    flag
}

/// Parses target names; an unknown one lists the valid names.
pub fn parse_targets(names: &[String]) -> Result<Vec<Binary>> {
    if names.is_empty() {
        return Ok(Binary::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| {
            Binary::from_name(name.trim()).with_context(|| {
                format!(
                    "unknown target {name:?}; valid targets: {}",
                    Binary::ALL.map(Binary::name).join(", ")
                )
            })
        })
        .collect()
}

/// Parses `name=value` into a `--name value` flag pair.
fn parse_flag(text: &str) -> Result<(String, String)> {
    let (name, value) = text
        .split_once('=')
        .with_context(|| format!("--flag {text:?}: write NAME=VALUE, e.g. workers=1"))?;
    let name = name.trim_start_matches('-');
    Ok((format!("--{name}"), value.to_string()))
}

fn up(args: UpArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let binaries = args.stack.binaries()?;
    let flags: Vec<(String, String)> = args
        .flags
        .iter()
        .map(|f| parse_flag(f))
        .collect::<Result<_>>()?;
    eprintln!("bench: starting the stack");
    let stack = Stack::start(&args.stack.stack_options())?;
    let mut targets: Vec<Target> = Vec::new();
    for binary in &binaries {
        targets.push(stack.launch(*binary, &flags)?);
    }
    let routes: Vec<(String, SocketAddr)> = targets
        .iter()
        .map(|t| (t.binary.name().to_string(), t.addr))
        .collect();
    let (_proxy, proxied) = stack.proxy(&routes, args.upstream_keepalive.is_on(), 1)?;

    println!("PostgreSQL   {}", stack.database_url());
    println!(
        "upstream     {} (nginx, echo_sleep; /static is nginx alone)",
        stack.upstream_url()
    );
    println!();
    println!(
        "{:<12} {:<28} {:<28} model",
        "target", "direct", "via nginx"
    );
    for (target, route) in targets.iter().zip(&proxied) {
        println!(
            "{:<12} {:<28} {:<28} {}",
            target.binary.name(),
            format!("http://{}/test", target.addr),
            format!("http://{}/test", route.listen),
            target.binary.model()
        );
    }
    println!();
    println!("e.g.  wrk -c100 -d10s http://{}/test", proxied[0].listen);
    println!(
        "Logs in {}. Ctrl-C stops everything.",
        stack.run_dir.display()
    );

    while !interrupted.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        for target in &mut targets {
            if let Err(e) = target.ensure_running() {
                bail!("{e:#}");
            }
        }
    }
    eprintln!("bench: stopping");
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    if let Some(url) = &args.url {
        let binary_name = args.binary.as_deref().unwrap_or_default();
        let binary = parse_targets(&[binary_name.to_string()])?[0];
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse::<SocketAddr>()
            .with_context(|| format!("--url {url}: expected http://IP:PORT"))?;
        let database_url = args.stack.database_url.clone().context(
            "--url needs --database-url (or DATABASE_URL), to check bodies against rows",
        )?;
        let subject = Subject {
            binary,
            direct: addr,
            proxied: None,
            database_url,
            upstream: args.upstream,
            rows: args.rows,
        };
        let failed = print_outcomes(binary, &checks::run_all(&subject));
        return Ok(exit_code(failed));
    }

    let binaries = args.stack.binaries()?;
    eprintln!("bench: starting the stack");
    let stack = Stack::start(&args.stack.stack_options())?;
    let failed = verify_targets(&stack, &binaries, true)?;
    Ok(exit_code(failed.len()))
}

/// Starts each target behind nginx and runs every check; prints a line per check. Returns the
/// targets that failed any.
pub fn verify_targets(stack: &Stack, binaries: &[Binary], print: bool) -> Result<Vec<Binary>> {
    let mut failed = Vec::new();
    for &binary in binaries {
        let target = stack.launch(binary, &[])?;
        let (_proxy, routes) = stack.proxy(&[(binary.name().to_string(), target.addr)], true, 1)?;
        let subject = Subject {
            binary,
            direct: target.addr,
            proxied: Some(routes[0].listen),
            database_url: stack.database_url().to_string(),
            upstream: Some(stack.upstream_addr),
            rows: 1_000_000,
        };
        let outcomes = checks::run_all(&subject);
        let failures = if print {
            print_outcomes(binary, &outcomes)
        } else {
            outcomes.iter().filter(|o| o.result.is_err()).count()
        };
        if failures > 0 {
            failed.push(binary);
        }
    }
    Ok(failed)
}

fn print_outcomes(binary: Binary, outcomes: &[checks::Outcome]) -> usize {
    let mut failures = 0;
    for outcome in outcomes {
        match &outcome.result {
            Ok(()) => println!("{:<12} pass  {}", binary.name(), outcome.check),
            Err(e) => {
                failures += 1;
                println!("{:<12} FAIL  {}: {e:#}", binary.name(), outcome.check);
            }
        }
    }
    let passed = outcomes.len() - failures;
    println!(
        "{:<12} {passed}/{} checks pass",
        binary.name(),
        outcomes.len()
    );
    failures
}

fn exit_code(failures: usize) -> ExitCode {
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
