//! What tokio-axum, tokio-actix and tokio-hyper share around the wait: the multi-thread
//! runtime, the guarded accept, the shutdown signal as a future, the start-up, and the reply
//! as a hyper response. A request waits in [`crate::wait::tokio`]; the three targets differ
//! only in their HTTP layer and runtime layout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::guarded::GuardedIo;
use crate::places::Places;
use crate::request::Reply;
use crate::wait::tokio::AsyncApp;
use crate::{Config, ConnLimits};

/// Runs `serve(config)` on a tokio multi-thread runtime with `--workers` worker threads, the
/// layout of tokio-axum and tokio-hyper.
pub fn run_multi_thread<F>(config: Config, serve: impl FnOnce(Config) -> F) -> Result<(), String>
where
    F: Future<Output = Result<(), String>>,
{
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(serve(config))
}

/// The connection budget ([`Config::connection_budget`]) as places: an open connection holds
/// one, and the accept loop waits for a place before it accepts, so that clients beyond the
/// budget wait in the listen backlog.
pub type Budget = Places;

impl Budget {
    pub fn of(config: &Config) -> Budget {
        Places::new(config.connection_budget())
    }
}

/// Accepts the next connection within the budget, wrapped in the contract's limits
/// ([`GuardedIo`], which holds the connection's permit). When accept fails (out of file
/// descriptors all the same, most likely), it says so and backs off 10 ms instead of spinning.
pub async fn accept_guarded(
    listener: &tokio::net::TcpListener,
    server: &'static str,
    limits: ConnLimits,
    budget: &Budget,
) -> (GuardedIo<tokio::net::TcpStream>, std::net::SocketAddr) {
    let permit = budget.take().await;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let io = GuardedIo::new(stream, server, limits).holding(permit);
                return (io, peer);
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
    app: &Arc<AsyncApp>,
) -> Result<tokio::net::TcpListener, String> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    crate::start::set_backlog(std::os::fd::AsRawFd::as_raw_fd(&listener))?;
    eprintln!("{}", config.summary());
    let app = app.clone();
    tokio::spawn(async move { app.check_database().await });
    Ok(listener)
}

/// The response to a request of a hyper-based layer (hyper and axum): its method, path,
/// query and `Transfer-Encoding` go to [`AsyncApp::respond`], the reply to
/// [`http_response`].
pub async fn serve_http<B>(
    app: &AsyncApp,
    request: hyper::Request<B>,
) -> hyper::Response<http_body_util::Full<Bytes>> {
    let uri = request.uri();
    let has_transfer_encoding = request.headers().contains_key("transfer-encoding");
    let method = request.method().as_str();
    let caught = crate::panics::Request {
        server: app.server,
        method,
        path: uri.path(),
        query: uri.query(),
    };
    let respond = app.respond(method, uri.path(), uri.query(), has_transfer_encoding);
    let reply = crate::panics::catch_async(caught, respond).await;
    http_response(app, reply)
}

/// The reply as an `http` response ([`crate::hyper_reply::response`]).
pub fn http_response(app: &AsyncApp, reply: Reply) -> hyper::Response<http_body_util::Full<Bytes>> {
    crate::hyper_reply::response(app.server, reply)
}
