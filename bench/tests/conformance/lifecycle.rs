//! Start and stop: a taken port is one line and exit 1; SIGTERM answers what is in flight;
//! a second signal exits at once.

use super::*;

/// A start-up failure is one line, `NAME: what failed`, and exit status 1 in every target:
/// here the port to listen on is taken (a bad flag exits 2, before anything is bound).
pub(crate) fn a_taken_port_is_one_line_and_exit_status_1(
    world: &World,
    binary: Binary,
) -> Result<()> {
    let stack = world.stack()?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?;
    let (status, stderr) = start_that_fails(stack, binary, addr, "failing to listen on")?;
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let expected = format!("{binary}: cannot listen on {addr}");
    ensure!(
        status.code() == Some(1),
        "{binary} exited with {status} on a taken port, not 1: {stderr}"
    );
    ensure!(
        lines.len() == 1 && lines[0].starts_with(&expected),
        "{binary} said {lines:?}, not one line starting {expected:?}"
    );
    drop(taken);
    Ok(())
}

/// SIGTERM drains: 20 requests in flight (counted in pg_sleep) when the signal comes are all
/// answered, no new connection is accepted, and the process exits 0.
pub(crate) fn sigterm_answers_every_request_in_flight_then_exits_0(
    world: &World,
    binary: Binary,
) -> Result<()> {
    let stack = world.stack()?;
    // sync-pool serves one request per worker: 20 workers, so that all 20 are in flight
    // (a request still in the listen backlog was never accepted, and is reset).
    let workers = if binary.model() == Model::ThreadPool {
        "20"
    } else {
        "2"
    };
    // compio-tpc splits its pool between its threads, and the kernel splits the connections
    // by a hash, not evenly: 20 sessions per thread, so that all 20 sleep at once wherever
    // they land.
    let pool = if binary.model() == Model::ThreadPerCore {
        "40"
    } else {
        "20"
    };
    let mut target = stack.launch(
        binary,
        &flags(&[("--workers", workers), ("--pool-size", pool)]),
    )?;
    let addr = target.addr;
    let requests =
        std::thread::spawn(move || contract::burst(addr, "/test?id=7&delay_ms=1500", 20));
    wait_for_sleeping_sessions(stack.database_url(), binary, 20)?;
    target.signal(libc::SIGTERM);
    let responses = requests
        .join()
        .map_err(|_| anyhow::anyhow!("the request threads panicked"))?;
    let statuses: Vec<String> = responses
        .iter()
        .map(|r| match r {
            Ok(response) => response.status.to_string(),
            Err(e) => format!("{e:#}"),
        })
        .collect();
    ensure!(
        statuses.iter().all(|s| s == "200"),
        "requests in flight at SIGTERM: {statuses:?}"
    );
    // Each answer is the connection's last, and says so: a keep-alive client sends nothing
    // more, so nothing it sends is lost to the drain.
    for response in responses.iter().flatten() {
        ensure!(
            response
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close")),
            "an answer during the drain lacks Connection: close: {:?}",
            response.headers
        );
    }
    let status = target
        .wait_exit(Duration::from_secs(10))
        .context("still running 10 s after SIGTERM with nothing in flight")?;
    ensure!(status.success(), "exited with {status} after the drain");
    ensure!(
        client::get(addr, "/health").is_err(),
        "a new connection was answered after the drain"
    );
    Ok(())
}

/// A second signal does not wait for the drain: the process exits at once, with 128 + the
/// signal, although a 5 s request is still in flight.
pub(crate) fn a_second_signal_exits_at_once(world: &World, binary: Binary) -> Result<()> {
    let stack = world.stack()?;
    let mut target = stack.launch(binary, &flags(&[("--workers", "2")]))?;
    let addr = target.addr;
    let request = std::thread::spawn(move || client::get(addr, "/test?id=7&delay_ms=5000"));
    wait_for_sleeping_sessions(stack.database_url(), binary, 1)?;
    target.signal(libc::SIGTERM);
    // Signals of one kind do not queue: send the second once the first has been taken.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(target.log())?.contains("draining") {
        ensure!(Instant::now() < deadline, "no drain started after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    target.signal(libc::SIGINT);
    let status = target
        .wait_exit(Duration::from_secs(3))
        .context("still running 3 s after the second signal")?;
    ensure!(
        status.code() == Some(128 + libc::SIGINT),
        "exited with {status}, expected {}",
        128 + libc::SIGINT
    );
    let answer = request
        .join()
        .map_err(|_| anyhow::anyhow!("the request thread panicked"))?;
    ensure!(
        !answer.is_ok_and(|r| r.status == 200),
        "the 5 s request was answered, so the process did not exit at once"
    );
    Ok(())
}
