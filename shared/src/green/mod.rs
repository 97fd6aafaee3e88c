//! The I/O of may-green: a cooperative PostgreSQL client and pool ([`pg`]) and a cooperative
//! upstream client ([`upstream`]), both over `may::net::TcpStream`. A request waits by parking
//! its coroutine; the worker thread runs the other coroutines meanwhile. Nothing here makes a
//! blocking OS call: no `std::net`, no sync `postgres`, no `std::thread::sleep`, no DNS (the
//! addresses are resolved at start-up). `bench/tests/conformance.rs` proves it by counting.

pub mod pg;
pub mod upstream;

use crate::request::{Reply, Work};
use crate::shutdown::OpenConnections;
use crate::{Config, RequestDefaults};

/// What may-green serves a request with.
pub struct GreenApp {
    pub server: &'static str,
    pub defaults: RequestDefaults,
    pub db: pg::Pool,
    pub upstream: upstream::Upstream,
    /// Open connections, for the SIGTERM drain.
    pub connections: OpenConnections,
}

impl GreenApp {
    /// Fails (at start-up) when the database address cannot be resolved.
    pub fn new(config: &Config) -> Result<GreenApp, String> {
        let params =
            pg::ConnectParams::from_config(config).map_err(|e| format!("--database-url: {e}"))?;
        Ok(GreenApp {
            server: config.binary.name(),
            defaults: config.defaults,
            db: pg::Pool::new(params, config.pool_size, config.pool_timeout),
            upstream: upstream::Upstream::new(&config.upstream),
            connections: OpenConnections::new(),
        })
    }

    /// The reply to one request; runs inside the connection's coroutine.
    pub fn respond(&self, method: &str, path: &str, query: Option<&str>) -> Reply {
        match crate::plan(&self.defaults, method, path, query) {
            Work::Reply(reply) => reply,
            Work::FetchRow { id, delay_ms } => Reply::from_row(
                self.db
                    .fetch_row(id, delay_ms)
                    .and_then(|row| row.ok_or(crate::AppError::NoSuchRow(id))),
            ),
            Work::FetchUpstream { delay_ms } => Reply::from_upstream(self.upstream.fetch(delay_ms)),
        }
    }

    /// Opens one DB connection (from a coroutine) to report a bad URL or a stopped database
    /// at start-up. Not fatal: /test answers 503 until the database is reachable.
    pub fn check_database(&self) {
        if let Err(error) = self.db.check() {
            eprintln!(
                "{}: warning: {error}; /test will answer {} until this is fixed",
                self.server,
                error.status()
            );
        }
    }
}
