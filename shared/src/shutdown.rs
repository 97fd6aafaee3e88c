//! SIGTERM drains, the same in every target (the contract's "Limits, equal for every target").
//!
//! The first SIGTERM or SIGINT starts a drain: the target stops accepting, lets the requests in
//! flight finish, closes idle keep-alive connections, and exits 0 when none is left, or when
//! `--shutdown-timeout-ms` has passed. A second signal exits at once (status 128 + signal).
//!
//! One mechanism for every model: a thread waits for the signals ([`on_signals`]) and calls the
//! target's own "stop" (a closure: shut the listener, wake a tokio task, ...). The threads and
//! coroutine targets also keep an [`OpenConnections`] registry: its drain shuts the read side of
//! every open connection, so that one waiting for its next request sees the end of the stream
//! and closes, while one in the middle of a request still writes its answer.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Waits for SIGTERM or SIGINT on a thread of its own. The first calls `drain` once and arms
/// the grace timer: when `grace` has passed the process exits 0 whatever is still in flight.
/// A second signal exits at once. Fails only when the handlers cannot be installed.
pub fn on_signals(
    name: &'static str,
    grace: Duration,
    drain: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut drain = Some(drain);
            for signal in signals.forever() {
                match drain.take() {
                    Some(drain) => {
                        eprintln!(
                            "{name}: {}: draining, in-flight requests have {} ms",
                            signal_name(signal),
                            grace.as_millis()
                        );
                        std::thread::spawn(move || {
                            std::thread::sleep(grace);
                            eprintln!(
                                "{name}: shutdown timeout of {} ms reached; exiting",
                                grace.as_millis()
                            );
                            std::process::exit(0);
                        });
                        drain();
                    }
                    None => {
                        eprintln!("{name}: second {}: exiting now", signal_name(signal));
                        std::process::exit(128 + signal);
                    }
                }
            }
        })?;
    Ok(())
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "signal",
    }
}

/// Makes a listening socket refuse new connections and wakes every thread or coroutine blocked
/// in `accept` on it (Linux: `accept` then fails with EINVAL). Connections still in the backlog
/// are reset: they were never accepted.
pub fn stop_accepting(listener: RawFd) {
    // SAFETY: shutdown(2) on a descriptor we own has no memory-safety preconditions; the worst
    // outcome of a stale descriptor is an error code, which is ignored.
    unsafe {
        libc::shutdown(listener, libc::SHUT_RDWR);
    }
}

/// The open connections of a target whose connections are threads or coroutines, so that a
/// drain can close the idle ones and wait for the busy ones.
#[derive(Default)]
pub struct OpenConnections {
    draining: AtomicBool,
    open: Mutex<HashSet<RawFd>>,
    closed: Condvar,
}

impl OpenConnections {
    pub fn new() -> OpenConnections {
        OpenConnections::default()
    }

    /// Whether a drain has started: accept loops stop, and responses say `Connection: close`.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Records an accepted connection until the returned guard drops; `None` when a drain has
    /// started (close the connection unanswered). Drop the guard before the socket: a closed
    /// descriptor number can be reused at once.
    pub fn register(&self, fd: RawFd) -> Option<ConnectionGuard<'_>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_draining() {
            return None;
        }
        open.insert(fd);
        Some(ConnectionGuard { registry: self, fd })
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Starts the drain: no new registrations, and the read side of every open connection is
    /// shut. A connection waiting for a request reads the end of the stream and closes; one
    /// serving a request writes its answer (with `Connection: close`) and then closes.
    pub fn drain(&self) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        self.draining.store(true, Ordering::Release);
        for &fd in open.iter() {
            // SAFETY: every descriptor in the set is open: a guard removes its descriptor, under
            // this lock, before the socket is closed.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RD);
            }
        }
    }

    /// Waits until every connection has closed, or `timeout` has passed; returns how many are
    /// still open.
    pub fn wait_closed(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while !open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            open = self
                .closed
                .wait_timeout(open, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        open.len()
    }
}

/// An open connection in an [`OpenConnections`] registry.
pub struct ConnectionGuard<'a> {
    registry: &'a OpenConnections,
    fd: RawFd,
}

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        let mut open = self.registry.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&self.fd);
        self.registry.closed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_drain_wakes_an_idle_reader_and_refuses_new_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut served, _) = listener.accept().unwrap();
        let registry = std::sync::Arc::new(OpenConnections::new());
        let reader = std::thread::spawn({
            let registry = registry.clone();
            move || {
                let _guard = registry.register(served.as_raw_fd()).unwrap();
                let mut buf = [0u8; 16];
                // Blocks until the drain shuts the read side: end of stream.
                let n = served.read(&mut buf).unwrap();
                served.write_all(b"bye").unwrap();
                n
            }
        });
        while registry.is_empty() {
            std::thread::yield_now();
        }
        registry.drain();
        assert_eq!(reader.join().unwrap(), 0);
        assert_eq!(registry.wait_closed(Duration::from_secs(5)), 0);
        let mut answer = [0u8; 3];
        client.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"bye");
        assert!(registry.register(client.as_raw_fd()).is_none());
    }

    #[test]
    fn stop_accepting_wakes_a_blocked_accept() {
        let listener = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let acceptor = std::thread::spawn({
            let listener = listener.clone();
            move || listener.accept().is_err()
        });
        std::thread::sleep(Duration::from_millis(50));
        stop_accepting(listener.as_raw_fd());
        assert!(acceptor.join().unwrap());
    }
}
