//! How a tokio target's request waits (tokio-axum, tokio-actix, tokio-hyper): at an `.await`
//! in [`AsyncApp::respond`], which hands the worker thread to another task. What it waits on
//! is a `deadpool-postgres` pool (or, with `--db-mode pipelined`, one pipelined connection
//! per worker thread) and a pooled keep-alive hyper-util client. The three targets differ
//! only in their HTTP layer and runtime layout (around this, in `tokio_stack.rs`); how a
//! request waits for PostgreSQL or nginx is this file.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, HOST};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_postgres::NoTls;

use crate::error::{one_line, with_causes, AppError};
use crate::pg::Prepared;
use crate::places::PlacedConnector;
use crate::request::{Reply, UpstreamReply, Work};
use crate::upstream::upstream_timeout;
use crate::{pg, sql, Config, DbMode, DbRow, Offload, RequestDefaults, UpstreamUrl};

/// What a tokio target's request waits with. Each request is a task; it waits for a pool
/// slot, for PostgreSQL or for nginx at an `.await`, which hands the worker thread to another
/// task. That is the whole async model.
pub struct AsyncApp {
    pub server: &'static str,
    pub defaults: RequestDefaults,
    pub db: Database,
    pub upstream: Upstream,
    /// Where a request's work runs (`--offload`).
    pub offload: Offload,
}

impl AsyncApp {
    pub fn new(config: &Config) -> Result<AsyncApp, String> {
        Ok(AsyncApp {
            server: config.binary.name(),
            defaults: config.defaults,
            db: Database::new(config)?,
            upstream: Upstream::new(config)?,
            offload: config.offload,
        })
    }

    /// The reply to one request. The async model is the two `.await`s below: each hands the
    /// worker thread to another task until the pool, PostgreSQL or nginx answers.
    /// `has_transfer_encoding`: the framework let a request with a `Transfer-Encoding`
    /// through, which the contract refuses (400, close) before any work.
    pub async fn respond(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        has_transfer_encoding: bool,
    ) -> Reply {
        if let Some(refused) = crate::request::refuse_framing(has_transfer_encoding) {
            return refused;
        }
        match crate::plan(&self.defaults, method, path, query) {
            Work::Reply(reply) => reply,
            Work::Panic => crate::panics::on_request(self.server),
            Work::FetchRow { id, delay_ms, work } => {
                let reply = Reply::from_row(self.db.fetch_row(id, delay_ms).await);
                self.work(reply, work).await
            }
            // fanout=K: K futures joined in this task, their waits overlapped.
            Work::FetchUpstream {
                delay_ms,
                work,
                fanout,
            } => {
                let fetches = (0..fanout).map(|_| self.upstream.fetch(delay_ms));
                let reply = Reply::from_pages(futures_util::future::join_all(fetches).await);
                self.work(reply, work).await
            }
        }
    }

    /// `work` units of work on the reply's body, where `--offload` says. Inline, on the worker
    /// thread that polls this task: no other task of that worker runs until the hash is done
    /// (tokio does not preempt a poll). `blocking`, on tokio's blocking pool: this task waits
    /// at an `.await` like for any I/O, and the worker serves the others meanwhile.
    async fn work(&self, reply: Reply, work: u32) -> Reply {
        if work == 0 || reply.status != 200 {
            return reply;
        }
        match self.offload {
            Offload::Inline => reply.worked(work),
            Offload::Blocking => {
                let body = reply.body.clone();
                match tokio::task::spawn_blocking(move || crate::work::with_work(body, work)).await
                {
                    Ok(body) => Reply { body, ..reply },
                    // Only a panic in the hash (or a runtime shutting down) ends it early.
                    Err(_) => Reply::error(&AppError::Panicked).closing(),
                }
            }
        }
    }

    /// Opens one DB connection at start-up (no statement), so that a wrong URL or a stopped
    /// database is reported at once. It is not fatal: the pool keeps trying, and /test answers
    /// 503 until the database is reachable.
    pub async fn check_database(&self) {
        if let Err(error) = self.db.connect().await {
            error.warn_at_start(self.server);
        }
    }
}

/// How a tokio target reaches PostgreSQL (`--db-mode`).
pub enum Database {
    /// A request holds one of `--pool-size` connections for its query.
    Pooled(Pooled),
    /// W connections (W = `--workers`), taken in turn; a request sends its query behind the
    /// queries already sent on its connection.
    Pipelined(Box<Pipelined>),
}

impl Database {
    pub fn new(config: &Config) -> Result<Database, String> {
        Ok(match config.db_mode {
            DbMode::Pool => Database::Pooled(Pooled::new(config)?),
            DbMode::Pipelined => Database::Pipelined(Box::new(Pipelined::new(config))),
        })
    }

    /// Opens one connection (or checks one out), so that a wrong URL or a stopped database is
    /// reported at start-up.
    pub async fn connect(&self) -> Result<(), AppError> {
        match self {
            Database::Pooled(pool) => pool.connect().await,
            Database::Pipelined(pipelined) => pipelined.connect().await,
        }
    }

    /// One row, with `delay_ms` of `pg_sleep` in the same statement.
    pub async fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<DbRow, AppError> {
        match self {
            Database::Pooled(pool) => pool.fetch_row(id, delay_ms).await,
            Database::Pipelined(pipelined) => pipelined.fetch_row(id, delay_ms).await,
        }
    }
}

/// The `deadpool-postgres` pool: at most `--pool-size` connections, a wait of at most
/// `--pool-timeout-ms` for one (then 503). Connections are opened on first use.
pub struct Pooled {
    pool: Pool,
    timeout: Duration,
    max_size: usize,
}

impl Pooled {
    pub fn new(config: &Config) -> Result<Pooled, String> {
        let manager = Manager::from_config(
            pg::driver_config(config),
            NoTls,
            // Fast recycling checks only that the connection is open: no extra round trip per
            // request, and a connection that broke (say, the DB restarted) is dropped and
            // replaced on the next checkout.
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .wait_timeout(Some(config.pool_timeout))
            .create_timeout(Some(config.pool_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| format!("cannot build the DB pool: {e}"))?;
        Ok(Pooled {
            pool,
            timeout: config.pool_timeout,
            max_size: config.pool_size,
        })
    }

    /// Checks out a connection, opening it if the pool has none.
    pub async fn connect(&self) -> Result<(), AppError> {
        self.pool
            .get()
            .await
            .map(drop)
            .map_err(|e| self.pool_error(e))
    }

    /// One row, with `delay_ms` of `pg_sleep` in the same statement. The statement is prepared
    /// once per connection and cached by deadpool. A connection found closed when used (the
    /// server restarted under it) is dropped and the next one tried, up to the pool size.
    pub async fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<DbRow, AppError> {
        let mut attempts = 0;
        loop {
            let client = self.pool.get().await.map_err(|e| self.pool_error(e))?;
            let found = if delay_ms == 0 {
                match client.prepare_cached(sql::SELECT_ROW).await {
                    Ok(statement) => client.query_opt(&statement, &[&id]).await,
                    Err(e) => Err(e),
                }
            } else {
                let seconds = sql::sleep_seconds(delay_ms);
                match client.prepare_cached(sql::SELECT_ROW_AFTER_SLEEP).await {
                    Ok(statement) => client.query_opt(&statement, &[&id, &seconds]).await,
                    Err(e) => Err(e),
                }
            };
            match found {
                // deadpool drops a closed connection instead of recycling it.
                Err(e)
                    if pg::connection_ended(client.is_closed(), &e) && attempts < self.max_size =>
                {
                    attempts += 1
                }
                Err(e) => return Err(pg::map_error(&e)),
                Ok(None) => return Err(AppError::NoSuchRow(id)),
                Ok(Some(row)) => return pg::to_row(&row),
            }
        }
    }

    fn pool_error(&self, error: PoolError) -> AppError {
        match error {
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => AppError::PoolTimeout {
                waited_ms: self.timeout.as_millis() as u64,
            },
            PoolError::Timeout(_) => AppError::DbUnavailable(format!(
                "no connection within {} ms",
                self.timeout.as_millis()
            )),
            PoolError::Backend(e) => pg::map_error(&e),
            other => AppError::DbUnavailable(one_line(other)),
        }
    }
}

/// `--db-mode pipelined`: as many tokio-postgres connections as worker threads, the design of
/// the fastest TechEmpower entries. A request sends its query on a connection without waiting
/// for the queries before it to finish: tokio-postgres writes each query as soon as it is
/// asked, and hands the answers back in order. There is no pool wait and no checkout; but
/// PostgreSQL runs a connection's queries one after another, so a `pg_sleep` holds up every
/// query behind it on that connection.
///
/// Requests take the connections in turn. (Binding a connection to the worker thread a task
/// runs on, as the thread-per-core servers do, leaves connections unused on a work-stealing
/// runtime: a worker that is never woken for a request never queries. In turn, the W
/// connections carry equal shares on every runtime.) A connection found closed is replaced on
/// the next query; the query that found it closed is sent once more on the new connection (it
/// only reads).
pub struct Pipelined {
    config: tokio_postgres::Config,
    slots: Box<[Slot]>,
    next_slot: AtomicUsize,
    timeout: Duration,
}

/// One of the W connections, opened on first use and replaced when it closes.
struct Slot {
    session: std::sync::Mutex<Option<Arc<Prepared>>>,
    /// Held while the connection is (re)opened, so that the other requests given this slot
    /// wait for that one connection instead of opening their own.
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    /// The open connection, if there is one.
    fn current(&self) -> Option<Arc<Prepared>> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        session.clone().filter(|s| !s.client.is_closed())
    }

    /// Forgets `closed`, unless another task has replaced it already.
    fn forget(&self, closed: &Arc<Prepared>) {
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if session.as_ref().is_some_and(|s| Arc::ptr_eq(s, closed)) {
            *session = None;
        }
    }
}

impl Pipelined {
    pub fn new(config: &Config) -> Pipelined {
        let slots = (0..config.workers)
            .map(|_| Slot {
                session: std::sync::Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            })
            .collect();
        Pipelined {
            config: pg::driver_config(config),
            slots,
            next_slot: AtomicUsize::new(0),
            timeout: config.pool_timeout,
        }
    }

    /// The next connection in turn.
    fn slot(&self) -> &Slot {
        let index = self.next_slot.fetch_add(1, Ordering::Relaxed);
        &self.slots[index % self.slots.len()]
    }

    /// Opens the first connection: the database is checked, and the first request finds it
    /// ready.
    pub async fn connect(&self) -> Result<(), AppError> {
        self.session(&self.slots[0]).await.map(drop)
    }

    /// The slot's connection, opened now if it has none or it closed.
    async fn session(&self, slot: &Slot) -> Result<Arc<Prepared>, AppError> {
        if let Some(session) = slot.current() {
            return Ok(session);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(session) = slot.current() {
            return Ok(session);
        }
        let session = Arc::new(self.open().await?);
        *slot.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.clone());
        Ok(session)
    }

    /// Connects and prepares both statements, within `--pool-timeout-ms`.
    async fn open(&self) -> Result<Prepared, AppError> {
        let open = async {
            let (client, connection) = self.config.connect(NoTls).await?;
            // The connection's own task writes the queries and reads the answers; it ends
            // when the server closes the connection, which `is_closed` then reports.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Prepared::on(client).await
        };
        match tokio::time::timeout(self.timeout, open).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(e)) => Err(pg::map_error(&e)),
            Err(_) => Err(AppError::DbUnavailable(format!(
                "no connection within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// One row, queried on the next connection, behind whatever was sent on it before.
    pub async fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<DbRow, AppError> {
        let slot = self.slot();
        let mut retried = false;
        loop {
            let session = self.session(slot).await?;
            let found = session.query(id, delay_ms).await;
            match found {
                Err(e) if pg::connection_ended(session.client.is_closed(), &e) && !retried => {
                    slot.forget(&session);
                    retried = true;
                }
                Err(e) => return Err(pg::map_error(&e)),
                Ok(None) => return Err(AppError::NoSuchRow(id)),
                Ok(Some(row)) => return pg::to_row(&row),
            }
        }
    }
}

/// A pooled keep-alive HTTP/1.1 client for the upstream page.
pub struct Upstream {
    client: Client<PlacedConnector, Empty<Bytes>>,
    url: UpstreamUrl,
    host: HeaderValue,
}

impl Upstream {
    pub fn new(config: &Config) -> Result<Upstream, String> {
        // hyper-util's pool races a new connection against an idle one coming back, so it can
        // hold more connections than fetches in flight; its idle ones are capped at the share
        // of the descriptor budget kept for them, and all its connections at the budget's
        // upstream part (one per client connection, and the idle share).
        let budget = config.connection_budget();
        let max_idle = budget.map(crate::config::idle_upstream_share);
        let places = budget.zip(max_idle).map(|(b, idle)| b + idle);
        Upstream::with_limits(&config.upstream, max_idle, places)
    }

    /// A client of the page at `url` (also `bench client`'s tokio model).
    pub fn for_url(url: &UpstreamUrl) -> Result<Upstream, String> {
        Upstream::with_limits(url, None, None)
    }

    /// A client of the page at `url` keeping at most `max_idle` idle connections and at most
    /// `places` open (`None`: hyper-util's default, no cap).
    fn with_limits(
        url: &UpstreamUrl,
        max_idle: Option<usize>,
        places: Option<usize>,
    ) -> Result<Upstream, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(crate::upstream::UPSTREAM_GRACE));
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(60));
        if let Some(max_idle) = max_idle {
            builder.pool_max_idle_per_host(max_idle);
        }
        let client = builder.build(PlacedConnector::new(connector, places));
        let host = HeaderValue::from_str(&url.authority)
            .map_err(|_| format!("bad upstream host {:?}", url.authority))?;
        Ok(Upstream {
            client,
            url: url.clone(),
            host,
        })
    }

    /// One GET with `?delay_ms=N`; the body is read to the end and counted.
    pub async fn fetch(&self, delay_ms: u32) -> Result<UpstreamReply, AppError> {
        let started = Instant::now();
        let deadline = upstream_timeout(delay_ms);
        // The address was resolved at start-up; the Host header keeps the configured name.
        let uri = format!("http://{}{}", self.url.addr, self.url.target(delay_ms));
        let request = hyper::Request::get(uri)
            .header(HOST, self.host.clone())
            .body(Empty::new())
            .map_err(|e| AppError::UpstreamFailed(one_line(e)))?;
        let fetch = async {
            let response = self.client.request(request).await.map_err(|e| {
                if crate::error::out_of_descriptors_in(&e) {
                    return AppError::OutOfDescriptors("an upstream connection".into());
                }
                let what = if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                AppError::UpstreamFailed(format!("{what}: {}", one_line(with_causes(&e))))
            })?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| AppError::UpstreamFailed(one_line(e)))?;
            Ok(UpstreamReply {
                status,
                bytes: body.to_bytes().len(),
            })
        };
        match tokio::time::timeout(deadline, fetch).await {
            Ok(result) => result,
            Err(_) => Err(AppError::UpstreamTimeout {
                waited_ms: started.elapsed().as_millis() as u64,
            }),
        }
    }
}
