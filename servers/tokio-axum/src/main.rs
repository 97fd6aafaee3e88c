//! tokio-axum: axum on a tokio multi-thread runtime.
//!
//! - Threads: `--workers` tokio worker threads; each connection is a task, each request a
//!   future on it, scheduled by work stealing.
//! - Waiting: a request waits at `.await` (for a pool slot, PostgreSQL or nginx), which hands
//!   the worker thread to another task: `AsyncApp::respond` in `shared/src/wait/tokio.rs`.
//! - Work (`work=N`): inline, on the worker thread that polls the request's task (tokio does
//!   not preempt a poll: that worker's other tasks wait, and only the idle workers steal
//!   them); with `--offload blocking`, on tokio's blocking pool (`spawn_blocking`).
//! - Bound: `--pool-size` DB connections; tasks only by the connections, which the accept loop
//!   keeps within the descriptor budget (a permit each; at it, clients queue in the backlog).
//!   With `--db-mode pipelined`, `--workers` connections taken in turn, each query pipelined
//!   behind the ones already sent on it.
//! - Python analog: aiohttp, or Starlette on uvicorn.
//! - Shutdown: axum's graceful shutdown: SIGTERM stops the accept loop, idle connections
//!   close, and `serve` returns once the requests in flight are answered.
//!
//! The whole app is one fallback handler: routing and validation live in the shared crate, so
//! that every target answers the same 400, 404 and 405. axum contributes the serving loop.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::Request;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::serve::Listener;
use axum::Router;
use shared::guarded::GuardedIo;
use shared::tokio_stack;
use shared::wait::tokio::AsyncApp;
use shared::{Binary, Config, ConnLimits};
use tokio::net::{TcpListener, TcpStream};

fn main() -> ExitCode {
    shared::start::run(Binary::TokioAxum, |config| {
        tokio_stack::run_multi_thread(config, serve)
    })
}

async fn serve(config: Config) -> Result<(), String> {
    let app = Arc::new(AsyncApp::new(&config)?);
    let listener = Guarded {
        listener: tokio_stack::start(&config, &app).await?,
        server: app.server,
        limits: config.limits,
        budget: tokio_stack::Budget::of(&config),
    };
    let shutdown = tokio_stack::shutdown_signal(&config)?;
    // axum's serving loop spawns a task per connection.
    let router = Router::new().fallback(handle).with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("server failed: {e}"))
}

async fn handle(State(app): State<Arc<AsyncApp>>, request: Request) -> impl IntoResponse {
    tokio_stack::serve_http(&app, request).await
}

/// axum's listener, with every connection wrapped in the contract's limits.
struct Guarded {
    listener: TcpListener,
    server: &'static str,
    limits: ConnLimits,
    budget: tokio_stack::Budget,
}

impl Listener for Guarded {
    type Io = GuardedIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        tokio_stack::accept_guarded(&self.listener, self.server, self.limits, &self.budget).await
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}
