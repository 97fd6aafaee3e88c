//! Memory: repeated connection storms reach a steady state (no leak).

use super::*;

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// How many descriptors a process has open: its connections, counted.
fn open_fds(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Connection storms leave no growing residue: 8 rounds of 2,000 connections held open at
/// once (each answers one `/json`), all closed before the next round; the resident memory is
/// read while they are held, and once the target has closed them all (counted by its open
/// descriptors, not timed).
///
/// A leak of per-connection state would add most of a storm's footprint every round. What
/// the allocator keeps is not that: glibc holds freed memory in its per-thread arenas, so the
/// thread and tokio targets' residue wanders by a third of a storm from round to round, or
/// climbs for a few rounds and levels off. So for every target, the lowest residue of rounds 6
/// to 8 may exceed the highest of rounds 1 to 5 by at most 10% of a storm's footprint (a leak
/// raises even the lowest one every round). may-green's connection memory is the
/// suite's own code (the vendored may_minihttp's buffers, which used to grow without end), and
/// it is held to the strict rule: from round 4 on, each round adds under 2% of its resident
/// memory.
pub(crate) fn repeated_connection_storms_reach_a_steady_state(
    world: &World,
    binary: Binary,
) -> Result<()> {
    const ROUNDS: usize = 8;
    const CONNECTIONS: usize = 2000;
    // This process holds the clients, the target (which inherits the limit) the servers.
    bench::stack::process::raise_fd_limit(2 * CONNECTIONS as u64 + 201)?;
    let stack = world.stack()?;
    let target = stack.launch(
        binary,
        &flags(&[
            ("--workers", "2"),
            ("--max-threads", "4096"),
            ("--keep-alive-timeout-ms", "60000"),
        ]),
    )?;
    let pid = target.pid();
    let baseline_fds = open_fds(pid)?;
    let baseline_rss = rss_kib(pid)?;
    let mut held_rss = Vec::with_capacity(ROUNDS);
    let mut after = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        let mut held = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let mut conn = client::Conn::open(target.addr)?;
            conn.send(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")?;
            held.push(conn);
        }
        for conn in &mut held {
            let response = conn.read(false)?;
            ensure!(response.status == 200, "round {round}: {}", response.status);
        }
        held_rss.push(rss_kib(pid)?);
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(20);
        while open_fds(pid)? > baseline_fds + 2 {
            ensure!(
                Instant::now() < deadline,
                "round {round}: {} descriptors still open 20 s after the clients closed",
                open_fds(pid)?
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        after.push(rss_kib(pid)?);
    }
    let footprint = held_rss.iter().sum::<u64>() / ROUNDS as u64 - baseline_rss;
    // What the allocator keeps cached after a storm jumps up and down from round to round
    // (glibc's per-thread arenas: by a third of a storm in tokio-hyper), or climbs for a few
    // rounds and levels off (tokio-axum, tokio-actix); a leak raises even the lowest residue
    // every round. So the lowest residue of rounds 6 to 8 must not pass the highest of
    // rounds 1 to 5 by more than a tenth of a storm.
    let early = after[..5].iter().copied().max().unwrap_or(0);
    let late = after[5..].iter().copied().min().unwrap_or(0);
    eprintln!(
        "  {binary}: RSS KiB at start {baseline_rss}, with {CONNECTIONS} held {held_rss:?}, after each storm {after:?}; a storm takes {footprint} KiB; highest after rounds 1-5 {early}, lowest after rounds 6-{ROUNDS} {late}"
    );
    ensure!(
        late.saturating_sub(early) * 10 <= footprint,
        "every round from 6 to {ROUNDS} left at least {late} KiB, {} KiB over the highest of rounds 1 to 5, more than 10% of the {footprint} KiB a storm takes: a leak; after each storm: {after:?}",
        late - early
    );
    if binary == Binary::MayGreen {
        for round in 4..=ROUNDS {
            let (before, now) = (after[round - 2], after[round - 1]);
            ensure!(
                now * 100 <= before * 102,
                "round {round} grew the resident memory from {before} to {now} KiB (over 2%); after each storm: {after:?}"
            );
        }
    }
    Ok(())
}
