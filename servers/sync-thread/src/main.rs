//! sync-thread: one OS thread per connection.
//!
//! - Threads: the main thread accepts; every connection gets its own OS thread, which serves
//!   that connection's requests (keep-alive) until it closes or idles out.
//! - Waiting: a request waits inside a blocking call (the pool's checkout, PostgreSQL's answer,
//!   nginx's answer); the kernel parks the thread and runs others. `BlockingApp::respond` in
//!   `shared/src/wait/blocking.rs`.
//! - Work (`work=N`): on the connection's thread, after the I/O; the kernel preempts it, so
//!   a long hash never holds up another connection.
//! - Bound: `--max-threads` live connection threads (or the descriptor budget, when lower); at
//!   the cap the accept loop stops
//!   accepting, so new connections wait in the listen backlog. DB work is bounded by
//!   `--pool-size`.
//! - Python analog: Flask's threaded server, gunicorn's gthread worker.
//! - Shutdown: SIGTERM shuts the listener (the accept loop ends) and the read side of every
//!   connection: idle ones close, busy ones answer and close; then the process exits.

use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};

use shared::blocking;
use shared::http::KeepAlive;
use shared::{Binary, Config};

fn main() -> ExitCode {
    shared::start::run(Binary::SyncThread, serve)
}

fn serve(config: Config) -> Result<(), String> {
    let (listener, server) = blocking::start(&config)?;
    // A thread per connection: the cap is the threads, or the descriptor budget when lower.
    let cap = config
        .connection_budget()
        .map_or(config.max_threads, |budget| budget.min(config.max_threads));
    let threads = Arc::new(ThreadCap::new(cap));
    loop {
        // At the cap, stop accepting: the backlog holds new connections until a thread ends.
        threads.wait_for_room();
        let Some(stream) = server.accept(&listener) else {
            break;
        };
        let server = server.clone();
        let slot = threads.take();
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .spawn(move || {
                let _slot = slot;
                // This thread serves the connection until it closes or idles out.
                server.serve(stream, KeepAlive::PerConnection);
            });
        if let Err(e) = spawned {
            // The connection is closed, and its slot freed, with the closure.
            eprintln!("sync-thread: cannot start a thread: {e}");
        }
    }
    // Draining: the connection threads finish what they serve (the signal thread exits the
    // process at the shutdown timeout).
    server.connections.wait_closed(config.shutdown_timeout);
    eprintln!("sync-thread: drained; exiting");
    Ok(())
}

/// Counts live connection threads; `take` hands out a slot that frees itself on drop.
struct ThreadCap {
    live: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl ThreadCap {
    fn new(max: usize) -> ThreadCap {
        ThreadCap {
            live: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    }

    fn wait_for_room(&self) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        // A drain shuts every connection, so the threads it waits for end.
        while *live >= self.max {
            live = self.freed.wait(live).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn take(self: &Arc<Self>) -> Slot {
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Slot(self.clone())
    }
}

struct Slot(Arc<ThreadCap>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.live.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}
