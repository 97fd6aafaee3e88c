//! The database side: a pool timeout is a 503, an unreachable database a fast 503, a restart
//! and killed pipelined connections are recovered from, and waiters are served in order.

use super::*;

/// Two slow requests against a pool of one that waits 100 ms: one gets the connection, the
/// other a 503 with a JSON error.
pub(crate) fn pool_timeout_is_503(world: &World, binary: Binary) -> Result<()> {
    let stack = world.stack()?;
    // compio-tpc splits its pool between its threads: with one session, one thread (the
    // only one here) has it, and the other would answer both 503 if both landed there.
    let mut target_flags = vec![("--pool-size", "1"), ("--pool-timeout-ms", "100")];
    if binary.model() == Model::ThreadPerCore {
        target_flags.push(("--workers", "1"));
    }
    let target = stack.launch(binary, &flags(&target_flags))?;
    let subject = world.subject(stack, &target, None);
    let burst = contract::burst(subject.direct, "/test?id=9&delay_ms=1000", 2);
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

/// With the database down (nothing listens on its port), /test answers 503 with a JSON
/// error at once, not after the pool timeout (5 s here): only a busy pool waits. The rest
/// keeps serving.
pub(crate) fn db_unreachable_is_a_fast_503_while_health_stays_200(
    world: &World,
    binary: Binary,
) -> Result<()> {
    let stack = world.stack()?;
    let nobody = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        bench::stack::process::free_port()?
    );
    let target = stack.launch(
        binary,
        &flags(&[("--database-url", &nobody), ("--pool-timeout-ms", "5000")]),
    )?;
    for _ in 0..3 {
        let started = Instant::now();
        let response = client::get(target.addr, "/test?id=1")?;
        let took = started.elapsed();
        expect_json_error(&response, 503, "/test with the database down")?;
        ensure!(
            took < Duration::from_millis(500),
            "a refused database connection took {took:?} to become a 503 (the pool timeout is 5 s)"
        );
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

pub(crate) fn recovers_after_the_database_restarts(world: &World, binary: Binary) -> Result<()> {
    recovers_after_a_restart_with(world, binary, &[])
}

/// The same with one pipelined connection per worker (tokio targets): each worker's
/// connection is replaced without a process restart.
pub(crate) fn pipelined_recovers_after_the_database_restarts(
    world: &World,
    binary: Binary,
) -> Result<()> {
    recovers_after_a_restart_with(world, binary, &[("--db-mode", "pipelined")])
}

fn recovers_after_a_restart_with(
    world: &World,
    binary: Binary,
    extra: &[(&str, &str)],
) -> Result<()> {
    let stack = world.stack()?;
    if !stack.postgres.is_embedded() {
        eprintln!("  skipped: the database is not ours to restart");
        return Ok(());
    }
    let mut target_flags = vec![("--pool-size", "4"), ("--workers", "4")];
    target_flags.extend_from_slice(extra);
    let target = stack.launch(binary, &flags(&target_flags))?;
    // Open every pooled connection.
    let warm = contract::burst(target.addr, "/test?id=1&delay_ms=100", 4);
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
    let burst = contract::burst(target.addr, "/test?id=2&delay_ms=50", 4);
    let statuses = contract::statuses(&burst);
    ensure!(
        statuses.iter().all(|s| *s == 200),
        "concurrent requests after the restart: {statuses:?}"
    );
    Ok(())
}

/// Pipelined (tokio targets): the connections are ended under the target
/// (`pg_terminate_backend`), some while queries are in flight on them; every request
/// afterwards gets its row, and the target holds one connection per worker again, not more.
pub(crate) fn pipelined_connections_are_replaced_when_killed(
    world: &World,
    binary: Binary,
) -> Result<()> {
    let stack = world.stack()?;
    let target = stack.launch(
        binary,
        &flags(&[("--db-mode", "pipelined"), ("--workers", "2")]),
    )?;
    let warm = contract::burst(target.addr, "/test?id=1&delay_ms=20", 8);
    ensure!(
        warm.iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status == 200)),
        "warm-up failed"
    );
    let mut observer = bench::observe::Observer::connect(stack.database_url())?;
    // Killed while idle.
    let killed = observer.terminate(binary.name())?;
    ensure!(killed >= 1, "the target had no session to end");
    for id in 1..=6 {
        let response = client::get(target.addr, &format!("/test?id={id}"))?;
        ensure!(
            response.status == 200,
            "request {id} after its connection was ended: {} {}",
            response.status,
            response.text()
        );
    }
    // Killed while two requests sleep on them.
    let addr = target.addr;
    let in_flight =
        std::thread::spawn(move || contract::burst(addr, "/test?id=3&delay_ms=1000", 2));
    wait_for_sleeping_sessions(stack.database_url(), binary, 1)?;
    observer.terminate(binary.name())?;
    let answered = in_flight
        .join()
        .map_err(|_| anyhow::anyhow!("request thread panicked"))?;
    let statuses = contract::statuses(&answered);
    ensure!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "requests in flight when their connection ended: {statuses:?} (a row or a 503, nothing else)"
    );
    let burst = contract::burst(target.addr, "/test?id=2&delay_ms=20", 8);
    let statuses = contract::statuses(&burst);
    ensure!(
        statuses.iter().all(|s| *s == 200),
        "concurrent requests after the connections were replaced: {statuses:?}"
    );
    let sessions = observer.sessions(binary.name())?.total;
    ensure!(
        sessions <= 2,
        "{sessions} sessions after the replacement; pipelined with 2 workers holds at most 2"
    );
    Ok(())
}

/// The DB waiters of every model are served first come, first served: with one connection
/// held by a long request, six more arrive 100 ms apart, and their answers must come back in
/// the order they arrived (each runs 30 ms, one at a time). In pool mode the order is the
/// pool's queue; pipelined, the order of the queries on the worker's connection.
pub(crate) fn db_waiters_are_served_in_arrival_order(world: &World, binary: Binary) -> Result<()> {
    served_in_arrival_order(world, binary, &[])
}

pub(crate) fn pipelined_waiters_are_served_in_arrival_order(
    world: &World,
    binary: Binary,
) -> Result<()> {
    served_in_arrival_order(world, binary, &[("--db-mode", "pipelined")])
}

fn served_in_arrival_order(world: &World, binary: Binary, extra: &[(&str, &str)]) -> Result<()> {
    const WAITERS: usize = 6;
    let stack = world.stack()?;
    // sync-pool needs a free worker per waiter; the others wait without a thread.
    let workers = if binary.model() == Model::ThreadPool {
        "8"
    } else {
        "1"
    };
    let mut target_flags = vec![
        ("--pool-size", "1"),
        ("--workers", workers),
        ("--pool-timeout-ms", "20000"),
    ];
    target_flags.extend_from_slice(extra);
    let target = stack.launch(binary, &flags(&target_flags))?;
    let addr = target.addr;
    let holder = std::thread::spawn(move || client::get(addr, "/test?id=1&delay_ms=1500"));
    wait_for_sleeping_sessions(stack.database_url(), binary, 1)?;
    let finished = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for waiter in 1..=WAITERS {
        let finished = finished.clone();
        let mut conn = client::Conn::open(addr)?;
        waiters.push(std::thread::spawn(move || -> Result<u16> {
            let response = conn.get(&format!("/test?id={}&delay_ms=30", waiter + 1))?;
            finished
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(waiter);
            Ok(response.status)
        }));
        std::thread::sleep(Duration::from_millis(100));
    }
    let held = holder
        .join()
        .map_err(|_| anyhow::anyhow!("request thread panicked"))??;
    ensure!(held.status == 200, "the holding request: {}", held.status);
    for waiter in waiters {
        let status = waiter
            .join()
            .map_err(|_| anyhow::anyhow!("request thread panicked"))??;
        ensure!(status == 200, "a waiter got {status}");
    }
    let order = finished.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ensure!(
        order == (1..=WAITERS).collect::<Vec<_>>(),
        "waiters that arrived in the order 1..={WAITERS} were served as {order:?}"
    );
    Ok(())
}
