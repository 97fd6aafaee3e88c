//! The async I/O that tokio-axum, tokio-actix and tokio-hyper share: a `deadpool-postgres` pool
//! and a pooled keep-alive hyper-util client. The three targets differ only in their HTTP
//! layer and runtime layout; how a request waits for PostgreSQL or nginx is this module.

use std::future::Future;
use std::process::ExitCode;
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
use crate::guarded::GuardedIo;
use crate::request::{Reply, UpstreamReply, Work};
use crate::upstream::upstream_timeout;
use crate::{pg, sql, Config, ConnLimits, RequestDefaults, Row, UpstreamUrl};

/// Runs `serve(config)` on a tokio multi-thread runtime with `--workers` worker threads, the
/// layout of tokio-axum and tokio-hyper, and turns a start-up failure into a message and a
/// failing exit code.
pub fn run_multi_thread<F>(config: Config, serve: impl FnOnce(Config) -> F) -> ExitCode
where
    F: Future<Output = Result<(), String>>,
{
    let name = config.binary.name();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(serve(config)),
        Err(e) => Err(format!("cannot start the runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Accepts the next connection, wrapped in the contract's limits ([`GuardedIo`]). When accept
/// fails (out of file descriptors, most likely), it says so and backs off 10 ms instead of
/// spinning.
pub async fn accept_guarded(
    listener: &tokio::net::TcpListener,
    server: &'static str,
    limits: ConnLimits,
) -> (GuardedIo<tokio::net::TcpStream>, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (GuardedIo::new(stream, server, limits), peer);
            }
            Err(e) => {
                eprintln!("{server}: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Resolves at the first SIGTERM or SIGINT: the target then stops accepting and lets its
/// connections finish. A second signal exits at once, and `--shutdown-timeout-ms` after the
/// first the process exits whatever is left ([`crate::shutdown::on_signals`]).
pub fn shutdown_signal(config: &Config) -> Result<impl Future<Output = ()>, String> {
    let (drain, drained) = tokio::sync::oneshot::channel::<()>();
    crate::shutdown::on_signals(config.binary.name(), config.shutdown_timeout, move || {
        let _ = drain.send(());
    })
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    Ok(async move {
        let _ = drained.await;
    })
}

/// Binds the listener, prints the start-up line, and checks the database in the background.
pub async fn start(
    config: &Config,
    app: &std::sync::Arc<AsyncApp>,
) -> Result<tokio::net::TcpListener, String> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    eprintln!("{}", config.summary());
    let app = app.clone();
    tokio::spawn(async move { app.check_database().await });
    Ok(listener)
}

/// What a tokio target serves a request with. Each request is a task; it waits for a pool
/// slot, for PostgreSQL or for nginx at an `.await`, which hands the worker thread to another
/// task. That is the whole async model.
pub struct AsyncApp {
    pub server: &'static str,
    pub defaults: RequestDefaults,
    pub db: Database,
    pub upstream: Upstream,
}

impl AsyncApp {
    pub fn new(config: &Config) -> Result<AsyncApp, String> {
        Ok(AsyncApp {
            server: config.binary.name(),
            defaults: config.defaults,
            db: Database::new(config)?,
            upstream: Upstream::new(config)?,
        })
    }

    /// The reply to one request. `has_transfer_encoding`: the framework let a request with a
    /// `Transfer-Encoding` through, which the contract refuses (400, close) before any work.
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
            Work::FetchRow { id, delay_ms } => {
                Reply::from_row(self.db.fetch_row(id, delay_ms).await)
            }
            Work::FetchUpstream { delay_ms } => {
                Reply::from_upstream(self.upstream.fetch(delay_ms).await)
            }
        }
    }

    /// The reply as an `http` response, for the hyper-based layers (hyper and axum). The HTTP
    /// layer adds `Content-Length` and `Date`. An error from the HTTP layer's own rules (a
    /// refused framing) closes the connection.
    pub fn http_response(&self, reply: Reply) -> hyper::Response<http_body_util::Full<Bytes>> {
        use hyper::header::{ALLOW, CONTENT_TYPE, SERVER};
        let mut response = hyper::Response::new(http_body_util::Full::new(reply.body));
        *response.status_mut() = hyper::StatusCode::from_u16(reply.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(SERVER, HeaderValue::from_static(self.server));
        if let Some(allow) = reply.allow {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        if reply.close {
            headers.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// Opens one DB connection at start-up (no statement), so that a wrong URL or a stopped
    /// database is reported at once. It is not fatal: the pool keeps trying, and /test answers
    /// 503 until the database is reachable.
    pub async fn check_database(&self) {
        if let Err(error) = self.db.connect().await {
            eprintln!(
                "{}: warning: {error}; /test will answer {} until this is fixed",
                self.server,
                error.status()
            );
        }
    }
}

/// The `deadpool-postgres` pool: at most `--pool-size` connections, a wait of at most
/// `--pool-timeout-ms` for one (then 503). Connections are opened on first use.
pub struct Database {
    pool: Pool,
    timeout: Duration,
    max_size: usize,
}

impl Database {
    pub fn new(config: &Config) -> Result<Database, String> {
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
        Ok(Database {
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
    pub async fn fetch_row(&self, id: i32, delay_ms: u32) -> Result<Row, AppError> {
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
                Err(_) if client.is_closed() && attempts < self.max_size => attempts += 1,
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

/// A pooled keep-alive HTTP/1.1 client for the upstream page.
pub struct Upstream {
    client: Client<HttpConnector, Empty<Bytes>>,
    url: UpstreamUrl,
    host: HeaderValue,
}

impl Upstream {
    pub fn new(config: &Config) -> Result<Upstream, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(crate::upstream::UPSTREAM_GRACE));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let host = HeaderValue::from_str(&config.upstream.authority)
            .map_err(|_| format!("bad upstream host {:?}", config.upstream.authority))?;
        Ok(Upstream {
            client,
            url: config.upstream.clone(),
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
