//! The blocking I/O that sync-thread and sync-pool share: a `postgres` + `r2d2_postgres` pool
//! and a small keep-alive HTTP/1.1 client for the upstream. A request waits on the calling OS
//! thread; the thread is parked by the kernel until the socket has an answer.
//!
//! (The `postgres` crate drives `tokio-postgres` on a runtime inside the calling thread: no
//! extra threads, and from the caller's side an ordinary blocking call.)
//!
//! The upstream client is ours rather than ureq: the shared fetch loop (`crate::upstream::fetch`)
//! over std's socket, which may-green's cooperative client runs over may's, so the two differ
//! only in how they wait. It keeps idle connections in a stack and retries on another
//! connection when a reused one turns out to be closed.

use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use postgres::{NoTls, Statement};
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

use crate::error::{one_line, AppError};
use crate::request::{Reply, UpstreamReply, Work};
use crate::upstream;
use crate::{pg, sql, Config, RequestDefaults, Row, UpstreamUrl};

/// What a sync target serves a request with: the request's own thread does every wait.
pub struct BlockingApp {
    pub server: &'static str,
    pub defaults: RequestDefaults,
    pub db: Database,
    pub upstream: Upstream,
}

impl BlockingApp {
    pub fn new(config: &Config) -> BlockingApp {
        BlockingApp {
            server: config.binary.name(),
            defaults: config.defaults,
            db: Database::new(config),
            upstream: Upstream::new(&config.upstream),
        }
    }

    /// The reply to one request.
    pub fn respond(&self, method: &str, path: &str, query: Option<&str>) -> Reply {
        match crate::plan(&self.defaults, method, path, query) {
            Work::Reply(reply) => reply,
            Work::FetchRow { id, delay_ms } => Reply::from_row(self.db.fetch_row(id, delay_ms)),
            Work::FetchUpstream { delay_ms } => Reply::from_upstream(self.upstream.fetch(delay_ms)),
        }
    }

    /// Serves one connection on the calling thread until it closes. With `keep_alive` false,
    /// one request and then `Connection: close`.
    pub fn serve(&self, mut stream: TcpStream, keep_alive: bool) {
        let limits = crate::http::Limits::default();
        // An error here is the client's (a reset): the connection is over either way.
        let _ = crate::http::serve_connection(
            &mut stream,
            self.server,
            keep_alive,
            &limits,
            |method, path, query| self.respond(method, path, query),
        );
    }

    /// Opens one DB connection at start-up (no statement beyond preparing), so that a wrong
    /// URL or a stopped database is reported at once. Not fatal: /test answers 503 until the
    /// database is reachable.
    pub fn check_database(&self) {
        if let Err(error) = self.db.pool.get() {
            let error = self.db.pool_error(&error);
            eprintln!(
                "{}: warning: {error}; /test will answer {} until this is fixed",
                self.server,
                error.status()
            );
        }
    }
}

/// A pooled connection with both statements prepared.
pub struct PreparedClient {
    client: postgres::Client,
    select_row: Statement,
    select_row_after_sleep: Statement,
}

/// r2d2_postgres's manager, plus preparing the two statements once when a connection opens.
pub struct PreparingManager {
    inner: PostgresConnectionManager<NoTls>,
}

impl ManageConnection for PreparingManager {
    type Connection = PreparedClient;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PreparedClient, postgres::Error> {
        let mut client = self.inner.connect()?;
        let select_row = client.prepare(sql::SELECT_ROW)?;
        let select_row_after_sleep = client.prepare(sql::SELECT_ROW_AFTER_SLEEP)?;
        Ok(PreparedClient {
            client,
            select_row,
            select_row_after_sleep,
        })
    }

    fn is_valid(&self, conn: &mut PreparedClient) -> Result<(), postgres::Error> {
        self.inner.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PreparedClient) -> bool {
        self.inner.has_broken(&mut conn.client)
    }
}

/// The r2d2 pool: at most `--pool-size` connections, a wait of at most `--pool-timeout-ms`.
pub struct Database {
    pool: r2d2::Pool<PreparingManager>,
    timeout: Duration,
    max_size: usize,
}

impl Database {
    pub fn new(config: &Config) -> Database {
        let manager = PreparingManager {
            inner: PostgresConnectionManager::new(pg::driver_config(config).into(), NoTls),
        };
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size.min(u32::MAX as usize) as u32)
            // Open connections on demand, like the async pools.
            .min_idle(Some(0))
            // No validation query per checkout: one round trip per request. A connection that
            // broke is dropped by `has_broken` when it is returned.
            .test_on_check_out(false)
            .connection_timeout(config.pool_timeout)
            .build_unchecked(manager);
        Database {
            pool,
            timeout: config.pool_timeout,
            max_size: config.pool_size,
        }
    }

    /// One row, with `delay_ms` of `pg_sleep` in the same statement. A pooled connection the
    /// server closed while it sat idle (a restart, a killed backend) is only found out when it
    /// is used: then the statement never ran, and the next connection is tried, up to the pool
    /// size, so that the pool recovers without failing requests.
    pub fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<Row, AppError> {
        let mut attempts = 0;
        loop {
            let mut conn = self.pool.get().map_err(|e| self.pool_error(&e))?;
            let conn = &mut *conn;
            let found = if delay_ms == 0 {
                conn.client.query_opt(&conn.select_row, &[&id])
            } else {
                let seconds = sql::sleep_seconds(delay_ms);
                conn.client
                    .query_opt(&conn.select_row_after_sleep, &[&id, &seconds])
            };
            match found {
                // r2d2 drops the connection when it comes back (`has_broken`).
                Err(_) if conn.client.is_closed() && attempts < self.max_size => attempts += 1,
                Err(e) => return Err(pg::map_error(&e)),
                Ok(None) => return Err(AppError::NoSuchRow(id)),
                Ok(Some(row)) => return pg::to_row(&row),
            }
        }
    }

    /// r2d2 has one error, "timed out waiting for connection", which carries the last
    /// connection error when opening one failed: then the database is the problem, else the
    /// pool was busy.
    fn pool_error(&self, error: &r2d2::Error) -> AppError {
        let text = error.to_string();
        match text.split_once(": ") {
            Some((_, cause)) => AppError::DbUnavailable(one_line(cause)),
            None => AppError::PoolTimeout {
                waited_ms: self.timeout.as_millis() as u64,
            },
        }
    }
}

/// A keep-alive HTTP/1.1 client for the upstream page: the shared fetch loop
/// ([`upstream::fetch`]) over `std::net::TcpStream`, with idle connections behind a mutex.
pub struct Upstream {
    url: UpstreamUrl,
    idle: Mutex<Vec<TcpStream>>,
}

impl Upstream {
    pub fn new(url: &UpstreamUrl) -> Upstream {
        Upstream {
            url: url.clone(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// One GET with `?delay_ms=N`; the body is read to the end and counted.
    pub fn fetch(&self, delay_ms: u32) -> Result<UpstreamReply, AppError> {
        upstream::fetch(
            &self.url,
            delay_ms,
            || self.idle.lock().ok().and_then(|mut idle| idle.pop()),
            |stream| {
                if let Ok(mut idle) = self.idle.lock() {
                    if idle.len() < upstream::MAX_IDLE {
                        idle.push(stream);
                    }
                }
            },
        )
    }
}
