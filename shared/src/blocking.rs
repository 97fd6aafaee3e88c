//! The blocking I/O that sync-thread and sync-pool share: a `postgres` connection pool and a
//! small keep-alive HTTP/1.1 client for the upstream. A request waits on the calling OS
//! thread; the thread is parked by the kernel until the socket has an answer.
//!
//! (The `postgres` crate drives `tokio-postgres` on a runtime inside the calling thread: no
//! extra threads, and from the caller's side an ordinary blocking call.)
//!
//! The pool is ours rather than r2d2: r2d2 opens connections on a background thread and
//! retries until the checkout times out, so a database that refuses connections cost every
//! request the whole `--pool-timeout-ms`. Here the caller that needs a new connection opens
//! it, so a refusal is a 503 at once, as in deadpool and may-green's pool; only a busy pool
//! waits, and waiters are served in the order they came.
//!
//! The upstream client is ours rather than ureq: the shared fetch loop (`crate::upstream::fetch`)
//! over std's socket, which may-green's cooperative client runs over may's, so the two differ
//! only in how they wait. It keeps idle connections in a stack and retries on another
//! connection when a reused one turns out to be closed.

use std::collections::VecDeque;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use postgres::{NoTls, Statement};

use crate::error::AppError;
use crate::request::{Reply, UpstreamReply, Work};
use crate::shutdown::OpenConnections;
use crate::upstream;
use crate::{pg, sql, Config, RequestDefaults, Row, UpstreamUrl};

/// What a sync target serves a request with: the request's own thread does every wait.
pub struct BlockingApp {
    pub server: &'static str,
    pub defaults: RequestDefaults,
    pub limits: crate::http::Limits,
    pub db: Database,
    pub upstream: Upstream,
    /// Open connections, for the SIGTERM drain.
    pub connections: OpenConnections,
}

impl BlockingApp {
    pub fn new(config: &Config) -> BlockingApp {
        BlockingApp {
            server: config.binary.name(),
            defaults: config.defaults,
            limits: crate::http::Limits::from(&config.limits),
            db: Database::new(config),
            upstream: Upstream::new(&config.upstream),
            connections: OpenConnections::new(),
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
    /// one request and then `Connection: close`. A connection accepted after a drain started
    /// is closed unanswered.
    pub fn serve(&self, mut stream: TcpStream, keep_alive: bool) {
        let Some(_open) = self.connections.register(stream.as_raw_fd()) else {
            return;
        };
        // An error here is the client's (a reset): the connection is over either way.
        let _ = crate::http::serve_connection(
            &mut stream,
            self.server,
            keep_alive,
            &self.limits,
            &|| self.connections.is_draining(),
            |method, path, query| self.respond(method, path, query),
        );
        // `_open` drops here, before `stream` closes the descriptor.
    }

    /// Opens one DB connection at start-up (no statement beyond preparing), so that a wrong
    /// URL or a stopped database is reported at once. Not fatal: /test answers 503 until the
    /// database is reachable.
    pub fn check_database(&self) {
        if let Err(error) = self.db.checkout() {
            eprintln!(
                "{}: warning: {error}; /test will answer {} until this is fixed",
                self.server,
                error.status()
            );
        }
    }
}

/// What both sync targets do before their model starts: bind the listener, build the app,
/// print the start-up line, check the database in the background, and arm the SIGTERM drain
/// (shut the listener, then the read side of every open connection).
pub fn start(config: &Config) -> Result<(TcpListener, Arc<BlockingApp>), String> {
    let listener = TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let app = Arc::new(BlockingApp::new(config));
    eprintln!("{}", config.summary());
    std::thread::spawn({
        let app = app.clone();
        move || app.check_database()
    });
    let listener_fd = listener.as_raw_fd();
    let drained = app.clone();
    crate::shutdown::on_signals(app.server, config.shutdown_timeout, move || {
        crate::shutdown::stop_accepting(listener_fd);
        drained.connections.drain();
    })
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    Ok((listener, app))
}

/// A pooled connection with both statements prepared.
pub struct PreparedClient {
    client: postgres::Client,
    select_row: Statement,
    select_row_after_sleep: Statement,
}

/// The DB pool: at most `--pool-size` connections, opened on demand by the caller that needs
/// one; a wait of at most `--pool-timeout-ms` for a busy pool, first come, first served.
///
/// Each waiter sleeps on its own condition variable and only the first in line is woken when
/// a connection comes back. (Waking them all to let the first one through, as one shared
/// condition variable would, costs a wake-up of every waiting thread per request: at zero
/// delay, with 100 threads on 16 connections, that herd took three quarters of sync-thread's
/// CPU.)
pub struct Database {
    driver: postgres::Config,
    max_size: usize,
    timeout: Duration,
    state: Mutex<PoolState>,
}

struct PoolState {
    idle: Vec<PreparedClient>,
    /// Connections open or being opened, idle or not.
    open: usize,
    /// The callers waiting, in arrival order.
    waiting: VecDeque<Arc<Waiter>>,
}

/// One waiting caller: woken alone, when it is first in line and a connection is free.
struct Waiter {
    wake: Condvar,
}

/// What a caller got from the pool: an idle connection, or the right to open one. (It only
/// lives on the caller's stack between the two, so its size does not matter.)
#[allow(clippy::large_enum_variant)]
enum Slot {
    Idle(PreparedClient),
    New,
}

impl PoolState {
    fn take(&mut self, max_size: usize) -> Option<Slot> {
        if let Some(conn) = self.idle.pop() {
            Some(Slot::Idle(conn))
        } else if self.open < max_size {
            self.open += 1;
            Some(Slot::New)
        } else {
            None
        }
    }

    /// Wakes the first waiter, if a connection is there for it.
    fn wake_first(&self, max_size: usize) {
        if !self.idle.is_empty() || self.open < max_size {
            if let Some(first) = self.waiting.front() {
                first.wake.notify_one();
            }
        }
    }
}

/// A checked-out connection; it goes back to the pool on drop, unless it broke.
pub struct Checkout<'a> {
    db: &'a Database,
    conn: Option<PreparedClient>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        let mut state = self.db.lock();
        match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => state.idle.push(conn),
            _ => state.open -= 1,
        }
        state.wake_first(self.db.max_size);
    }
}

impl Database {
    pub fn new(config: &Config) -> Database {
        Database {
            driver: pg::driver_config(config).into(),
            max_size: config.pool_size,
            timeout: config.pool_timeout,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                waiting: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection, or a new one when the pool has room, or the first one freed within
    /// `--pool-timeout-ms` (then 503). Waiters are served in arrival order. A new connection is
    /// opened here, on the caller's thread: a refused connection is a 503 at once.
    pub fn checkout(&self) -> Result<Checkout<'_>, AppError> {
        let mut state = self.lock();
        // Nobody in line: take a connection at once, if there is one.
        let at_once = if state.waiting.is_empty() {
            state.take(self.max_size)
        } else {
            None
        };
        let slot = match at_once {
            Some(slot) => slot,
            None => {
                let deadline = Instant::now() + self.timeout;
                let me = Arc::new(Waiter {
                    wake: Condvar::new(),
                });
                state.waiting.push_back(me.clone());
                loop {
                    let first = state.waiting.front().is_some_and(|w| Arc::ptr_eq(w, &me));
                    if first {
                        if let Some(slot) = state.take(self.max_size) {
                            state.waiting.pop_front();
                            // More room (several connections came back): the next one too.
                            state.wake_first(self.max_size);
                            break slot;
                        }
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        state.waiting.retain(|w| !Arc::ptr_eq(w, &me));
                        state.wake_first(self.max_size);
                        return Err(AppError::PoolTimeout {
                            waited_ms: self.timeout.as_millis() as u64,
                        });
                    }
                    state = me
                        .wake
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        };
        drop(state);
        match slot {
            Slot::Idle(conn) => Ok(Checkout {
                db: self,
                conn: Some(conn),
            }),
            Slot::New => {
                // On failure the slot is given back by the checkout's drop.
                let mut checkout = Checkout {
                    db: self,
                    conn: None,
                };
                checkout.conn = Some(self.connect()?);
                Ok(checkout)
            }
        }
    }

    /// Opens a connection and prepares both statements on it, once.
    fn connect(&self) -> Result<PreparedClient, AppError> {
        let mut client = self.driver.connect(NoTls).map_err(|e| pg::map_error(&e))?;
        let select_row = client
            .prepare(sql::SELECT_ROW)
            .map_err(|e| pg::map_error(&e))?;
        let select_row_after_sleep = client
            .prepare(sql::SELECT_ROW_AFTER_SLEEP)
            .map_err(|e| pg::map_error(&e))?;
        Ok(PreparedClient {
            client,
            select_row,
            select_row_after_sleep,
        })
    }

    /// One row, with `delay_ms` of `pg_sleep` in the same statement. A pooled connection the
    /// server closed while it sat idle (a restart, a killed backend) is only found out when it
    /// is used: then the statement never ran, and the next connection is tried, up to the pool
    /// size, so that the pool recovers without failing requests.
    pub fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<Row, AppError> {
        let mut attempts = 0;
        loop {
            let mut checkout = self.checkout()?;
            let Some(conn) = checkout.conn.as_mut() else {
                return Err(AppError::DbUnavailable("no connection".into()));
            };
            let found = if delay_ms == 0 {
                conn.client.query_opt(&conn.select_row, &[&id])
            } else {
                let seconds = sql::sleep_seconds(delay_ms);
                conn.client
                    .query_opt(&conn.select_row_after_sleep, &[&id, &seconds])
            };
            match found {
                // The checkout drops a closed connection when it comes back.
                Err(_) if conn.client.is_closed() && attempts < self.max_size => attempts += 1,
                Err(e) => return Err(pg::map_error(&e)),
                Ok(None) => return Err(AppError::NoSuchRow(id)),
                Ok(Some(row)) => return pg::to_row(&row),
            }
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
