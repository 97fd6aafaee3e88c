//! tokio-actix: actix-web, `--workers` single-threaded tokio runtimes.
//!
//! - Threads: one acceptor thread hands connections round-robin to `--workers` worker
//!   threads; each worker runs its own single-threaded runtime, and a connection stays on the
//!   worker it was given (no work stealing).
//! - Waiting: a request waits at `.await` (for a pool slot, PostgreSQL or nginx), which hands
//!   the worker to another request: `AsyncApp::respond` in `shared/src/wait/tokio.rs`.
//! - Work (`work=N`): inline, on the worker the connection lives on (its other connections
//!   wait until the hash is done: nothing moves them to another worker); with
//!   `--offload blocking`, on tokio's blocking pool (`spawn_blocking`), the worker free.
//! - Bound: `--pool-size` DB connections, shared by all workers; or, with `--db-mode
//!   pipelined`, `--workers` connections taken in turn, each query pipelined behind the ones
//!   already sent on it. Connections: the descriptor budget, shared out as actix's
//!   `max_connections` per worker; at it the acceptor waits and clients queue in the backlog.
//! - Python analog: gunicorn with async workers (one event loop per worker process).
//! - Shutdown: actix's graceful stop, started by the shared signal thread: the acceptor
//!   stops, and the workers finish their connections.
//!
//! The whole app is one default service: routing and validation live in the shared crate, so
//! that every target answers the same 400, 404 and 405. actix keeps the header timeout (408)
//! and the idle timeout itself; its head limit is 128 KiB, so the handler refuses heads over
//! the contract's 8 KiB.

use std::process::ExitCode;

use actix_web::http::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE, SERVER};
use actix_web::http::KeepAlive;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use shared::tokio_stack;
use shared::wait::tokio::AsyncApp;
use shared::{AppError, Binary, Config, Reply};

fn main() -> ExitCode {
    shared::start::run(Binary::TokioActix, |config| {
        actix_web::rt::System::new().block_on(serve(config))
    })
}

async fn serve(config: Config) -> Result<(), String> {
    let app = web::Data::new(AsyncApp::new(&config)?);
    let keep_alive = match config.limits.keep_alive_timeout {
        Some(timeout) => KeepAlive::Timeout(timeout),
        None => KeepAlive::Os,
    };
    let server = HttpServer::new({
        let app = app.clone();
        move || {
            App::new()
                .app_data(app.clone())
                .default_service(web::to(handle))
        }
    })
    .workers(config.workers)
    .backlog(shared::start::BACKLOG as u32)
    // The descriptor budget, shared out over the workers: at it, actix's acceptor stops
    // accepting until a connection closes, and the rest wait in the backlog.
    .max_connections(
        config
            .connection_budget()
            .map_or(25_000, |n| (n / config.workers).max(1)),
    )
    .keep_alive(keep_alive)
    .client_request_timeout(config.limits.header_timeout)
    // Signals are the shared thread's; its grace timer ends the process, so actix's own
    // timeout only has to be longer.
    .disable_signals()
    .shutdown_timeout(config.shutdown_timeout.as_secs() + 1)
    .bind(config.listen)
    .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?
    .run();
    eprintln!("{}", config.summary());
    let shutdown = tokio_stack::shutdown_signal(&config)?;
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    actix_web::rt::spawn(async move { app.check_database().await });
    server.await.map_err(|e| format!("server failed: {e}"))
}

async fn handle(app: web::Data<AsyncApp>, request: HttpRequest) -> HttpResponse {
    let reply = if head_len(&request) > shared::config::MAX_HEAD {
        Reply::error(&AppError::HeadersTooLarge).closing()
    } else {
        let query = Some(request.query_string()).filter(|q| !q.is_empty());
        let has_transfer_encoding = request.headers().contains_key("transfer-encoding");
        let method = request.method().as_str();
        let caught = shared::panics::Request {
            server: app.server,
            method,
            path: request.path(),
            query,
        };
        let respond = app.respond(method, request.path(), query, has_transfer_encoding);
        shared::panics::catch_async(caught, respond).await
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((SERVER, HeaderValue::from_static(app.server)));
    if let Some(allow) = reply.allow {
        response.insert_header((ALLOW, HeaderValue::from_static(allow)));
    }
    if reply.close {
        response.insert_header((CONNECTION, HeaderValue::from_static("close")));
    }
    response.body(reply.body)
}

/// The size of the request line and headers as they came (within a few bytes of spacing).
fn head_len(request: &HttpRequest) -> usize {
    let line = request.method().as_str().len() + request.uri().to_string().len() + 12;
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    line + headers + 2
}
