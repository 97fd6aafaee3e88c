//! The contract, checked against every target on the real stack: a private PostgreSQL, the
//! upstream nginx behind the targets, and an nginx proxy in front of each.
//!
//! Adding a target is one line in `TARGETS`; adding a model's counting rule is one entry in
//! `counting_cases`. Tests run one at a time (sessions are counted per target), and print as
//! `<target>::<check>`, so `cargo test --test conformance -- tokio-axum` runs one target.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{ensure, Context, Result};
use bench::checks::{self, Subject};
use bench::stack::{flags, Nginx, Stack, StackOptions, Target};
use libtest_mimic::{Arguments, Failed, Trial};
use shared::Binary;

/// The targets under test.
const TARGETS: &[Binary] = &[Binary::TokioAxum, Binary::TokioActix, Binary::TokioHyper];

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

fn counting_cases() -> Vec<Counting> {
    let mut cases = Vec::new();
    for &binary in TARGETS {
        // Async: one worker thread overlaps every request, up to the pool.
        cases.push(Counting {
            name: "one_worker_overlaps_20_sleeps_with_pool_20",
            binary,
            flags: &[("--workers", "1"), ("--pool-size", "20")],
            target: "/test?delay_ms=300",
            requests: 20,
            expected_peak: 20,
        });
        cases.push(Counting {
            name: "pool_of_5_caps_sleeps_at_5",
            binary,
            flags: &[("--workers", "1"), ("--pool-size", "5")],
            target: "/test?delay_ms=300",
            requests: 20,
            expected_peak: 5,
        });
        cases.push(Counting {
            name: "one_worker_overlaps_20_upstream_fetches",
            binary,
            flags: &[("--workers", "1")],
            target: "/test?backend=upstream&delay_ms=300",
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

fn run_counting(world: &World, case: &Counting) -> Result<()> {
    let stack = world.stack()?;
    let target = stack.launch(case.binary, &flags(case.flags))?;
    let subject = world.subject(stack, &target, None);
    let burst = checks::burst_with_peaks(&subject, case.target, case.requests)?;
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
        trials.push(trial(
            &world,
            format!("{binary}::pool_timeout_is_503"),
            move |w| pool_timeout_is_503(w, binary),
        ));
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
