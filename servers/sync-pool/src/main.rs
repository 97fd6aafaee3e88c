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

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::Arc;

use shared::blocking::BlockingApp;
use shared::{http, shutdown, Binary, Config};

fn main() -> ExitCode {
    let config = Config::from_env(Binary::SyncPool);
    let listener = match TcpListener::bind(config.listen) {
        Ok(listener) => Arc::new(listener),
        Err(e) => {
            eprintln!("sync-pool: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let app = Arc::new(BlockingApp::new(&config));
    eprintln!("{}", config.summary());
    std::thread::spawn({
        let app = app.clone();
        move || app.check_database()
    });

    let listener_fd = listener.as_raw_fd();
    let drained = app.clone();
    if let Err(e) = shutdown::on_signals(app.server, config.shutdown_timeout, move || {
        shutdown::stop_accepting(listener_fd);
        drained.connections.drain();
    }) {
        eprintln!("sync-pool: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }

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
