//! The flags every target takes (docs/contract.md, "Configuration"), each also read from an
//! environment variable.
//!
//! All seven binaries parse the same flags with the same validation, so a harness can start any of
//! them with one set of variables. Only the defaults differ per binary (`--workers`,
//! `--pool-size`), and `--max-threads` is read by sync-thread alone. A bad value ends the process
//! with status 2 and one line that names the flag, before anything is bound or connected.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
mod binary;
mod url;

pub use binary::{Backend, Binary, DbMode, Fanout, Model, Offload};
pub use url::{decode, DatabaseUrl, UpstreamUrl};

/// The listen backlog of every target (tokio-actix sets it through actix, may-green through
/// the vendored may_minihttp's `set_backlog`): the clients beyond the connection budget wait here, so it is
/// the same for every model. The kernel caps it at `net.core.somaxconn` (4096 here).
pub const BACKLOG: i32 = 4096;

/// The most upstream pages one request may ask for (`fanout=K`).
pub const MAX_FANOUT: u8 = 16;

/// The largest delay a request may ask for, in milliseconds.
pub const MAX_DELAY_MS: u32 = 10_000;

/// A delay in milliseconds: digits only (no sign), at most [`MAX_DELAY_MS`]. The one rule
/// for the `delay_ms` parameter and the `--delay-ms` flag.
pub fn delay_ms(value: &str) -> Option<u32> {
    parse_digits(value)
        .filter(|n| *n <= u64::from(MAX_DELAY_MS))
        .map(|n| n as u32)
}

/// Units of work (`crate::work`): digits only (no sign), at most `MAX_WORK`. The one rule for
/// the `work` parameter and the `--work` flag.
pub fn work(value: &str) -> Option<u32> {
    parse_digits(value)
        .filter(|n| *n <= u64::from(crate::work::MAX_WORK))
        .map(|n| n as u32)
}

/// Plain decimal digits only: no sign, no spaces, at most 19 of them.
pub fn parse_digits(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The flags as clap sees them. `Config` is the resolved, validated form.
#[derive(Parser, Debug)]
#[command(version, disable_help_subcommand = true, allow_negative_numbers = true)]
struct Flags {
    /// Address to bind.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8000", value_parser = parse_listen)]
    listen: SocketAddr,

    /// PostgreSQL URL: postgres://user[:password]@host[:port][/dbname].
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        value_parser = DatabaseUrl::parse,
        hide_env_values = true
    )]
    database_url: DatabaseUrl,

    /// Most DB connections open at once [default: 16; sync-pool: --workers].
    #[arg(long, env = "POOL_SIZE", value_parser = parse_count)]
    pool_size: Option<usize>,

    /// Longest wait for a DB connection, in milliseconds; then 503.
    #[arg(long, env = "POOL_TIMEOUT_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pool_timeout_ms: u64,

    /// OS threads that run the model [default: CPU count; sync-pool: 2 × CPU + 1].
    #[arg(long, env = "WORKERS", value_parser = parse_count)]
    workers: Option<usize>,

    /// Cap on live connection threads (sync-thread only; the other targets ignore it).
    #[arg(long, env = "MAX_THREADS", default_value_t = 1024, value_parser = parse_count)]
    max_threads: usize,

    /// Most client connections held at once [default: the descriptor budget, 8/17 of (the
    /// limit on open files - 64 - the DB connections)]. For a load that never fetches upstream
    /// (each connection then needs one descriptor, not two).
    #[arg(long, env = "MAX_CONNECTIONS", value_parser = parse_count)]
    max_connections: Option<usize>,

    /// What /test does.
    #[arg(long, env = "BACKEND", value_enum, default_value_t = Backend::Db)]
    backend: Backend,

    /// DB: pg_sleep length; upstream: the delay asked of nginx. Milliseconds, 0 to 10000.
    #[arg(long, env = "DELAY_MS", default_value_t = 0, value_parser = parse_delay)]
    delay_ms: u32,

    /// Units of work per /test request, after its row or page (SHA-256 chained N times, 0 to
    /// 100000); the `work` parameter overrides it.
    #[arg(long, env = "WORK", default_value_t = 0, value_parser = parse_work)]
    work: u32,

    /// Where the tokio targets run a request's work: `inline`, on the worker thread that runs
    /// the request, or `blocking`, on tokio's blocking pool (spawn_blocking). The other targets
    /// only run it inline.
    #[arg(long, env = "OFFLOAD", value_enum, default_value_t = Offload::Inline)]
    offload: Offload,

    /// How the sync targets make a request's `fanout=K` fetches: `inline`, one after another
    /// on the request's thread (what sync code does), or `threads`, a scoped thread each. The
    /// other targets make them at once in their own way and take `inline` only.
    #[arg(long, env = "FANOUT", value_enum, default_value_t = Fanout::Inline)]
    fanout: Fanout,

    /// The nginx upstream page: http://host[:port]/path.
    #[arg(
        long,
        env = "UPSTREAM_URL",
        default_value = "http://127.0.0.1:8090/upstream",
        value_parser = UpstreamUrl::parse
    )]
    upstream_url: UpstreamUrl,

    /// Random ids are drawn from 1..=ROWS.
    #[arg(long, env = "ROWS", default_value_t = 1_000_000, value_parser = clap::value_parser!(i32).range(1..))]
    rows: i32,

    /// A request head must arrive whole within this many milliseconds of its first byte; then
    /// 408 and close.
    #[arg(long, env = "HEADER_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    header_timeout_ms: u64,

    /// An idle keep-alive connection is closed after this many milliseconds; 0 disables.
    #[arg(long, env = "KEEP_ALIVE_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    keep_alive_timeout_ms: u64,

    /// On SIGTERM or SIGINT: stop accepting, let in-flight requests finish for up to this many
    /// milliseconds, then exit 0. A second signal exits at once.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    shutdown_timeout_ms: u64,

    /// tokio targets and compio-tpc: `pool`, or `pipelined` (one connection per worker thread,
    /// its tasks' queries pipelined on it). The other targets only pool.
    #[arg(long, env = "DB_MODE", value_enum, default_value_t = DbMode::Pool)]
    db_mode: DbMode,

    /// Serve `GET /panic`, whose handler panics where the model runs a request: a test of the
    /// panic guard (answered 500, logged, the process lives). Off: `/panic` is a 404.
    #[arg(long, env = "PANIC_ROUTE", action = clap::ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    panic_route: bool,
}

/// The validated configuration of one target process.
#[derive(Clone, Debug)]
pub struct Config {
    pub binary: Binary,
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    pub pool_size: usize,
    pub pool_timeout: Duration,
    pub workers: usize,
    pub max_threads: usize,
    /// `--max-connections`: the connection budget, when given.
    pub max_connections: Option<usize>,
    pub upstream: UpstreamUrl,
    /// What a request gets when it does not say otherwise.
    pub defaults: RequestDefaults,
    /// The limits every HTTP layer keeps alike.
    pub limits: ConnLimits,
    /// How long a SIGTERM waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// The limit on open descriptors once raised at start-up (`crate::start`), for the
    /// start-up line; `None` when it could not be raised.
    pub descriptors: Option<u64>,
    /// Pooled or pipelined DB connections (tokio targets).
    pub db_mode: DbMode,
    /// Where a request's work runs (tokio targets).
    pub offload: Offload,
    /// How a request's fanout fetches are made (sync targets).
    pub fanout: Fanout,
}

/// The connection rules that every target keeps, whatever its HTTP layer (the contract's
/// "Limits, equal for every target").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// The most bytes of request line and headers (else 431).
    pub max_head: usize,
    /// From a request's first byte to the end of its head (else 408 and close).
    pub header_timeout: Duration,
    /// Between requests on a kept-alive connection (then closed without a word); `None`
    /// keeps idle connections open.
    pub keep_alive_timeout: Option<Duration>,
}

/// The most bytes of request line and headers, in every target.
pub const MAX_HEAD: usize = 8 * 1024;

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            max_head: MAX_HEAD,
            header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Some(Duration::from_secs(5)),
        }
    }
}

/// The per-request defaults that `/test` query parameters override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestDefaults {
    pub backend: Backend,
    pub delay_ms: u32,
    pub rows: i32,
    /// `GET /panic` panics in the handler (`--panic-route`); otherwise it is a 404.
    pub panic_route: bool,
    /// Units of work per `/test` request (`--work`).
    pub work: u32,
}

/// Descriptors a target keeps besides its connections: stdio, the listener, the runtime's
/// own (epoll, eventfds, timers, signal pipes), the log, and a margin.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// The idle upstream connections a budget of `budget` client connections leaves room for: an
/// eighth of it (tokio's upstream pool can hold idle connections beside one busy per fetch).
pub fn idle_upstream_share(budget: usize) -> usize {
    (budget / 8).max(1)
}

impl Config {
    /// How many client connections the target holds at once: what the descriptor limit
    /// leaves after the reserve and the DB connections, shared out so that each connection
    /// has a second descriptor for its upstream fetch and an eighth more stay for idle
    /// upstream connections (B + B + B/8 = what is left). At the budget a target stops
    /// accepting, so that waiting clients queue in the listen backlog instead of getting a
    /// fast error. `None` when the limit is unknown.
    pub fn connection_budget(&self) -> Option<usize> {
        if self.max_connections.is_some() {
            return self.max_connections;
        }
        let limit = self.descriptors?;
        let db = match self.db_mode {
            DbMode::Pool => self.pool_size,
            DbMode::Pipelined => self.workers,
        } as u64;
        let left = limit.saturating_sub(RESERVED_DESCRIPTORS + db);
        Some((left * 8 / 17).max(1) as usize)
    }

    /// Parses the process's arguments and environment. On a bad value it prints one line naming
    /// the flag and exits with status 2; `--help` and `--version` print and exit 0.
    pub fn from_env(binary: Binary) -> Config {
        match Config::try_parse_from(binary, std::env::args_os()) {
            Ok(config) => config,
            Err(err) => match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    err.exit()
                }
                _ => {
                    eprintln!("{binary}: {}", clap_message(&err));
                    std::process::exit(2)
                }
            },
        }
    }

    /// Parses `args` (the first item is the program name) and the environment.
    pub fn try_parse_from<I, T>(binary: Binary, args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = Flags::command()
            .name(binary.name())
            .bin_name(binary.name())
            .about(format!("{}: {}", binary.name(), binary.describe()));
        let flags = Flags::from_arg_matches(&command.clone().try_get_matches_from(args)?)?;
        if !flags.db_mode.supported_by(binary) {
            let pipelining: Vec<&str> = Binary::ALL
                .iter()
                .filter(|b| b.pipelines())
                .map(|b| b.name())
                .collect();
            return Err(command.clone().error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "invalid value '{}' for '--db-mode <DB_MODE>': {} only pools its DB connections; pipelined is for {}",
                    flags.db_mode,
                    binary,
                    pipelining.join(", ")
                ),
            ));
        }
        if !flags.offload.supported_by(binary) {
            return Err(command.clone().error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "invalid value '{}' for '--offload <OFFLOAD>': {} runs a request's work where it runs the request; blocking is for the tokio targets",
                    flags.offload, binary
                ),
            ));
        }
        if !flags.fanout.supported_by(binary) {
            return Err(command.clone().error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "invalid value '{}' for '--fanout <FANOUT>': {} makes a request's fetches at once in its own way; threads is for sync-thread and sync-pool",
                    flags.fanout, binary
                ),
            ));
        }
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let workers = flags
            .workers
            .unwrap_or_else(|| binary.default_workers(cpus));
        Ok(Config {
            binary,
            listen: flags.listen,
            database: flags.database_url,
            pool_size: flags
                .pool_size
                .unwrap_or_else(|| binary.default_pool_size(workers)),
            pool_timeout: Duration::from_millis(flags.pool_timeout_ms),
            workers,
            max_threads: flags.max_threads,
            max_connections: flags.max_connections,
            upstream: flags.upstream_url,
            defaults: RequestDefaults {
                backend: flags.backend,
                delay_ms: flags.delay_ms,
                rows: flags.rows,
                panic_route: flags.panic_route,
                work: flags.work,
            },
            limits: ConnLimits {
                max_head: MAX_HEAD,
                header_timeout: Duration::from_millis(flags.header_timeout_ms),
                keep_alive_timeout: (flags.keep_alive_timeout_ms > 0)
                    .then(|| Duration::from_millis(flags.keep_alive_timeout_ms)),
            },
            shutdown_timeout: Duration::from_millis(flags.shutdown_timeout_ms),
            descriptors: None,
            db_mode: flags.db_mode,
            offload: flags.offload,
            fanout: flags.fanout,
        })
    }

    /// A one-line summary for the start-up log.
    pub fn summary(&self) -> String {
        let max_threads = match self.binary.model() {
            Model::ThreadPerConnection => format!(" max-threads={}", self.max_threads),
            Model::ThreadPool | Model::Tokio | Model::Green | Model::ThreadPerCore => String::new(),
        };
        let db = match self.db_mode {
            DbMode::Pool => format!("pool-size={}", self.pool_size),
            DbMode::Pipelined => format!(
                "db-mode=pipelined ({} connections, one per worker; pool-size unused)",
                self.workers
            ),
        };
        let offload = match self.binary.model() {
            Model::Tokio => format!(" offload={}", self.offload),
            Model::ThreadPerConnection
            | Model::ThreadPool
            | Model::Green
            | Model::ThreadPerCore => String::new(),
        };
        let nofile = self
            .descriptors
            .map_or(String::new(), |n| format!(" nofile={n}"));
        let budget = self.connection_budget().map_or(String::new(), |budget| {
            format!(" connections<={budget} backlog={}", BACKLOG)
        });
        format!(
            "{} listening on http://{} ({}); workers={} {db} pool-timeout-ms={} backend={} delay-ms={} work={}{offload} header-timeout-ms={} keep-alive-timeout-ms={} shutdown-timeout-ms={} db={} upstream={}{max_threads}{nofile}{budget}",
            self.binary,
            self.listen,
            self.binary.describe(),
            self.workers,
            self.pool_timeout.as_millis(),
            self.defaults.backend.name(),
            self.defaults.delay_ms,
            self.defaults.work,
            self.limits.header_timeout.as_millis(),
            self.limits.keep_alive_timeout.map_or(0, |t| t.as_millis()),
            self.shutdown_timeout.as_millis(),
            self.database,
            self.upstream,
        )
    }
}

/// clap's message, without its "error: " prefix and usage lines.
fn clap_message(err: &clap::Error) -> String {
    let rendered = err.to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("expected IP:PORT such as 127.0.0.1:8000, got {value:?}"))
}

fn parse_count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from 1 to 1000000, got {value:?}"
        )),
    }
}

fn parse_work(value: &str) -> Result<u32, String> {
    work(value).ok_or_else(|| {
        format!(
            "expected a whole number from 0 to {}, got {value:?}",
            crate::work::MAX_WORK
        )
    })
}

/// The same rule as the `delay_ms` query parameter: digits only, at most [`MAX_DELAY_MS`].
fn parse_delay(value: &str) -> Result<u32, String> {
    delay_ms(value)
        .ok_or_else(|| format!("expected milliseconds from 0 to {MAX_DELAY_MS}, got {value:?}"))
}

#[cfg(test)]
mod tests;
