//! sync-pool: a fixed pool of OS threads, one request per connection.
//!
//! - Threads: `--workers` threads, each calling `accept()` on the shared listener, like
//!   gunicorn's sync workers sharing one socket.
//! - Waiting: a request waits inside a blocking call (the pool's checkout, PostgreSQL, nginx),
//!   and its worker waits with it: nothing else runs on that worker meanwhile.
//!   `BlockingApp::respond` in `shared/src/wait/blocking.rs`.
//! - Work (`work=N`): on the worker's thread, after the I/O; the kernel preempts it like any
//!   thread, but the worker serves nobody else meanwhile.
//! - Bound: `--workers` requests at once, whatever the load; the rest queue in the listen
//!   backlog. Each response says `Connection: close`, so an idle keep-alive client cannot
//!   hold a worker. The DB pool defaults to `--workers`: more could never be used.
//! - Python analog: gunicorn's sync worker, uWSGI.
//! - Shutdown: SIGTERM shuts the listener; each worker finishes the request it serves, finds
//!   the listener closed and returns; then the process exits.

use std::process::ExitCode;
use std::sync::Arc;

use shared::blocking;
use shared::http::KeepAlive;
use shared::{Binary, Config};

fn main() -> ExitCode {
    shared::start::run(Binary::SyncPool, serve)
}

fn serve(config: Config) -> Result<(), String> {
    let (listener, server) = blocking::start(&config)?;
    let listener = Arc::new(listener);
    let mut workers = Vec::with_capacity(config.workers);
    for i in 0..config.workers {
        let listener = listener.clone();
        let server = server.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                while let Some(stream) = server.accept(&listener) {
                    // No keep-alive: one request, then Connection: close.
                    server.serve(stream, KeepAlive::OneRequest);
                }
            });
        let worker =
            spawned.map_err(|e| format!("cannot start worker {i} of {}: {e}", config.workers))?;
        workers.push(worker);
    }
    // The workers return once a drain has shut the listener and their request is answered
    // (the signal thread exits the process at the shutdown timeout).
    for worker in workers {
        let _ = worker.join();
    }
    eprintln!("sync-pool: drained; exiting");
    Ok(())
}
