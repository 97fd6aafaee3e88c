//! Faults that must never take a target down: a handler that panics, and an upstream that
//! goes away and comes back, resetting and refusing connections, many times a second. Each is hit repeatedly and on
//! purpose, for every target; the target must answer every request (500 for the panic, 502
//! for the upstream) and still be running afterwards, serving the next request.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use bench::client;
use bench::stack::{flags, Target};
use shared::Binary;

use super::World;

/// The log line each caught panic leaves (shared::panics).
const PANIC_LINE: &str = "a request's handler panicked (GET /panic)";

/// A handler that panics is answered 500 (a JSON error, `Connection: close`), the panic is
/// logged with its request, and the process, its workers and its pool live on: more panics
/// than workers, one after another and then all at once, and afterwards as many delayed
/// queries at once as there are workers all answer 200. Without `--panic-route`, `/panic` is
/// a 404 like any unknown path.
pub fn a_panicking_handler_is_a_500_and_the_target_lives(
    world: &World,
    binary: Binary,
) -> Result<()> {
    const WORKERS: usize = 2;
    const PANICS: usize = 8;
    let stack = world.stack()?;
    let default = world.instance(binary)?;
    let response = client::get(default.subject.direct, "/panic")?;
    ensure!(
        response.status == 404,
        "/panic without --panic-route: {} {}",
        response.status,
        response.text()
    );

    let workers = WORKERS.to_string();
    let mut target = stack.launch(
        binary,
        &flags(&[("--panic-route", "true"), ("--workers", &workers)]),
    )?;
    let expect_500 = |response: &client::Response| -> Result<()> {
        ensure!(
            response.status == 500
                && response.text().contains("the request's handler panicked")
                && response.header("connection") == Some("close"),
            "/panic: {} (Connection: {:?}) {}",
            response.status,
            response.header("connection"),
            response.text()
        );
        Ok(())
    };
    for _ in 0..PANICS {
        expect_500(&client::get(target.addr, "/panic")?)?;
    }
    for response in at_once(target.addr, "/panic", PANICS)? {
        expect_500(&response)?;
    }
    if let Some(death) = target.death("the panics") {
        bail!("{death}");
    }
    for response in at_once(target.addr, "/test?delay_ms=200", WORKERS * 2)? {
        ensure!(
            response.status == 200,
            "/test after the panics: {} {}",
            response.status,
            response.text()
        );
    }
    let log = std::fs::read_to_string(target.log())?;
    let logged = log.lines().filter(|l| l.contains(PANIC_LINE)).count();
    ensure!(
        logged == 2 * PANICS,
        "{logged} lines with {PANIC_LINE:?} in the log for {} panics:\n{}",
        2 * PANICS,
        bench::stack::process::tail(target.log(), 10)
    );
    Ok(())
}

/// `GET path` from `n` clients at once, each on its own connection: their answers.
fn at_once(addr: SocketAddr, path: &'static str, n: usize) -> Result<Vec<client::Response>> {
    let clients: Vec<_> = (0..n)
        .map(|_| std::thread::spawn(move || client::get(addr, path)))
        .collect();
    clients
        .into_iter()
        .map(|c| {
            c.join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))?
        })
        .collect()
}

/// Clients hammering a target whose upstream flaps: it serves keep-alive pages for 150 ms,
/// then goes away for 150 ms (every open connection reset, every connect refused, within
/// microseconds on loopback), twelve times. Every answer must be a 200 or a 502, and the
/// target must live and serve afterwards. An upstream outage like this killed may-green about
/// once in 45 runs of the harness's fault test, through a use-after-free in may
/// (vendor/may/PATCHES.md).
pub fn a_flapping_upstream_never_kills_the_target(world: &World, binary: Binary) -> Result<()> {
    let stack = world.stack()?;
    let flapping = Flapping::start(12, Duration::from_millis(150))?;
    let mut target = stack.launch(binary, &flags(&[("--upstream-url", &flapping.url())]))?;
    let tally = hammer(&target, 16, || flapping.is_over())?;
    if let Some(death) = target.death("a storm of fetches from an upstream that flaps") {
        bail!("{death}");
    }
    let other: BTreeMap<_, _> = tally
        .statuses
        .iter()
        .filter(|(s, _)| ![200, 502].contains(*s))
        .collect();
    ensure!(
        other.is_empty() && tally.statuses.contains_key(&200) && tally.statuses.contains_key(&502),
        "every answer should be a 200 or a 502, and both should come; got {:?} ({} transport errors, first: {:?})",
        tally.statuses,
        tally.errors,
        tally.first_error
    );
    for path in ["/health", "/test?delay_ms=0"] {
        let response = client::get(target.addr, path)?;
        ensure!(
            response.status == 200,
            "{path} after the flapping upstream: {} {}",
            response.status,
            response.text()
        );
    }
    eprintln!(
        "  {binary}: {} answers {:?} over {} outages ({} connections reset, {} transport errors); alive",
        tally.answered(),
        tally.statuses,
        flapping.cycles,
        flapping.resets.load(Ordering::Relaxed),
        tally.errors
    );
    Ok(())
}

/// What the clients got: statuses, and requests that got no answer.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    errors: usize,
    first_error: Option<String>,
}

impl Tally {
    fn answered(&self) -> usize {
        self.statuses.values().sum()
    }
}

/// `clients` threads, each sending upstream fetches on a keep-alive connection (a new one
/// after an error) until `over()`, within 60 s.
fn hammer(target: &Target, clients: usize, over: impl Fn() -> bool + Sync) -> Result<Tally> {
    let addr = target.addr;
    let deadline = Instant::now() + Duration::from_secs(60);
    let over = &over;
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    let mut conn: Option<client::Conn> = None;
                    while !over() && Instant::now() < deadline {
                        let result = match conn.take() {
                            Some(c) => Ok(c),
                            None => client::Conn::open(addr),
                        }
                        .and_then(|mut c| {
                            let r = c.get("/test?backend=upstream&delay_ms=0");
                            conn = Some(c);
                            r
                        });
                        match result {
                            Ok(response) => {
                                *tally.statuses.entry(response.status).or_default() += 1;
                                if !response.reusable {
                                    conn = None;
                                }
                            }
                            Err(e) => {
                                tally.errors += 1;
                                tally.first_error.get_or_insert_with(|| format!("{e:#}"));
                                conn = None;
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        let mut total = Tally::default();
        for thread in threads {
            let tally = thread
                .join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
            for (status, n) in tally.statuses {
                *total.statuses.entry(status).or_default() += n;
            }
            total.errors += tally.errors;
            if total.first_error.is_none() {
                total.first_error = tally.first_error;
            }
        }
        Ok(total)
    })
}

/// An upstream on one port that flaps `cycles` times: `phase` serving pages (HTTP/1.1,
/// keep-alive; every fourth connection is reset after its first request instead), then
/// `phase` away: the listener closed (connects refused) and every open connection reset
/// (SO_LINGER 0, then close). Stops after its cycles, or when dropped.
struct Flapping {
    addr: SocketAddr,
    cycles: usize,
    over: Arc<AtomicBool>,
    resets: Arc<AtomicUsize>,
}

impl Flapping {
    fn start(cycles: usize, phase: Duration) -> Result<Flapping> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let over = Arc::new(AtomicBool::new(false));
        let resets = Arc::new(AtomicUsize::new(0));
        let (done, reset_count) = (over.clone(), resets.clone());
        std::thread::spawn(move || {
            let mut accepted = 0usize;
            for _ in 0..cycles {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                // Serving: `up` is true until the outage begins.
                let up = Arc::new(AtomicBool::new(true));
                if let Ok(listener) = TcpListener::bind(addr) {
                    let _ = listener.set_nonblocking(true);
                    let end = Instant::now() + phase;
                    while Instant::now() < end {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                accepted += 1;
                                let (up, resets) = (up.clone(), reset_count.clone());
                                let reset_early = accepted.is_multiple_of(4);
                                std::thread::spawn(move || {
                                    serve_until_down(stream, &up, reset_early);
                                    resets.fetch_add(1, Ordering::Relaxed);
                                });
                            }
                            Err(_) => std::thread::sleep(Duration::from_micros(200)),
                        }
                    }
                }
                // Away: the listener is closed; the open connections reset themselves.
                up.store(false, Ordering::Relaxed);
                std::thread::sleep(phase);
            }
            done.store(true, Ordering::Relaxed);
        });
        Ok(Flapping {
            addr,
            cycles,
            over,
            resets,
        })
    }

    fn url(&self) -> String {
        format!("http://{}/upstream", self.addr)
    }

    fn is_over(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }
}

impl Drop for Flapping {
    fn drop(&mut self) {
        self.over.store(true, Ordering::Relaxed);
    }
}

/// Answers requests on `stream` with a small page while `up`; then resets it. With
/// `reset_early`, resets it after reading the first request, without an answer.
fn serve_until_down(mut stream: TcpStream, up: &AtomicBool, reset_early: bool) {
    const PAGE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 14\r\n\r\nflapping page\n";
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while up.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.drain(..end + 4);
            if reset_early {
                let _ = reset(&stream);
                return;
            }
            // The upstream's own wait, as nginx's echo_sleep: fetches are in flight when the
            // outage comes.
            std::thread::sleep(Duration::from_millis(2));
            if stream.write_all(PAGE).is_err() {
                return;
            }
        }
    }
    let _ = reset(&stream);
}

/// Closes with a reset instead of a FIN: SO_LINGER on with a zero timeout.
fn reset(stream: &TcpStream) -> Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct we own, on a descriptor the stream owns.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    ensure!(rc == 0, "{}", std::io::Error::last_os_error());
    Ok(())
}
