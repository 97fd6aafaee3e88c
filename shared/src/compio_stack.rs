//! compio-tpc's threads, around the wait: thread per core, share nothing.
//!
//! `--workers` OS threads, each with its own compio runtime on its own io_uring, its own
//! listening socket on the same address (`SO_REUSEPORT`: the kernel hashes each new connection
//! to one of them, and it stays on that thread for life), and its own share of everything a
//! request uses ([`Share`]): DB sessions and idle upstream connections. Nothing on a request
//! path crosses threads; what the threads have in common is the signal that starts the drain
//! and the descriptor budget ([`Budget`]: descriptors are the process's), which a connection
//! takes a place of once, when it is accepted.
//!
//! The runtime is built with compio's io_uring driver only (no polling fallback): where
//! io_uring is not available, the target refuses to start and says why. Each thread prints the
//! driver it runs at start-up.
//!
//! hyper and tokio-postgres are written against tokio's I/O traits; compio's sockets get them
//! through compio's compat layer (futures' traits over its owned-buffer operations, with a
//! buffer each way) and tokio-util's compat ([`Socket`]). The contract's connection limits
//! are the same [`Guarded`] socket as the tokio targets', on compio's timers ([`CompioClock`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use compio::io::compat::AsyncStream;
use compio::net::{TcpListener, TcpStream};
use futures_util::future::{select, Either};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use crate::guarded::{Clock, Guarded};
use crate::places::Places;
use crate::{Config, ConnLimits};

/// compio's timers, for the guarded connections.
pub struct CompioClock;

impl Clock for CompioClock {
    type Sleep = Pin<Box<dyn Future<Output = ()>>>;

    fn sleep_until(deadline: Instant) -> Self::Sleep {
        Box::pin(compio::time::sleep_until(deadline))
    }

    fn reset(mut sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.set(Box::pin(compio::time::sleep_until(deadline)));
    }
}

/// The bytes each way the compat layer keeps for a client connection. io_uring completes a
/// read into a buffer the kernel was given with it, so every connection waiting for its next
/// request holds its read buffer (epoll's readiness needs none until bytes arrive): small,
/// since a request is a few hundred bytes (a longer head takes more reads) and an answer
/// under 1 KiB.
pub const CLIENT_BUFFER: usize = 1024;

/// The same for a connection to PostgreSQL or the upstream: few of them, and a pipelined
/// connection's answers come many at once.
pub const PEER_BUFFER: usize = 8 * 1024;

/// A compio socket with tokio's I/O traits, for hyper and tokio-postgres.
/// (compio's compat stream is not `Unpin`: it is boxed once per connection.)
pub type Socket = Compat<Pin<Box<AsyncStream<TcpStream>>>>;

/// `stream` with tokio's I/O traits, through buffers of `capacity` bytes each way.
pub fn socket(stream: TcpStream, capacity: usize) -> Socket {
    let _ = stream.set_nodelay(true);
    Box::pin(AsyncStream::with_capacity(capacity, stream)).compat()
}

/// A client connection with the contract's limits.
pub type GuardedSocket = Guarded<Socket, CompioClock>;

/// One thread's share of the process's limits: the totals split as evenly as they go, the
/// first threads taking the remainders, so that the threads' shares add up to the totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// DB sessions this thread may open (`--pool-size` split; with `--db-mode pipelined`, 1).
    pub sessions: usize,
    /// Upstream connections it keeps idle for reuse, at most (the budget's idle part split).
    pub idle_upstream: usize,
}

/// `total` split over `parts`: part `index`'s share.
pub fn split(total: usize, parts: usize, index: usize) -> usize {
    total / parts + usize::from(index < total % parts)
}

impl Share {
    /// Thread `index`'s share of `config`'s limits.
    pub fn of(config: &Config, index: usize) -> Share {
        let workers = config.workers;
        let sessions = match config.db_mode {
            crate::DbMode::Pool => split(config.pool_size, workers, index),
            crate::DbMode::Pipelined => 1,
        };
        let idle = config.connection_budget().map_or(
            crate::upstream::MAX_IDLE,
            crate::config::idle_upstream_share,
        );
        Share {
            sessions,
            idle_upstream: split(idle, workers, index).max(1),
        }
    }
}

/// The descriptor budget ([`Config::connection_budget`]), the one limit the threads share:
/// descriptors are the process's, so a thread whose connections the kernel's hash made
/// many must not be refused while another thread's part of the budget lies unused. (Split,
/// 10,000 idle connections over 6 threads stopped at 9,822: one thread's part was spent.) A
/// connection takes a place once, when accepted, and gives it back when it closes; no
/// request touches it.
#[derive(Clone, Default)]
pub struct Budget {
    /// Client connections open at once, at most B.
    pub connections: Places,
    /// Upstream connections open at once, at most B + B/8.
    pub upstream: Places,
}

impl Budget {
    pub fn of(config: &Config) -> Budget {
        let budget = config.connection_budget();
        Budget {
            connections: Places::new(budget),
            upstream: Places::new(budget.map(|b| b + crate::config::idle_upstream_share(b))),
        }
    }
}

/// What a thread is given: its index, the configuration, its share, the process's descriptor
/// budget, its listening socket and the drain signal.
pub struct Worker {
    pub index: usize,
    pub config: Config,
    pub share: Share,
    pub budget: Budget,
    listener: Option<std::net::TcpListener>,
    drain: tokio::sync::watch::Receiver<bool>,
}

impl Worker {
    /// This thread's listening socket, on its runtime.
    pub fn listener(&mut self) -> Result<TcpListener, String> {
        let listener = self
            .listener
            .take()
            .ok_or_else(|| format!("thread {}: its listener is taken", self.index))?;
        TcpListener::from_std(listener)
            .map_err(|e| format!("thread {}: cannot use its listener: {e}", self.index))
    }

    /// The next connection within the descriptor budget, with the contract's limits; `None`
    /// once the drain has begun. A failed accept (out of descriptors, most likely) is said
    /// and retried after 10 ms instead of spinning.
    pub async fn accept_guarded(&mut self, listener: &TcpListener) -> Option<GuardedSocket> {
        let server = self.config.binary.name();
        let limits: ConnLimits = self.config.limits;
        let permit = {
            let take = std::pin::pin!(self.budget.connections.take());
            let drain = std::pin::pin!(self.drain.wait_for(|draining| *draining));
            match select(take, drain).await {
                Either::Left((permit, _)) => permit,
                Either::Right(_) => return None,
            }
        };
        loop {
            let accept = std::pin::pin!(listener.accept());
            let drain = std::pin::pin!(self.drain.wait_for(|draining| *draining));
            match select(accept, drain).await {
                Either::Left((Ok((stream, _peer)), _)) => {
                    let io = socket(stream, CLIENT_BUFFER);
                    return Some(Guarded::new(io, server, limits).holding(permit));
                }
                Either::Left((Err(e), _)) => {
                    eprintln!("{server}: thread {}: accept failed: {e}", self.index);
                    compio::time::sleep(Duration::from_millis(10)).await;
                }
                Either::Right(_) => return None,
            }
        }
    }
}

/// Runs `serve` on `--workers` threads, each on its own compio runtime with a listening socket
/// of its own, and returns once every thread has drained (or the first failure).
pub fn run<F, Fut>(config: Config, serve: F) -> Result<(), String>
where
    F: Fn(Worker) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = Result<(), String>>,
{
    let name = config.binary.name();
    let listeners = bind_reuseport(config.listen, config.workers)?;
    let (drain, drained) = tokio::sync::watch::channel(false);
    crate::shutdown::on_signals(name, config.shutdown_timeout, move || {
        let _ = drain.send(true);
    })
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    let (ready, started) = std::sync::mpsc::channel::<Result<String, String>>();
    // The threads serve once the start-up lines are out: a client that got an answer can
    // read them.
    let go = std::sync::Arc::new(std::sync::Barrier::new(config.workers + 1));
    let mut threads = Vec::new();
    let budget = Budget::of(&config);
    for (index, listener) in listeners.into_iter().enumerate() {
        let worker = Worker {
            index,
            share: Share::of(&config, index),
            budget: budget.clone(),
            config: config.clone(),
            listener: Some(listener),
            drain: drained.clone(),
        };
        let ready = ready.clone();
        let go = go.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{index}"))
            .spawn(move || {
                let runtime = match compio::runtime::RuntimeBuilder::new().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(format!(
                            "thread {index}: cannot start its io_uring runtime: {e} ({name} runs on io_uring only: check /proc/sys/kernel/io_uring_disabled, and a container's seccomp profile)"
                        )));
                        return Ok(());
                    }
                };
                let _ = ready.send(Ok(describe(index, &worker.share, runtime.driver_type())));
                go.wait();
                runtime.block_on(serve(worker))
            })
            .map_err(|e| format!("cannot start thread {index}: {e}"))?;
        threads.push(thread);
    }
    drop(ready);
    let mut lines = Vec::new();
    for _ in 0..threads.len() {
        match started.recv() {
            Ok(Ok(line)) => lines.push(line),
            Ok(Err(message)) => return Err(message),
            Err(_) => return Err("a thread ended before its runtime started".into()),
        }
    }
    lines.sort();
    for line in lines {
        eprintln!("{name}: {line}");
    }
    eprintln!("{}", config.summary());
    go.wait();
    let mut outcome = Ok(());
    for thread in threads {
        let result = thread
            .join()
            .unwrap_or_else(|_| Err("a thread panicked".into()));
        if outcome.is_ok() {
            outcome = result;
        }
    }
    outcome
}

/// The start-up line of one thread: its driver and its share.
fn describe(index: usize, share: &Share, driver: compio::driver::DriverType) -> String {
    let driver = match driver {
        compio::driver::DriverType::IoUring => "io_uring".to_string(),
        other => format!("{other:?} (not io_uring)"),
    };
    let warning = if share.sessions == 0 {
        " (no DB session: --pool-size is below --workers, and this thread's /test?backend=db answers 503 after --pool-timeout-ms)"
    } else {
        ""
    };
    format!(
        "thread {index} runs compio's {driver} driver; its own listener, sessions={} idle-upstream<={}{warning}",
        share.sessions, share.idle_upstream
    )
}

/// `workers` listening sockets on `addr`, each with `SO_REUSEPORT` (a port 0 is chosen by the
/// first, and the others bind the same port), with the contract's backlog.
fn bind_reuseport(addr: SocketAddr, workers: usize) -> Result<Vec<std::net::TcpListener>, String> {
    // SO_REUSEPORT would let this process share a port with another one of the same user that
    // set it too (a second compio-tpc): a plain bind first fails on any port in use.
    if addr.port() != 0 {
        drop(
            std::net::TcpListener::bind(addr)
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
        );
    }
    let mut addr = addr;
    let mut listeners = Vec::with_capacity(workers);
    for _ in 0..workers {
        let listener = bind_one(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket as RawSocket, Type};
    let socket = RawSocket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(crate::start::BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_totals() {
        for (total, parts) in [(19, 2), (16, 3), (1, 2), (0, 4), (7, 7)] {
            let shares: Vec<usize> = (0..parts).map(|i| split(total, parts, i)).collect();
            assert_eq!(shares.iter().sum::<usize>(), total, "{shares:?}");
            let (min, max) = (shares.iter().min(), shares.iter().max());
            assert!(max.unwrap() - min.unwrap() <= 1, "{shares:?}");
        }
        assert_eq!(split(19, 2, 0), 10);
        assert_eq!(split(19, 2, 1), 9);
    }

    #[test]
    fn a_share_splits_the_pool_and_the_budget() {
        let mut config = Config::try_parse_from(
            crate::Binary::CompioTpc,
            ["compio-tpc", "--workers", "3", "--pool-size", "16"],
        )
        .unwrap();
        config.max_connections = Some(100);
        let shares: Vec<Share> = (0..3).map(|i| Share::of(&config, i)).collect();
        assert_eq!(
            shares.iter().map(|s| s.sessions).collect::<Vec<_>>(),
            [6, 5, 5]
        );
        // The budget's idle upstream part (100 / 8 = 12) split; the budget itself is shared.
        assert_eq!(
            shares.iter().map(|s| s.idle_upstream).collect::<Vec<_>>(),
            [4, 4, 4]
        );
        config.db_mode = crate::DbMode::Pipelined;
        assert!((0..3).all(|i| Share::of(&config, i).sessions == 1));
    }

    #[test]
    fn every_thread_binds_the_same_port() {
        let listeners = bind_reuseport("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert!(ports.iter().all(|p| *p == ports[0] && *p != 0), "{ports:?}");
    }
}
