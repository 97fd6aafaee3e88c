//! The load tools: how each is found, started and read. Everything the harness knows of a
//! tool is a match on [`ToolKind`] here, with one file per tool for its arguments and its
//! parser: adding a tool is a variant, a file, and the matches the compiler points at.
//!
//! Every tool gets the same request timeout ([`TIMEOUT_S`]), so that a slow response is an
//! error in every column, not a long latency in some and a timeout in others. oha is
//! installed on demand with cargo.

pub mod ab;

pub mod hey;

pub mod oha;

pub mod pgbench;

pub mod wrk;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::model::settings::Settings;
pub use crate::model::tool::{Measurement, ToolCost, ToolKind, TIMEOUT_S};
use crate::observe::procfs;

use crate::stack::process::find_program;

/// A tool that exists on this machine, with its version.
#[derive(Clone, Debug)]
pub struct Tool {
    pub kind: ToolKind,
    pub program: PathBuf,
    pub version: String,
}

/// Finds `kind` (installing oha when missing); a missing tool names its Debian package.
/// bench's own client is this program.
pub fn locate(kind: ToolKind) -> Result<Tool> {
    let name = kind.name();
    if kind == ToolKind::Bench {
        return Ok(Tool {
            kind,
            program: std::env::current_exe().context("cannot find the bench program itself")?,
            version: format!("bench {} (its own client)", env!("CARGO_PKG_VERSION")),
        });
    }
    let home_bin = std::env::var("HOME")
        .map(|home| format!("{home}/.cargo/bin"))
        .unwrap_or_default();
    let program = match (find_program(name, &[&home_bin]), kind.package()) {
        (Some(program), _) => program,
        (None, None) => install_oha(&home_bin)?,
        (None, Some(package)) => {
            bail!("{name} not found on PATH: install it with `apt-get install -y {package}`")
        }
    };
    let version = version_of(kind, &program);
    Ok(Tool {
        kind,
        program,
        version,
    })
}

fn install_oha(home_bin: &str) -> Result<PathBuf> {
    eprintln!("bench: oha not found; installing it with `cargo install --locked oha` (once)");
    let status = Command::new("cargo")
        .args(["install", "--locked", "oha", "--version", ">=1.14"])
        .status()
        .context("cannot run cargo to install oha")?;
    if !status.success() {
        bail!("`cargo install --locked oha` failed; install oha 1.14 or later by hand");
    }
    find_program("oha", &[home_bin]).context("oha was installed but is not on PATH")
}

fn version_of(kind: ToolKind, program: &Path) -> String {
    let first_line = |args: &[&str]| -> Option<String> {
        let out = Command::new(program).args(args).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    };
    kind.version_flag()
        .and_then(|flag| first_line(&[flag]))
        .or_else(|| {
            let version = dpkg_version(kind.package()?)?;
            Some(format!("{kind} {version} (Debian package)"))
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn dpkg_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The command that runs `tool` against `url` for `seconds` with `settings`' load. `work_dir`
/// holds scripts and per-request logs.
pub fn command(
    tool: &Tool,
    url: &str,
    settings: &Settings,
    seconds: u32,
    work_dir: &Path,
) -> Result<Command> {
    tool.kind.check_rate(settings.rate)?;
    tool.kind.check_mix(settings.mix.is_some())?;
    let mut command = Command::new(&tool.program);
    match tool.kind {
        ToolKind::Wrk => wrk::args(&mut command, url, settings, seconds, work_dir)?,
        ToolKind::Oha => oha::args(&mut command, url, settings, seconds),
        ToolKind::Ab => ab::args(&mut command, url, settings, seconds),
        ToolKind::Hey => hey::args(&mut command, url, settings, seconds),
        ToolKind::Bench => super::load::args(&mut command, url, settings, seconds),
    }
    Ok(command)
}

/// What a tool run printed, and what it cost.
pub struct Finished {
    pub stdout: String,
    pub cost: ToolCost,
}

/// Runs `command` to completion (or until `interrupted`, or `limit`), returning its stdout and
/// what it cost: its CPU and its children's from the kernel's accounting when it is reaped
/// (`wait4`), and its threads' run delay sampled every 200 ms. `threads` says how many of the
/// CPUs it may use the tool can keep busy ([`ToolKind::working_threads`]).
pub fn run_to_end(
    mut command: Command,
    limit: Duration,
    interrupted: &AtomicBool,
    stdout_file: &Path,
    threads: &dyn Fn(u32) -> u32,
) -> Result<Finished> {
    let out = fs::File::create(stdout_file)?;
    let err_file = stdout_file.with_extension("stderr");
    let err = fs::File::create(&err_file)?;
    let program = format!("{:?}", command.get_program());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let started = Instant::now();
    let pid = child.id();
    let cpus = procfs::allowed_cpus(pid).unwrap_or(procfs::cpus() as u32);
    let deadline = started + limit;
    let mut run_delay = procfs::RunDelay::default();
    let mut tick = 0u64;
    let (status, usage) = loop {
        if tick.is_multiple_of(4) {
            run_delay.sample(pid);
        }
        tick += 1;
        if let Some(reaped) = reap(pid)? {
            break reaped;
        }
        if interrupted.load(Ordering::SeqCst) || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            if interrupted.load(Ordering::SeqCst) {
                bail!("interrupted");
            }
            bail!("{program} ran over {limit:?} and was stopped");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cost = ToolCost {
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        waited_s: run_delay.seconds(),
        wall_s: started.elapsed().as_secs_f64(),
        cores: threads(cpus).clamp(1, cpus.max(1)),
    };
    let stdout = fs::read_to_string(stdout_file).unwrap_or_default();
    if !status.success() {
        let stderr = fs::read_to_string(&err_file).unwrap_or_default();
        bail!(
            "{program} failed ({status}): {}",
            stderr.lines().take(5).collect::<Vec<_>>().join(" / ")
        );
    }
    Ok(Finished { stdout, cost })
}

/// Reaps `pid` if it has exited, with the resources it and its reaped children used.
fn reap(pid: u32) -> Result<Option<(std::process::ExitStatus, libc::rusage)>> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a status and a rusage.
    let rc = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut usage) };
    match rc {
        0 => Ok(None),
        rc if rc < 0 => Err(std::io::Error::last_os_error()).context("wait4 on the load tool"),
        _ => Ok(Some((std::process::ExitStatus::from_raw(status), usage))),
    }
}

/// Parses what `tool` printed.
pub fn parse(tool: ToolKind, stdout: &str) -> Result<Measurement> {
    match tool {
        ToolKind::Wrk => wrk::parse(stdout),
        ToolKind::Oha => oha::parse(stdout),
        ToolKind::Ab => ab::parse(stdout),
        ToolKind::Hey => hey::parse(stdout),
        ToolKind::Bench => super::load::parse(stdout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loop_tools_refuse_a_rate() {
        let tool = Tool {
            kind: ToolKind::Wrk,
            program: "wrk".into(),
            version: String::new(),
        };
        let settings = Settings {
            rate: Some(10),
            ..crate::model::preset::find("quick").unwrap().settings
        };
        let error = command(
            &tool,
            "http://127.0.0.1:1/",
            &settings,
            1,
            Path::new("/tmp"),
        )
        .err()
        .unwrap();
        assert!(error.to_string().contains("--tool oha"));
        for kind in ToolKind::ALL {
            assert_eq!(kind.check_rate(Some(10)).is_ok(), kind.holds_a_rate());
            assert!(kind.check_rate(None).is_ok());
        }
    }
}
