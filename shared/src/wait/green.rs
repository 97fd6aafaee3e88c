//! How may-green's request waits: in code that reads as blocking ([`GreenApp::respond`]),
//! where every wait parks the coroutine and the worker thread runs others (gevent with
//! psycogreen). The clients are the `green` module's, over may's sockets; the pool is here: at
//! most `--pool-size` connections behind a may semaphore (a cooperative wait queue with a
//! timeout, then 503). A connection that fails is dropped; a pooled one that turns out closed
//! (a database restart) is replaced and the query retried, as the other targets do.

use std::time::Duration;

use may::sync::{Mutex, Semphore};

use crate::error::AppError;
use crate::green::pg::{ConnectParams, Connection, PgError};
use crate::green::upstream::Upstream;
use crate::request::{Reply, UpstreamReply, Work};
use crate::{Config, DbRow, RequestDefaults};

/// What may-green's request waits with: cooperative clients, whose waits park the coroutine.
pub struct GreenApp {
    pub server: &'static str,
    pub defaults: RequestDefaults,
    pub db: Pool,
    pub upstream: Upstream,
}

impl GreenApp {
    /// Fails (at start-up) when the database address cannot be resolved.
    pub fn new(config: &Config) -> Result<GreenApp, String> {
        let params =
            ConnectParams::from_config(config).map_err(|e| format!("--database-url: {e}"))?;
        Ok(GreenApp {
            server: config.binary.name(),
            defaults: config.defaults,
            db: Pool::new(params, config.pool_size, config.pool_timeout),
            // A fetch in flight per client connection: the budget's upstream part.
            upstream: Upstream::new(&config.upstream, config.connection_budget()),
        })
    }

    /// The reply to one request, inside the connection's coroutine. The green model is the
    /// two calls below: they look blocking, but every wait inside them (the pool's semaphore,
    /// PostgreSQL's and nginx's sockets) parks this coroutine, and the worker thread runs the
    /// others meanwhile.
    pub fn respond(&self, method: &str, path: &str, query: Option<&str>) -> Reply {
        match crate::plan(&self.defaults, method, path, query) {
            Work::Reply(reply) => reply,
            Work::Panic => crate::panics::on_request(self.server),
            // The work runs here, in the coroutine, on its worker thread: no other coroutine
            // of that worker runs until it is done (may does not preempt).
            Work::FetchRow { id, delay_ms, work } => Reply::from_row(
                self.db
                    .fetch_row(id, delay_ms)
                    .and_then(|row| row.ok_or(crate::AppError::NoSuchRow(id))),
            )
            .worked(work),
            Work::FetchUpstream {
                delay_ms,
                work,
                fanout,
            } => Reply::from_pages(self.fetch_pages(delay_ms, fanout)).worked(work),
        }
    }

    /// `fanout=K`'s pages, as green code makes them: a coroutine for each but the first, which
    /// this one fetches, all joined; each parks on its own socket, so the K waits overlap.
    fn fetch_pages(&self, delay_ms: u32, fanout: u8) -> Vec<Result<UpstreamReply, AppError>> {
        if fanout == 1 {
            return vec![self.upstream.fetch(delay_ms)];
        }
        may::coroutine::scope(|scope| {
            // Safety: the coroutines only borrow `self.upstream`, which outlives the scope (it
            // joins them before returning), and touch no thread-local state.
            let others: Vec<_> = (1..fanout)
                .map(|_| unsafe { scope.spawn(|| self.upstream.fetch(delay_ms)) })
                .collect();
            let mut pages = vec![self.upstream.fetch(delay_ms)];
            pages.extend(others.into_iter().map(|other| other.join()));
            pages
        })
    }

    /// Opens one DB connection (from a coroutine) to report a bad URL or a stopped database
    /// at start-up. Not fatal: /test answers 503 until the database is reachable.
    pub fn check_database(&self) {
        if let Err(error) = self.db.check() {
            error.warn_at_start(self.server);
        }
    }
}

/// At most `size` connections; a coroutine waits its turn on the semaphore, up to `timeout`.
pub struct Pool {
    params: ConnectParams,
    idle: Mutex<Vec<Connection>>,
    permits: Semphore,
    size: usize,
    timeout: Duration,
}

impl Pool {
    pub fn new(params: ConnectParams, size: usize, timeout: Duration) -> Pool {
        Pool {
            params,
            idle: Mutex::new(Vec::new()),
            permits: Semphore::new(size),
            size,
            timeout,
        }
    }

    /// Row `id` after `delay_ms`; `Ok(None)` when there is no such row.
    pub fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<Option<DbRow>, AppError> {
        if !self.permits.wait_timeout(self.timeout) {
            return Err(AppError::PoolTimeout {
                waited_ms: self.timeout.as_millis() as u64,
            });
        }
        let result = self.with_permit(id, delay_ms);
        self.permits.post();
        result
    }

    fn with_permit(&self, id: i32, delay_ms: u32) -> Result<Option<DbRow>, AppError> {
        // A pooled connection can have died while idle: then the statement never ran, and a
        // fresh connection is tried, up to the pool size.
        for _ in 0..=self.size {
            let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => Connection::connect(&self.params).map_err(PgError::into_app_error)?,
            };
            match conn.fetch_row(id, delay_ms) {
                Ok(row) => {
                    self.give_back(conn);
                    return Ok(row);
                }
                Err(e) if e.is_fatal() && reused => continue,
                Err(e) => {
                    if !e.is_fatal() {
                        self.give_back(conn);
                    }
                    return Err(e.into_app_error());
                }
            }
        }
        Err(AppError::DbUnavailable(
            "every pooled connection was closed by the server".into(),
        ))
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    /// Opens one connection now, to report a bad URL or a stopped database at start-up.
    pub fn check(&self) -> Result<(), AppError> {
        if !self.permits.wait_timeout(self.timeout) {
            return Ok(()); // busy already: requests are reaching the database
        }
        let result = Connection::connect(&self.params).map(|conn| self.give_back(conn));
        self.permits.post();
        result.map_err(PgError::into_app_error)
    }
}
