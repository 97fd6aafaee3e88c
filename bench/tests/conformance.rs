//! The contract, checked against every target on the real stack: a private PostgreSQL, the
//! upstream nginx behind the targets, and an nginx proxy in front of each.
//!
//! A target added to `shared::Binary::ALL` is tested here (`TARGETS`); a model's counting rule
//! is one entry in `counting_cases`. Tests run one at a time (sessions are counted per target),
//! and print as `<target>::<check>`, so `cargo test --test conformance -- tokio-axum` runs one target.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{ensure, Context, Result};
use bench::checks::{self, Subject};
use bench::client;
use bench::stack::{flags, Nginx, Stack, StackOptions, Target};
use libtest_mimic::{Arguments, Failed, Trial};
use shared::Binary;

/// The targets under test: every binary of the contract (`Binary::ALL`).
const TARGETS: &[Binary] = &Binary::ALL;

/// N concurrent requests with a delay, and the peak the model must show (CONTRACT.md,
/// "Concurrency semantics").
struct Counting {
    name: &'static str,
    binary: Binary,
    flags: &'static [(&'static str, &'static str)],
    target: &'static str,
    requests: usize,
    /// Peak sessions in pg_sleep (db) or fetches in flight at nginx (upstream).
    expected_peak: i64,
}

const SLEEP_300: &str = "/test?delay_ms=300";
const FETCH_300: &str = "/test?backend=upstream&delay_ms=300";

fn counting_cases() -> Vec<Counting> {
    use Binary::*;
    let mut cases = vec![
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
    ];
    // Async and green: one worker thread overlaps every request, up to the pool. For
    // may-green this is the proof that nothing blocks the OS thread: a blocking driver would
    // show one session in pg_sleep at a time.
    let overlapping = |b: &&Binary| b.name().starts_with("tokio-") || **b == MayGreen;
    for &binary in TARGETS.iter().filter(overlapping) {
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
    }
    cases
}

/// The stack, started on first use, and one default instance per target behind its own proxy.
struct World {
    stack: OnceLock<Result<Stack, String>>,
    instances: Mutex<HashMap<Binary, Arc<Instance>>>,
}

struct Instance {
    subject: Subject,
    _proxy: Nginx,
    _target: Mutex<Target>,
}

impl World {
    fn stack(&self) -> Result<&Stack> {
        self.stack
            .get_or_init(|| Stack::start(&StackOptions::from_env()).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("the stack did not start: {e}"))
    }

    fn subject(
        &self,
        stack: &Stack,
        target: &Target,
        proxied: Option<std::net::SocketAddr>,
    ) -> Subject {
        Subject {
            binary: target.binary,
            direct: target.addr,
            proxied,
            database_url: stack.database_url().to_string(),
            upstream: Some(stack.upstream_addr),
            rows: 1_000_000,
        }
    }

    /// The default instance of `binary`, started on first use.
    fn instance(&self, binary: Binary) -> Result<Arc<Instance>> {
        let mut instances = self.instances.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(instance) = instances.get(&binary) {
            return Ok(instance.clone());
        }
        let stack = self.stack()?;
        let target = stack.launch(binary, &[])?;
        let (proxy, routes) = stack.proxy(&[(binary.name().to_string(), target.addr)], true, 1)?;
        let subject = self.subject(stack, &target, Some(routes[0].listen));
        let instance = Arc::new(Instance {
            subject,
            _proxy: proxy,
            _target: Mutex::new(target),
        });
        instances.insert(binary, instance.clone());
        Ok(instance)
    }
}

fn run_check(world: &World, binary: Binary, check: &checks::Check) -> Result<()> {
    let instance = world.instance(binary)?;
    (check.run)(&instance.subject)
}

/// Two slow requests against a pool of one that waits 100 ms: one gets the connection, the
/// other a 503 with a JSON error.
fn pool_timeout_is_503(world: &World, binary: Binary) -> Result<()> {
    let stack = world.stack()?;
    let target = stack.launch(
        binary,
        &flags(&[("--pool-size", "1"), ("--pool-timeout-ms", "100")]),
    )?;
    let subject = world.subject(stack, &target, None);
    let burst = checks::burst(subject.direct, "/test?id=9&delay_ms=1000", 2);
    let mut statuses: Vec<u16> = burst
        .iter()
        .map(|r| r.as_ref().map_or(0, |r| r.status))
        .collect();
    statuses.sort_unstable();
    ensure!(
        statuses == [200, 503],
        "expected one 200 and one 503, got {statuses:?}"
    );
    let rejected = burst
        .into_iter()
        .flatten()
        .find(|r| r.status == 503)
        .context("no 503")?;
    let body: serde_json::Value = serde_json::from_slice(&rejected.body)
        .with_context(|| format!("503 body is not JSON: {}", rejected.text()))?;
    ensure!(
        body["error"].is_string(),
        "503 body has no error: {}",
        rejected.text()
    );
    Ok(())
}

fn expect_json_error(response: &bench::client::Response, status: u16, what: &str) -> Result<()> {
    ensure!(
        response.status == status,
        "{what}: expected {status}, got {} {}",
        response.status,
        response.text()
    );
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .with_context(|| format!("{what}: body is not JSON: {}", response.text()))?;
    ensure!(
        body["error"].is_string(),
        "{what}: no error in {}",
        response.text()
    );
    Ok(())
}

/// With the database down, /test answers 503 with a JSON error, and the rest keeps serving.
fn db_unreachable_is_503_while_health_stays_200(world: &World, binary: Binary) -> Result<()> {
    let stack = world.stack()?;
    let nobody = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        bench::stack::process::free_port()?
    );
    let target = stack.launch(
        binary,
        &flags(&[("--database-url", &nobody), ("--pool-timeout-ms", "500")]),
    )?;
    for _ in 0..3 {
        let response = client::get(target.addr, "/test?id=1")?;
        expect_json_error(&response, 503, "/test with the database down")?;
    }
    for path in ["/health", "/json"] {
        let response = client::get(target.addr, path)?;
        ensure!(
            response.status == 200,
            "{path} with the database down: {}",
            response.status
        );
    }
    Ok(())
}

/// An upstream that refuses connections is a 502; one that accepts and never answers is a
/// 504 once the delay plus the grace period has passed.
fn upstream_failures_are_502_and_504(world: &World, binary: Binary) -> Result<()> {
    let stack = world.stack()?;
    let refused = format!(
        "http://127.0.0.1:{}/upstream",
        bench::stack::process::free_port()?
    );
    let target = stack.launch(binary, &flags(&[("--upstream-url", &refused)]))?;
    let response = client::get(target.addr, "/test?backend=upstream")?;
    expect_json_error(&response, 502, "an upstream that refuses connections")?;
    drop(target);

    // Accepts connections and holds them, saying nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let silent_url = format!("http://{}/upstream", silent.local_addr()?);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().take(8) {
            held.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
    let target = stack.launch(binary, &flags(&[("--upstream-url", &silent_url)]))?;
    let response = client::get(target.addr, "/test?backend=upstream&delay_ms=0")?;
    expect_json_error(&response, 504, "an upstream that never answers")?;
    let health = client::get(target.addr, "/health")?;
    ensure!(
        health.status == 200,
        "/health after a 504: {}",
        health.status
    );
    Ok(())
}

/// The database restarts under a target with a full pool: every request afterwards succeeds
/// (TechEmpower issue #8790: 13 of the top 20 frameworks did not recover by themselves).
fn recovers_after_the_database_restarts(world: &World, binary: Binary) -> Result<()> {
    let stack = world.stack()?;
    if !stack.postgres.is_embedded() {
        eprintln!("  skipped: the database is not ours to restart");
        return Ok(());
    }
    let target = stack.launch(binary, &flags(&[("--pool-size", "4"), ("--workers", "4")]))?;
    // Open every pooled connection.
    let warm = checks::burst(target.addr, "/test?id=1&delay_ms=100", 4);
    ensure!(
        warm.iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status == 200)),
        "warm-up failed"
    );
    stack.postgres.restart()?;
    for id in 1..=12 {
        let response = client::get(target.addr, &format!("/test?id={id}"))?;
        ensure!(
            response.status == 200,
            "request {id} after the restart: {} {}",
            response.status,
            response.text()
        );
    }
    let burst = checks::burst(target.addr, "/test?id=2&delay_ms=50", 4);
    let statuses: Vec<u16> = burst
        .iter()
        .map(|r| r.as_ref().map_or(0, |r| r.status))
        .collect();
    ensure!(
        statuses.iter().all(|s| *s == 200),
        "concurrent requests after the restart: {statuses:?}"
    );
    Ok(())
}

fn run_counting(world: &World, case: &Counting) -> Result<()> {
    let stack = world.stack()?;
    let target = stack.launch(case.binary, &flags(case.flags))?;
    let subject = world.subject(stack, &target, None);
    let started = std::time::Instant::now();
    let burst = checks::burst_with_peaks(&subject, case.target, case.requests)?;
    let took = started.elapsed();
    ensure!(
        burst.all_ok(),
        "not every request succeeded: {:?}",
        burst.statuses()
    );
    let peak = if case.target == FETCH_300 {
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
    if case.expected_peak == case.requests as i64 {
        let serial = std::time::Duration::from_millis(300 * case.requests as u64);
        ensure!(
            took < serial / 2,
            "{} overlapping requests took {took:?}, not well under the serial {serial:?}",
            case.requests
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

/// A test that starts its own instance of a target.
type TargetTest = fn(&World, Binary) -> Result<()>;

fn trial(
    world: &Arc<World>,
    name: String,
    f: impl FnOnce(&World) -> Result<()> + Send + 'static,
) -> Trial {
    let world = world.clone();
    Trial::test(name, move || {
        f(&world).map_err(|e| Failed::from(format!("{e:#}")))
    })
}

fn main() {
    let mut args = Arguments::from_args();
    // Sessions are counted per application_name: one test at a time.
    args.test_threads = Some(1);
    let world = Arc::new(World {
        stack: OnceLock::new(),
        instances: Mutex::new(HashMap::new()),
    });

    let mut trials = Vec::new();
    for &binary in TARGETS {
        for check in checks::CHECKS {
            trials.push(trial(
                &world,
                format!("{binary}::{}", check.name),
                move |w| run_check(w, binary, check),
            ));
        }
        // Each starts its own instance with the flags it needs.
        let special: [(&str, TargetTest); 4] = [
            ("pool_timeout_is_503", pool_timeout_is_503),
            (
                "db_unreachable_is_503_while_health_stays_200",
                db_unreachable_is_503_while_health_stays_200,
            ),
            (
                "upstream_failures_are_502_and_504",
                upstream_failures_are_502_and_504,
            ),
            (
                "recovers_after_the_database_restarts",
                recovers_after_the_database_restarts,
            ),
        ];
        for (name, test) in special {
            trials.push(trial(&world, format!("{binary}::{name}"), move |w| {
                test(w, binary)
            }));
        }
    }
    for case in counting_cases() {
        let name = format!("{}::{}", case.binary, case.name);
        trials.push(trial(&world, name, move |w| run_counting(w, &case)));
    }

    let conclusion = libtest_mimic::run(&args, trials);
    // Stop every process before exiting: exit() skips destructors.
    drop(world);
    conclusion.exit();
}
