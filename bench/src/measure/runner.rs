//! The runner: one case, one or more rounds, one [`Row`]. A round starts the target fresh
//! (behind its own nginx when the case goes via nginx), warms up, starts the samplers (DB
//! sessions and memory every 100 ms, CPU from /proc before and after) and the extras the
//! case asks for, runs the load tool and stops everything. A target that dies during its
//! round is a failed row, not an error.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use shared::Binary;

use super::extras::{self, Context, Running};
use super::sample::{CpuWatch, Watched};
use super::tools::{self, pgbench, Measurement, Tool, ToolCost};
use super::SAMPLE_EVERY;
use crate::model::case::{Case, Subject};
use crate::model::external::External;
use crate::model::row::{Round, Row};
use crate::model::settings::{Settings, Via};
use crate::observe::{procfs, Sampler};
use crate::stack::{Pgbouncer, Stack};

/// Everything a run needs besides its cases.
pub struct Runner<'a> {
    pub stack: &'a Stack,
    pub tool: Tool,
    pub work_dir: PathBuf,
    pub interrupted: &'a AtomicBool,
    pgbouncer: Option<Pgbouncer>,
    /// Called after each round with the case label, for progress.
    pub on_round: Box<dyn Fn(&str) + 'a>,
}

/// Where a round's load goes, and what watches it.
struct Target<'w> {
    url: String,
    watched: Watched<'w>,
    nginx_pid: Option<u32>,
    /// The server itself, for the extras' own clients (none for pgbench and nginx alone).
    addr: Option<SocketAddr>,
}

impl<'a> Runner<'a> {
    pub fn new(
        stack: &'a Stack,
        tool: Tool,
        work_dir: &Path,
        interrupted: &'a AtomicBool,
        pgbouncer_sessions: Option<u32>,
    ) -> Result<Runner<'a>> {
        fs::create_dir_all(work_dir)?;
        let pgbouncer = match pgbouncer_sessions {
            Some(sessions) => Some(stack.pgbouncer(sessions)?),
            None => None,
        };
        Ok(Runner {
            stack,
            tool,
            work_dir: work_dir.to_path_buf(),
            interrupted,
            pgbouncer,
            on_round: Box::new(|_| {}),
        })
    }

    fn check_interrupted(&self) -> Result<()> {
        if self.interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// Measures `case` for `case.settings.rounds` rounds; never fails for the target's sake
    /// (that is a failed row), only when interrupted.
    pub fn measure(&self, case: &Case) -> Result<Row> {
        let mut rounds = Vec::new();
        let mut failure = None;
        for _ in 0..case.settings.rounds.max(1) {
            self.check_interrupted()?;
            let result = self.round(case);
            (self.on_round)(&case.label);
            match result {
                Ok(round) => rounds.push(round),
                Err(e) => {
                    self.check_interrupted()?;
                    failure = Some(format!("{e:#}"));
                    break;
                }
            }
        }
        Ok(Row::build(case, rounds, failure))
    }

    fn round(&self, case: &Case) -> Result<Round> {
        let idle = case.settings.idle_connections;
        if idle > 0 {
            // Before a target's launch: it inherits the limit.
            crate::stack::process::raise_fd_limit(u64::from(idle) + 1024)?;
        }
        match &case.subject {
            Subject::Target(binary) => self.round_target(case, *binary),
            Subject::External(external) => self.round_external(case, external),
            Subject::Pgbench => self.round_pgbench(case),
            Subject::NginxStatic => {
                let target = Target {
                    url: format!("http://{}/static", self.stack.upstream_addr),
                    watched: Watched::default(),
                    nginx_pid: Some(self.stack.upstream.pid()),
                    addr: None,
                };
                self.round_http(&case.settings, &target)
            }
        }
    }

    fn round_target(&self, case: &Case, binary: Binary) -> Result<Round> {
        let s = &case.settings;
        let mut flags = s.target_flags(binary);
        if let Some(bouncer) = &self.pgbouncer {
            flags.push(("--database-url".into(), bouncer.url.clone()));
        }
        let mut target = self.stack.launch(binary, &flags)?;
        let proxy = if s.via == Via::Nginx {
            let route = [(binary.name().to_string(), target.addr)];
            Some(self.stack.proxy(&route, s.upstream_keepalive, 1)?)
        } else {
            None
        };
        let addr = proxy
            .as_ref()
            .map_or(target.addr, |(_, routes)| routes[0].listen);
        if s.pin {
            procfs::pin(target.pid(), &[0]).context("cannot pin the target to CPU 0")?;
        }
        let round = self.round_http(
            s,
            &Target {
                url: format!("http://{addr}{}{}", s.path.path(), s.load_query()),
                watched: Watched {
                    pid: Some(target.pid()),
                    tree: false,
                    app: Some(shared::sql::application_name(binary)),
                    remote: None,
                },
                nginx_pid: proxy.as_ref().map(|(nginx, _)| nginx.pid()),
                addr: Some(addr),
            },
        );
        if let Some(death) = target.death("the run") {
            bail!("{death}");
        }
        round
    }

    /// A server the harness did not start: loaded like a reference (behind its own nginx
    /// when the case goes via nginx), with its delay asked per request; its process and DB
    /// sessions are watched only when `--external-pid` and `--external-app` name them.
    fn round_external(&self, case: &Case, external: &External) -> Result<Round> {
        let s = &case.settings;
        if let Some(pid) = external.pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                bail!("{} (pid {pid}) is no longer running", external.name);
            }
        }
        let remote = external.remote.as_ref();
        // A remote stack has its own nginx in front of its targets.
        let proxy = if s.via == Via::Nginx && remote.is_none() {
            let route = [(external.name.clone(), external.addr)];
            Some(self.stack.proxy(&route, s.upstream_keepalive, 1)?)
        } else {
            None
        };
        let addr = match (remote, s.via) {
            (Some(remote), Via::Nginx) => remote.via_nginx.with_context(|| {
                format!(
                    "the stack on {} has no nginx in front of {}",
                    remote.host, external.name
                )
            })?,
            _ => proxy
                .as_ref()
                .map_or(external.addr, |(_, routes)| routes[0].listen),
        };
        let target = Target {
            url: external.load_url(addr, s),
            watched: Watched {
                pid: external.pid,
                // A server of unknown make may serve from worker processes.
                tree: true,
                app: external.app.as_deref(),
                remote: remote
                    .and_then(|r| r.status.as_ref())
                    .map(|status| (status, external.name.as_str())),
            },
            nginx_pid: proxy.as_ref().map(|(nginx, _)| nginx.pid()),
            addr: Some(external.addr),
        };
        self.round_http(s, &target)
    }

    /// One round against an HTTP target: an extra that shapes the whole round (idle
    /// connections) measures it; otherwise [`Runner::load`] with the extras beside it.
    fn round_http(&self, s: &Settings, target: &Target) -> Result<Round> {
        if let Some(addr) = target.addr {
            let ctx = self.context(s, addr, target.watched.pid);
            let load = |settings: &Settings, watched: bool| {
                let inner = Target {
                    url: target.url.clone(),
                    watched: if watched {
                        target.watched
                    } else {
                        Watched::default()
                    },
                    nginx_pid: target.nginx_pid,
                    addr: None,
                };
                self.load(settings, &inner)
            };
            for extra in extras::ALL {
                if let Some(round) = extra.round(&ctx, &load) {
                    return round;
                }
            }
        }
        self.load(s, target)
    }

    fn context<'s>(
        &'s self,
        settings: &'s Settings,
        addr: SocketAddr,
        pid: Option<u32>,
    ) -> Context<'s> {
        Context {
            stack: self.stack,
            pgbouncer: self.pgbouncer.as_ref(),
            interrupted: self.interrupted,
            settings,
            addr,
            pid,
        }
    }

    /// Warm-up, then the measured load against the target with the samplers running and
    /// the extras the settings ask for beside it.
    fn load(&self, s: &Settings, target: &Target) -> Result<Round> {
        // Extras start before the warm-up, so that they are steady when the measurement
        // starts.
        let mut running: Vec<Box<dyn Running + '_>> = match target.addr {
            Some(addr) => {
                let ctx = self.context(s, addr, target.watched.pid);
                extras::ALL.iter().filter_map(|e| e.start(&ctx)).collect()
            }
            None => Vec::new(),
        };
        if s.warmup_s > 0 {
            let port = url_port(&target.url);
            let before = port.map_or(0, |p| procfs::port_connections(p).1);
            self.run_tool(&target.url, s, s.warmup_s, "warmup")?;
            if let Some(port) = port {
                settle(port, before);
            }
        }
        let watched = target.watched;
        let sessions = match watched.app {
            Some(app) if s.queries_the_database() => Some(Sampler::start(
                self.stack.database_url(),
                app,
                SAMPLE_EVERY,
            )?),
            _ => None,
        };
        let memory = watched.memory_sampler();
        let cpu = match watched.remote {
            Some((status, name)) => CpuWatch::remote(status, name),
            None => CpuWatch::start(
                watched.pid.map(|pid| (pid, watched.tree)),
                self.stack.postgres.server_pid(),
                target.nginx_pid,
            ),
        };
        let t0 = Instant::now();
        for extra in &mut running {
            extra.load_starts(t0);
        }
        let measurement = std::thread::scope(|scope| {
            let during: Vec<_> = running
                .iter_mut()
                .map(|extra| scope.spawn(move || extra.during_load(t0)))
                .collect();
            let measurement = self.run_tool(&target.url, s, s.duration_s, "load");
            for handle in during {
                let _ = handle.join();
            }
            measurement
        });
        let (cpu_s, postgres_cpu_s, nginx_cpu_s) = cpu.finish();
        let usage = memory.map(|m| m.finish());
        let sessions_peak = match sessions {
            Some(sampler) => Some(sampler.finish()?.sessions),
            None => None,
        };
        let mut round = Round {
            measurement: Measurement::default(),
            sessions_peak,
            rss_peak_mib: usage.map(|u| u.rss_mib),
            pss_peak_mib: usage.and_then(|u| u.pss_mib),
            threads_peak: usage.map(|u| u.threads),
            processes_peak: usage.map(|u| u.processes),
            cpu_s,
            postgres_cpu_s,
            nginx_cpu_s,
            ..Round::default()
        };
        for extra in running {
            extra.finish(&mut round)?;
        }
        let (measurement, cost) = measurement?;
        round.measurement = measurement;
        round.tool_cost = Some(cost);
        Ok(round)
    }

    /// One run of the load tool (the case's, when it names another than the session's),
    /// with what the tool itself cost.
    fn run_tool(
        &self,
        url: &str,
        s: &Settings,
        seconds: u32,
        phase: &str,
    ) -> Result<(Measurement, ToolCost)> {
        let located;
        let tool = if s.tool == self.tool.kind {
            &self.tool
        } else {
            located = tools::locate(s.tool)?;
            &located
        };
        let mut command = tools::command(tool, url, s, seconds, &self.work_dir)?;
        if s.pin {
            procfs::pin_command(&mut command);
        }
        let name = tool.kind.name();
        let out_file = self.work_dir.join(format!("{name}-{phase}.out"));
        let limit = Duration::from_secs(u64::from(seconds) + u64::from(tools::TIMEOUT_S) + 30);
        let threads = |cpus| {
            tool.kind
                .working_threads(s.connections, s.per_connection, cpus)
        };
        let finished = tools::run_to_end(command, limit, self.interrupted, &out_file, &threads)?;
        let measurement = tools::parse(tool.kind, &finished.stdout)
            .with_context(|| format!("{name} output in {}", out_file.display()))?;
        Ok((measurement, finished.cost))
    }

    /// pgbench with the targets' statement and client count: the database's own limit.
    fn round_pgbench(&self, case: &Case) -> Result<Round> {
        let s = &case.settings;
        let dir = self.work_dir.join("pgbench");
        let command = pgbench::command(s, self.stack.database_url(), &dir)?;
        let sessions = Sampler::start(self.stack.database_url(), "pgbench", SAMPLE_EVERY)?;
        let cpu = CpuWatch::start(None, self.stack.postgres.server_pid(), None);
        let limit = Duration::from_secs(u64::from(s.duration_s) + 60);
        let threads = |_| pgbench::threads(s);
        let finished = tools::run_to_end(
            command,
            limit,
            self.interrupted,
            &dir.join("pgbench.out"),
            &threads,
        );
        let (_, postgres_cpu_s, _) = cpu.finish();
        let peak = sessions.finish()?.sessions;
        let finished = finished?;
        let measurement = pgbench::read_logs(&dir, s.duration_s)?;
        Ok(Round {
            measurement,
            tool_cost: Some(finished.cost),
            sessions_peak: Some(peak),
            postgres_cpu_s,
            ..Round::default()
        })
    }
}

/// The longest wait for a warm-up's connections to be gone.
const SETTLE_AT_MOST: Duration = Duration::from_secs(30);

/// The port of a load URL (`http://127.0.0.1:8080/test`).
fn url_port(url: &str) -> Option<u16> {
    let authority = url.strip_prefix("http://")?.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

/// Waits (at most [`SETTLE_AT_MOST`]) until the warm-up's connections are gone from `port`:
/// none in the accept queue, and no more open than before the warm-up (the extras' own).
/// The load tool closed them when it exited, but a server that takes its connections one
/// thread at a time (sync-thread: 1,024 threads for 10,000 clients) still has thousands
/// queued, each to be accepted and answered into a closed socket; if the measured load
/// started among them, its new connections met their stale ones (a SYN on a live 4-tuple
/// is answered with a challenge ACK) and failed with read errors. Not on this host (a remote
/// stack): nothing to see, no wait.
fn settle(port: u16, before: u64) {
    let deadline = Instant::now() + SETTLE_AT_MOST;
    while Instant::now() < deadline {
        let (queued, open) = procfs::port_connections(port);
        if queued == 0 && open <= before {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
