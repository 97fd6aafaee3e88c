//! The presets: each reproduces the configuration of a published Python benchmark (see
//! docs/scenarios.md), and expands into the cases that `bench run` measures.
//!
//! A scenario fixes the load (clients, duration, open or closed loop), the endpoint, the delay
//! and the DB sessions; command-line flags override any of it. What a preset deliberately does
//! *not* copy are the articles' known mistakes: there is a warm-up, and nginx keeps its
//! upstream connections open unless the preset is about the cost of not doing so (paterson).

use std::fmt;

use anyhow::{bail, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shared::{Backend, Binary, DbMode};

use super::external::External;
use super::fault::{Fault, FaultKind};
use super::tools::ToolKind;

/// What a case requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    /// `/test`: the backend, with the delay.
    #[serde(rename = "/test")]
    Test,
    /// `/json`: no I/O.
    #[serde(rename = "/json")]
    Json,
    /// nginx's own `/static` page (the limits rows).
    #[serde(rename = "/static")]
    Static,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Test => "/test",
            Endpoint::Json => "/json",
            Endpoint::Static => "/static",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// How the load reaches a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Through its own nginx reverse proxy, as in the articles.
    Nginx,
    /// Straight to the target's port.
    Direct,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Nginx => "nginx",
            Via::Direct => "direct",
        })
    }
}

fn backend_name<S: Serializer>(backend: &Backend, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(backend.name())
}

fn backend_from_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Backend, D::Error> {
    let name = String::deserialize(deserializer)?;
    Backend::from_name(&name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown backend {name:?}")))
}

fn db_mode_name<S: Serializer>(mode: &DbMode, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(mode.name())
}

fn db_mode_from_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DbMode, D::Error> {
    let name = String::deserialize(deserializer)?;
    DbMode::from_name(&name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown db mode {name:?}")))
}

/// What one measured run asks of a target, fully resolved: the row's configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub path: Endpoint,
    /// What `/test` does.
    #[serde(
        serialize_with = "backend_name",
        deserialize_with = "backend_from_name"
    )]
    pub backend: Backend,
    pub delay_ms: u32,
    /// Concurrent client connections.
    pub connections: u32,
    /// Open-loop rate in requests per second; `None` is a closed loop.
    pub rate: Option<u32>,
    pub duration_s: u32,
    pub warmup_s: u32,
    /// DB sessions in total, as in Grinberg's pgbouncer; each target's `--pool-size`.
    pub sessions: u32,
    /// `--workers` of sync-pool (each one a worker, as gunicorn's sync workers).
    pub sync_workers: Option<u32>,
    /// `--workers` of the async and green targets.
    pub async_workers: Option<u32>,
    pub via: Via,
    pub upstream_keepalive: bool,
    pub client_keepalive: bool,
    pub pgbouncer: bool,
    /// Target on CPU 0, load tool on the others.
    pub pin: bool,
    pub tool: ToolKind,
    /// Repeated rounds per case (the row keeps the median and the spread).
    pub rounds: u32,
    /// The targets' `--rows`: random ids are drawn from 1..=rows (pgbench too).
    pub rows: i32,
    /// The tokio targets' `--db-mode` (the others always pool).
    #[serde(
        default,
        serialize_with = "db_mode_name",
        deserialize_with = "db_mode_from_name"
    )]
    pub db_mode: DbMode,
    /// wrk with one thread per connection, each counting its answers: how evenly the target
    /// serves its connections (the row's `connection_requests`).
    #[serde(default)]
    pub per_connection: bool,
    /// Faults during the measured load (`--fault`).
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Slow clients beside the load tool's (`--slow-clients`): each sends its request over
    /// about a second and reads the answer slowly.
    #[serde(default)]
    pub slow_clients: u32,
    /// Idle keep-alive connections held on the target during the load (`--idle-connections`);
    /// the target's idle timeout is then off (`--keep-alive-timeout-ms 0`).
    #[serde(default)]
    pub idle_connections: u32,
}

/// One preset: defaults plus how it expands.
#[derive(Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub source: &'static str,
    pub summary: &'static str,
    pub settings: Settings,
    pub extra: Extra,
}

/// What a preset measures beyond one row per target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Extra {
    None,
    /// sync-pool again at each of these worker counts (Tsutsumi's thread sweep).
    SyncPoolSweep(&'static [u32]),
    /// Each target at each open-loop rate, for `/json` and for the db backend (API-Hour).
    OpenLoop(&'static [u32]),
    /// No targets: pgbench with the targets' statement, and nginx answering alone.
    Limits,
    /// At each of these client counts: every tokio target pooled and pipelined, and pgbench
    /// with as many clients, in one group per count (the TechEmpower single-query design).
    Leaderboard(&'static [u32]),
    /// One group per fault: every target with that fault (and the upstream faults with the
    /// upstream backend). A `--fault` given on the command line replaces them.
    Faults(&'static [Fault]),
    /// Every target without slow clients, then with the settings' `slow_clients`: two groups.
    SlowClients,
    /// Every target holding each of these numbers of idle connections: one group each.
    Connections(&'static [u32]),
    /// A sweep preset, for `bench sweep`: the knobs it varies (`KNOB=V1,V2,…`, as `--vary`
    /// takes them) and its targets (empty: every built one).
    Sweep {
        vary: &'static [&'static str],
        targets: &'static [Binary],
    },
}

const BASE: Settings = Settings {
    path: Endpoint::Test,
    backend: Backend::Db,
    delay_ms: 0,
    connections: 100,
    rate: None,
    duration_s: 10,
    warmup_s: 2,
    sessions: 100,
    sync_workers: Some(19),
    async_workers: Some(6),
    via: Via::Nginx,
    upstream_keepalive: true,
    client_keepalive: true,
    pgbouncer: false,
    pin: false,
    tool: ToolKind::Wrk,
    rounds: 1,
    rows: 1_000_000,
    db_mode: DbMode::Pool,
    per_connection: false,
    faults: Vec::new(),
    slow_clients: 0,
    idle_connections: 0,
};

/// The `faults` preset's faults, one group each.
const PRESET_FAULTS: &[Fault] = &[
    Fault::new(FaultKind::DbRestart, Some(5.0), 5.0),
    Fault::new(FaultKind::DbStop, Some(5.0), 5.0),
    Fault::new(FaultKind::UpstreamStop, Some(5.0), 5.0),
];

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "quick",
            source: "CI-sized check of the whole pipeline",
            summary: "c=8, 5 ms delay, 8 sessions, 3 s per target",
            settings: Settings {
                connections: 8,
                delay_ms: 5,
                duration_s: 3,
                warmup_s: 1,
                sessions: 8,
                sync_workers: Some(4),
                async_workers: Some(2),
                ..BASE
            },
            extra: Extra::None,
        },
        Scenario {
            name: "grinberg",
            source: "Grinberg 2020, \"Ignore all web performance benchmarks\"",
            summary: "c=100, 20 ms delay, 100 DB sessions, sync 19 workers, async 6",
            settings: Settings {
                delay_ms: 20,
                ..BASE
            },
            extra: Extra::None,
        },
        Scenario {
            name: "better-async",
            source: "Grinberg 2020, the configuration that favours async",
            summary: "c=400, 40 ms delay, 100 DB sessions",
            settings: Settings {
                connections: 400,
                delay_ms: 40,
                ..BASE
            },
            extra: Extra::None,
        },
        Scenario {
            name: "better-sync",
            source: "Grinberg 2020, the configuration that favours sync",
            summary: "c=19, 10 ms delay, 19 DB sessions",
            settings: Settings {
                connections: 19,
                delay_ms: 10,
                sessions: 19,
                ..BASE
            },
            extra: Extra::None,
        },
        Scenario {
            name: "paterson",
            source: "Paterson 2020, \"Async Python is not faster\"",
            summary: "no delay, c=100, no client keep-alive, nginx without upstream keep-alive, 20 sessions",
            settings: Settings {
                sessions: 20,
                sync_workers: Some(19),
                client_keepalive: false,
                upstream_keepalive: false,
                ..BASE
            },
            extra: Extra::None,
        },
        Scenario {
            name: "tsutsumi",
            source: "Tsutsumi 2017, \"Aiohttp vs multithreaded Flask\"",
            summary: "upstream backend, echo_sleep 100 ms, c=400, plus sync-pool at 10..1000 workers",
            settings: Settings {
                backend: Backend::Upstream,
                delay_ms: 100,
                connections: 400,
                duration_s: 20,
                warmup_s: 2,
                sync_workers: Some(19),
                ..BASE
            },
            extra: Extra::SyncPoolSweep(&[10, 20, 50, 100, 200, 400, 800, 1000]),
        },
        Scenario {
            name: "gasc",
            source: "Gasc 2015, API-Hour benchmarks",
            summary: "/json and db, open loop at 4000 req/s and at 10 req/s (oha)",
            settings: Settings {
                connections: 400,
                duration_s: 30,
                warmup_s: 2,
                tool: ToolKind::Oha,
                ..BASE
            },
            extra: Extra::OpenLoop(&[4000, 10]),
        },
        Scenario {
            name: "flip-map",
            source: "Grinberg 2020: the configuration decides the verdict, so draw the whole map",
            summary: "sweep: delay 0, 10, 20, 40 ms × clients 19, 100, 400, 100 sessions; sync-pool (19 workers), sync-thread, tokio-axum, may-green; 5 s per point",
            settings: Settings {
                duration_s: 5,
                warmup_s: 1,
                ..BASE
            },
            extra: Extra::Sweep {
                vary: &["delay-ms=0,10,20,40", "connections=19,100,400"],
                targets: &[
                    Binary::SyncPool,
                    Binary::SyncThread,
                    Binary::TokioAxum,
                    Binary::MayGreen,
                ],
            },
        },
        Scenario {
            name: "capacity",
            source: "open-loop capacity at a latency objective (wrk2/HttpArena style), at Grinberg's settings",
            summary: "sweep: grinberg (20 ms, 100 sessions) in open loop at 250 to 6000 req/s with oha; every target; capacity at p99 ≤ 100 ms",
            settings: Settings {
                delay_ms: 20,
                duration_s: 5,
                warmup_s: 1,
                tool: ToolKind::Oha,
                ..BASE
            },
            extra: Extra::Sweep {
                vary: &["rate=250,500,1000,2000,3000,4000,5000,6000"],
                targets: &[],
            },
        },
        Scenario {
            name: "sessions",
            source: "Grinberg 2020: where the pool, not the model, is the bound",
            summary: "sweep: grinberg with pool-size 5, 10, 19, 50, 100; every target",
            settings: Settings {
                delay_ms: 20,
                duration_s: 5,
                warmup_s: 1,
                ..BASE
            },
            extra: Extra::Sweep {
                vary: &["pool-size=5,10,19,50,100"],
                targets: &[],
            },
        },
        Scenario {
            name: "leaderboard",
            source: "TechEmpower single query: one pipelined connection per worker beside a pool",
            summary: "no delay, direct, clients 16, 64, 256; each tokio target pooled (16 sessions) and pipelined (one connection per worker), pgbench with as many clients",
            settings: Settings {
                via: Via::Direct,
                sessions: 16,
                async_workers: None,
                ..BASE
            },
            extra: Extra::Leaderboard(&[16, 64, 256]),
        },
        Scenario {
            name: "tails",
            source: "tails under saturation: does a model serve its connections evenly at zero delay?",
            summary: "no delay, direct, c=100, 16 sessions, workers at the CPU count (sync-pool 19); wrk with one thread per connection, counting each connection's answers",
            settings: Settings {
                via: Via::Direct,
                sessions: 16,
                async_workers: None,
                per_connection: true,
                ..BASE
            },
            extra: Extra::None,
        },
        Scenario {
            name: "faults",
            source: "TechEmpower #8790: what a database restart or an upstream outage costs each model",
            summary: "grinberg's load for 15 s, with a PostgreSQL restart at 5 s, then PostgreSQL stopped 5 s, then the upstream nginx stopped 5 s (upstream backend); every target; a probe at 100 req/s draws the timeline",
            settings: Settings {
                delay_ms: 20,
                duration_s: 15,
                ..BASE
            },
            extra: Extra::Faults(PRESET_FAULTS),
        },
        Scenario {
            name: "connections",
            source: "\"asyncio scales better memory-wise\": what an idle connection costs each model",
            summary: "1,000 then 10,000 idle keep-alive connections held on each target (idle timeout off): memory and threads per connection, /health on a fresh connection, and grinberg's load beside them against the same load alone; direct",
            settings: Settings {
                delay_ms: 20,
                duration_s: 5,
                warmup_s: 1,
                via: Via::Direct,
                ..BASE
            },
            extra: Extra::Connections(&[1000, 10_000]),
        },
        Scenario {
            name: "slow-clients",
            source: "the articles' \"remote requests with long response times\": smartphone users beside the load",
            summary: "grinberg's load (c=100, 20 ms, 100 sessions), direct, without and with 200 slow clients that take a second to send each request and read the answer slowly",
            settings: Settings {
                delay_ms: 20,
                via: Via::Direct,
                slow_clients: 200,
                ..BASE
            },
            extra: Extra::SlowClients,
        },
        Scenario {
            name: "limits",
            source: "the physical limits under every other row",
            summary: "pgbench with the targets' statement and client count; nginx `return 200`",
            settings: BASE,
            extra: Extra::Limits,
        },
    ]
}

pub fn names() -> Vec<&'static str> {
    all().iter().map(|s| s.name).collect()
}

pub fn find(name: &str) -> Result<Scenario> {
    match all().into_iter().find(|s| s.name == name) {
        Some(scenario) => Ok(scenario),
        None => bail!(
            "unknown scenario {name:?}; valid scenarios: {}",
            names().join(", ")
        ),
    }
}

/// What is measured in one case.
#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    Target(Binary),
    /// A server the harness did not start (`--external`).
    External(Box<External>),
    /// pgbench running the targets' statement.
    Pgbench,
    /// nginx answering `return 200` by itself.
    NginxStatic,
}

impl Subject {
    /// The target's or the external server's name (`None` for pgbench and nginx alone).
    pub fn name(&self) -> Option<&str> {
        match self {
            Subject::Target(binary) => Some(binary.name()),
            Subject::External(external) => Some(&external.name),
            Subject::Pgbench | Subject::NginxStatic => None,
        }
    }

    /// The name a row of it carries: the target's, or the external's with its mark.
    pub fn label(&self) -> String {
        match self {
            Subject::External(external) => external.label(),
            other => other.name().unwrap_or_default().to_string(),
        }
    }
}

/// One row to measure.
#[derive(Clone, Debug)]
pub struct Case {
    /// The row's name: the target, or e.g. `sync-pool w=50`.
    pub label: String,
    pub subject: Subject,
    pub settings: Settings,
    /// Cases with the same group compare with each other (`relative`).
    pub group: String,
}

impl Settings {
    /// `--workers` for `binary`, when the scenario sets one.
    pub fn workers(&self, binary: Binary) -> Option<u32> {
        match binary {
            Binary::SyncPool => self.sync_workers,
            Binary::SyncThread => None,
            _ => self.async_workers,
        }
    }

    /// `--pool-size` for `binary`: the scenario's sessions, or for sync-pool no more than its
    /// workers, which could never use more.
    pub fn pool_size(&self, binary: Binary) -> u32 {
        match (binary, self.sync_workers) {
            (Binary::SyncPool, Some(workers)) => workers.min(self.sessions),
            _ => self.sessions,
        }
    }

    /// The target's flags for this case.
    pub fn target_flags(&self, binary: Binary) -> Vec<(String, String)> {
        let mut flags = vec![
            ("--backend".to_string(), self.backend.name().to_string()),
            ("--delay-ms".to_string(), self.delay_ms.to_string()),
            (
                "--pool-size".to_string(),
                self.pool_size(binary).to_string(),
            ),
            ("--rows".to_string(), self.rows.to_string()),
        ];
        if let Some(workers) = self.workers(binary) {
            flags.push(("--workers".to_string(), workers.to_string()));
        }
        if binary.is_tokio() {
            flags.push(("--db-mode".to_string(), self.db_mode.name().to_string()));
        }
        if self.idle_connections > 0 {
            flags.push(("--keep-alive-timeout-ms".to_string(), "0".to_string()));
        }
        flags
    }

    /// The targets' worker threads: the scenario's, or the CPU count (their default).
    pub fn async_worker_count(&self) -> u32 {
        self.async_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
    }

    /// Whether a request runs the DB statement (`/test` with the db backend).
    pub fn queries_the_database(&self) -> bool {
        self.path == Endpoint::Test && self.backend == Backend::Db
    }

    /// The concurrency that limits `binary` in this configuration: what the Little's-law
    /// bound divides by the delay. `None` when nothing inside the target limits it.
    pub fn effective_concurrency(&self, binary: Binary) -> Option<u32> {
        let db = self.queries_the_database();
        let max_threads = 1024;
        match binary {
            Binary::SyncPool => {
                let workers = self.sync_workers.unwrap_or(5);
                Some(if db {
                    workers.min(self.pool_size(binary))
                } else {
                    workers
                })
            }
            Binary::SyncThread => Some(if db {
                max_threads.min(self.sessions)
            } else {
                max_threads
            }),
            // Pipelined: PostgreSQL runs one query at a time on each of the W connections.
            b if b.is_tokio() && self.db_mode == DbMode::Pipelined => {
                db.then(|| self.async_worker_count())
            }
            _ => db.then_some(self.sessions),
        }
    }

    /// The concurrency that limits a target started with `flags` (as `--pool-size 100`,
    /// `--workers 6`, `--db-mode pipelined`) rather than with these settings' own: a remote
    /// stack's target. `None` when the flags do not give its pool size.
    pub fn effective_concurrency_with(&self, binary: Binary, flags: &[String]) -> Option<u32> {
        let value = |name: &str| {
            flags
                .iter()
                .find_map(|f| f.strip_prefix(name)?.trim().parse::<u32>().ok())
        };
        let sessions = value("--pool-size ")?;
        let workers = value("--workers ");
        let pipelined = flags.iter().any(|f| f == "--db-mode pipelined");
        let at = Settings {
            sessions,
            sync_workers: workers,
            async_workers: workers,
            db_mode: if pipelined {
                DbMode::Pipelined
            } else {
                DbMode::Pool
            },
            ..self.clone()
        };
        at.effective_concurrency(binary)
    }
}

/// Little's law: at most `min(clients, concurrency)` requests are in flight, each takes at
/// least the delay. `None` when the delay is 0 (no bound worth the name) or for `/json`.
pub fn bound_rps(settings: &Settings, concurrency: Option<u32>) -> Option<f64> {
    if settings.delay_ms == 0 || settings.path != Endpoint::Test {
        return None;
    }
    let in_flight = concurrency.map_or(settings.connections, |c| c.min(settings.connections));
    let bound = f64::from(in_flight) / (f64::from(settings.delay_ms) / 1000.0);
    Some(match settings.rate {
        Some(rate) => bound.min(f64::from(rate)),
        None => bound,
    })
}

/// `cases` with each external beside the references: one case per group of target cases
/// (with the load settings of the group's first target), after the group's last case.
pub fn with_externals(cases: Vec<Case>, externals: &[External]) -> Vec<Case> {
    if externals.is_empty() {
        return cases;
    }
    let mut out: Vec<Case> = Vec::with_capacity(cases.len() + externals.len());
    for (i, case) in cases.iter().enumerate() {
        out.push(case.clone());
        if !matches!(case.subject, Subject::Target(_)) {
            continue;
        }
        let last_of_group = !cases[i + 1..]
            .iter()
            .any(|c| c.group == case.group && matches!(c.subject, Subject::Target(_)));
        if !last_of_group {
            continue;
        }
        let first = cases
            .iter()
            .find(|c| c.group == case.group && matches!(c.subject, Subject::Target(_)))
            .unwrap_or(case);
        for external in externals {
            let label = if case.group.is_empty() {
                external.label()
            } else {
                format!("{} {}", external.label(), case.group)
            };
            out.push(Case {
                label,
                subject: Subject::External(Box::new(external.clone())),
                settings: first.settings.clone(),
                group: case.group.clone(),
            });
        }
    }
    out
}

/// The cases of a remote stack (`--remote`): each target case runs on the remote target of
/// its binary, with the case's load settings (the target keeps the flags `bench up` gave it,
/// so a case that differs only in those is left out), labelled with its host. Cases without
/// a target (pgbench, nginx alone) are left out: they would measure this host.
pub fn onto_remote(cases: Vec<Case>, remotes: &[External]) -> Vec<Case> {
    let mut out: Vec<Case> = Vec::new();
    for case in cases {
        let Subject::Target(binary) = case.subject else {
            continue;
        };
        let Some(remote) = remotes.iter().find(|r| r.binary == Some(binary)) else {
            continue;
        };
        if out.iter().any(|c| {
            c.group == case.group && c.subject == Subject::External(Box::new(remote.clone()))
        }) {
            continue;
        }
        out.push(Case {
            label: case.label.replacen(binary.name(), &remote.label(), 1),
            subject: Subject::External(Box::new(remote.clone())),
            ..case
        });
    }
    out
}

/// The cases of `scenario` with `settings` (the scenario's, after overrides) for `targets`.
pub fn expand(scenario: &Scenario, settings: &Settings, targets: &[Binary]) -> Vec<Case> {
    let target_case = |binary: Binary, settings: Settings, label: String, group: &str| Case {
        label,
        subject: Subject::Target(binary),
        settings,
        group: group.to_string(),
    };
    let mut cases = Vec::new();
    // Only the tokio targets pipeline; in pipelined mode the others have no row.
    let one_per_target = || {
        targets
            .iter()
            .filter(|b| settings.db_mode.supported_by(**b))
            .map(|&b| target_case(b, settings.clone(), b.name().into(), ""))
    };
    match scenario.extra {
        Extra::None => cases.extend(one_per_target()),
        Extra::SyncPoolSweep(workers) => {
            cases.extend(one_per_target());
            if targets.contains(&Binary::SyncPool) {
                for &w in workers {
                    let swept = Settings {
                        sync_workers: Some(w),
                        sessions: settings.sessions.max(w),
                        ..settings.clone()
                    };
                    cases.push(target_case(
                        Binary::SyncPool,
                        swept,
                        format!("sync-pool w={w}"),
                        "",
                    ));
                }
            }
        }
        Extra::OpenLoop(rates) => {
            for path in [Endpoint::Json, Endpoint::Test] {
                for &rate in rates {
                    let group = format!("{path} at {rate}/s");
                    for &binary in targets {
                        let open = Settings {
                            path,
                            backend: Backend::Db,
                            rate: Some(settings.rate.unwrap_or(rate)),
                            ..settings.clone()
                        };
                        cases.push(target_case(
                            binary,
                            open,
                            format!("{} {group}", binary.name()),
                            &group,
                        ));
                    }
                }
                if settings.rate.is_some() {
                    // One rate given on the command line: the loop above made duplicates.
                    cases.dedup_by(|a, b| a.label == b.label);
                }
            }
        }
        Extra::Leaderboard(clients) => {
            for &c in clients {
                let group = format!("c={c}");
                let at = Settings {
                    connections: c,
                    ..settings.clone()
                };
                for &binary in targets.iter().filter(|b| b.is_tokio()) {
                    for mode in [DbMode::Pool, DbMode::Pipelined] {
                        let moded = Settings {
                            db_mode: mode,
                            ..at.clone()
                        };
                        let label = format!("{binary} {mode} {group}");
                        cases.push(target_case(binary, moded, label, &group));
                    }
                }
                cases.push(Case {
                    label: format!("pgbench {group}"),
                    subject: Subject::Pgbench,
                    settings: Settings { sessions: c, ..at },
                    group,
                });
            }
        }
        Extra::Faults(faults) if settings.faults.is_empty() => {
            for fault in faults {
                let group = fault.to_string();
                let backend = match fault.kind {
                    FaultKind::UpstreamStop => Backend::Upstream,
                    _ => settings.backend,
                };
                let faulted = Settings {
                    faults: vec![fault.clone()],
                    backend,
                    ..settings.clone()
                };
                for &binary in targets {
                    let label = format!("{binary} {group}");
                    cases.push(target_case(binary, faulted.clone(), label, &group));
                }
            }
        }
        Extra::Faults(_) => cases.extend(one_per_target()),
        Extra::Connections(counts) if settings.idle_connections == 0 => {
            for &n in counts {
                let group = format!("{n} idle");
                let held = Settings {
                    idle_connections: n,
                    ..settings.clone()
                };
                for &binary in targets {
                    let label = format!("{binary}, {group}");
                    cases.push(target_case(binary, held.clone(), label, &group));
                }
            }
        }
        Extra::Connections(_) => cases.extend(one_per_target()),
        Extra::SlowClients => {
            let k = settings.slow_clients;
            for (group, slow) in [
                ("no slow clients".to_string(), 0),
                (format!("{k} slow clients"), k),
            ] {
                let with = Settings {
                    slow_clients: slow,
                    ..settings.clone()
                };
                for &binary in targets {
                    let label = format!("{binary}, {group}");
                    cases.push(target_case(binary, with.clone(), label, &group));
                }
            }
        }
        // A sweep's points are `bench sweep`'s to expand; as a run, its base point.
        Extra::Sweep { .. } => cases.extend(one_per_target()),
        Extra::Limits => {
            cases.push(Case {
                label: "pgbench".into(),
                subject: Subject::Pgbench,
                settings: settings.clone(),
                group: String::new(),
            });
            cases.push(Case {
                label: "nginx-static".into(),
                subject: Subject::NginxStatic,
                settings: Settings {
                    path: Endpoint::Static,
                    ..settings.clone()
                },
                group: String::new(),
            });
        }
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_targets_bound_comes_from_its_own_flags() {
        let s = find("grinberg").unwrap().settings;
        let flags = |f: &[&str]| f.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let pool = flags(&["--pool-size 19", "--workers 19"]);
        assert_eq!(
            s.effective_concurrency_with(Binary::SyncPool, &pool),
            Some(19)
        );
        let axum = flags(&["--pool-size 16"]);
        assert_eq!(
            s.effective_concurrency_with(Binary::TokioAxum, &axum),
            Some(16)
        );
        let piped = flags(&["--pool-size 16", "--workers 2", "--db-mode pipelined"]);
        assert_eq!(
            s.effective_concurrency_with(Binary::TokioHyper, &piped),
            Some(2)
        );
        // Started with the target's defaults: unknown, so only the clients bound it.
        assert_eq!(s.effective_concurrency_with(Binary::TokioAxum, &[]), None);
    }

    #[test]
    fn every_preset_has_a_unique_name_and_a_source() {
        let names = names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for scenario in all() {
            assert!(!scenario.source.is_empty() && !scenario.summary.is_empty());
        }
    }

    #[test]
    fn sweep_presets_parse_and_flip_map_has_twelve_points() {
        for scenario in all() {
            if let Extra::Sweep { vary, .. } = scenario.extra {
                let varies: Vec<_> = vary
                    .iter()
                    .map(|v| super::super::sweep::parse_vary(v).unwrap())
                    .collect();
                assert!(!varies.is_empty(), "{}", scenario.name);
            }
        }
        let Extra::Sweep { vary, targets } = find("flip-map").unwrap().extra else {
            panic!("flip-map is a sweep");
        };
        let varies: Vec<_> = vary
            .iter()
            .map(|v| super::super::sweep::parse_vary(v).unwrap())
            .collect();
        assert_eq!(super::super::sweep::points(&varies).len(), 12);
        assert_eq!(targets.len(), 4);
    }

    #[test]
    fn unknown_scenarios_list_the_valid_names() {
        let error = find("nope").err().expect("an unknown name is an error");
        let text = error.to_string();
        for name in names() {
            assert!(text.contains(name), "{text}");
        }
    }

    #[test]
    fn grinberg_gives_sync_pool_its_workers_as_sessions_and_async_the_rest() {
        let s = find("grinberg").unwrap().settings;
        assert_eq!(s.pool_size(Binary::SyncPool), 19);
        assert_eq!(s.pool_size(Binary::TokioAxum), 100);
        assert_eq!(s.workers(Binary::TokioAxum), Some(6));
        assert_eq!(s.workers(Binary::SyncThread), None);
    }

    #[test]
    fn bounds_follow_littles_law() {
        let s = find("grinberg").unwrap().settings;
        // sync-pool: 19 workers / 20 ms = 950 req/s.
        let sync = bound_rps(&s, s.effective_concurrency(Binary::SyncPool)).unwrap();
        assert!((sync - 950.0).abs() < 1e-9);
        // async: min(100 clients, 100 sessions) / 20 ms = 5000 req/s.
        let tokio = bound_rps(&s, s.effective_concurrency(Binary::TokioHyper)).unwrap();
        assert!((tokio - 5000.0).abs() < 1e-9);
        // No delay, no bound.
        let p = find("paterson").unwrap().settings;
        assert_eq!(bound_rps(&p, Some(20)), None);
        // Upstream: nothing in an async target limits it; the clients do.
        let t = find("tsutsumi").unwrap().settings;
        assert_eq!(t.effective_concurrency(Binary::TokioAxum), None);
        let bound = bound_rps(&t, None).unwrap();
        assert!((bound - 4000.0).abs() < 1e-9);
        // Open loop: never above the rate asked for.
        let open = Settings {
            rate: Some(10),
            delay_ms: 5,
            ..s
        };
        assert_eq!(bound_rps(&open, Some(100)), Some(10.0));
    }

    #[test]
    fn tsutsumi_sweeps_sync_pool_and_gasc_runs_both_paths_at_both_rates() {
        let targets = [Binary::SyncPool, Binary::TokioAxum];
        let t = find("tsutsumi").unwrap();
        let cases = expand(&t, &t.settings, &targets);
        assert_eq!(cases.len(), 2 + 8);
        assert_eq!(cases.last().unwrap().label, "sync-pool w=1000");
        assert_eq!(cases.last().unwrap().settings.sync_workers, Some(1000));

        let g = find("gasc").unwrap();
        let cases = expand(&g, &g.settings, &targets);
        assert_eq!(cases.len(), 2 * 2 * 2);
        assert!(cases.iter().all(|c| c.settings.rate.is_some()));
        assert!(cases.iter().any(|c| c.settings.path == Endpoint::Json));

        let l = find("limits").unwrap();
        let cases = expand(&l, &l.settings, &targets);
        assert_eq!(
            cases.iter().map(|c| c.subject.clone()).collect::<Vec<_>>(),
            [Subject::Pgbench, Subject::NginxStatic]
        );
    }
}
