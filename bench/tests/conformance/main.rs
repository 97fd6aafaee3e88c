//! The contract, checked against every target on the real stack: a private PostgreSQL, the
//! upstream nginx behind the targets, and an nginx proxy in front of each.
//!
//! A target added to `shared::Binary::ALL` is tested here (`TARGETS`); a model's counting rule
//! is one entry in `counting_cases`. Tests run one at a time (sessions are counted per target),
//! and print as `<target>::<check>`, so `cargo test --test conformance -- tokio-axum` runs one target.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bench::client;
use bench::contract::{self, Server};
use bench::stack::{flags, Nginx, Stack, StackOptions, Target};
use libtest_mimic::{Arguments, Failed, Trial};
use shared::{Binary, Model};

mod counting;
mod database;
mod descriptors;
mod faults;
mod http;
mod lifecycle;
mod memory;
mod thread_per_core;
mod work;

/// The targets under test: every binary of the contract (`Binary::ALL`).
const TARGETS: &[Binary] = &Binary::ALL;

/// The stack, started on first use, and one default instance per target behind its own proxy.
struct World {
    stack: OnceLock<Result<Stack, String>>,
    instances: Mutex<HashMap<Binary, Arc<Instance>>>,
}

struct Instance {
    subject: Server,
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
    ) -> Server {
        Server {
            binary: Some(target.binary),
            name: target.binary.name().to_string(),
            direct: target.addr,
            proxied,
            database_url: stack.database_url().to_string(),
            upstream: Some(stack.upstream_addr),
            rows: 1_000_000,
            app: Some(shared::sql::application_name(target.binary).to_string()),
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

fn run_check(world: &World, binary: Binary, check: &contract::Check) -> Result<()> {
    let instance = world.instance(binary)?;
    (check.run)(&instance.subject)
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

/// Starts `binary` on `addr` (without the contract's environment variables) for a start-up
/// that must fail, and returns its exit status and what it wrote to stderr; an error when it
/// still runs 10 s later (`why` says what should have stopped it), after killing it.
fn start_that_fails(
    stack: &Stack,
    binary: Binary,
    addr: std::net::SocketAddr,
    why: &str,
) -> Result<(std::process::ExitStatus, String)> {
    let mut command = std::process::Command::new(stack.bin_dir().join(binary.name()));
    for var in bench::stack::target::CONTRACT_ENV {
        command.env_remove(var);
    }
    let mut child = command
        .args(["--listen", &addr.to_string()])
        .args(["--database-url", stack.database_url()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{binary} still runs 10 s after {why} {addr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().context("stderr")?, &mut stderr)?;
    Ok((status, stderr))
}

/// Waits until `n` sessions of `binary` are in `pg_sleep`: the requests are in flight.
fn wait_for_sleeping_sessions(database_url: &str, binary: Binary, n: i64) -> Result<()> {
    let mut observer = bench::observe::Observer::connect(database_url)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions = observer.sessions(binary.name())?;
        if sessions.in_sleep >= n {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "only {} of {n} requests reached pg_sleep within 10 s",
            sessions.in_sleep
        );
        std::thread::sleep(Duration::from_millis(10));
    }
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

/// Every target's own tests, each starting its own instance with the flags it needs.
const SPECIAL: &[(&str, TargetTest)] = &[
    (
        "a_panicking_handler_is_a_500_and_the_target_lives",
        faults::a_panicking_handler_is_a_500_and_the_target_lives,
    ),
    (
        "a_flapping_upstream_never_kills_the_target",
        faults::a_flapping_upstream_never_kills_the_target,
    ),
    (
        "the_descriptor_limit_is_raised_to_the_hard_limit",
        descriptors::the_descriptor_limit_is_raised_to_the_hard_limit,
    ),
    (
        "a_spent_descriptor_budget_queues_clients_and_answers_every_one",
        descriptors::a_spent_descriptor_budget_queues_clients_and_answers_every_one,
    ),
    (
        "a_spent_budget_holds_with_16_fetches_per_request",
        descriptors::a_spent_budget_holds_with_16_fetches_per_request,
    ),
    (
        "clients_that_hang_up_mid_fetch_leave_no_5xx_for_the_next",
        descriptors::clients_that_hang_up_mid_fetch_leave_no_5xx_for_the_next,
    ),
    (
        "out_of_descriptors_for_a_fetch_is_503_not_502",
        descriptors::out_of_descriptors_for_a_fetch_is_503_not_502,
    ),
    (
        "a_taken_port_is_one_line_and_exit_status_1",
        lifecycle::a_taken_port_is_one_line_and_exit_status_1,
    ),
    (
        "repeated_connection_storms_reach_a_steady_state",
        memory::repeated_connection_storms_reach_a_steady_state,
    ),
    ("pool_timeout_is_503", database::pool_timeout_is_503),
    (
        "db_unreachable_is_a_fast_503_while_health_stays_200",
        database::db_unreachable_is_a_fast_503_while_health_stays_200,
    ),
    (
        "header_and_idle_timeouts_follow_the_flags",
        http::header_and_idle_timeouts_follow_the_flags,
    ),
    (
        "sigterm_answers_every_request_in_flight_then_exits_0",
        lifecycle::sigterm_answers_every_request_in_flight_then_exits_0,
    ),
    (
        "a_second_signal_exits_at_once",
        lifecycle::a_second_signal_exits_at_once,
    ),
    (
        "upstream_failures_are_502_and_504",
        http::upstream_failures_are_502_and_504,
    ),
    (
        "recovers_after_the_database_restarts",
        database::recovers_after_the_database_restarts,
    ),
    (
        "db_waiters_are_served_in_arrival_order",
        database::db_waiters_are_served_in_arrival_order,
    ),
    (
        "a_request_that_holds_the_cpu_holds_up_only_its_own_thread",
        work::a_request_that_holds_the_cpu_holds_up_only_its_own_thread,
    ),
];

/// The tests of the targets whose PostgreSQL client pipelines (`Binary::pipelines`).
const PIPELINED: &[(&str, TargetTest)] = &[
    (
        "pipelined_connections_are_replaced_when_killed",
        database::pipelined_connections_are_replaced_when_killed,
    ),
    (
        "pipelined_recovers_after_the_database_restarts",
        database::pipelined_recovers_after_the_database_restarts,
    ),
    (
        "pipelined_waiters_are_served_in_arrival_order",
        database::pipelined_waiters_are_served_in_arrival_order,
    ),
];

/// The thread-per-core model's: a thread-per-core target splits its pool between its threads.
const PER_CORE: &[(&str, TargetTest)] = &[(
    "the_pool_is_split_across_the_threads",
    thread_per_core::the_pool_is_split_across_the_threads,
)];

/// compio's own: io_uring.
const IO_URING: &[(&str, TargetTest)] = &[
    (
        "an_io_uring_per_worker_while_it_serves",
        thread_per_core::an_io_uring_per_worker_while_it_serves,
    ),
    (
        "refuses_to_start_without_io_uring",
        thread_per_core::refuses_to_start_without_io_uring,
    ),
];

/// The tests of `binary` beyond the contract's checks.
fn tests_of(binary: Binary) -> Vec<(&'static str, TargetTest)> {
    let pipelined = if binary.pipelines() { PIPELINED } else { &[] };
    let per_core = match binary.model() {
        Model::ThreadPerCore => PER_CORE,
        Model::ThreadPerConnection | Model::ThreadPool | Model::Tokio | Model::Green => &[],
    };
    let io_uring = if binary == Binary::CompioTpc {
        IO_URING
    } else {
        &[]
    };
    [SPECIAL, pipelined, per_core, io_uring].concat()
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
        for check in contract::CHECKS {
            trials.push(trial(
                &world,
                format!("{binary}::{}", check.name),
                move |w| run_check(w, binary, check),
            ));
        }
        for (name, test) in tests_of(binary) {
            trials.push(trial(&world, format!("{binary}::{name}"), move |w| {
                test(w, binary)
            }));
        }
    }
    for case in counting::counting_cases() {
        let name = format!("{}::{}", case.binary, case.name);
        trials.push(trial(&world, name, move |w| {
            counting::run_counting(w, &case)
        }));
    }

    let conclusion = libtest_mimic::run(&args, trials);
    // Stop every process before exiting: exit() skips destructors.
    drop(world);
    conclusion.exit();
}
