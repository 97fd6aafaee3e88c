//! The `bench` command line: `up`, `verify`, `run`, `compare` and `scenarios`. Each command is
//! a thin layer over the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use shared::Binary;

use crate::checks::{self, Subject};
use crate::harness::{self, external, report, run::Plan, scenario, sweep, tools};
use crate::remote;
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
    /// Run a scenario against each target in turn and write results.json, results.csv,
    /// report.md and SVG charts.
    Run(RunArgs),
    /// A and B in turn (A B A B …) for --rounds rounds each, with the ratio per pair and its
    /// min/median/max.
    Compare(CompareArgs),
    /// Vary knobs over a grid of points (--vary KNOB=V1,V2,…) and run every target at each:
    /// the verdict as a map, open-loop capacity at a latency objective, heatmaps of the flip.
    Sweep(SweepArgs),
    /// The client side: N GETs of the upstream page (each answered after --delay-ms) made one
    /// after another, from T threads, as N futures on tokio, and as N may coroutines.
    Client(ClientArgs),
    /// Serve the description of a stack this bench did not start (a compose deployment) on
    /// a status endpoint, for `bench run --remote http://HOST:PORT/stack.json`; it has no
    /// samples of the processes, so their RSS, threads and CPU stay empty.
    Describe(DescribeArgs),
    /// List the presets, their parameters and the article each comes from.
    Scenarios,
}

#[derive(Args, Debug)]
struct DescribeArgs {
    /// Where to serve GET /stack.json.
    #[arg(long, default_value = "0.0.0.0:8099")]
    listen: SocketAddr,
    /// The address the load host reaches the stack at.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The database the targets read, as the load host reaches it.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The upstream page the targets fetch.
    #[arg(long, default_value = "http://upstream:8090/upstream")]
    upstream_url: String,
    /// A target (repeatable): NAME=DIRECT_URL[,NGINX_URL], the URLs of its /test as the load
    /// host reaches them.
    #[arg(long = "target", value_name = "NAME=URL[,URL]")]
    targets: Vec<String>,
}

#[derive(Args, Debug)]
struct ClientArgs {
    /// Requests per model.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    requests: u32,
    /// nginx answers each request after this many milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    delay_ms: u32,
    /// Thread counts of the threads models.
    #[arg(long, value_delimiter = ',', default_value = "10,20")]
    threads: Vec<u32>,
    /// Rounds per model; rows keep the median and the min–max.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Results folder [default: results/client-<time>].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Flags that override a scenario's settings.
#[derive(Args, Debug, Clone, Default)]
pub struct Overrides {
    /// Concurrent client connections.
    #[arg(long)]
    pub connections: Option<u32>,
    /// Open loop at this many requests per second (needs --tool oha or hey).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Measured load per target, e.g. 10s or 1m.
    #[arg(long, value_parser = parse_seconds)]
    pub duration: Option<u32>,
    /// Warm-up before the measured load, e.g. 2s (0 for none).
    #[arg(long, value_parser = parse_seconds)]
    pub warmup: Option<u32>,
    /// Delay per request, in milliseconds (pg_sleep, or nginx's echo_sleep).
    #[arg(long)]
    pub delay_ms: Option<u32>,
    /// What /test does.
    #[arg(long, value_enum)]
    pub backend: Option<shared::Backend>,
    /// DB sessions: every target's --pool-size (sync-pool: at most its workers).
    #[arg(long)]
    pub pool_size: Option<u32>,
    /// --workers of every target that has them (sync-pool and the async and green ones).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Load the targets directly or through nginx.
    #[arg(long, value_enum)]
    pub via: Option<scenario::Via>,
    /// nginx keeps connections to the target open.
    #[arg(long, value_enum)]
    pub upstream_keepalive: Option<OnOff>,
    /// The load tool keeps its connections open.
    #[arg(long, value_enum)]
    pub client_keepalive: Option<OnOff>,
    /// Put pgbouncer (session mode, --pool-size server sessions in total) in front of PostgreSQL.
    #[arg(long)]
    pub pgbouncer: bool,
    /// Pin the target to CPU 0 and the load tool to the other CPUs.
    #[arg(long)]
    pub pin: bool,
    /// The tokio targets' DB connections: a pool, or one pipelined connection per worker
    /// (the other targets only pool, and are left out in pipelined mode).
    #[arg(long, value_enum)]
    pub db_mode: Option<shared::DbMode>,
    /// wrk only: one thread per connection, each counting its answers; rows get how evenly
    /// the target served its connections (`connection_requests`).
    #[arg(long)]
    pub per_connection: bool,
    /// A fault during the measured load (repeatable): KIND[@AT][:FOR] with KIND db-restart,
    /// db-stop, upstream-stop or pool-drain; AT seconds into the load [default: a third of
    /// it], FOR seconds [default: 5]. E.g. --fault db-stop@5:3.
    #[arg(long, value_name = "KIND[@AT][:FOR]", value_parser = harness::fault::parse)]
    pub fault: Vec<harness::fault::Fault>,
    /// Slow clients beside the load tool's, straight to the target: each sends its request
    /// over about a second and reads the answer slowly (the slow-clients preset sets 200).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=5000))]
    pub slow_clients: Option<u32>,
    /// Idle keep-alive connections held on each target (each after one GET /json) while the
    /// load runs, with the target's idle timeout off; rows get what they cost.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub idle_connections: Option<u32>,
    /// Rounds per target; rows keep the median and the min–max.
    #[arg(long)]
    pub rounds: Option<u32>,
    /// The targets' --rows: ids are drawn from 1..=ROWS (pgbench's too).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub rows: Option<i32>,
}

impl Overrides {
    pub fn apply(&self, settings: &mut scenario::Settings) {
        if let Some(v) = self.connections {
            settings.connections = v;
        }
        if let Some(v) = self.rate {
            settings.rate = Some(v);
        }
        if let Some(v) = self.duration {
            settings.duration_s = v;
        }
        if let Some(v) = self.warmup {
            settings.warmup_s = v;
        }
        if let Some(v) = self.delay_ms {
            settings.delay_ms = v;
        }
        if let Some(v) = self.backend {
            settings.backend = v;
        }
        if let Some(v) = self.pool_size {
            settings.sessions = v;
        }
        if let Some(v) = self.workers {
            settings.sync_workers = Some(v);
            settings.async_workers = Some(v);
        }
        if let Some(v) = self.via {
            settings.via = v;
        }
        if let Some(v) = self.upstream_keepalive {
            settings.upstream_keepalive = v.is_on();
        }
        if let Some(v) = self.client_keepalive {
            settings.client_keepalive = v.is_on();
        }
        settings.pgbouncer |= self.pgbouncer;
        settings.per_connection |= self.per_connection;
        if let Some(v) = self.slow_clients {
            settings.slow_clients = v;
        }
        if let Some(v) = self.idle_connections {
            settings.idle_connections = v;
        }
        if !self.fault.is_empty() {
            settings.faults = self.fault.clone();
        }
        settings.pin |= self.pin;
        if let Some(v) = self.rounds {
            settings.rounds = v.max(1);
        }
        if let Some(v) = self.db_mode {
            settings.db_mode = v;
        }
        if let Some(v) = self.rows {
            settings.rows = v;
        }
    }
}

/// `10`, `10s` or `2m`, in seconds.
fn parse_seconds(text: &str) -> Result<u32, String> {
    let (number, unit) = match text.strip_suffix('m') {
        Some(n) => (n, 60),
        None => (text.strip_suffix('s').unwrap_or(text), 1),
    };
    number
        .parse::<u32>()
        .map(|n| n * unit)
        .map_err(|_| format!("{text:?} is not a duration: write e.g. 10s or 2m"))
}

/// What `run` and `compare` share: the preset, the tool, the output and the overrides.
#[derive(Args, Debug)]
struct LoadArgs {
    /// The preset (see `bench scenarios`).
    #[arg(long, default_value = "grinberg")]
    scenario: String,
    /// The load tool [default: the preset's, wrk for most].
    #[arg(long, value_enum)]
    tool: Option<tools::ToolKind>,
    /// Results folder [default: results/<scenario>-<time>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the contract checks before the load (they refuse a broken target).
    #[arg(long)]
    no_verify: bool,
    #[command(flatten)]
    overrides: Overrides,
}

impl LoadArgs {
    /// The plan of a run or a sweep: the chosen targets (and those not built) and its output.
    fn plan(
        &self,
        scenario: scenario::Scenario,
        settings: scenario::Settings,
        (targets, missing_targets): (Vec<Binary>, Vec<String>),
        baseline: String,
        out: &std::path::Path,
    ) -> Plan {
        Plan {
            scenario,
            settings,
            targets,
            externals: Vec::new(),
            remote_versions: Vec::new(),
            missing_targets,
            baseline,
            verify: !self.no_verify,
            out: out.to_path_buf(),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// The target every row's `relative` is measured against, or `pgbench` [default:
    /// sync-pool; leaderboard: pgbench].
    #[arg(long)]
    baseline: Option<String>,
    /// A server the harness did not start, measured beside the targets (repeatable):
    /// NAME=URL with the URL its /test endpoint, e.g. mine=http://127.0.0.1:9000/test. It is
    /// checked against the contract first, on the database it reads (--database-url), unless
    /// --no-verify (then its rows say `unverified`).
    #[arg(long, value_name = "NAME=URL", value_parser = external::parse)]
    external: Vec<external::Named<String>>,
    #[command(flatten)]
    observe: ExternalObserve,
    /// Measure the stack another `bench up --listen-host` started, from its description: a
    /// stack.json file or the URL of its status endpoint (http://HOST:PORT/stack.json). The
    /// load, latencies and DB sessions are measured here; RSS, threads and CPU come from that
    /// host's samples. --targets picks among its targets.
    #[arg(long, value_name = "STACK.JSON|URL", conflicts_with_all = ["external", "database_url"])]
    remote: Option<String>,
}

/// What the harness may observe of an external server's process.
#[derive(Args, Debug, Clone, Default)]
struct ExternalObserve {
    /// An external server's process on this machine (NAME=PID): fills its RSS, threads and
    /// CPU columns, which are empty otherwise.
    #[arg(long, value_name = "NAME=PID", value_parser = external::parse_pid)]
    external_pid: Vec<external::Named<u32>>,
    /// An external server's application_name in pg_stat_activity (NAME=APP): fills its DB
    /// sessions column.
    #[arg(long, value_name = "NAME=APP", value_parser = external::parse_app)]
    external_app: Vec<external::Named<String>>,
}

impl ExternalObserve {
    /// The externals named by `urls`, with their pids and apps, each reached over HTTP (one
    /// line naming the one that does not answer). Checking them against the contract needs
    /// the database they read.
    fn resolve(
        &self,
        urls: &[external::Named<String>],
        database_url: Option<&str>,
        verify: bool,
    ) -> Result<Vec<external::External>> {
        let externals =
            external::assemble(urls, &self.external_pid, &self.external_app).map_err(UsageError)?;
        if !externals.is_empty() && verify && database_url.is_none() {
            return Err(UsageError(format!(
                "--external {}: its rows are checked on the database it reads; give that database as --database-url (`bench up` prints one), or measure it unchecked with --no-verify",
                externals[0].name
            ))
            .into());
        }
        for e in &externals {
            e.reach().map_err(anyhow::Error::msg)?;
        }
        Ok(externals)
    }
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// The first target (the ratio's numerator), or NAME=URL for a server the harness did
    /// not start (see `bench run --external`).
    a: String,
    /// The second target, or NAME=URL.
    b: String,
    #[command(flatten)]
    observe: ExternalObserve,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args, Debug)]
struct SweepArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// A knob and its values, e.g. delay-ms=0,10,20 (repeatable; every combination is a
    /// point). Knobs: delay-ms, connections, pool-size, workers, rate, backend, via, db-mode. A sweep
    /// preset (flip-map, capacity, sessions) brings its own; --vary replaces a preset's knob of
    /// the same name and adds any other.
    #[arg(long, value_name = "KNOB=V1,V2,…", value_parser = sweep::parse_vary)]
    vary: Vec<sweep::Vary>,
    /// The latency objective of the capacity: the highest offered rate with p99 within it.
    #[arg(long, default_value_t = 100.0)]
    slo_p99_ms: f64,
    /// Seed of the order of the targets at each point [default: from the clock].
    #[arg(long)]
    seed: Option<u64>,
    /// Continue the sweep in DIR: the points already in its results.jsonl are skipped.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Also draw the heatmap of A's throughput over B's, e.g. tokio-hyper/sync-thread
    /// (repeatable; two knobs) [default: the best async or green target / sync-pool].
    #[arg(long, value_name = "A/B")]
    heatmap: Vec<String>,
    /// The target every row's `relative` is measured against, at each point.
    #[arg(long, default_value = "sync-pool")]
    baseline: String,
}

/// Which targets, and the stack to run them on.
#[derive(Args, Debug, Clone, Default)]
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
    /// Serve the targets, the nginx proxy and the status endpoint on this address, for a load
    /// host elsewhere (`bench run --remote`). Anything but loopback is reachable from the
    /// network, and so is the private PostgreSQL, with a password.
    #[arg(long, default_value = "127.0.0.1")]
    listen_host: std::net::IpAddr,
    /// Start the targets with a preset's flags (its pool size, workers and delay), as
    /// `bench run --scenario` would; --flag still overrides them.
    #[arg(long)]
    scenario: Option<String>,
}

#[derive(Args, Debug)]
struct VerifyArgs {
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
    #[arg(long, default_value_t = 1_000_000)]
    rows: i32,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnOff {
    #[default]
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
        Command::Run(args) => run(args, &interrupted),
        Command::Compare(args) => compare(args, &interrupted),
        Command::Sweep(args) => sweep_command(args, &interrupted),
        Command::Client(args) => client_command(args),
        Command::Describe(args) => describe(args, &interrupted),
        Command::Scenarios => {
            print_scenarios();
            Ok(ExitCode::SUCCESS)
        }
    };
    // A mistake in how the command was called: one line and status 2, like clap's own.
    let result = match result {
        Err(error) if error.downcast_ref::<UsageError>().is_some() => {
            eprintln!("bench: {error:#}");
            return ExitCode::from(2);
        }
        other => other,
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
    let host = args.listen_host;
    if host.is_unspecified() {
        return Err(UsageError(format!(
            "--listen-host {host}: give the address the load host reaches this one at (it goes into stack.json)"
        ))
        .into());
    }
    if !host.is_loopback() {
        eprintln!(
            "bench: warning: serving on {host}: the targets, nginx, the status endpoint and PostgreSQL (with a password) are reachable from the network"
        );
    }
    eprintln!("bench: starting the stack");
    let options = StackOptions {
        listen_host: Some(host),
        ..args.stack.stack_options()
    };
    let stack = Stack::start(&options)?;
    let database_url = if host.is_loopback() || !stack.postgres.is_embedded() {
        stack.database_url().to_string()
    } else {
        stack.postgres.expose(host)?
    };
    let mut targets: Vec<Target> = Vec::new();
    for binary in &binaries {
        let mut all = match &args.scenario {
            Some(name) => scenario::find(name)?.settings.target_flags(*binary),
            None => Vec::new(),
        };
        all.retain(|(name, _)| !flags.iter().any(|(given, _)| given == name));
        all.extend(flags.iter().cloned());
        targets.push(stack.launch(*binary, &all)?);
    }
    let routes: Vec<(String, SocketAddr)> = targets
        .iter()
        .map(|t| (t.binary.name().to_string(), t.addr))
        .collect();
    let (proxy, proxied) = stack.proxy(&routes, args.upstream_keepalive.is_on(), 1)?;
    let mut watched: Vec<remote::Watched> = targets
        .iter()
        .map(|t| remote::Watched {
            name: t.binary.name().to_string(),
            pid: t.pid(),
            children: false,
        })
        .collect();
    if let Some(pid) = stack.postgres.server_pid() {
        watched.push(remote::Watched {
            name: "postgres".into(),
            pid,
            children: true,
        });
    }
    watched.push(remote::Watched {
        name: "nginx".into(),
        pid: proxy.pid(),
        children: true,
    });
    let tool = tools::locate(tools::ToolKind::Wrk).ok();
    let versions = tool.map_or_else(Vec::new, |tool| {
        harness::run::versions(&stack, &tool, false)
    });
    let described: Vec<remote::DescribedTarget> = targets
        .iter()
        .zip(&proxied)
        .map(|(target, route)| {
            remote::DescribedTarget::new(
                target.binary,
                format!("http://{}/test", target.addr),
                Some(format!("http://{}/test", route.listen)),
                target
                    .flags
                    .iter()
                    .map(|(f, v)| format!("{f} {v}"))
                    .collect(),
            )
        })
        .collect();
    let (_status, description) = remote::StatusServer::start(
        host,
        |status_url| remote::Description {
            status_url: Some(status_url),
            versions,
            ..remote::Description::new(
                host.to_string(),
                database_url.clone(),
                stack.upstream_url(),
                described,
            )
        },
        watched,
    )?;
    let stack_json = stack.run_dir.join("stack.json");
    std::fs::write(
        &stack_json,
        serde_json::to_string_pretty(&description)? + "\n",
    )?;

    println!("PostgreSQL   {database_url}");
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
        "stack {} (also {}/stack.json, with samples of these processes at /samples)",
        stack_json.display(),
        description.status_url.as_deref().unwrap_or("")
    );
    println!(
        "From another host: bench run --remote {}/stack.json",
        description.status_url.as_deref().unwrap_or("")
    );
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

fn describe(args: DescribeArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let mut targets = Vec::new();
    for text in &args.targets {
        let bad = |why: &str| UsageError(format!("--target {text:?}: {why}"));
        let (name, urls) = text
            .split_once('=')
            .ok_or_else(|| bad("write NAME=DIRECT_URL[,NGINX_URL]"))?;
        let binary = parse_targets(&[name.to_string()])?[0];
        let (direct, via_nginx) = match urls.split_once(',') {
            Some((direct, via)) => (direct, Some(via.to_string())),
            None => (urls, None),
        };
        for url in std::iter::once(direct).chain(via_nginx.as_deref()) {
            external::address_of(url).map_err(|why| bad(&why))?;
        }
        targets.push(remote::DescribedTarget::new(
            binary,
            direct.to_string(),
            via_nginx,
            Vec::new(),
        ));
    }
    if targets.is_empty() {
        return Err(UsageError("describe needs at least one --target".into()).into());
    }
    shared::DatabaseUrl::parse(&args.database_url)
        .map_err(|e| UsageError(format!("--database-url: {e}")))?;
    let description = remote::Description::new(
        args.host.clone(),
        args.database_url.clone(),
        args.upstream_url.clone(),
        targets,
    );
    let _server = remote::StatusServer::serve(args.listen, description)?;
    println!(
        "Serving http://{}/stack.json; from the load host: bench run --remote http://{}:{}/stack.json",
        args.listen,
        args.host,
        args.listen.port()
    );
    while !interrupted.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    if let Some(url) = &args.url {
        let binary = match &args.binary {
            Some(name) => Some(parse_targets(std::slice::from_ref(name))?[0]),
            None => None,
        };
        let addr =
            external::address_of(url).map_err(|why| UsageError(format!("--url {url}: {why}")))?;
        let database_url = args.stack.database_url.clone().context(
            "--url needs --database-url (or DATABASE_URL), to check bodies against rows",
        )?;
        let name = binary.map_or_else(|| url.clone(), |b| b.name().to_string());
        let subject = Subject {
            binary,
            name: name.clone(),
            direct: addr,
            proxied: None,
            database_url,
            upstream: args.upstream,
            rows: args.rows,
        };
        let failed = print_outcomes(&name, &checks::run_all(&subject));
        return Ok(exit_code(failed));
    }

    let binaries = args.stack.binaries()?;
    eprintln!("bench: starting the stack");
    let stack = Stack::start(&args.stack.stack_options())?;
    let failed = verify_targets(&stack, &binaries)?;
    Ok(exit_code(failed.len()))
}

/// Starts each target behind nginx and runs every check; prints a line per check. Returns the
/// targets that failed any.
fn verify_targets(stack: &Stack, binaries: &[Binary]) -> Result<Vec<Binary>> {
    let mut failed = Vec::new();
    for &binary in binaries {
        let outcomes = checks::run_on_stack(stack, binary)?;
        if print_outcomes(binary.name(), &outcomes) > 0 {
            failed.push(binary);
        }
    }
    Ok(failed)
}

fn print_outcomes(name: &str, outcomes: &[checks::Outcome]) -> usize {
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

fn exit_code(failures: usize) -> ExitCode {
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_scenarios() {
    println!(
        "{:<13} {:<5} {:>5} {:>8} {:>8} {:>6}  what it runs  [source]",
        "scenario", "tool", "c", "delay", "backend", "#DB"
    );
    for s in scenario::all() {
        let c = &s.settings;
        println!(
            "{:<13} {:<5} {:>5} {:>6}ms {:>8} {:>6}  {}  [{}]",
            s.name,
            c.tool,
            c.connections,
            c.delay_ms,
            c.backend.name(),
            c.sessions,
            s.summary,
            s.source
        );
    }
    println!("\nOverride any parameter with flags, e.g. `bench run --scenario grinberg --duration 30s --rounds 3`.");
}

/// The name every row's `relative` divides by: the one asked for (a target, or `pgbench` in a
/// preset with pgbench rows), or the preset's own: pgbench for the leaderboard, else
/// sync-pool.
fn baseline_for(scenario: &scenario::Scenario, asked: Option<&str>) -> Result<String> {
    let has_pgbench = matches!(
        scenario.extra,
        scenario::Extra::Leaderboard(_) | scenario::Extra::Limits
    );
    match asked {
        Some("pgbench") if has_pgbench => Ok("pgbench".into()),
        Some(name) => Ok(parse_targets(&[name.to_string()])?[0].name().to_string()),
        None if matches!(scenario.extra, scenario::Extra::Leaderboard(_)) => Ok("pgbench".into()),
        None => Ok(Binary::SyncPool.name().to_string()),
    }
}

/// The targets to run: the ones named, or every built one (the rest are listed as missing).
fn chosen_targets(stack: &Stack, names: &[String]) -> Result<(Vec<Binary>, Vec<String>)> {
    let built = harness::built_targets(stack.bin_dir());
    if names.is_empty() {
        let missing = Binary::ALL
            .into_iter()
            .filter(|b| !built.contains(b))
            .map(|b| b.name().to_string())
            .collect::<Vec<_>>();
        if !missing.is_empty() {
            eprintln!("bench: not built, skipped: {}", missing.join(", "));
        }
        return Ok((built, missing));
    }
    let chosen = parse_targets(names)?;
    for binary in &chosen {
        if !built.contains(binary) {
            bail!(
                "{} is not built in {}: run `cargo build --release --workspace`",
                binary.name(),
                stack.bin_dir().display()
            );
        }
    }
    Ok((chosen, Vec::new()))
}

fn plan_settings(load: &LoadArgs) -> Result<(scenario::Scenario, scenario::Settings, tools::Tool)> {
    let scenario = scenario::find(&load.scenario)?;
    let mut settings = scenario.settings.clone();
    load.overrides.apply(&mut settings);
    settings.tool = load.tool.unwrap_or(settings.tool);
    settings.tool.check_rate(settings.rate)?;
    if settings.per_connection && settings.tool != tools::ToolKind::Wrk {
        return Err(UsageError(format!(
            "--per-connection counts answers in wrk's threads; {} cannot: use --tool wrk",
            settings.tool
        ))
        .into());
    }
    let tool = tools::locate(settings.tool)?;
    Ok((scenario, settings, tool))
}

/// The targets of a remote stack's description (those of `names`, or all), as servers this
/// run did not start; refuses what a remote stack cannot have.
fn remote_targets(
    source: &str,
    settings: &scenario::Settings,
    names: &[Binary],
) -> Result<(remote::Description, Vec<external::External>)> {
    let refused = [
        (
            !settings.faults.is_empty(),
            "--fault (the faults act on this host's stack)",
        ),
        (settings.pgbouncer, "--pgbouncer"),
        (settings.idle_connections > 0, "--idle-connections"),
        (settings.pin, "--pin"),
    ];
    if let Some((_, what)) = refused.iter().find(|(on, _)| *on) {
        return Err(UsageError(format!("--remote cannot run with {what}")).into());
    }
    let description =
        remote::Description::load(source).map_err(|e| UsageError(format!("{e:#}")))?;
    let status = description.status_addr();
    let mut remotes = Vec::new();
    for target in &description.targets {
        let binary = Binary::from_name(&target.name)
            .with_context(|| format!("--remote {source}: unknown target {:?}", target.name))?;
        // Without --targets, `names` is every target.
        if !names.contains(&binary) {
            continue;
        }
        let via_nginx = match &target.via_nginx {
            Some(url) => Some(external::address_of(url).map_err(anyhow::Error::msg)?),
            None => None,
        };
        remotes.push(external::External {
            name: target.name.clone(),
            url: target.direct.clone(),
            addr: external::address_of(&target.direct).map_err(anyhow::Error::msg)?,
            pid: None,
            app: Some(shared::sql::application_name(binary).to_string()),
            verified: false,
            binary: Some(binary),
            remote: Some(external::RemoteSide {
                host: description.host.clone(),
                status,
                via_nginx,
                flags: target.flags.clone(),
            }),
        });
    }
    if remotes.is_empty() {
        return Err(UsageError(format!(
            "--remote {source}: none of the chosen targets runs there (it has {})",
            description
                .targets
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    for remote in &remotes {
        remote.reach().map_err(anyhow::Error::msg)?;
    }
    Ok((description, remotes))
}

fn run(args: RunArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let (scenario, settings, tool) = plan_settings(&args.load)?;
    let names = parse_targets(&args.stack.targets)?;
    let private_db = args.stack.database_url.is_none();
    for case in scenario::expand(&scenario, &settings, &names) {
        harness::fault::check(&case.settings.faults, &case.settings, private_db)
            .map_err(UsageError)?;
    }
    if matches!(scenario.extra, scenario::Extra::Sweep { .. }) {
        bail!(
            "{0} is a sweep preset: run `bench sweep --scenario {0}`",
            scenario.name
        );
    }
    let baseline = baseline_for(&scenario, args.baseline.as_deref())?;
    let (externals, remote_stack) = match &args.remote {
        Some(source) => {
            let (description, remotes) = remote_targets(source, &settings, &names)?;
            (remotes, Some(description))
        }
        None => (
            args.observe.resolve(
                &args.external,
                args.stack.database_url.as_deref(),
                !args.load.no_verify,
            )?,
            None,
        ),
    };
    let out = report::out_dir(args.load.out.as_deref(), scenario.name)?;
    eprintln!("bench: starting the stack");
    let mut options = args.stack.stack_options();
    if let Some(description) = &remote_stack {
        // The remote targets' database; this host's upstream nginx only serves the checks.
        options.database_url = Some(description.database_url.clone());
    }
    let stack = Stack::start(&options)?;
    let (targets, missing_targets) = if remote_stack.is_some() {
        (Vec::new(), Vec::new())
    } else {
        chosen_targets(&stack, &args.stack.targets)?
    };
    let pooling: Vec<&str> = targets
        .iter()
        .filter(|b| !settings.db_mode.supported_by(**b))
        .map(|b| b.name())
        .collect();
    if !pooling.is_empty() {
        eprintln!(
            "bench: --db-mode {} is for the tokio targets; left out: {}",
            settings.db_mode,
            pooling.join(", ")
        );
    }
    let mut plan = args.load.plan(
        scenario,
        settings,
        (targets, missing_targets),
        baseline,
        &out,
    );
    plan.externals = externals;
    plan.remote_versions = remote_stack.map(|d| d.versions).unwrap_or_default();
    eprintln!(
        "bench: {} ({}), {} via {}",
        plan.scenario.name, plan.scenario.summary, plan.settings.tool, plan.settings.via
    );
    let outcome = harness::run::run(&stack, &plan, tool, interrupted)?;
    println!("{}", report::table(&outcome.rows, &outcome.meta.baseline));
    println!(
        "Results: {}/report.md (results.json, results.csv, throughput.svg, latency.svg)",
        out.display()
    );
    if outcome.interrupted {
        bail!(
            "interrupted; the rows measured so far are in {}",
            out.display()
        );
    }
    let bad = outcome.rows.iter().filter(|r| !r.is_ok()).count();
    if bad > 0 {
        eprintln!("bench: {bad} row(s) failed or were refused; see the table");
    }
    Ok(exit_code(bad))
}

fn compare(args: CompareArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let (scenario, mut settings, tool) = plan_settings(&args.load)?;
    harness::fault::check(&settings.faults, &settings, args.database_url.is_none())
        .map_err(UsageError)?;
    if args.load.overrides.rounds.is_none() {
        settings.rounds = 3;
    }
    if settings.rounds < 3 {
        bail!("--rounds must be at least 3: one pair says nothing about the noise");
    }
    // A side is a target's name, or NAME=URL: a server the harness did not start (`None`
    // below: the next of the externals, which keep the order of their URLs).
    let mut urls = Vec::new();
    let mut targets = Vec::new();
    let mut sides = Vec::new();
    for side in [&args.a, &args.b] {
        if side.contains('=') {
            urls.push(external::parse(side).map_err(UsageError)?);
            sides.push(None);
        } else {
            let binary = parse_targets(std::slice::from_ref(side))?[0];
            targets.push(binary);
            sides.push(Some(binary));
        }
    }
    let mut externals = args
        .observe
        .resolve(&urls, args.database_url.as_deref(), !args.load.no_verify)?
        .into_iter();
    let mut subject = |side: Option<Binary>| match side {
        Some(binary) => scenario::Subject::Target(binary),
        None => scenario::Subject::External(Box::new(
            externals.next().expect("one external per NAME=URL"),
        )),
    };
    let (a_side, b_side) = (subject(sides[0]), subject(sides[1]));
    let (a, b) = (
        a_side.name().unwrap_or_default().to_string(),
        b_side.name().unwrap_or_default().to_string(),
    );
    if a == b {
        eprintln!("bench: comparing {a} with itself: the ratio shows the noise alone");
    }
    let out = report::out_dir(args.load.out.as_deref(), &format!("compare-{a}-{b}"))?;
    eprintln!("bench: starting the stack");
    let options = StackArgs {
        targets: Vec::new(),
        database_url: args.database_url.clone(),
    }
    .stack_options();
    let stack = Stack::start(&options)?;
    let plan = Plan {
        scenario,
        settings,
        targets: targets.clone(),
        externals: Vec::new(),
        remote_versions: Vec::new(),
        missing_targets: Vec::new(),
        baseline: b.clone(),
        verify: !args.load.no_verify,
        out: out.clone(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    println!("{:<6} {:>12} {:>12} {:>8}", "round", a, b, "A/B");
    let sides = [a_side, b_side];
    let comparison =
        harness::run::compare(&stack, &plan, sides, tool, interrupted, &|round, pair| {
            println!(
                "{round:<6} {:>12.0} {:>12.0} {:>8}",
                pair.a_rps,
                pair.b_rps,
                pair.ratio.map_or("–".into(), |r| format!("{r:.3}"))
            );
        })?;
    let r = comparison.ratio;
    println!(
        "\n{a} / {b}: median {:.3}, min {:.3}, max {:.3} over {} rounds",
        r.median,
        r.min,
        r.max,
        comparison.rounds.len()
    );
    println!(
        "noise between rounds ((max − min) / median): {a} {:.1}%, {b} {:.1}%",
        comparison.a_noise * 100.0,
        comparison.b_noise * 100.0
    );
    println!("Results: {}/compare.json", out.display());
    Ok(ExitCode::SUCCESS)
}

fn client_command(args: ClientArgs) -> Result<ExitCode> {
    let plan = harness::clientside::ClientPlan {
        requests: args.requests,
        delay_ms: args.delay_ms,
        models: harness::clientside::models(&args.threads)
            .map_err(|e| UsageError(e.to_string()))?,
        rounds: args.rounds,
    };
    let out = report::out_dir(args.out.as_deref(), "client")?;
    eprintln!("bench: starting the stack");
    let stack = Stack::start(&StackArgs::default().stack_options())?;
    eprintln!(
        "bench: client: {} GETs of {} ms per model, {} round(s)",
        plan.requests, plan.delay_ms, plan.rounds
    );
    let rows = harness::clientside::run(stack.upstream_addr, &plan)?;
    harness::clientside::write_all(&out, &plan, &rows)?;
    println!("{}", harness::clientside::table(&rows));
    println!(
        "Results: {}/report.md (results.json, results.csv, wall.svg)",
        out.display()
    );
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    Ok(exit_code(usize::from(errors > 0)))
}

/// A mistake in how a command was called: exit status 2, like clap's own.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The knobs that `--vary` and a flag of their own would both set.
fn knobs_set_by_flags(overrides: &Overrides) -> Vec<sweep::Knob> {
    use sweep::Knob;
    [
        (Knob::DelayMs, overrides.delay_ms.is_some()),
        (Knob::Connections, overrides.connections.is_some()),
        (Knob::PoolSize, overrides.pool_size.is_some()),
        (Knob::Workers, overrides.workers.is_some()),
        (Knob::Rate, overrides.rate.is_some()),
        (Knob::Backend, overrides.backend.is_some()),
        (Knob::Via, overrides.via.is_some()),
        (Knob::DbMode, overrides.db_mode.is_some()),
    ]
    .into_iter()
    .filter_map(|(knob, set)| set.then_some(knob))
    .collect()
}

fn sweep_command(args: SweepArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let scenario = scenario::find(&args.load.scenario)?;
    let (preset_vary, preset_targets) = match scenario.extra {
        scenario::Extra::Sweep { vary, targets } => (vary, targets),
        _ => (&[][..], &[][..]),
    };
    // The preset's knobs, each replaced by a --vary of the same knob; other --vary knobs are
    // added (e.g. `--scenario sessions --vary db-mode=pool,pipelined`).
    sweep::check_distinct(&args.vary).map_err(UsageError)?;
    let mut varies = preset_vary
        .iter()
        .map(|v| sweep::parse_vary(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("preset {}: {e}", scenario.name))?;
    for vary in &args.vary {
        match varies.iter_mut().find(|v| v.knob == vary.knob) {
            Some(preset) => *preset = vary.clone(),
            None => varies.push(vary.clone()),
        }
    }
    if varies.is_empty() {
        return Err(UsageError(format!(
            "nothing to sweep: give --vary KNOB=V1,V2,… ({} is not a sweep preset)",
            scenario.name
        ))
        .into());
    }
    sweep::check_distinct(&varies).map_err(UsageError)?;
    for knob in knobs_set_by_flags(&args.load.overrides) {
        if varies.iter().any(|v| v.knob == knob) {
            return Err(UsageError(format!(
                "--{knob} is given both as a flag and in --vary {knob}=…: choose one"
            ))
            .into());
        }
    }
    let mut settings = scenario.settings.clone();
    args.load.overrides.apply(&mut settings);
    // A varied rate needs an open-loop tool (`tool_for`); so does a rate given as a flag.
    settings.tool = sweep::tool_for(&varies, args.load.tool, settings.tool)?;
    settings.tool.check_rate(settings.rate)?;
    harness::fault::check(
        &settings.faults,
        &settings,
        args.stack.database_url.is_none(),
    )
    .map_err(UsageError)?;
    let tool = tools::locate(settings.tool)?;
    let baseline = parse_targets(std::slice::from_ref(&args.baseline))?[0]
        .name()
        .to_string();
    let heatmaps = args
        .heatmap
        .iter()
        .map(|pair| {
            let (a, b) = pair
                .split_once('/')
                .ok_or_else(|| UsageError(format!("--heatmap {pair:?}: expected A/B")))?;
            let both = parse_targets(&[a.to_string(), b.to_string()])?;
            Ok((both[0], both[1]))
        })
        .collect::<Result<Vec<_>>>()?;
    let names = if args.stack.targets.is_empty() {
        preset_targets
            .iter()
            .map(|b| b.name().to_string())
            .collect()
    } else {
        args.stack.targets.clone()
    };
    parse_targets(&names)?;
    let out = match &args.resume {
        Some(dir) => {
            if !dir.join("results.jsonl").is_file() {
                bail!("--resume {}: no results.jsonl there", dir.display());
            }
            dir.clone()
        }
        None => report::out_dir(args.load.out.as_deref(), scenario.name)?,
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    eprintln!("bench: starting the stack");
    let stack = Stack::start(&args.stack.stack_options())?;
    let (targets, missing_targets) = chosen_targets(&stack, &names)?;
    let points = sweep::points(&varies).len();
    eprintln!(
        "bench: sweep {} ({} points × {} targets, {} s each, {}), seed {seed}",
        scenario.name,
        points,
        targets.len(),
        settings.duration_s,
        settings.tool
    );
    let plan = sweep::SweepPlan {
        base: args.load.plan(
            scenario,
            settings,
            (targets, missing_targets),
            baseline,
            &out,
        ),
        varies,
        seed,
        slo_p99_ms: args.slo_p99_ms,
        heatmaps,
        resume: args.resume.is_some(),
    };
    let outcome = sweep::sweep(&stack, &plan, tool, interrupted)?;
    if outcome.skipped > 0 {
        eprintln!(
            "bench: resumed: {} rows were already there",
            outcome.skipped
        );
    }
    for capacity in &outcome.capacity {
        println!(
            "capacity at p99 <= {} ms: {} {}{}",
            plan.slo_p99_ms,
            capacity.target,
            capacity
                .capacity_rps
                .map_or("none".into(), |r| format!("{r} req/s")),
            capacity
                .first_miss
                .as_deref()
                .map_or(String::new(), |m| format!(" (first miss {m})"))
        );
    }
    println!(
        "Results: {}/report.md (results.json, results.jsonl, results.csv{})",
        out.display(),
        outcome
            .charts
            .iter()
            .filter_map(|c| c.file_name())
            .map(|n| format!(", {}", n.to_string_lossy()))
            .collect::<String>()
    );
    if outcome.interrupted {
        bail!(
            "interrupted; the rows measured so far are in {} (continue with --resume {})",
            out.display(),
            out.display()
        );
    }
    let bad = outcome.rows.iter().filter(|r| !r.is_ok()).count();
    if bad > 0 {
        eprintln!("bench: {bad} row(s) failed or were refused; see report.md");
    }
    Ok(exit_code(bad))
}
