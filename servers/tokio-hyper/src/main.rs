//! tokio-hyper: bare hyper 1.x on a tokio multi-thread runtime.
//!
//! - Threads: `--workers` tokio worker threads; each connection is a task, each request a
//!   future on it.
//! - Waiting: a request waits at `.await` (for a pool slot, PostgreSQL or nginx), which hands
//!   the worker thread to another task.
//! - Bound: `--pool-size` DB connections; the number of tasks is unbounded.
//! - Python analog: aiohttp.web's low layer (or a raw asyncio protocol).
//!
//! This is the async model with nothing between the runtime and the HTTP/1.1 connection:
//! our own accept loop and one `serve_connection` per socket, the layer axum is built on.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use shared::tokio_stack::{self, AsyncApp};
use shared::{Binary, Config};

fn main() -> ExitCode {
    let config = Config::from_env(Binary::TokioHyper);
    tokio_stack::run_multi_thread(config, serve)
}

async fn serve(config: Config) -> Result<(), String> {
    let app = Arc::new(AsyncApp::new(&config)?);
    let listener = tokio_stack::start(&config, &app).await?;

    // Our own accept loop: a task per connection, hyper's HTTP/1.1 state machine in it.
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                eprintln!("tokio-hyper: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(app.clone(), request));
            // Errors here are the client's (a reset, a malformed request hyper already
            // answered): nothing to report.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    app: Arc<AsyncApp>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let uri = request.uri();
    let reply = app
        .respond(request.method().as_str(), uri.path(), uri.query())
        .await;
    Ok(app.http_response(reply))
}
