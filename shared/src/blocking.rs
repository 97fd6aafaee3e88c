//! The blocking I/O that sync-thread and sync-pool share: a `postgres` + `r2d2_postgres` pool
//! and a small keep-alive HTTP/1.1 client for the upstream. A request waits on the calling OS
//! thread; the thread is parked by the kernel until the socket has an answer.
//!
//! (The `postgres` crate drives `tokio-postgres` on a runtime inside the calling thread: no
//! extra threads, and from the caller's side an ordinary blocking call.)
//!
//! The upstream client is ours rather than ureq: it is forty lines on the shared protocol code
//! (`crate::upstream`), which may-green's cooperative client uses too, so the three clients
//! differ only in how they wait. It keeps idle connections in a stack and retries once when a
//! reused connection turns out to be closed.

use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postgres::{NoTls, Statement};
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

use crate::error::{one_line, AppError};
use crate::request::{Reply, UpstreamReply, Work};
use crate::upstream::{self, upstream_timeout, ReadError};
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
                Ok(Some(row)) => {
                    return Ok(Row {
                        a: row.try_get(0).map_err(|e| AppError::DbError(one_line(e)))?,
                        b: row.try_get(1).map_err(|e| AppError::DbError(one_line(e)))?,
                    })
                }
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

/// Idle connections kept for reuse, at most.
const MAX_IDLE: usize = 1024;

/// A keep-alive HTTP/1.1 client for the upstream page.
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
        let started = Instant::now();
        let deadline = started + upstream_timeout(delay_ms);
        let request = upstream::request_bytes(&self.url, delay_ms);
        let mut buf = Vec::new();
        loop {
            let reused = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
            let is_reused = reused.is_some();
            let mut stream = match reused {
                Some(stream) => stream,
                None => self.connect(deadline, started)?,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(AppError::UpstreamTimeout {
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            let attempt = stream
                .set_read_timeout(Some(left))
                .and_then(|()| std::io::Write::write_all(&mut stream, &request))
                .map_err(ReadError::Io)
                .and_then(|()| upstream::read_response(&mut stream, &mut buf));
            match attempt {
                Ok(response) => {
                    // Unread bytes would belong to no request: such a connection is not reused.
                    if response.reusable && buf.is_empty() {
                        if let Ok(mut idle) = self.idle.lock() {
                            if idle.len() < MAX_IDLE {
                                idle.push(stream);
                            }
                        }
                    }
                    return Ok(response.reply);
                }
                // A kept-alive connection the server had already closed: try a fresh one.
                Err(e) if is_reused && closed_under_us(&e) => continue,
                Err(e) => return Err(e.into_app_error(started.elapsed())),
            }
        }
    }

    fn connect(&self, deadline: Instant, started: Instant) -> Result<TcpStream, AppError> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(upstream::UPSTREAM_GRACE);
        let stream = TcpStream::connect_timeout(&self.url.addr, left.max(Duration::from_millis(1)))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    AppError::UpstreamTimeout {
                        waited_ms: started.elapsed().as_millis() as u64,
                    }
                }
                _ => AppError::UpstreamFailed(format!("cannot connect to {}: {e}", self.url.addr)),
            })?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// A reused keep-alive connection that the server had closed: retrying on a new one is safe,
/// as the request never reached a live server. A timeout is not that.
fn closed_under_us(error: &ReadError) -> bool {
    match error {
        ReadError::ClosedBeforeResponse => true,
        ReadError::Io(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        ReadError::Protocol(_) => false,
    }
}
