//! tokio-actix: actix-web, `--workers` single-threaded tokio runtimes.
//!
//! - Threads: one acceptor thread hands connections round-robin to `--workers` worker
//!   threads; each worker runs its own single-threaded runtime, and a connection stays on the
//!   worker it was given (no work stealing).
//! - Waiting: a request waits at `.await` (for a pool slot, PostgreSQL or nginx), which hands
//!   the worker to another request.
//! - Bound: `--pool-size` DB connections, shared by all workers.
//! - Python analog: gunicorn with async workers (one event loop per worker process).
//!
//! The whole app is one default service: routing and validation live in the shared crate, so
//! that every target answers the same 400, 404 and 405.

use std::process::ExitCode;

use actix_web::http::header::{HeaderValue, ALLOW, CONTENT_TYPE, SERVER};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use shared::tokio_stack::AsyncApp;
use shared::{Binary, Config};

fn main() -> ExitCode {
    let config = Config::from_env(Binary::TokioActix);
    match actix_web::rt::System::new().block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tokio-actix: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let app = web::Data::new(AsyncApp::new(&config)?);
    let server = HttpServer::new({
        let app = app.clone();
        move || {
            App::new()
                .app_data(app.clone())
                .default_service(web::to(handle))
        }
    })
    .workers(config.workers)
    .backlog(4096)
    .bind(config.listen)
    .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?
    .run();
    eprintln!("{}", config.summary());
    actix_web::rt::spawn(async move { app.check_database().await });
    server.await.map_err(|e| format!("server failed: {e}"))
}

async fn handle(app: web::Data<AsyncApp>, request: HttpRequest) -> HttpResponse {
    let query = Some(request.query_string()).filter(|q| !q.is_empty());
    let reply = app
        .respond(request.method().as_str(), request.path(), query)
        .await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((SERVER, HeaderValue::from_static(app.server)));
    if let Some(allow) = reply.allow {
        response.insert_header((ALLOW, HeaderValue::from_static(allow)));
    }
    response.body(reply.body)
}
