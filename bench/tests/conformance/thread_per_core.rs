//! Thread per core: the pool is split across the threads; compio-tpc has an io_uring per
//! worker and refuses to start without io_uring.

use super::*;

/// The database restarts under a target with a full pool: every request afterwards succeeds
/// (TechEmpower issue #8790: 13 of the top 20 frameworks did not recover by themselves).
/// compio-tpc really runs on io_uring: while it serves (a row, a page, a health check), the
/// process holds one io_uring instance per worker thread (`anon_inode:[io_uring]` among its
/// descriptors), and its start-up says each thread's driver.
pub(crate) fn an_io_uring_per_worker_while_it_serves(world: &World, binary: Binary) -> Result<()> {
    const WORKERS: usize = 3;
    let stack = world.stack()?;
    let target = stack.launch(binary, &flags(&[("--workers", "3")]))?;
    for path in ["/test?id=7", "/test?backend=upstream", "/health"] {
        let response = client::get(target.addr, path)?;
        ensure!(response.status == 200, "{path}: {}", response.status);
    }
    let mut rings = 0;
    for entry in std::fs::read_dir(format!("/proc/{}/fd", target.pid()))? {
        let link = std::fs::read_link(entry?.path()).unwrap_or_default();
        rings += usize::from(link.to_string_lossy() == "anon_inode:[io_uring]");
    }
    ensure!(
        rings == WORKERS,
        "{binary} with --workers {WORKERS} holds {rings} io_uring instances, expected one per thread"
    );
    let log = std::fs::read_to_string(target.log())?;
    for thread in 0..WORKERS {
        let line = format!("thread {thread} runs compio's io_uring driver");
        ensure!(log.contains(&line), "no \"{line}\" in its start-up: {log}");
    }
    eprintln!("  {binary}: {rings} io_uring instances for {WORKERS} threads");
    Ok(())
}

/// compio-tpc runs on io_uring or not at all: with io_uring turned off for every process
/// (`kernel.io_uring_disabled` = 2, put back afterwards), it exits with status 1 and one line
/// saying which thread could not start its ring and where to look.
pub(crate) fn refuses_to_start_without_io_uring(world: &World, binary: Binary) -> Result<()> {
    const SETTING: &str = "/proc/sys/kernel/io_uring_disabled";
    let stack = world.stack()?;
    let before = std::fs::read_to_string(SETTING)
        .with_context(|| format!("cannot read {SETTING}: this kernel has no io_uring switch"))?;
    /// Puts the setting back however the test ends.
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::fs::write(SETTING, &self.0);
        }
    }
    std::fs::write(SETTING, "2").with_context(|| {
        format!("cannot write {SETTING} (the test needs root to turn io_uring off)")
    })?;
    let _restore = Restore(before);
    let addr = format!("127.0.0.1:{}", bench::stack::process::free_port()?).parse()?;
    let (status, stderr) = start_that_fails(stack, binary, addr, "io_uring was turned off, on")?;
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    ensure!(
        status.code() == Some(1),
        "{binary} exited with {status} without io_uring, not 1: {stderr}"
    );
    ensure!(
        lines.len() == 1
            && lines[0].contains("cannot start its io_uring runtime")
            && lines[0].contains("io_uring_disabled"),
        "{binary} said {lines:?}, not one line naming its io_uring runtime and the setting"
    );
    Ok(())
}

/// compio-tpc shares nothing: `--pool-size 6` over 2 threads is 3 sessions each (the start-up
/// says so), and under 40 concurrent sleeps, spread over both threads by the kernel, the
/// sessions in `pg_sleep` reach 6 and the open sessions never pass 6 in `pg_stat_activity`.
pub(crate) fn the_pool_is_split_across_the_threads(world: &World, binary: Binary) -> Result<()> {
    let stack = world.stack()?;
    let target = stack.launch(binary, &flags(&[("--workers", "2"), ("--pool-size", "6")]))?;
    let log = std::fs::read_to_string(target.log())?;
    for thread in 0..2 {
        let line =
            format!("thread {thread} runs compio's io_uring driver; its own listener, sessions=3");
        ensure!(log.contains(&line), "no \"{line}\" in its start-up: {log}");
    }
    let subject = world.subject(stack, &target, None);
    let burst = contract::burst_with_peaks(&subject, super::counting::SLEEP_300, 40)?;
    ensure!(
        burst.all_ok(),
        "not every request succeeded: {:?}",
        burst.statuses()
    );
    ensure!(
        burst.db.in_sleep == 6 && burst.db.sessions <= 6,
        "with --pool-size 6 over 2 threads: {} sessions in pg_sleep at the peak (expected 6), {} open (at most 6)",
        burst.db.in_sleep,
        burst.db.sessions
    );
    Ok(())
}
