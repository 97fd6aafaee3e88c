//! Faults that must never take a target down: a handler that panics, and an upstream that
//! goes away and comes back under load, cutting fetches in flight and refusing connects. Each is hit repeatedly and on
//! purpose, for every target; the target must answer every request (500 for the panic, 502
//! for the upstream) and still be running afterwards, serving the next request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
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

/// Clients hammering a target while its upstream, a real nginx serving the page after a 5 ms
/// `echo_sleep` (the stack's own kind), is stopped (fast shutdown: the fetches in flight are
/// cut, then every connect is refused) and started again, 20 times, 200 ms each way. Every
/// answer must be a 200 or a 502, and the target must live and serve afterwards. The harness's
/// one-second outage killed may-green about once in 45 runs, through a use-after-free in may
/// (vendor/may/PATCHES.md); with may's race window widened by 200 µs, this test killed
/// may-green on the unpatched may in 5 of 10 runs, and on the patched one in none of 10.
pub fn a_flapping_upstream_never_kills_the_target(world: &World, binary: Binary) -> Result<()> {
    const CYCLES: usize = 20;
    const PHASE: Duration = Duration::from_millis(200);
    let stack = world.stack()?;
    let dir = stack.run_dir.join(format!("flapping-{binary}"));
    std::fs::create_dir_all(&dir)?;
    let (nginx, addr) = bench::stack::nginx::start_upstream(&dir, &dir.join("pids"))?;
    let url = format!("http://{addr}/upstream");
    let mut target = stack.launch(binary, &flags(&[("--upstream-url", &url)]))?;
    let tally = std::thread::scope(|scope| {
        let flapping = scope.spawn(|| -> Result<()> {
            for _ in 0..CYCLES {
                std::thread::sleep(PHASE);
                nginx.stop();
                std::thread::sleep(PHASE);
                nginx.start_again()?;
            }
            Ok(())
        });
        let tally = hammer(&target, "/test?backend=upstream&delay_ms=5", 16, || {
            flapping.is_finished()
        });
        flapping
            .join()
            .map_err(|_| anyhow::anyhow!("the flapping thread panicked"))??;
        tally
    })?;
    if let Some(death) = target.death(&format!("{CYCLES} stops of its upstream under load")) {
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
    for path in [
        "/health",
        "/test?delay_ms=0",
        "/test?backend=upstream&delay_ms=0",
    ] {
        let response = client::get(target.addr, path)?;
        ensure!(
            response.status == 200,
            "{path} after the flapping upstream: {} {}",
            response.status,
            response.text()
        );
    }
    eprintln!(
        "  {binary}: {} answers {:?} over {CYCLES} upstream stops ({} transport errors); alive",
        tally.answered(),
        tally.statuses,
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
fn hammer(
    target: &Target,
    path: &str,
    clients: usize,
    over: impl Fn() -> bool + Sync,
) -> Result<Tally> {
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
                            let r = c.get(path);
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
