//! tokio-axum: axum on a tokio multi-thread runtime.
//!
//! - Threads: `--workers` tokio worker threads; each connection is a task, each request a
//!   future on it, scheduled by work stealing.
//! - Waiting: a request waits at `.await` (for a pool slot, PostgreSQL or nginx), which hands
//!   the worker thread to another task.
//! - Bound: `--pool-size` DB connections; the number of tasks is unbounded.
//! - Python analog: aiohttp, or Starlette on uvicorn.
//!
//! The whole app is one fallback handler: routing and validation live in the shared crate, so
//! that every target answers the same 400, 404 and 405. axum contributes the serving loop.

use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::IntoResponse;
use axum::serve::ListenerExt;
use axum::Router;
use shared::tokio_stack::{self, AsyncApp};
use shared::{Binary, Config};

fn main() -> ExitCode {
    let config = Config::from_env(Binary::TokioAxum);
    tokio_stack::run_multi_thread(config, serve)
}

async fn serve(config: Config) -> Result<(), String> {
    let app = Arc::new(AsyncApp::new(&config)?);
    let listener = tokio_stack::start(&config, &app).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // axum's serving loop spawns a task per connection.
    let router = Router::new().fallback(handle).with_state(app);
    axum::serve(listener, router)
        .await
        .map_err(|e| format!("server failed: {e}"))
}

async fn handle(State(app): State<Arc<AsyncApp>>, method: Method, uri: Uri) -> impl IntoResponse {
    let reply = app.respond(method.as_str(), uri.path(), uri.query()).await;
    app.http_response(reply)
}
