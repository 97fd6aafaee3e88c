//! `work=N` where each model runs it, counted: a request that holds a CPU holds up the other
//! requests of an event loop, a green worker or a core's thread, and nobody else's.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bench::client;
use bench::stack::flags;
use shared::{Binary, Model};

use super::World;

/// Heavy requests, one after another on one client, each with the most work a request may ask.
const HEAVY: u32 = 8;
/// Probes answered per heavy request, at most, where a heavy one holds the probe's worker: the
/// probes only get in between two heavy requests' work (while the heavy client reads its
/// answer, connects again and its row is fetched). Measured: 1 to 5 in every such target.
const HELD_AT_MOST: u32 = 30;
/// Probes answered per heavy request, at least, where a heavy one holds only its own thread:
/// a probe takes tens of µs, a heavy request tens of ms. Measured: 470 to 1,070.
const FREE_AT_LEAST: u32 = 100;

/// What a target is started with for the count, and whether its probes are held.
struct Case {
    flags: Vec<(&'static str, &'static str)>,
    held: bool,
    why: &'static str,
}

fn cases(binary: Binary) -> Vec<Case> {
    let one = || vec![("--workers", "1")];
    match binary.model() {
        Model::Tokio => vec![
            Case {
                flags: one(),
                held: true,
                why: "inline, on its one worker thread, which polls nothing else meanwhile",
            },
            Case {
                flags: vec![("--workers", "1"), ("--offload", "blocking")],
                held: false,
                why: "with --offload blocking, on tokio's blocking pool, the worker free",
            },
        ],
        Model::Green => vec![Case {
            flags: one(),
            held: true,
            why: "in its coroutine, on its one worker: may does not preempt",
        }],
        Model::ThreadPerCore => vec![Case {
            flags: one(),
            held: true,
            why: "on its one core's thread, which serves every connection",
        }],
        Model::ThreadPerConnection => vec![Case {
            flags: Vec::new(),
            held: false,
            why: "on the connection's own thread, which the kernel preempts",
        }],
        Model::ThreadPool => vec![Case {
            flags: vec![("--workers", "4")],
            held: false,
            why: "on one worker's thread; the other workers take the probes",
        }],
    }
}

/// A client sends [`HEAVY`] requests with `work=100000` one after another, and another
/// sends `/json` probes one after another meanwhile. The probes answered between the first
/// heavy answer and the last are counted: where the work runs on the thread that would
/// answer the probe, at most [`HELD_AT_MOST`] per heavy request get in; elsewhere at least
/// [`FREE_AT_LEAST`]. Counted, not timed: no figure here depends on the machine's speed.
pub(crate) fn a_request_that_holds_the_cpu_holds_up_only_its_own_thread(
    world: &World,
    binary: Binary,
) -> Result<()> {
    let stack = world.stack()?;
    for case in cases(binary) {
        let target = stack.launch(binary, &flags(&case.flags))?;
        let (probes, intervals) = probes_beside_heavy(target.addr)?;
        let per_heavy = probes / intervals.max(1);
        let flags: Vec<String> = case.flags.iter().map(|(f, v)| format!("{f} {v}")).collect();
        if case.held {
            ensure!(
                per_heavy <= HELD_AT_MOST,
                "{binary} {}: {probes} probes answered during {intervals} heavy requests ({per_heavy} each): the work should hold them up ({})",
                flags.join(" "),
                case.why
            );
        } else {
            ensure!(
                per_heavy >= FREE_AT_LEAST,
                "{binary} {}: only {probes} probes answered during {intervals} heavy requests ({per_heavy} each): the work should not hold them up ({})",
                flags.join(" "),
                case.why
            );
        }
        eprintln!(
            "{binary} {}: {probes} probes during {intervals} heavy requests ({})",
            flags.join(" "),
            case.why
        );
    }
    Ok(())
}

/// (probes answered between the first heavy answer and the last, heavy answers in between).
fn probes_beside_heavy(addr: std::net::SocketAddr) -> Result<(u32, u32)> {
    let heavy_done = Arc::new(AtomicU32::new(0));
    let heavy = {
        let heavy_done = heavy_done.clone();
        std::thread::spawn(move || -> Result<()> {
            let mut bodies = Vec::new();
            for _ in 0..HEAVY {
                let target = "/test?id=7&work=100000";
                let response = client::get(addr, target)?;
                ensure!(response.status == 200, "{target}: {}", response.status);
                bodies.push(response.body);
                heavy_done.fetch_add(1, Ordering::SeqCst);
            }
            // Checked after the count: the check does the work again, and the server would
            // be idle meanwhile.
            for body in bodies {
                shared::work::check(&body, shared::work::MAX_WORK).map_err(anyhow::Error::msg)?;
            }
            Ok(())
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut probes = 0;
    // Bounded: at most 200,000 probes, and a minute.
    for _ in 0..200_000 {
        let before = heavy_done.load(Ordering::SeqCst);
        if before >= HEAVY || Instant::now() > deadline {
            break;
        }
        let response = client::get(addr, "/json").context("a /json probe")?;
        ensure!(response.status == 200, "/json: {}", response.status);
        let after = heavy_done.load(Ordering::SeqCst);
        // Only a probe sent after a heavy answer and answered before the last counts.
        if before >= 1 && after < HEAVY {
            probes += 1;
        }
    }
    heavy
        .join()
        .map_err(|_| anyhow::anyhow!("the heavy client panicked"))??;
    Ok((probes, HEAVY - 1))
}
