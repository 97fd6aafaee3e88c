//! A target server process, started from `target/<profile>/<binary>` with contract flags.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use shared::Binary;

use super::process::{free_port, tail, Process};

/// The environment variables of the contract: cleared before a target starts, so that only
/// the flags the stack passes apply.
pub const CONTRACT_ENV: [&str; 19] = [
    "LISTEN",
    "DATABASE_URL",
    "POOL_SIZE",
    "POOL_TIMEOUT_MS",
    "WORKERS",
    "MAX_THREADS",
    "MAX_CONNECTIONS",
    "BACKEND",
    "DELAY_MS",
    "UPSTREAM_URL",
    "ROWS",
    "HEADER_TIMEOUT_MS",
    "KEEP_ALIVE_TIMEOUT_MS",
    "SHUTDOWN_TIMEOUT_MS",
    "PANIC_ROUTE",
    "DB_MODE",
    "WORK",
    "OFFLOAD",
    "FANOUT",
];

/// A running target. Dropping it stops it.
pub struct Target {
    pub binary: Binary,
    pub addr: SocketAddr,
    /// The flags it was started with, as given (without the stack's own).
    pub flags: Vec<(String, String)>,
    process: Process,
}

impl Target {
    pub(crate) fn launch(
        bin_dir: &Path,
        run_dir: &Path,
        pids_file: &Path,
        host: std::net::IpAddr,
        binary: Binary,
        stack_flags: &[(&str, String)],
        flags: &[(String, String)],
    ) -> Result<Target> {
        let program = bin_dir.join(binary.name());
        if !program.is_file() {
            bail!(
                "{} not found: build the targets first (cargo build --release --workspace)",
                program.display()
            );
        }
        let mut last_error = None;
        for attempt in 0..3 {
            let addr = SocketAddr::new(host, free_port()?);
            let mut args: Vec<(String, String)> = vec![("--listen".into(), addr.to_string())];
            for (flag, value) in stack_flags {
                if !flags.iter().any(|(f, _)| f == flag) {
                    args.push((flag.to_string(), value.clone()));
                }
            }
            args.extend(flags.iter().cloned());
            let mut command = Command::new(&program);
            for var in CONTRACT_ENV {
                command.env_remove(var);
            }
            for (flag, value) in &args {
                command.arg(flag).arg(value);
            }
            let log = run_dir.join(format!("{}-{}.log", binary.name(), addr.port()));
            let process = Process::spawn(binary.name(), command, &log, pids_file, libc::SIGTERM)?;
            let mut target = Target {
                binary,
                addr,
                flags: flags.to_vec(),
                process,
            };
            target.process.set_grace(Duration::from_secs(3));
            match target.wait_healthy(Duration::from_secs(15)) {
                Ok(()) => return Ok(target),
                Err(e) => {
                    last_error = Some(e);
                    // A lost race for the port is worth another try; anything else is not.
                    if !tail(&log, 5).contains("cannot listen") || attempt == 2 {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("{} did not start", binary.name())))
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        super::process::wait_healthy(&mut self.process, self.binary.name(), self.addr, timeout)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn log(&self) -> &Path {
        &self.process.log
    }

    /// Fails, saying how it died (`process::death`), when the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        self.process.ensure_running()
    }

    /// Why the target is no longer running (exit status or signal, core, panic, its log's
    /// tail), or `None` while it runs.
    pub fn death(&mut self, during: &str) -> Option<String> {
        self.process.death(during)
    }

    /// Sends `signal` (SIGTERM, SIGINT, ...) to the process.
    pub fn signal(&self, signal: i32) {
        super::process::signal(self.process.pid(), signal);
    }

    /// Waits up to `timeout` for the process to exit, and returns how it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The value of a flag it was started with, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(flag, _)| flag == name)
            .map(|(_, value)| value.as_str())
    }
}
