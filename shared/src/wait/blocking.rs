//! How a sync target's request waits (sync-thread, sync-pool): on the calling OS thread.
//! [`BlockingApp::respond`] calls the `postgres` pool or the upstream client and returns when
//! the socket has the answer; meanwhile the kernel parks the thread. The pool is ours:
//! at most `--pool-size` connections, opened on demand by the caller that needs one, and a
//! wait of at most `--pool-timeout-ms` for a busy pool, first come, first served.
//!
//! (The `postgres` crate drives `tokio-postgres` on a runtime inside the calling thread: no
//! extra threads, and from the caller's side an ordinary blocking call.)
//!
//! The pool is ours rather than r2d2: r2d2 opens connections on a background thread and
//! retries until the checkout times out, so a database that refuses connections cost every
//! request the whole `--pool-timeout-ms`. Here the caller that needs a new connection opens
//! it, so a refusal is a 503 at once, as in deadpool and may-green's pool; only a busy pool
//! waits, and waiters are served in the order they came.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use postgres::{NoTls, Statement};

use crate::error::AppError;
use crate::request::{Reply, UpstreamReply, Work};
use crate::upstream::{BlockingGate, KeepAliveClient};
use crate::{pg, sql, Config, DbRow, Fanout, RequestDefaults};

/// What a sync target's request waits with: its own thread does every wait.
pub struct BlockingApp {
    pub server: &'static str,
    pub defaults: RequestDefaults,
    pub db: Database,
    pub upstream: Upstream,
    /// How a request's fanout fetches are made (`--fanout`).
    pub fanout: Fanout,
}

impl BlockingApp {
    pub fn new(config: &Config) -> BlockingApp {
        BlockingApp {
            server: config.binary.name(),
            defaults: config.defaults,
            db: Database::new(config),
            // A fetch in flight per client connection: the budget's upstream part.
            upstream: Upstream::new(&config.upstream, config.connection_budget()),
            fanout: config.fanout,
        }
    }

    /// The reply to one request, on the calling thread: the blocking model is the two calls
    /// below. `fetch_row` and `fetch` return when the socket has the answer; until then the
    /// kernel parks this thread, and nothing else runs on it.
    pub fn respond(&self, method: &str, path: &str, query: Option<&str>) -> Reply {
        match crate::plan(&self.defaults, method, path, query) {
            Work::Reply(reply) => reply,
            Work::Panic => crate::panics::on_request(self.server),
            // The work runs here, on the request's thread, which the kernel preempts like any
            // other: a long hash never holds up another connection's thread.
            Work::FetchRow { id, delay_ms, work } => {
                Reply::from_row(self.db.fetch_row(id, delay_ms)).worked(work)
            }
            Work::FetchUpstream {
                delay_ms,
                work,
                fanout,
            } => Reply::from_pages(self.fetch_pages(delay_ms, fanout)).worked(work),
        }
    }

    /// `fanout=K`'s pages, as sync code makes them: one after another on this thread (the
    /// first failure ends it), or with `--fanout threads` a scoped thread for each but the
    /// first, which this thread fetches, all joined.
    fn fetch_pages(&self, delay_ms: u32, fanout: u8) -> Vec<Result<UpstreamReply, AppError>> {
        match self.fanout {
            Fanout::Inline => {
                let mut pages = Vec::with_capacity(usize::from(fanout));
                for _ in 0..fanout {
                    let page = self.upstream.fetch(delay_ms);
                    let failed = page.is_err();
                    pages.push(page);
                    if failed {
                        break;
                    }
                }
                pages
            }
            Fanout::Threads => std::thread::scope(|scope| {
                let others: Vec<_> = (1..fanout)
                    .map(|_| {
                        std::thread::Builder::new()
                            .spawn_scoped(scope, || self.upstream.fetch(delay_ms))
                    })
                    .collect();
                let mut pages = vec![self.upstream.fetch(delay_ms)];
                for other in others {
                    pages.push(match other {
                        Ok(thread) => thread.join().unwrap_or(Err(AppError::Panicked)),
                        // No thread for it: fetched here, after the others started.
                        Err(_) => self.upstream.fetch(delay_ms),
                    });
                }
                pages
            }),
        }
    }

    /// Opens one DB connection at start-up (no statement beyond preparing), so that a wrong
    /// URL or a stopped database is reported at once. Not fatal: /test answers 503 until the
    /// database is reachable.
    pub fn check_database(&self) {
        if let Err(error) = self.db.checkout() {
            error.warn_at_start(self.server);
        }
    }
}

/// The keep-alive client of the upstream page: std's sockets, std's mutex around the idle
/// ones ([`crate::upstream::KeepAliveClient`], may-green's with may's).
pub type Upstream = KeepAliveClient<TcpStream, Mutex<Vec<TcpStream>>, BlockingGate>;

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
    pub fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<DbRow, AppError> {
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
                Err(e)
                    if pg::connection_ended(conn.client.is_closed(), &e)
                        && attempts < self.max_size =>
                {
                    attempts += 1
                }
                Err(e) => return Err(pg::map_error(&e)),
                Ok(None) => return Err(AppError::NoSuchRow(id)),
                Ok(Some(row)) => return pg::to_row(&row),
            }
        }
    }
}
