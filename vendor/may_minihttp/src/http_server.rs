//! http server implementation on top of `MAY`

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::ToSocketAddrs;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::request::{self, Request};
use crate::response::{self, Response};

#[cfg(unix)]
use bytes::Buf;
use bytes::{BufMut, BytesMut};
#[cfg(unix)]
use may::io::WaitIo;

use crate::clock;
use may::net::{TcpListener, TcpStream};
use may::{coroutine, go};

macro_rules! t_c {
    ($e: expr) => {
        match $e {
            Ok(val) => val,
            Err(err) => {
                error!("call = {:?}\nerr = {:?}", stringify!($e), err);
                continue;
            }
        }
    };
}

/// the http service trait
/// user code should supply a type that impl the `call` method for the http server
///
pub trait HttpService {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()>;
}

pub trait HttpServiceFactory: Send + Sized + 'static {
    type Service: HttpService + Send;
    // create a new http service for each connection
    fn new_service(&self, id: usize) -> Self::Service;

    /// Spawns the http service, binding to the given address
    /// return a coroutine that you can cancel it when need to stop the service
    fn start<L: ToSocketAddrs>(self, addr: L) -> io::Result<coroutine::JoinHandle<()>> {
        let listener = TcpListener::bind(addr)?;
        register_listener(&listener);
        go!(
            coroutine::Builder::new().name("TcpServerFac".to_owned()),
            move || {
                loop {
                    // PATCH: within the connection budget, or wait before accepting.
                    let slot = take_slot();
                    let stream = accept_or_wait(&listener);
                    // PATCH: a drain shut the listener: stop instead of retrying.
                    if stream.is_err() && STOPPING.load(Ordering::Acquire) {
                        return;
                    }
                    let mut stream = t_c!(stream);
                    let id = stream.as_raw_fd() as usize;
                    // t_c!(stream.set_nodelay(true));
                    let service = self.new_service(id);
                    let builder = may::coroutine::Builder::new().id(id);
                    go!(
                        builder,
                        move || if let Err(e) = {
                            let _slot = slot;
                            each_connection_loop(&mut stream, service)
                        } {
                            error!("service err = {:?}", e);
                            stream.shutdown(std::net::Shutdown::Both).ok();
                        }
                    )
                    .unwrap();
                }
            }
        )
    }
}

#[inline]
#[cold]
pub(crate) fn err<T>(e: io::Error) -> io::Result<T> {
    Err(e)
}

/// PATCH (rust-web-perf): the stack buffer for the first read after a wait. A request of wrk,
/// oha or curl fits; a longer head continues in the heap buffer. Kept small because every stack
/// page a connection has touched stays resident while it is idle.
const FIRST_READ: usize = 256;

/// PATCH (rust-web-perf): reads what is there; reports (would block, end of stream). Upstream
/// failed at the end of the stream even when whole requests were still buffered. A buffer given
/// back while idle is not allocated again until bytes arrive: the first read lands on the stack.
#[cfg(unix)]
#[inline]
fn nonblock_read(stream: &mut impl Read, req_buf: &mut BytesMut) -> io::Result<(bool, bool)> {
    if req_buf.capacity() == 0 {
        let mut first = [0u8; FIRST_READ];
        loop {
            match stream.read(&mut first) {
                Ok(0) => return Ok((false, true)),
                Ok(n) => {
                    req_buf.extend_from_slice(&first[..n]);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((true, false)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return err(e),
            }
        }
    }
    reserve_buf(req_buf);
    let read_buf: &mut [u8] = unsafe { std::mem::transmute(req_buf.chunk_mut()) };
    let len = read_buf.len();

    let mut read_cnt = 0;
    let mut eof = false;
    while read_cnt < len {
        match stream.read(unsafe { read_buf.get_unchecked_mut(read_cnt..) }) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => read_cnt += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return err(e),
        }
    }

    unsafe { req_buf.advance_mut(read_cnt) };
    Ok((read_cnt < len, eof))
}

#[cfg(unix)]
#[inline]
fn nonblock_write(stream: &mut impl Write, rsp_buf: &mut BytesMut) -> io::Result<usize> {
    let write_buf = rsp_buf.chunk();
    let len = write_buf.len();
    let mut write_cnt = 0;
    while write_cnt < len {
        match stream.write(unsafe { write_buf.get_unchecked(write_cnt..) }) {
            Ok(0) => return err(io::Error::new(io::ErrorKind::BrokenPipe, "write closed")),
            Ok(n) => write_cnt += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return err(e),
        }
    }
    rsp_buf.advance(write_cnt);
    Ok(write_cnt)
}

/// PATCH (rust-web-perf): 4 KiB steps (upstream: 32 KiB). A request or response of the suite
/// is a few hundred bytes; the buffers grow in these steps when pipelining needs more.
const BUF_LEN: usize = 4096;
#[inline]
pub(crate) fn reserve_buf(buf: &mut BytesMut) {
    let rem = buf.capacity() - buf.len();
    if rem < 1024 {
        buf.reserve(BUF_LEN - rem);
    }
}

/// this is the generic type http server
/// with a type parameter that impl `HttpService` trait
///
pub struct HttpServer<T>(pub T);

/// PATCH (rust-web-perf): the most a request head may take (else 431).
pub const MAX_HEAD: usize = 8 * 1024;
/// PATCH: the longest request body that is skipped (else 413).
pub const MAX_BODY: usize = 8 * 1024;

/// PATCH (rust-web-perf): the connection timeouts, the same in every target of the suite.
/// Upstream had none: an idle or half-sent connection held its coroutine for ever.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From a request's first byte to the end of its head (else 408 and close).
    pub header: Duration,
    /// Between requests (then closed without a word); `None` waits for ever.
    pub keep_alive: Option<Duration>,
}

static TIMEOUTS: OnceLock<Timeouts> = OnceLock::new();

/// PATCH: sets the timeouts of every connection, before `start`. Defaults: 10 s and 5 s.
pub fn set_timeouts(timeouts: Timeouts) {
    let _ = TIMEOUTS.set(timeouts);
}

pub(crate) fn timeouts() -> Timeouts {
    *TIMEOUTS.get_or_init(|| Timeouts {
        header: Duration::from_secs(10),
        keep_alive: Some(Duration::from_secs(5)),
    })
}

/// PATCH: a drain was asked for; accept loops end when their listener fails.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// PATCH: the listening sockets of the servers started, for `stop_accepting`.
static LISTENERS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// PATCH (rust-web-perf): stops every server started in this process from accepting: the
/// listening sockets are shut (`accept` fails, and the accept coroutine returns, so its join
/// handle completes). Open connections are the caller's to drain.
pub fn stop_accepting() {
    STOPPING.store(true, Ordering::Release);
    for &fd in LISTENERS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        // SAFETY: shutdown(2) on a listening socket that the accept coroutine still owns.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
    }
}

/// PATCH (rust-web-perf): the connection budget (0: none). At it, the accept coroutine stops
/// accepting until a connection ends, so that clients beyond it wait in the listen backlog
/// rather than being accepted without a descriptor left for their upstream fetch.
static MAX_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
/// PATCH: the connections open now (only the accept coroutines add to it).
static OPEN_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// PATCH (rust-web-perf): sets the connection budget for every server started afterwards.
pub fn set_max_connections(max: usize) {
    MAX_CONNECTIONS.store(max, Ordering::Release);
}

/// PATCH: one open connection's place in the budget, given back when it is dropped.
struct Slot;

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN_CONNECTIONS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// PATCH: a place in the budget; at the budget, the accept coroutine sleeps 1 ms at a time
/// until a connection ends (or a drain starts).
fn take_slot() -> Slot {
    let max = MAX_CONNECTIONS.load(Ordering::Acquire);
    while max > 0
        && OPEN_CONNECTIONS.load(Ordering::Acquire) >= max
        && !STOPPING.load(Ordering::Acquire)
    {
        coroutine::sleep(Duration::from_millis(1));
    }
    OPEN_CONNECTIONS.fetch_add(1, Ordering::AcqRel);
    Slot
}

/// PATCH (rust-web-perf): one accept. Out of descriptors (EMFILE, ENFILE) or of kernel memory
/// (ENOBUFS, ENOMEM), the accept coroutine sleeps 10 ms before it tries again: Linux fails
/// `accept` at once when no descriptor is free, even with nobody waiting, and upstream's
/// loop retried at once, so the accept coroutine never yielded and starved the connections
/// on its worker that would have freed one.
fn accept_or_wait(listener: &TcpListener) -> io::Result<TcpStream> {
    let accepted = listener.accept().map(|(stream, _)| stream);
    if let Err(e) = &accepted {
        if matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        ) {
            coroutine::sleep(Duration::from_millis(10));
        }
    }
    accepted
}

/// PATCH: the listen backlog asked for (0: may's own, 1024).
static BACKLOG: AtomicI32 = AtomicI32::new(0);

/// PATCH (rust-web-perf): sets the listen backlog of every server started afterwards, so
/// that may-green's equals the other targets': clients beyond the connection budget wait
/// there.
pub fn set_backlog(backlog: i32) {
    BACKLOG.store(backlog, Ordering::Release);
}

fn register_listener(listener: &TcpListener) {
    let backlog = BACKLOG.load(Ordering::Acquire);
    if backlog > 0 {
        // SAFETY: listen(2) again on a socket that listens changes only its backlog.
        unsafe {
            libc::listen(listener.as_raw_fd(), backlog);
        }
    }
    LISTENERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(listener.as_raw_fd());
}

/// PATCH (rust-web-perf): upstream never closed a connection itself, so `Connection: close`,
/// HTTP/1.0 clients (ab without -k) and malformed requests were left hanging or dropped
/// without an answer. Here a refused request gets its 4xx and the connection closes; a
/// request that asks to close is answered, then the connection closes. The connection is on
/// the clock (`crate::clock`): a head not whole within the header timeout gets 408, and an
/// idle connection closes after the keep-alive timeout. While it waits for bytes it holds no
/// buffer. A response the socket could not take at once is written out before the next wait (upstream
/// waited for the next readable event to finish it).
#[cfg(unix)]
fn each_connection_loop<T: HttpService>(stream: &mut TcpStream, mut service: T) -> io::Result<()> {
    let timeouts = timeouts();
    let registration = clock::register(stream.waker());
    let conn = &registration.conn;
    // PATCH: the buffers are allocated when there are bytes to hold (upstream kept 68 KiB per
    // connection for its whole life).
    let mut req_buf = BytesMut::new();
    let mut rsp_buf = BytesMut::new();
    let mut body_buf = BytesMut::new();

    loop {
        if conn.take_request() == clock::EXPIRED {
            match conn.phase() {
                clock::HEAD => return refuse_slow_head(stream, &mut rsp_buf, timeouts.header),
                clock::IDLE => {
                    // Idle too long: close without a word.
                    stream.shutdown(std::net::Shutdown::Both).ok();
                    return Ok(());
                }
                _ => {}
            }
        }

        let (read_blocked, eof) = nonblock_read(stream.inner_mut(), &mut req_buf)?;
        if !req_buf.is_empty() && conn.phase() == clock::IDLE {
            conn.enter(clock::HEAD);
        }
        let mut close = eof;
        let mut served = false;

        // prepare the requests, we should make sure the request is fully read
        loop {
            let mut few = [MaybeUninit::uninit(); request::FEW_HEADERS];
            let mut many = Vec::new();
            let req = match request::decode(&mut few, &mut many, &mut req_buf, stream) {
                Ok(Some(req)) => req,
                Ok(None) => break,
                Err(refusal) => {
                    response::encode_refusal(&refusal, &mut rsp_buf);
                    close = true;
                    break;
                }
            };
            if !served {
                conn.enter(clock::BUSY);
                served = true;
            }
            let keep_alive = req.keep_alive();
            let head = req.method() == "HEAD";
            reserve_buf(&mut rsp_buf);
            let mut rsp = Response::new(&mut body_buf);
            let result = service.call(req, &mut rsp);
            // PATCH: once a drain has begun (checked when the answer is ready), the answer is
            // the last one and says so (`Connection: close`), so that the client sends nothing
            // more on this connection. So does an answer the service asked to close after.
            let keep_alive = keep_alive && !STOPPING.load(Ordering::Relaxed) && !rsp.closes();
            match result {
                Ok(()) => response::encode(rsp, &mut rsp_buf, !keep_alive, head),
                Err(e) => {
                    drop(rsp);
                    response::encode_error(e, &mut rsp_buf);
                }
            }
            if !keep_alive {
                close = true;
                break;
            }
        }

        if close {
            // Everything answered goes out before the close.
            stream.write_all(&rsp_buf)?;
            stream.shutdown(std::net::Shutdown::Write).ok();
            return Ok(());
        }

        // write out the responses; what the socket cannot take now is waited for
        nonblock_write(stream.inner_mut(), &mut rsp_buf)?;
        if !rsp_buf.is_empty() {
            stream.write_all(&rsp_buf)?;
            rsp_buf.clear();
        }
        if served {
            // Answered: idle until the next byte, or the next head has begun.
            conn.enter(if req_buf.is_empty() {
                clock::IDLE
            } else {
                clock::HEAD
            });
        }

        if read_blocked {
            if req_buf.is_empty() && rsp_buf.is_empty() {
                // Nothing buffered: nothing is kept while waiting (the next bytes land on the
                // stack first).
                req_buf = BytesMut::new();
                rsp_buf = BytesMut::new();
                body_buf = BytesMut::new();
            }
            stream.wait_io();
        }
    }
}

/// PATCH: a head that did not arrive whole in time: 408, then close.
#[cfg(unix)]
fn refuse_slow_head(
    stream: &mut TcpStream,
    rsp_buf: &mut BytesMut,
    waited: Duration,
) -> io::Result<()> {
    let refusal = request::Refusal {
        status: 408,
        reason: "Request Timeout",
        message: format!(
            "the request did not arrive whole within {} ms",
            waited.as_millis()
        ),
    };
    rsp_buf.clear();
    response::encode_refusal(&refusal, rsp_buf);
    stream.write_all(rsp_buf)?;
    stream.shutdown(std::net::Shutdown::Write).ok();
    Ok(())
}

impl<T: HttpService + Clone + Send + Sync + 'static> HttpServer<T> {
    /// Spawns the http service, binding to the given address
    /// return a coroutine that you can cancel it when need to stop the service
    pub fn start<L: ToSocketAddrs>(self, addr: L) -> io::Result<coroutine::JoinHandle<()>> {
        let listener = TcpListener::bind(addr)?;
        register_listener(&listener);
        let service = self.0;
        go!(
            coroutine::Builder::new().name("TcpServer".to_owned()),
            move || {
                loop {
                    // PATCH: within the connection budget, or wait before accepting.
                    let slot = take_slot();
                    let stream = accept_or_wait(&listener);
                    // PATCH: a drain shut the listener: stop instead of retrying.
                    if stream.is_err() && STOPPING.load(Ordering::Acquire) {
                        return;
                    }
                    let mut stream = t_c!(stream);
                    // t_c!(stream.set_nodelay(true));
                    let service = service.clone();
                    go!(
                        move || if let Err(e) = {
                            let _slot = slot;
                            each_connection_loop(&mut stream, service)
                        } {
                            error!("service err = {:?}", e);
                            stream.shutdown(std::net::Shutdown::Both).ok();
                        }
                    );
                }
            }
        )
    }
}
