//! How every target starts, in one shape: parse the flags (a bad one exits 2 with one line
//! naming it, before anything is bound), run the model's `serve`, and turn a start-up failure
//! (the port is taken, the runtime cannot start, the database's host does not resolve, the
//! signal handlers cannot be installed) into one line, `NAME: what failed`, and exit status 1,
//! the same in every target. A clean drain after SIGTERM exits 0.
//!
//! Before `serve`, the soft limit on open descriptors is raised to the hard limit: a target
//! holds a descriptor per client connection and per upstream or DB connection, and the soft
//! limit a shell or a container hands down (often 1024) is not what the machine allows. The
//! start-up line says the limit (`nofile=N`).

use std::process::ExitCode;

use crate::{Binary, Config};

/// The `main` of every target: `serve` is its model, and returns once drained.
pub fn run(binary: Binary, serve: impl FnOnce(Config) -> Result<(), String>) -> ExitCode {
    let mut config = Config::from_env(binary);
    config.descriptors = raise_descriptor_limit().ok();
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{}: {message}", binary.name());
            ExitCode::FAILURE
        }
    }
}

pub use crate::config::BACKLOG;

/// Sets the listen backlog of a socket that already listens (listen(2) again changes it).
pub fn set_backlog(fd: std::os::fd::RawFd) -> Result<(), String> {
    // SAFETY: listen(2) on a descriptor the caller owns; no memory is touched.
    if unsafe { libc::listen(fd, BACKLOG) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot set the listen backlog: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// Raises this process's soft limit on open descriptors to its hard limit (processes it
/// starts afterwards inherit it); the limit now.
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}
