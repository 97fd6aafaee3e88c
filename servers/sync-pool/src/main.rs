//! sync-pool: a fixed pool of OS threads, one request per connection.
//!
//! - Threads: `--workers` threads, each calling `accept()` on the shared listener, like
//!   gunicorn's sync workers sharing one socket.
//! - Waiting: a request waits inside a blocking call (the pool's checkout, PostgreSQL, nginx),
//!   and its worker waits with it: nothing else runs on that worker meanwhile.
//! - Bound: `--workers` requests at once, whatever the load; the rest queue in the listen
//!   backlog. Each response says `Connection: close`, so an idle keep-alive client cannot
//!   hold a worker. The DB pool defaults to `--workers`: more could never be used.
//! - Python analog: gunicorn's sync worker, uWSGI.
//! - Shutdown: SIGTERM shuts the listener; each worker finishes the request it serves, finds
//!   the listener closed and returns; then the process exits.

use std::process::ExitCode;
use std::sync::Arc;

use shared::{blocking, http, Binary, Config};

fn main() -> ExitCode {
    let config = Config::from_env(Binary::SyncPool);
    let (listener, app) = match blocking::start(&config) {
        Ok((listener, app)) => (Arc::new(listener), app),
        Err(message) => {
            eprintln!("sync-pool: {message}");
            return ExitCode::FAILURE;
        }
    };

    let mut workers = Vec::with_capacity(config.workers);
    for i in 0..config.workers {
        let listener = listener.clone();
        let app = app.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                while let Some(stream) = http::accept(&listener, app.server, &app.connections) {
                    // No keep-alive: one request, then Connection: close.
                    app.serve(stream, false);
                }
            });
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(e) => {
                eprintln!(
                    "sync-pool: cannot start worker {i} of {}: {e}",
                    config.workers
                );
                return ExitCode::FAILURE;
            }
        }
    }
    // The workers return once a drain has shut the listener and their request is answered
    // (the signal thread exits the process at the shutdown timeout).
    for worker in workers {
        let _ = worker.join();
    }
    eprintln!("sync-pool: drained; exiting");
    ExitCode::SUCCESS
}
