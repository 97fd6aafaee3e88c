//! How compio-tpc's request waits: at an `.await` in [`LocalApp::respond`], as in the tokio
//! targets, but on its own thread's runtime and only on what that thread owns. There is one
//! `LocalApp` per thread: its own DB sessions (its share of `--pool-size`, or one pipelined
//! connection), its own upstream keep-alive connections. No lock, no atomic, no work stealing:
//! a request accepted by a thread is parsed, waits and is answered there, and when that
//! thread is busy the request waits for it even if the other threads are idle.
//!
//! tokio-postgres runs over compio's sockets (`connect_raw` takes any stream with tokio's I/O
//! traits) and its connection task is spawned on the thread's runtime; the upstream is
//! hyper's client connection, also a task on the same runtime.

use std::cell::RefCell;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use compio::net::TcpStream;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, HOST};
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;
use tokio_postgres::NoTls;

use crate::compio_stack::{socket, Share, PEER_BUFFER};
use crate::error::{is_out_of_descriptors, one_line, with_causes, AppError};
use crate::pg::Prepared;
use crate::places::Places;
use crate::request::{Reply, UpstreamReply, Work};
use crate::upstream::{upstream_timeout, UPSTREAM_GRACE};
use crate::{pg, Config, DbMode, DbRow, RequestDefaults, UpstreamUrl};

/// What one thread's requests wait with. Each request is a task on the thread's runtime; it
/// waits for a session, PostgreSQL or nginx at an `.await`, which hands the thread to another
/// of its own tasks.
pub struct LocalApp {
    pub server: &'static str,
    pub defaults: RequestDefaults,
    pub db: LocalDatabase,
    pub upstream: LocalUpstream,
}

impl LocalApp {
    /// The app of a thread with `share`; its upstream connections take places of `upstream`
    /// (the process's, [`crate::compio_stack::Budget`]).
    pub fn new(config: &Config, share: &Share, upstream: Places) -> Result<LocalApp, String> {
        Ok(LocalApp {
            server: config.binary.name(),
            defaults: config.defaults,
            db: LocalDatabase::new(config, share)?,
            upstream: LocalUpstream::new(&config.upstream, share, upstream)?,
        })
    }

    /// The reply to one request: the same plan as every target, and the two `.await`s of the
    /// async model, on this thread's own pool and client.
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
            // The work runs here, on the core's own thread: its other connections wait
            // until it is done (they cannot move to another thread).
            Work::FetchRow { id, delay_ms, work } => {
                Reply::from_row(self.db.fetch_row(id, delay_ms).await).worked(work)
            }
            // fanout=K: K futures joined in this task, on this thread's own connections.
            Work::FetchUpstream {
                delay_ms,
                work,
                fanout,
            } => {
                let fetches = (0..fanout).map(|_| self.upstream.fetch(delay_ms));
                Reply::from_pages(futures_util::future::join_all(fetches).await).worked(work)
            }
        }
    }

    /// Opens one DB connection at start-up (no statement), so that a wrong URL or a stopped
    /// database is reported at once; /test answers 503 until the database is reachable.
    pub async fn check_database(&self) {
        if let Err(error) = self.db.connect().await {
            error.warn_at_start(self.server);
        }
    }
}

/// How this thread opens a PostgreSQL connection: TCP to the address resolved at start-up,
/// then tokio-postgres' start-up over it, within `--pool-timeout-ms`.
struct Connector {
    config: tokio_postgres::Config,
    addr: SocketAddr,
    timeout: Duration,
}

impl Connector {
    fn new(config: &Config) -> Result<Connector, String> {
        let db = &config.database;
        if db.host.starts_with('/') {
            return Err(format!(
                "--database-url: {} reaches PostgreSQL over TCP only, not the Unix socket in {}",
                config.binary, db.host
            ));
        }
        let addr = (db.host.as_str(), db.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                format!(
                    "--database-url: cannot resolve the database host {}",
                    db.host
                )
            })?;
        Ok(Connector {
            config: pg::driver_config(config),
            addr,
            timeout: config.pool_timeout,
        })
    }

    /// Connects and prepares both statements; the connection's task runs on this thread.
    async fn open(&self) -> Result<Prepared, AppError> {
        let open = async {
            let stream = TcpStream::connect(self.addr).await.map_err(|e| {
                if is_out_of_descriptors(&e) {
                    AppError::OutOfDescriptors("a database connection".into())
                } else {
                    AppError::DbUnavailable(one_line(format!(
                        "cannot connect to {}: {e}",
                        self.addr
                    )))
                }
            })?;
            let (client, connection) = self
                .config
                .connect_raw(socket(stream, PEER_BUFFER), NoTls)
                .await
                .map_err(|e| pg::map_error(&e))?;
            // The connection's task writes the queries and reads the answers; it ends when
            // the server closes the connection, which `is_closed` then reports.
            compio::runtime::spawn(async move {
                let _ = connection.await;
            })
            .detach();
            Prepared::on(client).await.map_err(|e| pg::map_error(&e))
        };
        match compio::time::timeout(self.timeout, open).await {
            Ok(opened) => opened,
            Err(_) => Err(AppError::DbUnavailable(format!(
                "no connection within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

/// How this thread reaches PostgreSQL (`--db-mode`).
pub enum LocalDatabase {
    /// A request holds one of this thread's sessions for its query.
    Pooled(LocalPool),
    /// One connection for the thread; each request's query is sent behind the ones already
    /// sent on it.
    Pipelined(LocalPipelined),
}

impl LocalDatabase {
    fn new(config: &Config, share: &Share) -> Result<LocalDatabase, String> {
        let connector = Connector::new(config)?;
        Ok(match config.db_mode {
            DbMode::Pool => LocalDatabase::Pooled(LocalPool {
                connector,
                places: Semaphore::new(share.sessions),
                idle: RefCell::new(Vec::new()),
                size: share.sessions,
            }),
            DbMode::Pipelined => LocalDatabase::Pipelined(LocalPipelined {
                connector,
                session: RefCell::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    async fn connect(&self) -> Result<(), AppError> {
        match self {
            LocalDatabase::Pooled(pool) => pool.connect().await,
            LocalDatabase::Pipelined(pipelined) => pipelined.session().await.map(drop),
        }
    }

    /// One row, with `delay_ms` of `pg_sleep` in the same statement.
    pub async fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<DbRow, AppError> {
        match self {
            LocalDatabase::Pooled(pool) => pool.fetch_row(id, delay_ms).await,
            LocalDatabase::Pipelined(pipelined) => pipelined.fetch_row(id, delay_ms).await,
        }
    }
}

/// This thread's sessions: at most its share of `--pool-size`, opened on first use, a wait of
/// at most `--pool-timeout-ms` for one (then 503). A session found closed is dropped and
/// replaced.
pub struct LocalPool {
    connector: Connector,
    /// A place per session: a request takes one before it takes or opens a session.
    places: Semaphore,
    idle: RefCell<Vec<Prepared>>,
    size: usize,
}

impl LocalPool {
    /// An idle session that is still open, or a new one (the caller holds a place).
    async fn session(&self) -> Result<Prepared, AppError> {
        if let Some(session) = self.idle_session() {
            return Ok(session);
        }
        self.connector.open().await
    }

    /// An idle session that is still open, if there is one.
    fn idle_session(&self) -> Option<Prepared> {
        let mut idle = self.idle.borrow_mut();
        while let Some(session) = idle.pop() {
            if !session.client.is_closed() {
                return Some(session);
            }
        }
        None
    }

    /// Opens a session (or finds one idle), so that a wrong URL or a stopped database is
    /// reported at start-up.
    async fn connect(&self) -> Result<(), AppError> {
        if self.size == 0 {
            return Ok(());
        }
        let _place = self.place().await?;
        let session = self.session().await?;
        self.idle.borrow_mut().push(session);
        Ok(())
    }

    async fn place(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AppError> {
        let timeout = self.connector.timeout;
        match compio::time::timeout(timeout, self.places.acquire()).await {
            Ok(Ok(place)) => Ok(place),
            _ => Err(AppError::PoolTimeout {
                waited_ms: timeout.as_millis() as u64,
            }),
        }
    }

    /// One row on one of this thread's sessions. A session found closed when used (the
    /// server restarted under it) is dropped and the next one tried, up to the share's size.
    async fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<DbRow, AppError> {
        let _place = self.place().await?;
        let mut attempts = 0;
        loop {
            let session = self.session().await?;
            let found = session.query(id, delay_ms).await;
            let ended = match &found {
                Err(e) => pg::connection_ended(session.client.is_closed(), e),
                Ok(_) => false,
            };
            if !ended {
                self.idle.borrow_mut().push(session);
            }
            match found {
                Err(_) if ended && attempts < self.size => attempts += 1,
                Err(e) => return Err(pg::map_error(&e)),
                Ok(None) => return Err(AppError::NoSuchRow(id)),
                Ok(Some(row)) => return pg::to_row(&row),
            }
        }
    }
}

/// `--db-mode pipelined`: one connection for this thread, opened on first use and replaced
/// when it closes; the query that found it closed is sent once more on the new one.
pub struct LocalPipelined {
    connector: Connector,
    session: RefCell<Option<Rc<Prepared>>>,
    /// Held while the connection is (re)opened, so that the requests meanwhile wait for that
    /// one connection instead of opening their own.
    connecting: tokio::sync::Mutex<()>,
}

impl LocalPipelined {
    fn current(&self) -> Option<Rc<Prepared>> {
        let session = self.session.borrow();
        session.clone().filter(|s| !s.client.is_closed())
    }

    async fn session(&self) -> Result<Rc<Prepared>, AppError> {
        if let Some(session) = self.current() {
            return Ok(session);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(session) = self.current() {
            return Ok(session);
        }
        let session = Rc::new(self.connector.open().await?);
        *self.session.borrow_mut() = Some(session.clone());
        Ok(session)
    }

    fn forget(&self, closed: &Rc<Prepared>) {
        let mut session = self.session.borrow_mut();
        if session.as_ref().is_some_and(|s| Rc::ptr_eq(s, closed)) {
            *session = None;
        }
    }

    async fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<DbRow, AppError> {
        let mut retried = false;
        loop {
            let session = self.session().await?;
            match session.query(id, delay_ms).await {
                Err(e) if pg::connection_ended(session.client.is_closed(), &e) && !retried => {
                    self.forget(&session);
                    retried = true;
                }
                Err(e) => return Err(pg::map_error(&e)),
                Ok(None) => return Err(AppError::NoSuchRow(id)),
                Ok(Some(row)) => return pg::to_row(&row),
            }
        }
    }
}

/// This thread's keep-alive HTTP/1.1 connections to the upstream: hyper client connections,
/// each driven by a task on this thread, reused while they stay open; at most the share's
/// idle ones kept, and a connect waits for a place in the process's upstream budget.
pub struct LocalUpstream {
    url: UpstreamUrl,
    host: HeaderValue,
    idle: RefCell<Vec<SendRequest<Empty<Bytes>>>>,
    max_idle: usize,
    places: Places,
}

impl LocalUpstream {
    fn new(url: &UpstreamUrl, share: &Share, places: Places) -> Result<LocalUpstream, String> {
        let host = HeaderValue::from_str(&url.authority)
            .map_err(|_| format!("bad upstream host {:?}", url.authority))?;
        Ok(LocalUpstream {
            url: url.clone(),
            host,
            idle: RefCell::new(Vec::new()),
            max_idle: share.idle_upstream,
            places,
        })
    }

    /// One GET with `?delay_ms=N`; the body is read to the end and counted.
    pub async fn fetch(&self, delay_ms: u32) -> Result<UpstreamReply, AppError> {
        let started = Instant::now();
        match compio::time::timeout(upstream_timeout(delay_ms), self.fetch_once(delay_ms)).await {
            Ok(result) => result,
            Err(_) => Err(AppError::UpstreamTimeout {
                waited_ms: started.elapsed().as_millis() as u64,
            }),
        }
    }

    async fn fetch_once(&self, delay_ms: u32) -> Result<UpstreamReply, AppError> {
        // A kept connection the upstream closed meanwhile fails before any answer: the request
        // is sent once more on a new connection (a GET, and nothing of it was answered).
        let (mut sender, mut reused) = self.sender().await?;
        let response = loop {
            let request = hyper::Request::get(self.url.target(delay_ms))
                .header(HOST, self.host.clone())
                .body(Empty::new())
                .map_err(|e| AppError::UpstreamFailed(one_line(e)))?;
            match sender.send_request(request).await {
                Ok(response) => break response,
                Err(e)
                    if reused
                        && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) =>
                {
                    (sender, reused) = (self.connect().await?, false);
                }
                Err(e) => {
                    return Err(AppError::UpstreamFailed(format!(
                        "request failed: {}",
                        one_line(with_causes(&e))
                    )))
                }
            }
        };
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| AppError::UpstreamFailed(one_line(e)))?;
        let mut idle = self.idle.borrow_mut();
        if !sender.is_closed() && idle.len() < self.max_idle {
            idle.push(sender);
        }
        Ok(UpstreamReply {
            status,
            bytes: body.to_bytes().len(),
        })
    }

    /// A kept connection ready for a request (and `true`), or a new one.
    async fn sender(&self) -> Result<(SendRequest<Empty<Bytes>>, bool), AppError> {
        loop {
            let kept = self.idle.borrow_mut().pop();
            let Some(mut sender) = kept else { break };
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
        }
        Ok((self.connect().await?, false))
    }

    /// A new connection to the upstream, once a place is free; its task holds the place until
    /// the socket closes.
    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, AppError> {
        let place = self.places.take().await;
        let addr = self.url.addr;
        let stream = match compio::time::timeout(UPSTREAM_GRACE, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) if is_out_of_descriptors(&e) => {
                return Err(AppError::OutOfDescriptors("an upstream connection".into()))
            }
            Ok(Err(e)) => {
                return Err(AppError::UpstreamFailed(format!(
                    "cannot connect: {}",
                    one_line(e)
                )))
            }
            Err(_) => {
                return Err(AppError::UpstreamFailed(format!(
                    "cannot connect: no answer from {addr} within {} ms",
                    UPSTREAM_GRACE.as_millis()
                )))
            }
        };
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(socket(stream, PEER_BUFFER)))
                .await
                .map_err(|e| {
                    AppError::UpstreamFailed(format!("cannot connect: {}", one_line(e)))
                })?;
        compio::runtime::spawn(async move {
            let _ = connection.await;
            drop(place);
        })
        .detach();
        Ok(sender)
    }
}
