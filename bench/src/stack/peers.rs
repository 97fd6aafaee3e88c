//! The articles' own Python stacks (`peers/python/`), started by the harness beside its
//! targets (`bench run --peers python`) and measured as external rows that are observed as
//! fully as a target: the process tree (CPU, memory, threads, processes), the DB sessions by
//! `application_name`, and a bound from the model the harness gave them.
//!
//! Each peer gets the preset's settings the way the articles configured it: gunicorn's sync
//! workers get the sync workers (19 at Grinberg's point), each with one DB connection; the
//! greenlet and async servers get the async workers as processes (6), each with its share of
//! the DB sessions as its own pool. The Python packages live in a virtual environment,
//! `peers/python/.venv`, made by `peers/python/install`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use shared::Binary;

use super::process::{free_port, Process};
use super::target::CONTRACT_ENV;
use super::Stack;
use crate::model::external::{External, ExternalModel};
use crate::model::settings::Settings;

/// One of the articles' Python stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Flask on gunicorn's sync workers, psycopg2, one connection per worker.
    FlaskSync,
    /// Flask on gunicorn's gevent worker, psycopg2 made cooperative, a pool per process.
    FlaskGevent,
    /// aiohttp.web with asyncpg on gunicorn's aiohttp worker (uvloop).
    Aiohttp,
    /// Starlette on uvicorn (uvloop, httptools) with asyncpg.
    StarletteUvicorn,
}

/// The peers `--peers python` starts, in the order of their rows.
pub const PYTHON: [Peer; 4] = [
    Peer::FlaskSync,
    Peer::FlaskGevent,
    Peer::Aiohttp,
    Peer::StarletteUvicorn,
];

/// How many processes a peer runs, and each one's DB connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub processes: u32,
    pub pool_per_process: u32,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::FlaskSync => "flask-sync",
            Peer::FlaskGevent => "flask-gevent",
            Peer::Aiohttp => "aiohttp",
            Peer::StarletteUvicorn => "starlette-uvicorn",
        }
    }

    /// The reference with the same model, to read beside it.
    pub fn counterpart(self) -> Binary {
        match self {
            Peer::FlaskSync => Binary::SyncPool,
            Peer::FlaskGevent => Binary::MayGreen,
            Peer::Aiohttp => Binary::TokioActix,
            Peer::StarletteUvicorn => Binary::TokioAxum,
        }
    }

    /// Its processes and pools under `s`: the sync workers for gunicorn's sync worker (one
    /// connection each, as many as the sessions allow), the async workers (or the CPU count)
    /// as processes for the others, each with an equal share of the sessions.
    pub fn shape(self, s: &Settings) -> Shape {
        match self {
            Peer::FlaskSync => {
                // As sync-pool: no more workers than sessions, each holding one.
                let workers = s.sync_workers.unwrap_or_else(|| 2 * cpus() + 1);
                Shape {
                    processes: workers.min(s.sessions).max(1),
                    pool_per_process: 1,
                }
            }
            _ => {
                let processes = s.async_worker_count().max(1);
                Shape {
                    processes,
                    pool_per_process: (s.sessions / processes).max(1),
                }
            }
        }
    }

    /// Its stack and shape, for the row's model column.
    pub fn describe(self, shape: Shape) -> String {
        let Shape {
            processes: n,
            pool_per_process: p,
        } = shape;
        let stack = match self {
            Peer::FlaskSync => format!(
                "Flask on gunicorn's sync workers, psycopg2: {n} processes, one request and one DB connection each"
            ),
            Peer::FlaskGevent => format!(
                "Flask on gunicorn's gevent workers, psycopg2 with psycogreen: {n} processes, a greenlet per connection, a DB pool of {p} each"
            ),
            Peer::Aiohttp => format!(
                "aiohttp.web on gunicorn's uvloop worker, asyncpg: {n} processes, one event loop and a DB pool of {p} each"
            ),
            Peer::StarletteUvicorn => format!(
                "Starlette on uvicorn (uvloop, httptools), asyncpg: {n} processes, one event loop and a DB pool of {p} each"
            ),
        };
        format!("peer: {stack} (cf. {})", self.counterpart().name())
    }

    /// What bounds it under `s`: a sync worker serves one request at a time; the others are
    /// bounded by their pools when a request reads the database, and by nothing of their own
    /// otherwise.
    pub fn model(self, s: &Settings) -> ExternalModel {
        let shape = self.shape(s);
        match self {
            Peer::FlaskSync => ExternalModel::Pool(shape.processes),
            _ if s.queries_the_database() => {
                ExternalModel::Pool(shape.processes * shape.pool_per_process)
            }
            _ => ExternalModel::Unbounded,
        }
    }

    /// The server's command line after the program (gunicorn or uvicorn).
    fn arguments(self, dir: &Path, addr: SocketAddr, shape: Shape) -> (&'static str, Vec<String>) {
        let workers = shape.processes.to_string();
        let dir = dir.display().to_string();
        if self == Peer::StarletteUvicorn {
            let args = [
                "starlette_app:app",
                "--app-dir",
                &dir,
                "--host",
                &addr.ip().to_string(),
                "--port",
                &addr.port().to_string(),
                "--workers",
                &workers,
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--backlog",
                "2048",
                "--timeout-keep-alive",
                "5",
                "--no-access-log",
                "--log-level",
                "warning",
            ];
            return ("uvicorn", args.iter().map(|a| a.to_string()).collect());
        }
        let (class, app) = match self {
            Peer::FlaskSync => ("sync", "flask_sync:app"),
            Peer::FlaskGevent => ("gevent", "flask_gevent:app"),
            _ => ("aiohttp.GunicornUVLoopWebWorker", "aiohttp_app:make_app"),
        };
        let args = [
            app,
            "--chdir",
            &dir,
            "--bind",
            &addr.to_string(),
            "--workers",
            &workers,
            "--worker-class",
            class,
            "--worker-connections",
            "1000",
            "--backlog",
            "2048",
            "--keep-alive",
            "5",
            "--graceful-timeout",
            "3",
            "--no-control-socket",
        ];
        ("gunicorn", args.iter().map(|a| a.to_string()).collect())
    }
}

/// The peers `--peers` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen(pub Vec<Peer>);

/// Parses `--peers`: `python` (all four), or peer names, comma-separated.
pub fn parse(text: &str) -> Result<Chosen, String> {
    parse_list(text).map(Chosen)
}

fn parse_list(text: &str) -> Result<Vec<Peer>, String> {
    if text == "python" {
        return Ok(PYTHON.to_vec());
    }
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim) {
        let peer = PYTHON
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                format!(
                    "{name:?} is not a peer: give python (all four) or some of {}",
                    PYTHON.map(Peer::name).join(", ")
                )
            })?;
        if !out.contains(&peer) {
            out.push(peer);
        }
    }
    Ok(out)
}

fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// `peers/python/`: `BENCH_PEERS_DIR`, else in the checkout this executable was built in
/// (`target/release/bench`), else under the current folder.
pub fn python_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_PEERS_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let beside = exe.ancestors().nth(3).map(|repo| repo.join("peers/python"));
    match beside {
        Some(dir) if dir.is_dir() => dir,
        _ => PathBuf::from("peers/python"),
    }
}

/// The virtual environment's `bin/`, when `install` has filled it with the pinned
/// requirements; otherwise why not, and what to run.
pub fn ready(dir: &Path) -> Result<PathBuf, String> {
    let bin = dir.join(".venv/bin");
    let wanted = fs::read_to_string(dir.join("requirements.txt"))
        .map_err(|e| format!("{}: {e}", dir.join("requirements.txt").display()))?;
    let installed = fs::read_to_string(dir.join(".venv/installed-requirements.txt")).ok();
    if !bin.join("gunicorn").is_file() || installed.as_deref() != Some(wanted.as_str()) {
        return Err(format!(
            "the Python peers are not installed (or their requirements changed): run {}/install (it needs python3-venv and PyPI)",
            dir.display()
        ));
    }
    Ok(bin)
}

/// The peers' Python and pinned packages, for a run's `versions`: `python` and each
/// `NAME==VERSION` of requirements.txt (as `python peers: NAME`).
pub fn versions(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(output) = Command::new(dir.join(".venv/bin/python"))
        .arg("--version")
        .output()
    {
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        out.push(("python (peers)".to_string(), text));
    }
    let requirements = fs::read_to_string(dir.join("requirements.txt")).unwrap_or_default();
    for line in requirements.lines() {
        if let Some((name, version)) = line.trim().split_once("==") {
            out.push((format!("{name} (peers)"), version.to_string()));
        }
    }
    out
}

/// A peer the harness started. Dropping it stops it and its workers.
pub struct RunningPeer {
    pub peer: Peer,
    /// What the run measures it as: an external with its pid, sessions and model.
    pub external: External,
    process: Process,
}

impl RunningPeer {
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

impl Stack {
    /// Starts `peer` with `s`'s workers and sessions on a free port, against the stack's
    /// database and upstream, and waits for `/health`.
    pub fn start_peer(&self, peer: Peer, s: &Settings, dir: &Path) -> Result<RunningPeer> {
        let bin = ready(dir).map_err(anyhow::Error::msg)?;
        let shape = peer.shape(s);
        let addr = SocketAddr::new(self.listen_host, free_port()?);
        let (program, args) = peer.arguments(dir, addr, shape);
        let mut command = Command::new(bin.join(program));
        for var in CONTRACT_ENV {
            command.env_remove(var);
        }
        let env = [
            ("DATABASE_URL", self.database_url().to_string()),
            ("UPSTREAM_URL", self.upstream_url()),
            ("POOL_SIZE", shape.pool_per_process.to_string()),
            ("ROWS", s.rows.to_string()),
        ];
        command.envs(env.iter().map(|(k, v)| (k, v))).args(&args);
        let log = self
            .run_dir
            .join(format!("{}-{}.log", peer.name(), addr.port()));
        let process = Process::spawn(
            &format!("{program}:{}", peer.name()),
            command,
            &log,
            &self.pids_file,
            libc::SIGTERM,
        )?;
        let mut flags: Vec<String> = env[2..].iter().map(|(k, v)| format!("{k}={v}")).collect();
        flags.push(format!("{program} {}", args.join(" ")));
        let model = peer.model(s);
        let mut running = RunningPeer {
            peer,
            external: External {
                name: peer.name().to_string(),
                url: format!("http://{addr}/test"),
                addr,
                pid: Some(process.pid()),
                app: Some(peer.name().to_string()),
                model: Some(model),
                about: Some(peer.describe(shape)),
                verified: false,
                breaks: Vec::new(),
                flags,
                peer: true,
                binary: None,
                remote: None,
                upstream_page: None,
                database: None,
            },
            process,
        };
        running.wait_healthy(Duration::from_secs(30))?;
        Ok(running)
    }
}

impl RunningPeer {
    fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let name = format!("the peer {}", self.peer.name());
        super::process::wait_healthy(&mut self.process, &name, self.external.addr, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::preset::find;

    #[test]
    fn each_peer_is_shaped_as_the_articles_ran_it() {
        let grinberg = find("grinberg").unwrap().settings;
        // 19 sync workers with one connection each; 6 processes with 100 / 6 = 16 each.
        assert_eq!(
            Peer::FlaskSync.shape(&grinberg),
            Shape {
                processes: 19,
                pool_per_process: 1
            }
        );
        assert_eq!(Peer::FlaskSync.model(&grinberg), ExternalModel::Pool(19));
        assert_eq!(
            Peer::Aiohttp.shape(&grinberg),
            Shape {
                processes: 6,
                pool_per_process: 16
            }
        );
        assert_eq!(Peer::Aiohttp.model(&grinberg), ExternalModel::Pool(96));
        // Without the database, only gunicorn's sync workers bound a peer.
        let tsutsumi = find("tsutsumi").unwrap().settings;
        assert_eq!(Peer::FlaskSync.model(&tsutsumi), ExternalModel::Pool(19));
        assert_eq!(
            Peer::StarletteUvicorn.model(&tsutsumi),
            ExternalModel::Unbounded
        );
        // Fewer sessions than processes still give each process one.
        let mut few = grinberg.clone();
        few.sessions = 2;
        assert_eq!(Peer::FlaskGevent.shape(&few).pool_per_process, 1);
    }

    #[test]
    fn peers_are_named_as_a_set_or_one_by_one() {
        assert_eq!(parse("python").unwrap().0, PYTHON.to_vec());
        assert_eq!(
            parse("aiohttp,flask-sync").unwrap().0,
            vec![Peer::Aiohttp, Peer::FlaskSync]
        );
        let error = parse("meinheld").unwrap_err();
        assert!(
            error.contains("not a peer") && error.contains("flask-gevent"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_environment_says_what_to_run() {
        let dir = std::env::temp_dir().join(format!("peers-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("requirements.txt"), "gunicorn==27.0.1\n").unwrap();
        let why = ready(&dir).unwrap_err();
        assert!(why.contains("install") && why.contains("PyPI"), "{why}");
        assert!(!why.contains('\n'));
        fs::remove_dir_all(&dir).unwrap();
    }
}
