//! How sync-thread and sync-pool serve: a blocking HTTP/1.1 connection loop
//! ([`crate::http`]) on the calling thread, with the drain registry of open connections. A
//! request waits in [`crate::wait::blocking`]; this file is what is around that wait.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use crate::http::KeepAlive;
use crate::shutdown::OpenConnections;
use crate::wait::blocking::BlockingApp;
use crate::Config;

/// A sync target's server: the app its requests wait in, the limits of its connections, and
/// its open connections, for the SIGTERM drain.
pub struct BlockingServer {
    pub app: BlockingApp,
    pub limits: crate::http::Limits,
    pub connections: OpenConnections,
}

impl BlockingServer {
    pub fn new(config: &Config) -> BlockingServer {
        BlockingServer {
            app: BlockingApp::new(config),
            limits: crate::http::Limits::from(&config.limits),
            connections: OpenConnections::new(),
        }
    }

    /// The next connection, or `None` once a drain has shut the listener.
    pub fn accept(&self, listener: &TcpListener) -> Option<TcpStream> {
        crate::http::accept(listener, self.app.server, &self.connections)
    }

    /// Serves one connection on the calling thread until it closes: its requests one after
    /// another ([`KeepAlive::PerConnection`]), or one and then `Connection: close`
    /// ([`KeepAlive::OneRequest`]). A connection accepted after a drain started is closed
    /// unanswered.
    pub fn serve(&self, mut stream: TcpStream, keep_alive: KeepAlive) {
        let Some(_open) = self.connections.register(stream.as_raw_fd()) else {
            return;
        };
        // An error here is the client's (a reset): the connection is over either way.
        let _ = crate::http::serve_connection(
            &mut stream,
            self.app.server,
            keep_alive,
            &self.limits,
            &|| self.connections.is_draining(),
            |method, path, query| {
                let request = crate::panics::Request {
                    server: self.app.server,
                    method,
                    path,
                    query,
                };
                crate::panics::catch(request, || self.app.respond(method, path, query))
            },
        );
        // `_open` drops here, before `stream` closes the descriptor.
    }
}

/// What both sync targets do before their model starts: bind the listener, build the server,
/// print the start-up line, check the database in the background, and arm the SIGTERM drain
/// (shut the listener, then the read side of every open connection).
pub fn start(config: &Config) -> Result<(TcpListener, Arc<BlockingServer>), String> {
    let listener = TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    crate::start::set_backlog(listener.as_raw_fd())?;
    let server = Arc::new(BlockingServer::new(config));
    eprintln!("{}", config.summary());
    std::thread::spawn({
        let server = server.clone();
        move || server.app.check_database()
    });
    let listener_fd = listener.as_raw_fd();
    let drained = server.clone();
    crate::shutdown::on_signals(server.app.server, config.shutdown_timeout, move || {
        crate::shutdown::stop_accepting(listener_fd);
        drained.connections.drain();
    })
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    Ok((listener, server))
}
