//! tokio-hyper: bare hyper 1.x on a tokio multi-thread runtime.
//!
//! - Threads: `--workers` tokio worker threads; each connection is a task, each request a
//!   future on it.
//! - Waiting: a request waits at `.await` (for a pool slot, PostgreSQL or nginx), which hands
//!   the worker thread to another task: `AsyncApp::respond` in `shared/src/wait/tokio.rs`.
//! - Work (`work=N`): inline, on the worker thread that polls the request's task (tokio does
//!   not preempt a poll: that worker's other tasks wait, and only the idle workers steal
//!   them); with `--offload blocking`, on tokio's blocking pool (`spawn_blocking`).
//! - Bound: `--pool-size` DB connections; tasks only by the connections, which the accept loop
//!   keeps within the descriptor budget (a permit each; at it, clients queue in the backlog).
//!   With `--db-mode pipelined`, `--workers` connections taken in turn, each query pipelined
//!   behind the ones already sent on it.
//! - Python analog: aiohttp.web's low layer (or a raw asyncio protocol).
//! - Shutdown: SIGTERM ends the accept loop; hyper-util's `GracefulShutdown` asks every
//!   connection to close once its request in flight is answered, and waits for them.
//!
//! This is the async model with nothing between the runtime and the HTTP/1.1 connection:
//! our own accept loop and one `serve_connection` per socket, the layer axum is built on.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use shared::tokio_stack;
use shared::wait::tokio::AsyncApp;
use shared::{Binary, Config};

fn main() -> ExitCode {
    shared::start::run(Binary::TokioHyper, |config| {
        tokio_stack::run_multi_thread(config, serve)
    })
}

async fn serve(config: Config) -> Result<(), String> {
    let app = Arc::new(AsyncApp::new(&config)?);
    let listener = tokio_stack::start(&config, &app).await?;
    let shutdown = tokio_stack::shutdown_signal(&config)?;
    tokio::pin!(shutdown);
    let graceful = GracefulShutdown::new();
    let budget = tokio_stack::Budget::of(&config);

    // Our own accept loop: a task per connection, hyper's HTTP/1.1 state machine in it.
    loop {
        let stream = tokio::select! {
            (stream, _peer) = tokio_stack::accept_guarded(&listener, app.server, config.limits, &budget) => stream,
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = service_fn(move |request| handle(app.clone(), request));
        let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        // Errors here are the client's (a reset, a malformed request hyper already
        // answered): nothing to report.
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    // Stop accepting, then wait for the connections (the signal thread exits the process at
    // the shutdown timeout).
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn handle(
    app: Arc<AsyncApp>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(tokio_stack::serve_http(&app, request).await)
}
