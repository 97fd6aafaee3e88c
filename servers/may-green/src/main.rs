//! may-green: green threads, one may coroutine per connection.
//!
//! - Threads: `--workers` OS threads run may's scheduler; may_minihttp's accept coroutine
//!   starts one coroutine per connection, which serves its requests (keep-alive).
//! - Waiting: a request waits inside the cooperative clients of `shared::green` (PostgreSQL
//!   over postgres-protocol, upstream over httparse), all on `may::net::TcpStream`: a wait
//!   parks the coroutine and the worker runs another. Nothing blocks the OS thread.
//!   `GreenApp::respond` in `shared/src/wait/green.rs`.
//! - Work (`work=N`): inline, in the connection's coroutine on its worker thread: may does
//!   not preempt, so the worker's other coroutines wait until the hash is done.
//! - Bound: DB work by `--pool-size` (a may semaphore with `--pool-timeout-ms`, then 503);
//!   connections by the descriptor budget (the accept coroutine waits at it, and clients queue
//!   in the backlog), then by memory (one coroutine stack each).
//! - Python analog: gevent or meinheld with psycogreen (the patched driver).
//! - Shutdown: SIGTERM shuts the listener (the accept coroutine returns) and the read side of
//!   every connection: idle ones close, busy ones answer and close; then the process exits.
//!
//! Stack size: 64 KiB per coroutine (may's default is 32 KiB). The deepest path is a request
//! that opens a DB connection: an 8 KiB read buffer, SCRAM, and httparse's 64 headers on the
//! stack; 32 KiB leaves too little margin for a stack overflow, which would kill the process.
//! Only touched pages are resident, so an idle connection costs far less than 64 KiB (the
//! figures per 1,000 and 10,000 idle connections are in ARCHITECTURE.md).

use std::io;
use std::os::fd::RawFd;
use std::process::ExitCode;

use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
use shared::request::split_target;
use shared::shutdown::{self, ConnectionGuard, OpenConnections};
use shared::wait::green::GreenApp;
use shared::{Binary, Config};

/// Coroutine stack size in machine words (may's unit): 8192 × 8 bytes = 64 KiB.
const STACK_WORDS: usize = 8 * 1024;

/// Makes one [`Service`] per connection.
struct Factory {
    app: &'static GreenApp,
    /// Open connections, for the SIGTERM drain.
    connections: &'static OpenConnections,
}

/// A connection's service: the shared app, and the connection's place in the drain registry
/// (it ends with the connection's coroutine).
struct Service {
    app: &'static GreenApp,
    _open: Option<ConnectionGuard<'static>>,
}

impl HttpServiceFactory for Factory {
    type Service = Service;

    /// `id` is the connection's socket descriptor.
    fn new_service(&self, id: usize) -> Service {
        Service {
            app: self.app,
            _open: self.connections.register(id as RawFd),
        }
    }
}

impl HttpService for Service {
    fn call(&mut self, request: Request, response: &mut Response) -> io::Result<()> {
        let (path, query) = split_target(request.path());
        let method = request.method();
        let caught = shared::panics::Request {
            server: self.app.server,
            method,
            path,
            query,
        };
        let reply = shared::panics::catch(caught, || self.app.respond(method, path, query));
        response.status_code(usize::from(reply.status), reply.reason());
        if reply.close {
            response.close();
        }
        response.header("Content-Type: application/json");
        if reply.allow.is_some() {
            response.header("Allow: GET");
        }
        response.body_vec(reply.body.to_vec());
        Ok(())
    }
}

fn main() -> ExitCode {
    shared::start::run(Binary::MayGreen, serve)
}

fn serve(config: Config) -> Result<(), String> {
    may::config()
        .set_workers(config.workers)
        .set_stack_size(STACK_WORDS);
    may_minihttp::set_server_name(config.binary.name());
    // The descriptor budget: at it, the accept coroutine waits for a connection to end.
    may_minihttp::set_max_connections(config.connection_budget().unwrap_or(0));
    may_minihttp::set_backlog(shared::start::BACKLOG);
    may_minihttp::set_timeouts(may_minihttp::Timeouts {
        header: config.limits.header_timeout,
        keep_alive: config.limits.keep_alive_timeout,
    });
    let app: &'static GreenApp = Box::leak(Box::new(GreenApp::new(&config)?));
    let connections: &'static OpenConnections = Box::leak(Box::new(OpenConnections::new()));
    let server = (Factory { app, connections })
        .start(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    shutdown::on_signals(app.server, config.shutdown_timeout, || {
        may_minihttp::stop_accepting();
        connections.drain();
    })
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    eprintln!("{} stack={} KiB", config.summary(), STACK_WORDS * 8 / 1024);
    may::go!(move || app.check_database());
    server
        .join()
        .map_err(|_| "the accept coroutine failed".to_string())?;
    // Draining: the connection coroutines finish what they serve (the signal thread exits the
    // process at the shutdown timeout).
    connections.wait_closed(config.shutdown_timeout);
    eprintln!("may-green: drained; exiting");
    Ok(())
}
