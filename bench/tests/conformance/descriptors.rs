//! Descriptors: the limit raised to the hard limit, a spent budget queues clients instead of
//! failing them, and running out for an upstream fetch is a 503.

use super::*;

/// A target started here with descriptor limits `soft` and `hard` and `flags` (on top of
/// `--listen` and `--database-url`), and its start-up line (read on a thread, so that a
/// target that never prints cannot hang the test).
struct Limited {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    line: String,
    /// Its stderr lines after the start-up line.
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Limited {
    fn start(
        stack: &Stack,
        binary: Binary,
        (soft, hard): (u64, u64),
        flags: &[(&str, String)],
    ) -> Result<Limited> {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let addr: std::net::SocketAddr =
            format!("127.0.0.1:{}", bench::stack::process::free_port()?).parse()?;
        let mut command = std::process::Command::new(stack.bin_dir().join(binary.name()));
        for var in bench::stack::target::CONTRACT_ENV {
            command.env_remove(var);
        }
        command
            .args(["--listen", &addr.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if !flags.iter().any(|(flag, _)| *flag == "--database-url") {
            command.args(["--database-url", stack.database_url()]);
        }
        for (flag, value) in flags {
            command.args([flag, value.as_str()]);
        }
        // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let mut child = command.spawn()?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(|l| l.ok())
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut started = Limited {
            child,
            addr,
            line: String::new(),
            stderr: rx,
        };
        started.line = started.wait_for_line("listening on", Duration::from_secs(10))?;
        Ok(started)
    }

    /// Waits (up to 10 s) until it answers `/health` with 200.
    fn wait_healthy(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while client::get(self.addr, "/health").map(|r| r.status).ok() != Some(200) {
            ensure!(Instant::now() < deadline, "no 200 from /health within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The next stderr line that contains `needle`, waiting up to `wait`.
    fn wait_for_line(&self, needle: &str, wait: Duration) -> Result<String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(_) => bail!("no line with {needle:?} on stderr within {wait:?}"),
            }
        }
    }

    /// A `NAME=N` figure of the start-up line.
    fn said(&self, name: &str) -> Option<u64> {
        self.line
            .split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .and_then(|n| n.parse().ok())
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every target raises its soft limit on open descriptors to the hard limit at start-up, and
/// its start-up line says the limit: started here with a soft limit of 256.
pub(crate) fn the_descriptor_limit_is_raised_to_the_hard_limit(
    world: &World,
    binary: Binary,
) -> Result<()> {
    let stack = world.stack()?;
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes a struct we own.
    ensure!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) } == 0);
    let hard = hard.rlim_max;
    ensure!(
        hard > 256,
        "this test needs a hard limit above 256, not {hard}"
    );
    let target = Limited::start(stack, binary, (256, hard), &[])?;
    let pid = target.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .context("no \"Max open files\" in /proc/PID/limits")?;
    ensure!(
        soft == hard.to_string(),
        "{binary} runs with a soft limit of {soft} open files, not the hard limit {hard}"
    );
    ensure!(
        target.said("nofile=") == Some(hard),
        "{binary}'s start-up line does not say nofile={hard}: {}",
        target.line
    );
    ensure!(
        target.said("backlog=") == Some(4096),
        "{binary}'s start-up line does not say backlog=4096: {}",
        target.line
    );
    Ok(())
}

/// A target started with a soft and hard limit of 300 descriptors and the upstream backend
/// (sync-pool with 50 workers), once it answers /health; its budget (the start-up line's
/// `connections<=N`) and how many connections it holds at once (sync-pool: its workers).
struct Budgeted {
    target: Limited,
    budget: u64,
    holds: u64,
    server: Server,
}

impl Budgeted {
    const LIMIT: u64 = 300;

    fn start(world: &World, binary: Binary) -> Result<Budgeted> {
        Budgeted::start_with(world, binary, &[])
    }

    fn start_with(
        world: &World,
        binary: Binary,
        extra: &[(&'static str, &'static str)],
    ) -> Result<Budgeted> {
        let stack = world.stack()?;
        let mut flags = vec![
            ("--upstream-url", stack.upstream_url()),
            ("--backend", "upstream".to_string()),
        ];
        flags.extend(extra.iter().map(|(f, v)| (*f, v.to_string())));
        if binary.model() == Model::ThreadPool {
            flags.push(("--workers", "50".to_string()));
        }
        let target = Limited::start(stack, binary, (Self::LIMIT, Self::LIMIT), &flags)?;
        let budget = target
            .said("connections<=")
            .with_context(|| format!("no connections<=N in {}", target.line))?;
        ensure!(
            (50..Self::LIMIT / 2).contains(&budget),
            "{binary}: a budget of {budget} connections from {} descriptors: {}",
            Self::LIMIT,
            target.line
        );
        target.wait_healthy()?;
        let server = Server {
            binary: Some(binary),
            name: binary.name().to_string(),
            direct: target.addr,
            proxied: None,
            database_url: stack.database_url().to_string(),
            upstream: Some(stack.upstream_addr),
            rows: contract::TABLE_ROWS,
            app: Some(shared::sql::application_name(binary).to_string()),
        };
        let holds = if binary.model() == Model::ThreadPool {
            50
        } else {
            budget
        };
        Ok(Budgeted {
            target,
            budget,
            holds,
            server,
        })
    }

    /// `clients` connect at once and ask for `target`; every one must be answered 200.
    /// Returns the peak of fetches in flight at nginx meanwhile.
    fn burst_all_200(&self, target: &str, clients: usize) -> Result<i64> {
        let binary = self.server.name.as_str();
        let peaks = contract::burst_with_peaks(&self.server, target, clients)?;
        let failed: Vec<String> = peaks
            .responses
            .iter()
            .filter_map(|r| match r {
                Ok(response) if response.status == 200 => None,
                Ok(response) => Some(format!("{} {}", response.status, response.text())),
                Err(e) => Some(format!("{e:#}")),
            })
            .collect();
        ensure!(
            failed.is_empty(),
            "{binary}: {} of {clients} not answered 200 (first: {})",
            failed.len(),
            failed[0]
        );
        peaks.upstream_in_flight.context("no stub_status samples")
    }
}

/// Out of descriptors, a target backs off instead of failing its clients: started with a
/// limit of 300 and the upstream backend at 300 ms, it holds at most its budget of
/// connections (its start-up line says `connections<=N`; sync-pool holds its 50 workers' worth),
/// and the rest of 300 clients, connecting at once, wait in the listen backlog. Every one is
/// answered 200, no connection is reset, and the fetches in flight at nginx (stub_status)
/// never pass the budget.
pub(crate) fn a_spent_descriptor_budget_queues_clients_and_answers_every_one(
    world: &World,
    binary: Binary,
) -> Result<()> {
    const CLIENTS: usize = 300;
    let b = Budgeted::start(world, binary)?;
    let in_flight = b.burst_all_200("/test?delay_ms=300", CLIENTS)?;
    ensure!(
        in_flight > 0 && in_flight as u64 <= b.holds,
        "{binary}: {in_flight} fetches in flight at nginx, with a budget of {} connections",
        b.holds
    );
    eprintln!(
        "  {binary}: budget {}, peak {in_flight} fetches in flight, {CLIENTS} answered 200",
        b.budget
    );
    Ok(())
}

/// The budget holds with 16 fetches per request (`fanout=16`, sync targets with `--fanout
/// threads`, so that every model has them in flight at once): 300 clients at once with the
/// limit of 300 descriptors, 100 ms fetches, and every one is answered 200; the fetches in flight
/// at nginx never pass the budget's upstream part (B + B/8): a fetch with no place waits.
pub(crate) fn a_spent_budget_holds_with_16_fetches_per_request(
    world: &World,
    binary: Binary,
) -> Result<()> {
    const CLIENTS: usize = 300;
    let extra: &[(&str, &str)] = match binary.model() {
        Model::ThreadPerConnection | Model::ThreadPool => &[("--fanout", "threads")],
        Model::Tokio | Model::Green | Model::ThreadPerCore => &[],
    };
    let b = Budgeted::start_with(world, binary, extra)?;
    let in_flight = b.burst_all_200("/test?delay_ms=100&fanout=16", CLIENTS)?;
    let upstream_part = b.budget + b.budget / 8;
    ensure!(
        in_flight > 16 && in_flight as u64 <= upstream_part,
        "{binary}: {in_flight} fetches in flight at nginx, with an upstream part of {upstream_part}"
    );
    eprintln!(
        "  {binary}: budget {}, peak {in_flight} fetches in flight with fanout=16, {CLIENTS} answered 200",
        b.budget
    );
    Ok(())
}

/// Clients that hang up while their fetch is in flight leave nothing for the next ones to
/// trip on. As many clients as the target holds ask for a 1 s fetch; once nginx counts their
/// fetches in flight they close their connections, and 300 new clients connect at once. A
/// hung-up fetch may keep its upstream descriptor until nginx answers it, so the new fetches
/// wait for one (they do not fail with 503 "out of file descriptors"): every new client is
/// answered 200.
pub(crate) fn clients_that_hang_up_mid_fetch_leave_no_5xx_for_the_next(
    world: &World,
    binary: Binary,
) -> Result<()> {
    use std::io::Write;
    const CLIENTS: usize = 300;
    let b = Budgeted::start(world, binary)?;
    let upstream = world.stack()?.upstream_addr;
    let mut gone = Vec::new();
    for _ in 0..b.holds {
        let mut stream = std::net::TcpStream::connect(b.target.addr)?;
        stream.write_all(b"GET /test?delay_ms=1000 HTTP/1.1\r\nHost: bench\r\n\r\n")?;
        gone.push(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while bench::observe::nginx::nginx_in_flight(upstream)? < b.holds as i64 / 2 {
        ensure!(
            Instant::now() < deadline,
            "{binary}: the first clients' fetches never reached nginx"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(gone);
    // (nginx keeps a hung-up fetch in flight until its delay is over, whether or not the
    // target still holds the connection: its count says nothing of the target's descriptors.)
    let in_flight = b.burst_all_200("/test?delay_ms=300", CLIENTS)?;
    eprintln!(
        "  {binary}: {} hung up mid-fetch, then {CLIENTS} answered 200 (nginx had {in_flight} fetches in flight at most)",
        b.holds
    );
    Ok(())
}

/// A descriptor that cannot be had for an upstream fetch is the server's own limit: 503 with a
/// body that says so, not the upstream's 502. The target's soft limit is lowered while it runs
/// (prlimit) to one above what it holds, so that the client's connection takes the last one.
/// The database is one that refuses (nothing listens on its port): the start-up check's
/// connection would otherwise arrive at any moment, keep a descriptor in the pool, and take
/// the client's place (then nothing is accepted at all). Its warning says the check is over.
pub(crate) fn out_of_descriptors_for_a_fetch_is_503_not_502(
    world: &World,
    binary: Binary,
) -> Result<()> {
    let stack = world.stack()?;
    let refusing = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        bench::stack::process::free_port()?
    );
    let flags = [
        ("--upstream-url", stack.upstream_url()),
        ("--backend", "upstream".to_string()),
        ("--database-url", refusing),
    ];
    let target = Limited::start(stack, binary, (1024, 1024), &flags)?;
    target.wait_for_line("warning: database unavailable", Duration::from_secs(10))?;
    target.wait_healthy()?;
    // Settled: the /health connections above are closed.
    std::thread::sleep(Duration::from_millis(200));
    let pid = target.child.id();
    let open: std::collections::BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // A new descriptor takes the lowest free number, and the limit is on the number: the
    // limit that leaves exactly one free number below it.
    let mut free = 0;
    let mut below = 0;
    while free < 2 {
        if !open.contains(&below) {
            free += 1;
        }
        below += 1;
    }
    let open = open.len();
    let limit = libc::rlimit {
        rlim_cur: below - 1,
        rlim_max: 1024,
    };
    // SAFETY: prlimit on our own child with a struct we own; the old limit is not read.
    let set = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    ensure!(set == 0, "prlimit: {}", std::io::Error::last_os_error());
    let response = client::get(target.addr, "/test?delay_ms=0")?;
    let body = response.text();
    ensure!(
        response.status == 503 && body.contains("out of file descriptors"),
        "{binary} with {open} descriptors open and a limit of {}: {} {body}",
        below - 1,
        response.status
    );
    Ok(())
}
