//! HTTP behaviour under the flags: header and idle timeouts, and upstream failures as 502 and
//! 504.

use super::*;

/// The same timeouts in every HTTP layer, from the flags: a head still incomplete after
/// `--header-timeout-ms` gets 408 and the connection closes; an idle keep-alive connection is
/// closed after `--keep-alive-timeout-ms` (sync-pool closes after every answer). The times are
/// lower bounds (no answer can come sooner) and generous upper ones.
pub(crate) fn header_and_idle_timeouts_follow_the_flags(
    world: &World,
    binary: Binary,
) -> Result<()> {
    let stack = world.stack()?;
    let target = stack.launch(
        binary,
        &flags(&[
            ("--header-timeout-ms", "1000"),
            ("--keep-alive-timeout-ms", "500"),
        ]),
    )?;
    let mut slow = client::Conn::open(target.addr)?;
    let started = Instant::now();
    slow.send(b"GET /json HTTP/1.1\r\nHost: x\r\n")?;
    let response = slow.read(false)?;
    let took = started.elapsed();
    // actix answers its own 408 with an empty body (a bare error of the HTTP layer).
    ensure!(
        response.status == 408,
        "a head that never ends: expected 408, got {} {}",
        response.status,
        response.text()
    );
    ensure!(
        took >= Duration::from_millis(900),
        "408 after {took:?}, before the 1000 ms header timeout"
    );
    ensure!(
        slow.is_closed_by_peer(Duration::from_secs(5)),
        "the connection stayed open after the 408"
    );

    let mut idle = client::Conn::open(target.addr)?;
    let response = idle.get("/json")?;
    ensure!(response.status == 200, "/json: {}", response.status);
    let started = Instant::now();
    ensure!(
        idle.is_closed_by_peer(Duration::from_secs(5)),
        "an idle keep-alive connection was still open 5 s after its answer (keep-alive timeout 500 ms)"
    );
    let took = started.elapsed();
    if !binary.model().closes_each_connection() {
        ensure!(
            took >= Duration::from_millis(400),
            "the idle connection was closed after {took:?}, before the 500 ms keep-alive timeout"
        );
    }
    Ok(())
}

/// An upstream that refuses connections is a 502; one that accepts and never answers is a
/// 504 once the delay plus the grace period has passed.
pub(crate) fn upstream_failures_are_502_and_504(world: &World, binary: Binary) -> Result<()> {
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
