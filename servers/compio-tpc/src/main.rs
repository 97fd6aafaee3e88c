//! compio-tpc: thread per core on io_uring, share-nothing (compio, hyper, tokio-postgres).
//!
//! - Threads: `--workers` OS threads, each a compio runtime of its own with its own io_uring,
//!   its own listening socket on the same port (`SO_REUSEPORT`: the kernel picks a thread for
//!   each new connection, by a hash of its addresses) and its own DB sessions and upstream
//!   connections (`shared::compio_stack`). A connection lives and dies on its thread; there is
//!   no work stealing.
//! - Waiting: a request is a task on its thread; it waits at `.await` (for one of the thread's
//!   sessions, PostgreSQL or nginx), which hands the thread to another of its tasks. The I/O
//!   is submitted to the thread's io_uring and the runtime wakes the task when its completion
//!   arrives: `LocalApp::respond` in `shared/src/wait/compio.rs`.
//! - Work (`work=N`): inline, on the core's own thread, inside the request's task: the
//!   thread's other connections wait until the hash is done, and cannot move to another
//!   thread.
//! - Bound: `--pool-size` sessions split across the threads (19 over 2 threads: 10 and 9), so
//!   a thread whose connections all wait on the database cannot borrow the other's sessions;
//!   with `--db-mode pipelined`, one connection per thread. Client connections: the process's
//!   descriptor budget, the one limit the threads share (a place taken once per connection).
//! - Python analog: none exact. The closest is one single-threaded asyncio server per core
//!   (uvicorn or gunicorn's aiohttp worker with `--workers` = cores, `SO_REUSEPORT`), each
//!   process with its own pool; but those wait on epoll's readiness, not io_uring's
//!   completions, and are processes, not threads.
//! - Shutdown: SIGTERM starts the drain on every thread: each stops accepting, closes its
//!   listener, and hyper-util's `GracefulShutdown` asks its connections to close once their
//!   request in flight is answered; the process exits when every thread has drained.

use std::convert::Infallible;
use std::process::ExitCode;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use shared::compio_stack::{self, Worker};
use shared::wait::compio::LocalApp;
use shared::Binary;

fn main() -> ExitCode {
    shared::start::run(Binary::CompioTpc, |config| compio_stack::run(config, serve))
}

/// One thread: its app, its listener, its accept loop.
async fn serve(mut worker: Worker) -> Result<(), String> {
    let upstream = worker.budget.upstream.clone();
    let app = Rc::new(LocalApp::new(&worker.config, &worker.share, upstream)?);
    if worker.index == 0 {
        let app = app.clone();
        compio::runtime::spawn(async move { app.check_database().await }).detach();
    }
    let listener = worker.listener()?;
    let graceful = GracefulShutdown::new();
    while let Some(stream) = worker.accept_guarded(&listener).await {
        let app = app.clone();
        let service = service_fn(move |request| handle(app.clone(), request));
        let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        // Errors here are the client's (a reset, a malformed request hyper already
        // answered): nothing to report.
        compio::runtime::spawn(async move {
            let _ = connection.await;
        })
        .detach();
    }
    // Stop accepting, then wait for this thread's connections (the signal thread exits the
    // process at the shutdown timeout).
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn handle(
    app: Rc<LocalApp>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let uri = request.uri();
    let has_transfer_encoding = request.headers().contains_key("transfer-encoding");
    let method = request.method().as_str();
    // Boxed: hyper keeps room for this future beside every connection, idle or not, and
    // the respond future (the pool and upstream waits) is kilobytes; boxed, an idle
    // connection holds a pointer and a request allocates it once.
    let caught = shared::panics::Request {
        server: app.server,
        method,
        path: uri.path(),
        query: uri.query(),
    };
    let respond = Box::pin(app.respond(method, uri.path(), uri.query(), has_transfer_encoding));
    let reply = shared::panics::catch_async(caught, respond).await;
    Ok(shared::hyper_reply::response(app.server, reply))
}
