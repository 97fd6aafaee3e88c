//! The runner: one case, one or more rounds, one [`Row`]. A round starts the target fresh
//! (behind its own nginx when the case goes via nginx), warms up, starts the samplers (DB
//! sessions and memory every 100 ms, CPU from /proc before and after), runs the load tool and
//! stops everything. A target that dies during its round is a failed row, not an error.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use shared::Binary;

use super::external::External;
use super::fault::{self, FaultReport, Probe, Timeline};
use super::idle::{self, IdleReport};
use super::row::{Round, Row};
use super::scenario::{Case, Settings, Subject, Via};
use super::slow::SlowClients;
use super::tools::{self, Measurement, Tool};
use super::{pgbench, procfs, SAMPLE_EVERY};
use crate::observe::Sampler;
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
        Ok(Row::build(case, &self.tool, rounds, failure))
    }

    fn round(&self, case: &Case) -> Result<Round> {
        match &case.subject {
            Subject::Target(binary) => self.round_target(case, *binary),
            Subject::External(external) => self.round_external(case, external),
            Subject::Pgbench => self.round_pgbench(case),
            Subject::NginxStatic => {
                let url = format!("http://{}/static", self.stack.upstream_addr);
                let nginx = self.stack.upstream.pid();
                self.round_http(case, &url, Watched::default(), Some(nginx), None)
            }
        }
    }

    fn round_target(&self, case: &Case, binary: Binary) -> Result<Round> {
        let s = &case.settings;
        if s.idle_connections > 0 {
            // Before the launch: the target inherits the limit.
            idle::raise_fd_limit(u64::from(s.idle_connections) + 1024)?;
        }
        let mut flags = s.target_flags(binary);
        if let Some(bouncer) = &self.pgbouncer {
            flags.push(("--database-url".into(), bouncer.url.clone()));
        }
        let mut target = self.stack.launch(binary, &flags)?;
        let proxy = if s.via == Via::Nginx {
            Some(self.stack.proxy(
                &[(binary.name().to_string(), target.addr)],
                s.upstream_keepalive,
                1,
            )?)
        } else {
            None
        };
        let addr = proxy
            .as_ref()
            .map_or(target.addr, |(_, routes)| routes[0].listen);
        if s.pin {
            procfs::pin(target.pid(), &[0]).context("cannot pin the target to CPU 0")?;
        }
        let url = format!("http://{addr}{}", s.path.path());
        let watched = Watched {
            pid: Some(target.pid()),
            app: Some(shared::sql::application_name(binary)),
            remote: None,
        };
        let round = self.round_http(
            case,
            &url,
            watched,
            proxy.as_ref().map(|(nginx, _)| nginx.pid()),
            Some(addr),
        );
        if !target.is_running() {
            bail!(
                "{} died during the run; its log ends:\n{}",
                binary.name(),
                crate::stack::process::tail(target.log(), 10)
            );
        }
        round
    }

    /// A server the harness did not start: loaded like a reference (behind its own nginx
    /// when the case goes via nginx), with its delay asked per request; its process and DB
    /// sessions are watched only when `--external-pid` and `--external-app` name them.
    fn round_external(&self, case: &Case, external: &External) -> Result<Round> {
        let s = &case.settings;
        if s.idle_connections > 0 {
            idle::raise_fd_limit(u64::from(s.idle_connections) + 1024)?;
        }
        if let Some(pid) = external.pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                bail!("{} (pid {pid}) is no longer running", external.name);
            }
        }
        let remote = external.remote.as_ref();
        // A remote stack has its own nginx in front of its targets.
        let proxy = if s.via == Via::Nginx && remote.is_none() {
            Some(self.stack.proxy(
                &[(external.name.clone(), external.addr)],
                s.upstream_keepalive,
                1,
            )?)
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
        let url = external.load_url(addr, s);
        let watched = Watched {
            pid: external.pid,
            app: external.app.as_deref(),
            remote: remote
                .and_then(|r| r.status)
                .map(|status| (status, external.name.as_str())),
        };
        self.round_http(
            case,
            &url,
            watched,
            proxy.as_ref().map(|(nginx, _)| nginx.pid()),
            Some(external.addr),
        )
    }

    /// Warm-up, then the measured load against `url` with the samplers running; with faults,
    /// the probe on `probe_addr` and the faults during the load.
    fn round_http(
        &self,
        case: &Case,
        url: &str,
        watched: Watched,
        nginx_pid: Option<u32>,
        probe_addr: Option<std::net::SocketAddr>,
    ) -> Result<Round> {
        let s = &case.settings;
        if s.idle_connections > 0 {
            if let Some(addr) = probe_addr {
                return self.round_idle(case, url, watched, addr, nginx_pid);
            }
        }
        // Slow clients start before the warm-up, so that they are steady when the
        // measurement starts.
        let slow = probe_addr
            .filter(|_| s.slow_clients > 0)
            .map(|addr| SlowClients::start(addr, s.path.path(), s.slow_clients));
        if s.warmup_s > 0 {
            self.run_tool(url, s, s.warmup_s, "warmup")?;
        }
        if let Some(slow) = &slow {
            slow.reset();
        }
        let sessions = match watched.app {
            Some(app) if s.queries_the_database() => Some(Sampler::start(
                self.stack.database_url(),
                app,
                SAMPLE_EVERY,
            )?),
            _ => None,
        };
        let memory = match (watched.remote, watched.pid) {
            (Some((status, name)), _) => {
                let name = name.to_string();
                Some(procfs::MemorySampler::start_with(SAMPLE_EVERY, move || {
                    crate::remote::memory_of(status, &name)
                }))
            }
            (None, Some(pid)) => Some(procfs::MemorySampler::start(pid, SAMPLE_EVERY)),
            (None, None) => None,
        };
        let cpu = match watched.remote {
            Some((status, name)) => CpuWatch::remote(status, name),
            None => CpuWatch::start(watched.pid, self.stack.postgres.server_pid(), nginx_pid),
        };
        let faulted = !s.faults.is_empty();
        let t0 = Instant::now();
        let probe = probe_addr
            .filter(|_| faulted)
            .map(|addr| Probe::start(addr, s.path.path(), t0));
        let (stack, pgbouncer, interrupted) =
            (self.stack, self.pgbouncer.as_ref(), self.interrupted);
        let (measurement, fault_times) = std::thread::scope(|scope| {
            let injector = faulted.then(|| {
                scope.spawn(move || {
                    fault::inject(stack, pgbouncer, &s.faults, s.duration_s, t0, interrupted)
                })
            });
            let measurement = self.run_tool(url, s, s.duration_s, "load");
            let times = injector.map(|h| h.join().unwrap_or_default());
            (measurement, times.unwrap_or_default())
        });
        let slow_clients = slow.map(SlowClients::finish);
        let events = probe.map(Probe::finish).unwrap_or_default();
        let (cpu_s, mut postgres_cpu_s, nginx_cpu_s) = cpu.finish();
        if let Some(error) = fault_times.iter().find_map(|t| t.error.clone()) {
            bail!("the fault could not be carried out: {error}");
        }
        if s.faults.iter().any(|f| f.kind.replaces_postgres()) {
            // Other PostgreSQL processes at the end than at the start.
            postgres_cpu_s = None;
        }
        let faults = fault_times
            .iter()
            .map(|times| FaultReport::of(&times.fault, times, &events))
            .collect();
        let timeline = faulted.then(|| Timeline::of(&events, s.duration_s));
        let (rss, threads) = memory.map_or((None, None), |m| {
            let (rss, threads) = m.finish();
            (Some(rss), Some(threads))
        });
        let sessions_peak = match sessions {
            Some(sampler) => Some(sampler.finish()?.sessions),
            None => None,
        };
        Ok(Round {
            measurement: measurement?,
            faults,
            timeline,
            slow_clients,
            idle: None,
            sessions_peak,
            rss_peak_mib: rss,
            threads_peak: threads,
            cpu_s,
            postgres_cpu_s,
            nginx_cpu_s,
        })
    }

    /// The load alone, then `idle_connections` held open (memory, threads and `/health`
    /// measured with them held), then the same load beside them: the round's measurement.
    fn round_idle(
        &self,
        case: &Case,
        url: &str,
        watched: Watched,
        addr: std::net::SocketAddr,
        nginx_pid: Option<u32>,
    ) -> Result<Round> {
        let s = &case.settings;
        // Without a process to look at (an external without --external-pid), the memory
        // columns stay empty; the rest is measured.
        let footprint = || watched.pid.map_or((0.0, 0), idle::footprint);
        let anon = || watched.pid.and_then(procfs::anon_split);
        // The same load, as a plain round: alone first, then (without a second warm-up)
        // beside the held connections.
        let mut load = Case {
            settings: Settings {
                idle_connections: 0,
                ..s.clone()
            },
            ..case.clone()
        };
        let baseline = self.round_http(&load, url, Watched::default(), nginx_pid, None)?;
        let (rss_before_mib, threads_before) = footprint();
        let anon_before = anon();
        // Open and silent first, for the cost of an accepted connection before any request;
        // a server that closes each connection gets its requests at once.
        let silent = !idle::closes_each_connection(addr);
        let mut held = idle::Held::open(addr, s.idle_connections, silent);
        // The target accepts what the backlog holds; then its cost before any request.
        std::thread::sleep(Duration::from_secs(1));
        let (rss_accepted_mib, _) = footprint();
        held.ask();
        let (rss_held_mib, threads_held) = footprint();
        let anon_held = anon();
        let (mut latencies, health_failed) = idle::health(addr, 50);
        latencies.sort_by(f64::total_cmp);
        load.settings.warmup_s = 0;
        // A target that stopped answering the held connections (sync-thread at
        // --max-threads) has nothing left for the load: it is not run, and the row says so
        // (no 2xx), with what the first unanswered connection saw.
        let mut round = if held.answered < held.opened {
            Round {
                measurement: tools::Measurement {
                    seconds: f64::from(s.duration_s),
                    ..tools::Measurement::default()
                },
                ..Round::default()
            }
        } else {
            self.round_http(&load, url, watched, nginx_pid, None)?
        };
        let answered = held.answered;
        let per = |kib: f64, n: u32| (n > 0 && watched.pid.is_some()).then(|| kib / f64::from(n));
        let grown = anon_before.zip(anon_held);
        round.idle = Some(IdleReport {
            asked: s.idle_connections,
            opened: held.opened,
            answered,
            first_unanswered: held.first_unanswered.clone(),
            rss_before_mib,
            rss_held_mib,
            kib_per_connection: per((rss_held_mib - rss_before_mib) * 1024.0, answered),
            kib_accepted: per((rss_accepted_mib - rss_before_mib) * 1024.0, held.opened)
                .filter(|_| silent),
            kib_stack: grown
                .and_then(|(b, h)| per(h.stack_kib as f64 - b.stack_kib as f64, answered)),
            kib_heap: grown.and_then(|(b, h)| per(h.heap_kib as f64 - b.heap_kib as f64, answered)),
            threads_before,
            threads_held,
            health_p50_ms: tools::percentile_of_sorted(&latencies, 50.0),
            health_p99_ms: tools::percentile_of_sorted(&latencies, 99.0),
            health_failed,
            load_alone_rps: baseline.measurement.requests_per_sec(),
            load_alone_p99_ms: baseline.measurement.p99_ms,
        });
        drop(held);
        Ok(round)
    }

    fn run_tool(&self, url: &str, s: &Settings, seconds: u32, phase: &str) -> Result<Measurement> {
        let mut command = tools::command(&self.tool, url, s, seconds, &self.work_dir)?;
        if s.pin {
            procfs::pin_command(&mut command);
        }
        let name = self.tool.kind.name();
        let out_file = self.work_dir.join(format!("{name}-{phase}.out"));
        let limit = Duration::from_secs(u64::from(seconds) + u64::from(tools::TIMEOUT_S) + 30);
        let stdout = tools::run_to_end(command, limit, self.interrupted, &out_file)?;
        tools::parse(self.tool.kind, &stdout)
            .with_context(|| format!("{name} output in {}", out_file.display()))
    }

    /// pgbench with the targets' statement and client count: the database's own limit.
    fn round_pgbench(&self, case: &Case) -> Result<Round> {
        let s = &case.settings;
        let dir = self.work_dir.join("pgbench");
        let command = pgbench::command(s, self.stack.database_url(), &dir)?;
        let sessions = Sampler::start(self.stack.database_url(), "pgbench", SAMPLE_EVERY)?;
        let cpu = CpuWatch::start(None, self.stack.postgres.server_pid(), None);
        let limit = Duration::from_secs(u64::from(s.duration_s) + 60);
        let stdout = tools::run_to_end(command, limit, self.interrupted, &dir.join("pgbench.out"));
        let (_, postgres_cpu_s, _) = cpu.finish();
        let peak = sessions.finish()?.sessions;
        stdout?;
        let measurement = pgbench::read_logs(&dir, s.duration_s)?;
        Ok(Round {
            measurement,
            sessions_peak: Some(peak),
            postgres_cpu_s,
            ..Round::default()
        })
    }
}

/// What the samplers watch in a round: the measured process (memory, threads, CPU) and its
/// DB sessions' `application_name`. Empty for pgbench and nginx alone, and for an external
/// server without `--external-pid` and `--external-app`.
#[derive(Clone, Copy, Default)]
struct Watched<'a> {
    pid: Option<u32>,
    app: Option<&'a str>,
    /// A target of a remote stack: its status endpoint and its name in the samples.
    remote: Option<(std::net::SocketAddr, &'a str)>,
}

/// CPU seconds of the target, PostgreSQL and the proxy nginx over the measured load: from
/// this host's /proc, or from a remote stack's samples.
struct CpuWatch {
    source: CpuSource,
    before: [Option<f64>; 3],
}

enum CpuSource {
    Local([Option<u32>; 3]),
    /// The status endpoint and the target's name in its samples.
    Remote(std::net::SocketAddr, String),
}

impl CpuWatch {
    fn start(target: Option<u32>, postgres: Option<u32>, nginx: Option<u32>) -> CpuWatch {
        let source = CpuSource::Local([target, postgres, nginx]);
        let before = source.read();
        CpuWatch { source, before }
    }

    fn remote(status: std::net::SocketAddr, name: &str) -> CpuWatch {
        let source = CpuSource::Remote(status, name.to_string());
        let before = source.read();
        CpuWatch { source, before }
    }

    fn finish(self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let after = self.source.read();
        let delta = |i: usize| Some((after[i]? - self.before[i]?).max(0.0));
        (delta(0), delta(1), delta(2))
    }
}

impl CpuSource {
    fn read(&self) -> [Option<f64>; 3] {
        match self {
            CpuSource::Local(pids) => read_cpu(pids),
            CpuSource::Remote(status, name) => {
                let samples = crate::remote::fetch_samples(*status).unwrap_or_default();
                let cpu = |key: &str| samples.get(key).map(|s| s.cpu_s);
                [cpu(name), cpu("postgres"), cpu("nginx")]
            }
        }
    }
}

fn read_cpu(pids: &[Option<u32>; 3]) -> [Option<f64>; 3] {
    [
        pids[0].and_then(|pid| procfs::cpu_seconds(pid, false)),
        pids[1].and_then(|pid| procfs::cpu_seconds(pid, true)),
        pids[2].and_then(|pid| procfs::cpu_seconds(pid, true)),
    ]
}
