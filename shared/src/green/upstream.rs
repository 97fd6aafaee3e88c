//! The cooperative upstream client: the shared fetch loop ([`crate::upstream::fetch`], also
//! the blocking client's) over `may::net::TcpStream`, so a fetch parks its coroutine, not the
//! worker thread, and idle connections behind may's mutex: [`Upstream`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use may::net::TcpStream;
use may::sync::Mutex;

use crate::upstream::{Connection, Gate, IdleLock, KeepAliveClient};

impl Connection for TcpStream {
    fn connect(addr: &SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(addr, timeout)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

impl<C> IdleLock<C> for Mutex<Vec<C>> {
    fn with_idle<R>(&self, f: impl FnOnce(&mut Vec<C>) -> R) -> Option<R> {
        self.lock().ok().map(|mut idle| f(&mut idle))
    }
}

/// may's semaphore as the places for fetches in flight: a fetch that waits for one parks its
/// coroutine.
pub struct GreenGate(may::sync::Semphore);

impl Gate for GreenGate {
    fn with_places(places: usize) -> GreenGate {
        GreenGate(may::sync::Semphore::new(places))
    }

    fn enter(&self) {
        self.0.wait();
    }

    fn leave(&self) {
        self.0.post();
    }
}

/// may-green's upstream client: may's sockets, may's lock, may's semaphore.
pub type Upstream = KeepAliveClient<TcpStream, Mutex<Vec<TcpStream>>, GreenGate>;
