//! The flags every target takes (CONTRACT.md, "Configuration"), each also read from an
//! environment variable.
//!
//! All six binaries parse the same flags with the same validation, so a harness can start any of
//! them with one set of variables. Only the defaults differ per binary (`--workers`,
//! `--pool-size`), and `--max-threads` is read by sync-thread alone. A bad value ends the process
//! with status 2 and one line that names the flag, before anything is bound or connected.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

/// The largest delay a request may ask for, in milliseconds.
pub const MAX_DELAY_MS: u32 = 10_000;

/// The six targets of the suite. The name is the binary's name, the `Server` header and the
/// PostgreSQL `application_name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    SyncThread,
    SyncPool,
    TokioAxum,
    TokioActix,
    TokioHyper,
    MayGreen,
}

impl Binary {
    pub const ALL: [Binary; 6] = [
        Binary::SyncThread,
        Binary::SyncPool,
        Binary::TokioAxum,
        Binary::TokioActix,
        Binary::TokioHyper,
        Binary::MayGreen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Binary::SyncThread => "sync-thread",
            Binary::SyncPool => "sync-pool",
            Binary::TokioAxum => "tokio-axum",
            Binary::TokioActix => "tokio-actix",
            Binary::TokioHyper => "tokio-hyper",
            Binary::MayGreen => "may-green",
        }
    }

    pub fn from_name(name: &str) -> Option<Binary> {
        Binary::ALL.into_iter().find(|b| b.name() == name)
    }

    /// One line on the concurrency model, for `--help` and reports.
    pub fn model(self) -> &'static str {
        match self {
            Binary::SyncThread => "one OS thread per connection",
            Binary::SyncPool => "fixed pool of OS threads, one request each, Connection: close",
            Binary::TokioAxum => "async tasks on a tokio multi-thread runtime (axum)",
            Binary::TokioActix => "async tasks on single-threaded runtimes (actix-web)",
            Binary::TokioHyper => "async tasks on a tokio multi-thread runtime (bare hyper)",
            Binary::MayGreen => "green threads: may coroutines on a few OS threads",
        }
    }

    /// `--workers` when the flag is absent: the CPU count, or 2 × CPU + 1 for sync-pool
    /// (gunicorn's advice for sync workers).
    pub fn default_workers(self, cpus: usize) -> usize {
        match self {
            Binary::SyncPool => 2 * cpus + 1,
            _ => cpus,
        }
    }

    /// `--pool-size` when the flag is absent: 16, or the worker count for sync-pool, whose
    /// workers can never use more connections than there are of them.
    pub fn default_pool_size(self, workers: usize) -> usize {
        match self {
            Binary::SyncPool => workers,
            _ => 16,
        }
    }
}

impl fmt::Display for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `/test` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Fetch one PostgreSQL row.
    Db,
    /// Fetch a page from the upstream nginx.
    Upstream,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Db => "db",
            Backend::Upstream => "upstream",
        }
    }

    pub fn from_name(name: &str) -> Option<Backend> {
        match name {
            "db" => Some(Backend::Db),
            "upstream" => Some(Backend::Upstream),
            _ => None,
        }
    }
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

    /// What /test does.
    #[arg(long, env = "BACKEND", value_enum, default_value_t = Backend::Db)]
    backend: Backend,

    /// DB: pg_sleep length; upstream: the delay asked of nginx. Milliseconds, 0 to 10000.
    #[arg(long, env = "DELAY_MS", default_value_t = 0, value_parser = parse_delay)]
    delay_ms: u32,

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
    pub upstream: UpstreamUrl,
    /// What a request gets when it does not say otherwise.
    pub defaults: RequestDefaults,
}

/// The per-request defaults that `/test` query parameters override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestDefaults {
    pub backend: Backend,
    pub delay_ms: u32,
    pub rows: i32,
}

impl Config {
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
                    eprintln!("{binary}: {}", one_line(&err));
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
            .about(format!("{}: {}", binary.name(), binary.model()));
        let flags = Flags::from_arg_matches(&command.try_get_matches_from(args)?)?;
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
            upstream: flags.upstream_url,
            defaults: RequestDefaults {
                backend: flags.backend,
                delay_ms: flags.delay_ms,
                rows: flags.rows,
            },
        })
    }

    /// A one-line summary for the start-up log.
    pub fn summary(&self) -> String {
        format!(
            "{} listening on http://{} ({}); workers={} pool-size={} pool-timeout-ms={} backend={} delay-ms={} db={} upstream={}",
            self.binary,
            self.listen,
            self.binary.model(),
            self.workers,
            self.pool_size,
            self.pool_timeout.as_millis(),
            self.defaults.backend.name(),
            self.defaults.delay_ms,
            self.database,
            self.upstream,
        )
    }
}

/// clap's message, without its "error: " prefix and usage lines.
fn one_line(err: &clap::Error) -> String {
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

fn parse_delay(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n <= MAX_DELAY_MS => Ok(n),
        _ => Err(format!(
            "expected milliseconds from 0 to {MAX_DELAY_MS}, got {value:?}"
        )),
    }
}

/// A parsed `postgres://` URL. Only TCP connections without TLS: the suite measures the
/// concurrency models on loopback, and every client in it speaks the same plain protocol.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| "expected postgres://user@host:port/dbname".to_string())?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        if let Some(query) = query {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair {
                    "sslmode=disable" | "sslmode=prefer" | "sslmode=allow" => {}
                    other => {
                        return Err(format!(
                            "unsupported URL parameter {other:?} (only sslmode=disable|prefer|allow: the suite connects without TLS)"
                        ))
                    }
                }
            }
        }
        let (authority, dbname) = match rest.split_once('/') {
            Some((authority, dbname)) => (authority, Some(dbname)),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((user, password)) => (percent_decode(user)?, Some(percent_decode(password)?)),
                None => (percent_decode(info)?, None),
            },
            None => ("postgres".to_string(), None),
        };
        let (host, port) = split_host_port(hostport, 5432)?;
        let dbname = match dbname {
            Some(name) if !name.is_empty() => percent_decode(name)?,
            _ => user.clone(),
        };
        if user.is_empty() {
            return Err("the user name is empty".into());
        }
        Ok(DatabaseUrl {
            host,
            port,
            user,
            password,
            dbname,
        })
    }

    /// Resolves the host once, at start-up, so that no client resolves names on a request path.
    pub fn socket_addr(&self) -> Result<SocketAddr, String> {
        resolve(&self.host, self.port)
    }
}

/// Shows the URL with the password masked, for logs.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.password.is_some() { ":***" } else { "" };
        let host = bracket_ipv6(&self.host);
        write!(
            f,
            "postgres://{}{password}@{host}:{}/{}",
            self.user, self.port, self.dbname
        )
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A parsed `http://` URL for the upstream page. Its address is resolved at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// The `Host` header value.
    pub authority: String,
    pub addr: SocketAddr,
    /// Path and any query, to which `delay_ms=N` is appended.
    pub path_and_query: String,
}

impl UpstreamUrl {
    pub fn parse(url: &str) -> Result<UpstreamUrl, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            "expected http://host[:port]/path (https is not supported)".to_string()
        })?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.contains('@') {
            return Err("user information in the upstream URL is not supported".into());
        }
        let (host, port) = split_host_port(authority, 80)?;
        Ok(UpstreamUrl {
            authority: authority.to_string(),
            addr: resolve(&host, port)?,
            path_and_query: path,
        })
    }

    /// The request target for one fetch with the given delay.
    pub fn target(&self, delay_ms: u32) -> String {
        let sep = if self.path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}delay_ms={delay_ms}", self.path_and_query)
    }

    /// The absolute URL of one fetch, for clients that take a URI.
    pub fn uri(&self, delay_ms: u32) -> String {
        format!("http://{}{}", self.authority, self.target(delay_ms))
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path_and_query)
    }
}

fn split_host_port(hostport: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in host {hostport:?}"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected {after:?} after the IPv6 address")),
        };
        (host, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("bad port {port:?}"))?,
        None => default_port,
    };
    Ok((host.to_string(), port))
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

/// Decodes `%XX` escapes, as URLs carry them in user names, passwords and query values.
pub fn percent_decode(input: &str) -> Result<String, String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {input:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{input:?} does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(binary: Binary, args: &[&str]) -> Result<Config, String> {
        let argv = std::iter::once(binary.name()).chain(args.iter().copied());
        Config::try_parse_from(binary, argv).map_err(|e| one_line(&e))
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = parse(Binary::TokioAxum, &[]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(config.pool_size, 16);
        assert_eq!(config.pool_timeout, Duration::from_millis(5000));
        assert_eq!(config.max_threads, 1024);
        assert_eq!(config.defaults.backend, Backend::Db);
        assert_eq!(config.defaults.delay_ms, 0);
        assert_eq!(config.defaults.rows, 1_000_000);
        assert_eq!(config.database.user, "postgres");
        assert_eq!(config.database.port, 5432);
        assert_eq!(config.upstream.target(5), "/upstream?delay_ms=5");
    }

    #[test]
    fn sync_pool_sizes_its_pool_by_its_workers() {
        let config = parse(Binary::SyncPool, &["--workers", "7"]).unwrap();
        assert_eq!(config.pool_size, 7);
        let cpus = std::thread::available_parallelism().unwrap().get();
        let config = parse(Binary::SyncPool, &[]).unwrap();
        assert_eq!(config.workers, 2 * cpus + 1);
        assert_eq!(config.pool_size, 2 * cpus + 1);
        let config = parse(Binary::SyncPool, &["--workers", "7", "--pool-size", "3"]).unwrap();
        assert_eq!(config.pool_size, 3);
    }

    #[test]
    fn bad_values_name_the_flag_in_one_line() {
        for (args, flag) in [
            (&["--workers", "0"][..], "--workers"),
            (&["--workers", "many"][..], "--workers"),
            (&["--pool-size", "-1"][..], "--pool-size"),
            (&["--delay-ms", "10001"][..], "--delay-ms"),
            (&["--backend", "redis"][..], "--backend"),
            (&["--listen", "localhost"][..], "--listen"),
            (&["--database-url", "mysql://x"][..], "--database-url"),
            (&["--upstream-url", "https://x/"][..], "--upstream-url"),
            (&["--rows", "0"][..], "--rows"),
            (&["--pool-timeout-ms", "0"][..], "--pool-timeout-ms"),
        ] {
            let message = parse(Binary::TokioHyper, args).unwrap_err();
            assert!(message.contains(flag), "{args:?}: {message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn database_urls_parse_with_defaults_and_escapes() {
        let url = DatabaseUrl::parse("postgres://bench:p%40ss@db.example:6543/perf").unwrap();
        assert_eq!(url.user, "bench");
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert_eq!((url.host.as_str(), url.port), ("db.example", 6543));
        assert_eq!(url.dbname, "perf");
        assert_eq!(url.to_string(), "postgres://bench:***@db.example:6543/perf");

        let url = DatabaseUrl::parse("postgresql://alice@[::1]").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 5432));
        assert_eq!(url.dbname, "alice");

        assert!(DatabaseUrl::parse("postgres://u@h/db?sslmode=disable").is_ok());
        assert!(DatabaseUrl::parse("postgres://u@h/db?sslmode=require").is_err());
        assert!(DatabaseUrl::parse("postgres://u@h:99999/db").is_err());
        assert!(DatabaseUrl::parse("postgres://u@:5432/db").is_err());
    }

    #[test]
    fn upstream_urls_keep_their_query_and_append_the_delay() {
        let url = UpstreamUrl::parse("http://127.0.0.1:8090/page?x=1").unwrap();
        assert_eq!(url.target(100), "/page?x=1&delay_ms=100");
        assert_eq!(url.uri(0), "http://127.0.0.1:8090/page?x=1&delay_ms=0");
        let url = UpstreamUrl::parse("http://127.0.0.1").unwrap();
        assert_eq!(url.addr.port(), 80);
        assert_eq!(url.target(1), "/?delay_ms=1");
    }

    #[test]
    fn binary_names_round_trip() {
        for binary in Binary::ALL {
            assert_eq!(Binary::from_name(binary.name()), Some(binary));
        }
        assert_eq!(Binary::from_name("flask"), None);
    }
}
