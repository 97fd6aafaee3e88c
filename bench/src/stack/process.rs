//! Child processes of the stack: spawning (as an unprivileged user where a tool refuses root),
//! stopping with a grace period, free ports, and a sweep of what a killed run left behind.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A process the stack started. Dropping it stops it: SIGTERM (or the signal given), then
/// SIGKILL after the grace period.
pub struct Process {
    pub name: String,
    child: Child,
    pub log: PathBuf,
    stop_signal: i32,
    grace: Duration,
}

impl Process {
    /// Spawns `command` with stdout and stderr appended to `log`, recording its pid in
    /// `pids_file` for the sweep.
    pub fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
        pids_file: &Path,
        stop_signal: i32,
    ) -> Result<Process> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open log {}", log.display()))?;
        let err = out.try_clone()?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", command.get_program()))?;
        let line = format!("{} {}\n", child.id(), name);
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(pids_file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
            .with_context(|| format!("cannot record pid in {}", pids_file.display()))?;
        Ok(Process {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            stop_signal,
            grace: Duration::from_secs(10),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Fails, saying how (see [`death`]), when the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.death("its service") {
            Some(death) => bail!("{death}"),
            None => Ok(()),
        }
    }

    /// Why the process is no longer running, or `None` while it runs: see [`death`].
    pub fn death(&mut self, during: &str) -> Option<String> {
        let status = self.exited()?;
        Some(death(&self.name, during, status, &self.log))
    }

    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// Stops the process and waits for it.
    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        signal(self.child.id(), self.stop_signal);
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Its workers too: a gunicorn or nginx master killed alone leaves them running.
        kill_tree(self.child.id());
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Whether `pid` is a live process (a zombie, dead but not yet reaped, is not).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The user to run PostgreSQL as: ourselves, or `postgres` (else `nobody`) when we are root,
/// since PostgreSQL refuses to run as root.
#[derive(Clone, Copy, Debug)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    pub fn unprivileged() -> Result<Option<RunAs>> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        for name in ["postgres", "nobody"] {
            if let Some(user) = lookup_user(name) {
                return Ok(Some(user));
            }
        }
        bail!("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as; create one (useradd --system postgres)")
    }

    pub fn apply(self, command: &mut Command) {
        command.uid(self.uid).gid(self.gid);
    }

    pub fn chown(self, path: &Path) -> Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .with_context(|| format!("cannot chown {}", path.display()))
    }
}

fn lookup_user(name: &str) -> Option<RunAs> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() > 3 && fields[0] == name {
            Some(RunAs {
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
            })
        } else {
            None
        }
    })
}

/// A free TCP port, outside the kernel's ephemeral range: the ports that outgoing
/// connections draw from (the load tool's, the idle clients'), so that thousands of them open
/// cannot take a server's port between our choosing it and its binding it. Chosen at random
/// in [`server_ports`], checked free on every address (a bind to 0.0.0.0 fails if anything
/// listens on it). Another process could still take it before the server binds; the callers
/// retry a failed start on a new port.
pub fn free_port() -> Result<u16> {
    let range = server_ports(ephemeral_range());
    for _ in 0..200 {
        let port = fastrand::u16(range.clone());
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!(
        "cannot find a free port in {}-{}",
        range.start(),
        range.end()
    )
}

/// A listening socket on `host`, at a port from [`free_port`]; another port when that one was
/// taken between the check and the bind (for a server in this process, which can bind at once).
pub fn listen_on_free_port(host: std::net::IpAddr) -> Result<TcpListener> {
    let mut attempts = 0;
    loop {
        let port = free_port()?;
        match TcpListener::bind((host, port)) {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts < 5 => attempts += 1,
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {host}:{port}")),
        }
    }
}

/// The kernel's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`), Linux's
/// default when it cannot be read.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut numbers = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((numbers.next()??, numbers.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Where servers get their ports: the larger side outside the ephemeral range, below it
/// from 10000 (from 1024 when it starts lower) or above it; all of 1024-65535 only when the
/// ephemeral range leaves nothing outside it.
pub fn server_ports((low, high): (u16, u16)) -> std::ops::RangeInclusive<u16> {
    let from = if low > 10_000 { 10_000 } else { 1024 };
    let below = u32::from(low).saturating_sub(u32::from(from));
    let above = 65_535u32.saturating_sub(u32::from(high));
    match (below, above) {
        (0, 0) => 1024..=65_535,
        (b, a) if b >= a => from..=low - 1,
        _ => high + 1..=65_535,
    }
}

/// Waits until `addr` accepts TCP connections, while `process` runs.
pub fn wait_for_port(process: &mut Process, addr: SocketAddr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        process.ensure_running()?;
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not listen on {addr} within {timeout:?}; last lines of {}:\n{}",
                process.name,
                process.log.display(),
                tail(&process.log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits until `addr` answers `GET /health` with 200, while `process` runs; `name` says what
/// it is in the error, which ends with the log's tail.
pub fn wait_healthy(
    process: &mut Process,
    name: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        process.ensure_running()?;
        if crate::client::get(addr, "/health").is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{name} did not answer /health on {addr} within {timeout:?}:\n{}",
                tail(&process.log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::from("(no log)");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    // Bytes, not a string: the seek may land inside a character, and a log may hold any bytes.
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// How a process ended, for a "died" verdict. The first line (the one a table shows) says how:
/// its exit status or signal, whether a core was dumped and where it went, and its panic
/// message or, without one, the last line of its log. The log's last lines follow.
pub fn death(name: &str, during: &str, status: ExitStatus, log: &Path) -> String {
    let lines = tail(log, 20);
    let said: Vec<&str> = lines.lines().filter(|l| !l.trim().is_empty()).collect();
    // A panic is two lines since Rust 1.73: "thread 'x' panicked at file:line:col:", then
    // the message.
    let why = match said.iter().position(|l| l.contains("panicked at")) {
        Some(at) => format!(
            "it panicked: {} {}",
            said[at].trim(),
            said.get(at + 1).map_or("", |l| l.trim())
        ),
        None => said.last().map_or("its log is empty".into(), |last| {
            format!("its log's last line: {}", last.trim())
        }),
    };
    format!(
        "{name} died during {during} ({status}{}); {why}\nthe last lines of its log ({}):\n{lines}",
        core_note(status),
        log.display()
    )
}

/// Where a dumped core went (kernel.core_pattern), or why none was, for a process a signal
/// ended.
fn core_note(status: ExitStatus) -> String {
    if status.core_dumped() {
        let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
        let pattern = pattern.trim();
        match pattern.strip_prefix('|') {
            Some(handler) => format!(
                "; the core went to {} (kernel.core_pattern)",
                handler.split_whitespace().next().unwrap_or(handler)
            ),
            None => format!(
                "; the core is {pattern} (kernel.core_pattern), in its working directory unless absolute"
            ),
        }
    } else if status.signal().is_some() {
        "; no core dumped (ulimit -c)".into()
    } else {
        String::new()
    }
}

/// Finds a program on PATH or in the given extra folders.
pub fn find_program(name: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Stops what earlier runs left behind: a run folder whose owning process is gone has its
/// recorded processes killed and is removed.
pub fn sweep_stale_runs(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() || !entry.file_name().to_string_lossy().starts_with("run-") {
            continue;
        }
        let owner = fs::read_to_string(dir.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if owner.is_some_and(alive) {
            continue;
        }
        if let Ok(pids) = fs::read_to_string(dir.join("pids")) {
            for line in pids.lines() {
                let Some((pid, name)) = line.split_once(' ') else {
                    continue;
                };
                let Ok(pid) = pid.parse::<u32>() else {
                    continue;
                };
                // Only a process that still looks like ours: pids get reused.
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let program = name.split(':').next().unwrap_or(name);
                if String::from_utf8_lossy(&cmdline).contains(program) {
                    kill_tree(pid);
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// SIGKILLs a process and its descendants (nginx's workers outlive a killed master).
pub fn kill_tree(pid: u32) {
    for member in crate::observe::procfs::tree(pid) {
        signal(member, libc::SIGKILL);
    }
}

/// Raises this process's open-file limit to its hard limit (targets started afterwards
/// inherit it) and checks that `needed` descriptors fit.
pub fn raise_fd_limit(needed: u64) -> Result<u64> {
    let limit = shared::start::raise_descriptor_limit()
        .context("cannot raise the limit on open files to the hard limit")?;
    if limit < needed {
        bail!(
            "the hard limit on open files is {limit}, and {needed} connections need more: raise it (ulimit -Hn, or LimitNOFILE) and run again"
        );
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ports_are_never_in_the_ephemeral_range() {
        let (low, high) = ephemeral_range();
        for _ in 0..500 {
            let port = free_port().unwrap();
            assert!(!(low..=high).contains(&port), "{port} in {low}-{high}");
        }
        assert_eq!(server_ports((32768, 60999)), 10_000..=32_767);
        assert_eq!(server_ports((1024, 60999)), 61_000..=65_535);
        assert_eq!(server_ports((40000, 65535)), 10_000..=39_999);
        assert_eq!(server_ports((1024, 65535)), 1024..=65_535);
    }

    /// A process that ends by `script` (sh), its output in a log: how its death reads.
    fn death_of(script: &str) -> String {
        let dir = std::env::temp_dir().join(format!(
            "bench-death-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("t.log");
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        let mut process =
            Process::spawn("t", command, &log, &dir.join("pids"), libc::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while process.exited().is_none() {
            assert!(Instant::now() < deadline, "{script} still runs");
            std::thread::sleep(Duration::from_millis(10));
        }
        let death = process.death("the run").unwrap();
        let _ = fs::remove_dir_all(&dir);
        death
    }

    #[test]
    fn a_death_says_how_in_its_first_line() {
        let signalled = death_of(
            "ulimit -c 0; echo 'malloc(): unaligned tcache chunk detected'; kill -ABRT $$",
        );
        let first = signalled.lines().next().unwrap();
        assert!(
            first.starts_with("t died during the run (signal: 6 (SIGABRT)"),
            "{first}"
        );
        assert!(first.contains("no core dumped"), "{first}");
        assert!(
            first.ends_with("its log's last line: malloc(): unaligned tcache chunk detected"),
            "{first}"
        );
        assert!(
            signalled.contains("the last lines of its log ("),
            "{signalled}"
        );

        let exited = death_of("echo starting; echo 'cannot listen: taken' >&2; exit 3");
        let first = exited.lines().next().unwrap();
        assert_eq!(
            first,
            "t died during the run (exit status: 3); its log's last line: cannot listen: taken"
        );

        let panicked = death_of(
            "echo \"thread 'main' panicked at src/main.rs:3:5:\"; echo 'index out of bounds'; echo 'note: run with RUST_BACKTRACE=1'; exit 101",
        );
        let first = panicked.lines().next().unwrap();
        assert_eq!(
            first,
            "t died during the run (exit status: 101); it panicked: thread 'main' panicked at src/main.rs:3:5: index out of bounds"
        );
        assert!(death_of("exit 1")
            .lines()
            .next()
            .unwrap()
            .ends_with("its log is empty"));
    }
}
