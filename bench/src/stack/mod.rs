//! The stack: one launcher for the tests and the harness.
//!
//! `Stack::start` brings up PostgreSQL (a private cluster, or the user's `DATABASE_URL`) and
//! the upstream nginx. Targets and reverse proxies are started on demand, each on free ports
//! on 127.0.0.1 (or the `listen_host` of `bench up --listen-host`). Everything stops on drop;
//! a run folder whose owner died (SIGKILL, a crash) is swept by the next start, processes
//! included.
//!
//! Layout: `target/stack/pg-template/` (the loaded cluster, made once) and
//! `target/stack/run-<pid>-<n>/` (one run: its cluster copy, configs, logs).

pub mod nginx;
pub mod peers;
pub mod pgbouncer;
pub mod postgres;
pub mod process;
pub mod target;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use shared::Binary;

pub use self::nginx::{Nginx, ProxyRoute};
pub use self::pgbouncer::Pgbouncer;
pub use self::postgres::Postgres;
pub use self::target::Target;

pub use crate::model::plan::StackOptions;

impl StackOptions {
    /// Defaults, with `DATABASE_URL`, `BENCH_BIN_DIR` and `BENCH_STACK_DIR` from the environment.
    pub fn from_env() -> StackOptions {
        StackOptions {
            database_url: std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty()),
            bin_dir: std::env::var_os("BENCH_BIN_DIR").map(PathBuf::from),
            root: std::env::var_os("BENCH_STACK_DIR").map(PathBuf::from),
            listen_host: None,
        }
    }
}

/// A running stack. Field order is drop order: nginx stops before PostgreSQL.
pub struct Stack {
    pub upstream: Nginx,
    pub upstream_addr: SocketAddr,
    pub postgres: Postgres,
    pub run_dir: PathBuf,
    pids_file: PathBuf,
    bin_dir: PathBuf,
    proxies: AtomicUsize,
    /// Targets and proxies listen here.
    pub listen_host: IpAddr,
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

impl Stack {
    pub fn start(options: &StackOptions) -> Result<Stack> {
        let bin_dir = match &options.bin_dir {
            Some(dir) => dir.clone(),
            None => default_bin_dir()?,
        };
        let root = match &options.root {
            Some(root) => root.clone(),
            None => bin_dir
                .parent()
                .map(|target| target.join("stack"))
                .context("the binaries' folder has no parent")?,
        };
        fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
        process::sweep_stale_runs(&root);
        let run_dir = root.join(format!(
            "run-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&run_dir);
        fs::create_dir_all(&run_dir)?;
        fs::write(run_dir.join("owner.pid"), std::process::id().to_string())?;
        let pids_file = run_dir.join("pids");

        let postgres = match &options.database_url {
            Some(url) => Postgres::external(url)?,
            None => Postgres::embedded(&root, &run_dir, &pids_file)?,
        };
        let (upstream, upstream_addr) = nginx::start_upstream(&run_dir, &pids_file)?;
        Ok(Stack {
            upstream,
            upstream_addr,
            postgres,
            run_dir,
            pids_file,
            bin_dir,
            proxies: AtomicUsize::new(0),
            listen_host: options
                .listen_host
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        })
    }

    pub fn database_url(&self) -> &str {
        &self.postgres.url
    }

    /// The upstream page for the targets' `--upstream-url`.
    pub fn upstream_url(&self) -> String {
        format!("http://{}/upstream", self.upstream_addr)
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Starts `binary` with `flags` (e.g. `("--workers", "1")`) on top of the stack's own
    /// (`--listen`, `--database-url`, `--upstream-url`), and waits for `/health`.
    pub fn launch(&self, binary: Binary, flags: &[(String, String)]) -> Result<Target> {
        let stack_flags = [
            ("--database-url", self.database_url().to_string()),
            ("--upstream-url", self.upstream_url()),
        ];
        Target::launch(
            &self.bin_dir,
            &self.run_dir,
            &self.pids_file,
            self.listen_host,
            binary,
            &stack_flags,
            flags,
        )
        .with_context(|| format!("cannot start {}", binary.name()))
    }

    /// Starts pgbouncer (session mode, at most `server_sessions`) in front of the database;
    /// targets get its URL as `--database-url`.
    pub fn pgbouncer(&self, server_sessions: u32) -> Result<Pgbouncer> {
        Pgbouncer::start(
            &self.run_dir,
            &self.pids_file,
            self.database_url(),
            server_sessions,
        )
    }

    /// Starts a reverse proxy with one port per target.
    pub fn proxy(
        &self,
        targets: &[(String, SocketAddr)],
        keepalive: bool,
        workers: usize,
    ) -> Result<(Nginx, Vec<ProxyRoute>)> {
        let tag = self.proxies.fetch_add(1, Ordering::SeqCst).to_string();
        nginx::start_proxy(
            &self.run_dir,
            &self.pids_file,
            self.listen_host,
            &tag,
            targets,
            keepalive,
            workers,
        )
    }
}

impl Drop for Stack {
    /// Stops nginx and PostgreSQL, then removes the run folder: nothing of the stack is left
    /// (unless a server could not be stopped; then its folder stays, for the next start to
    /// sweep). `BENCH_KEEP_RUN_DIR=1` keeps the folder and its logs, to read after a run.
    fn drop(&mut self) {
        self.upstream.stop();
        let keep = std::env::var_os("BENCH_KEEP_RUN_DIR").is_some_and(|v| v == "1");
        if self.postgres.shut_down() && !keep {
            let _ = fs::remove_dir_all(&self.run_dir);
        }
    }
}

/// Flags as owned pairs, from `&[("--workers", "1")]`.
pub fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(flag, value)| (flag.to_string(), value.to_string()))
        .collect()
}

/// `target/<profile>`: this executable's folder, or its parent for a test in `deps/`.
fn default_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut dir = exe
        .parent()
        .context("executable has no folder")?
        .to_path_buf();
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.pop();
    }
    Ok(dir)
}

/// The targets whose binaries are built, in `bin_dir`.
pub fn built_targets(bin_dir: &Path) -> Vec<Binary> {
    Binary::ALL
        .into_iter()
        .filter(|b| bin_dir.join(b.name()).is_file())
        .collect()
}
