//! Concurrency proven by counting: sessions in pg_sleep and fetches in flight at nginx, per
//! model (one worker overlaps requests up to its pool; a thread pool up to its workers).

use super::*;

/// N concurrent requests with a delay, and the peak the model must show (docs/contract.md,
/// "Concurrency semantics").
pub(crate) struct Counting {
    pub(crate) name: &'static str,
    pub(crate) binary: Binary,
    flags: &'static [(&'static str, &'static str)],
    target: &'static str,
    requests: usize,
    /// Peak sessions in pg_sleep (db) or fetches in flight at nginx (upstream).
    expected_peak: i64,
}

pub(crate) const SLEEP_300: &str = "/test?delay_ms=300";

const FETCH_300: &str = "/test?backend=upstream&delay_ms=300";

/// Four upstream pages per request, each after 300 ms.
const FANOUT_4: &str = "/test?backend=upstream&delay_ms=300&fanout=4";

/// The blocking models' rules: a request holds its OS thread while it waits.
fn blocking_cases() -> Vec<Counting> {
    use Binary::*;
    vec![
        // sync-pool: a worker serves one request at a time, whatever the pool allows.
        Counting {
            name: "sync_pool_never_runs_more_queries_than_workers",
            binary: SyncPool,
            flags: &[("--workers", "4"), ("--pool-size", "20")],
            target: SLEEP_300,
            requests: 20,
            expected_peak: 4,
        },
        Counting {
            name: "sync_pool_never_fetches_more_pages_than_workers",
            binary: SyncPool,
            flags: &[("--workers", "4")],
            target: FETCH_300,
            requests: 20,
            expected_peak: 4,
        },
        // sync-thread: a thread per connection, bounded by the pool and by --max-threads.
        Counting {
            name: "sync_thread_queries_are_bounded_by_the_pool",
            binary: SyncThread,
            flags: &[("--pool-size", "8")],
            target: SLEEP_300,
            requests: 20,
            expected_peak: 8,
        },
        Counting {
            name: "sync_thread_queries_are_bounded_by_max_threads",
            binary: SyncThread,
            flags: &[("--pool-size", "20"), ("--max-threads", "6")],
            target: SLEEP_300,
            requests: 20,
            expected_peak: 6,
        },
        Counting {
            name: "sync_thread_overlaps_a_fetch_per_connection",
            binary: SyncThread,
            flags: &[],
            target: FETCH_300,
            requests: 20,
            expected_peak: 20,
        },
        // fanout=4: sync code fetches a request's pages one after another, one in flight per
        // thread; with --fanout threads, all four at once.
        Counting {
            name: "sync_pool_fetches_a_requests_pages_one_after_another",
            binary: SyncPool,
            flags: &[("--workers", "4")],
            target: FANOUT_4,
            requests: 4,
            expected_peak: 4,
        },
        Counting {
            name: "sync_pool_with_fanout_threads_fetches_them_at_once",
            binary: SyncPool,
            flags: &[("--workers", "4"), ("--fanout", "threads")],
            target: FANOUT_4,
            requests: 4,
            expected_peak: 16,
        },
        Counting {
            name: "sync_thread_fetches_a_requests_pages_one_after_another",
            binary: SyncThread,
            flags: &[],
            target: FANOUT_4,
            requests: 5,
            expected_peak: 5,
        },
        Counting {
            name: "sync_thread_with_fanout_threads_fetches_them_at_once",
            binary: SyncThread,
            flags: &[("--fanout", "threads")],
            target: FANOUT_4,
            requests: 5,
            expected_peak: 20,
        },
    ]
}

pub(crate) fn counting_cases() -> Vec<Counting> {
    let mut cases = blocking_cases();
    // Async, green and thread per core: one worker thread overlaps every request, up to the
    // pool. For may-green this is the proof that nothing blocks the OS thread: a blocking
    // driver would show one session in pg_sleep at a time; for compio-tpc, that its one
    // io_uring thread keeps 20 sleeps in flight.
    for &binary in TARGETS.iter().filter(|b| b.model().overlaps_requests()) {
        cases.push(Counting {
            name: "one_worker_overlaps_20_sleeps_with_pool_20",
            binary,
            flags: &[("--workers", "1"), ("--pool-size", "20")],
            target: SLEEP_300,
            requests: 20,
            expected_peak: 20,
        });
        cases.push(Counting {
            name: "pool_of_5_caps_sleeps_at_5",
            binary,
            flags: &[("--workers", "1"), ("--pool-size", "5")],
            target: SLEEP_300,
            requests: 20,
            expected_peak: 5,
        });
        cases.push(Counting {
            name: "one_worker_overlaps_20_upstream_fetches",
            binary,
            flags: &[("--workers", "1")],
            target: FETCH_300,
            requests: 20,
            expected_peak: 20,
        });
        // fanout=4: a task joins four futures, a coroutine four coroutines: 5 × 4 at once.
        cases.push(Counting {
            name: "one_worker_overlaps_the_4_fetches_of_each_of_5_requests",
            binary,
            flags: &[("--workers", "1")],
            target: FANOUT_4,
            requests: 5,
            expected_peak: 20,
        });
    }
    // Pipelined: one connection per worker, whatever the load and the pool size; PostgreSQL
    // runs a connection's queries one at a time, so W sessions sleep at once.
    for &binary in TARGETS.iter().filter(|b| b.pipelines()) {
        cases.push(Counting {
            name: "pipelined_sleeps_once_per_worker",
            binary,
            flags: &[
                ("--db-mode", "pipelined"),
                ("--workers", "3"),
                ("--pool-size", "20"),
            ],
            target: SLEEP_300,
            requests: 20,
            expected_peak: 3,
        });
        cases.push(Counting {
            name: "pipelined_one_worker_serialises_sleeps",
            binary,
            flags: &[("--db-mode", "pipelined"), ("--workers", "1")],
            target: SLEEP_300,
            requests: 8,
            expected_peak: 1,
        });
    }
    cases
}

pub(crate) fn run_counting(world: &World, case: &Counting) -> Result<()> {
    let stack = world.stack()?;
    let target = stack.launch(case.binary, &flags(case.flags))?;
    let subject = world.subject(stack, &target, None);
    let started = std::time::Instant::now();
    let burst = contract::burst_with_peaks(&subject, case.target, case.requests)?;
    let took = started.elapsed();
    ensure!(
        burst.all_ok(),
        "not every request succeeded: {:?}",
        burst.statuses()
    );
    let peak = if case.target.contains("backend=upstream") {
        burst.upstream_in_flight.context("no upstream sampler")?
    } else {
        burst.db.in_sleep
    };
    eprintln!(
        "  {}::{}: peak {peak} (expected {}), {} samples",
        case.binary, case.name, case.expected_peak, burst.db.samples
    );
    // Full overlap also shows in the wall time: well under the serial 20 × 300 ms (a loose
    // bound, half of it; the count above is the precise test).
    if case.expected_peak == case.requests as i64 && case.target != FANOUT_4 {
        let serial = std::time::Duration::from_millis(300 * case.requests as u64);
        ensure!(
            took < serial / 2,
            "{} overlapping requests took {took:?}, not well under the serial {serial:?}",
            case.requests
        );
    }
    if case.flags.contains(&("--db-mode", "pipelined")) {
        ensure!(
            burst.db.sessions == case.expected_peak,
            "pipelined with {:?}: {} sessions open at the peak, expected one per worker ({})",
            case.flags,
            burst.db.sessions,
            case.expected_peak
        );
    }
    ensure!(
        peak == case.expected_peak,
        "{} concurrent {} with {:?}: peak {} (sessions in pg_sleep, or fetches at nginx), expected {}; {} samples",
        case.requests,
        case.target,
        case.flags,
        peak,
        case.expected_peak,
        burst.db.samples
    );
    Ok(())
}
