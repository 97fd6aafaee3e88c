//! may-green: green threads, one may coroutine per connection.
//!
//! - Threads: `--workers` OS threads run may's scheduler; may_minihttp's accept coroutine
//!   starts one coroutine per connection, which serves its requests (keep-alive).
//! - Waiting: a request waits inside the cooperative clients of `shared::green` (PostgreSQL
//!   over postgres-protocol, upstream over httparse), all on `may::net::TcpStream`: a wait
//!   parks the coroutine and the worker runs another. Nothing blocks the OS thread.
//! - Bound: DB work by `--pool-size` (a may semaphore with `--pool-timeout-ms`, then 503);
//!   connections only by memory (one coroutine stack each).
//! - Python analog: gevent or meinheld with psycogreen (the patched driver).
//!
//! Stack size: 64 KiB per coroutine (may's default is 32 KiB). The deepest path is a request
//! that opens a DB connection: an 8 KiB read buffer, SCRAM, and httparse's 64 headers on the
//! stack; 32 KiB leaves too little margin for a stack overflow, which would kill the process.
//! Only touched pages are resident, so an idle connection costs far less than 64 KiB (the
//! figures per 1,000 and 10,000 idle connections are in ARCHITECTURE.md).

use std::io;
use std::process::ExitCode;

use may_minihttp::{HttpServer, HttpService, Request, Response};
use shared::green::GreenApp;
use shared::request::split_target;
use shared::{Binary, Config};

/// Coroutine stack size in machine words (may's unit): 8192 × 8 bytes = 64 KiB.
const STACK_WORDS: usize = 8 * 1024;

/// One clone per connection; the app is shared by all.
#[derive(Clone)]
struct Service {
    app: &'static GreenApp,
}

impl HttpService for Service {
    fn call(&mut self, request: Request, response: &mut Response) -> io::Result<()> {
        let (path, query) = split_target(request.path());
        let reply = self.app.respond(request.method(), path, query);
        response.status_code(usize::from(reply.status), reply.reason());
        response.header("Content-Type: application/json");
        if reply.allow.is_some() {
            response.header("Allow: GET");
        }
        response.body_vec(reply.body.to_vec());
        Ok(())
    }
}

fn main() -> ExitCode {
    let config = Config::from_env(Binary::MayGreen);
    may::config()
        .set_workers(config.workers)
        .set_stack_size(STACK_WORDS);
    may_minihttp::set_server_name(config.binary.name());
    let app: &'static GreenApp = match GreenApp::new(&config) {
        Ok(app) => Box::leak(Box::new(app)),
        Err(e) => {
            eprintln!("may-green: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match HttpServer(Service { app }).start(config.listen) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("may-green: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    eprintln!("{} stack={} KiB", config.summary(), STACK_WORDS * 8 / 1024);
    may::go!(move || app.check_database());
    if server.join().is_err() {
        eprintln!("may-green: the accept coroutine ended");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
