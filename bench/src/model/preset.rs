//! The presets: each reproduces the configuration of a published Python benchmark (see
//! docs/scenarios.md), and says how it expands into cases (`case::expand`).
//!
//! A preset fixes the load (clients, duration, open or closed loop), the endpoint, the delay
//! and the DB sessions; command-line flags override any of it. What a preset deliberately does
//! *not* copy are the articles' known mistakes: there is a warm-up, and nginx keeps its
//! upstream connections open unless the preset is about the cost of not doing so (paterson).
//! This file is a data table: adding a preset is one entry in [`all`].

use anyhow::{bail, Result};
use shared::{Backend, Binary, DbMode, Fanout, Offload};

use super::fault::{Fault, FaultKind};
use super::settings::{Endpoint, Settings, Via};
use super::tool::ToolKind;

/// One preset: defaults plus how it expands.
#[derive(Clone)]
pub struct Preset {
    pub name: &'static str,
    pub source: &'static str,
    pub summary: &'static str,
    pub settings: Settings,
    pub shape: Shape,
}

/// What a preset measures beyond one row per target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
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
    /// Every target at each of these `fanout=K`, one group each, the sync targets also with
    /// `--fanout threads`.
    Fanout(&'static [u8]),
    /// Every target with this mix (`--mix` replaces it), and with its first class alone: two
    /// groups, so that the first class is compared with and without the others.
    Mix(&'static str),
    /// Every target at once, for a long time, under its own paced client, with faults every
    /// so often (`measure::soak`).
    Soak,
    /// A sweep preset, for `bench sweep`: the knobs it varies (`KNOB=V1,V2,…`, as `--vary`
    /// takes them), its targets (empty: every built one), and the tokio targets it also
    /// measures with `--offload blocking` (`--also-offload`).
    Sweep {
        vary: &'static [&'static str],
        targets: &'static [Binary],
        offload: &'static [Binary],
    },
}

const BASE: Settings = Settings {
    path: Endpoint::Test,
    connections: 100,
    rate: None,
    duration_s: 10,
    warmup_s: 2,
    tool: ToolKind::Wrk,
    client_keepalive: true,
    per_connection: false,
    rounds: 1,
    ceiling: false,
    backend: Backend::Db,
    delay_ms: 0,
    work: 0,
    offload: Offload::Inline,
    fanout: 1,
    fanout_with: Fanout::Inline,
    mix: None,
    sessions: 100,
    sync_workers: Some(19),
    async_workers: Some(6),
    rows: 1_000_000,
    db_mode: DbMode::Pool,
    via: Via::Nginx,
    upstream_keepalive: true,
    pgbouncer: false,
    pin: false,
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

pub fn all() -> Vec<Preset> {
    vec![
        Preset {
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
            shape: Shape::None,
        },
        Preset {
            name: "grinberg",
            source: "Grinberg 2020, \"Ignore all web performance benchmarks\"",
            summary: "c=100, 20 ms delay, 100 DB sessions, sync 19 workers, async 6",
            settings: Settings {
                delay_ms: 20,
                ..BASE
            },
            shape: Shape::None,
        },
        Preset {
            name: "better-async",
            source: "Grinberg 2020, the configuration that favours async",
            summary: "c=400, 40 ms delay, 100 DB sessions",
            settings: Settings {
                connections: 400,
                delay_ms: 40,
                ..BASE
            },
            shape: Shape::None,
        },
        Preset {
            name: "better-sync",
            source: "Grinberg 2020, the configuration that favours sync",
            summary: "c=19, 10 ms delay, 19 DB sessions",
            settings: Settings {
                connections: 19,
                delay_ms: 10,
                sessions: 19,
                ..BASE
            },
            shape: Shape::None,
        },
        Preset {
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
            shape: Shape::None,
        },
        Preset {
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
            shape: Shape::SyncPoolSweep(&[10, 20, 50, 100, 200, 400, 800, 1000]),
        },
        Preset {
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
            shape: Shape::OpenLoop(&[4000, 10]),
        },
        Preset {
            name: "flip-map",
            source: "Grinberg 2020: the configuration decides the verdict, so draw the whole map",
            summary: "sweep: delay 0, 10, 20, 40 ms × clients 19, 100, 400, 100 sessions; sync-pool (19 workers), sync-thread, tokio-axum, may-green; 5 s per point",
            settings: Settings {
                duration_s: 5,
                warmup_s: 1,
                ..BASE
            },
            shape: Shape::Sweep {
                vary: &["delay-ms=0,10,20,40", "connections=19,100,400"],
                targets: &[
                    Binary::SyncPool,
                    Binary::SyncThread,
                    Binary::TokioAxum,
                    Binary::MayGreen,
                ],
                offload: &[],
            },
        },
        Preset {
            name: "cpu-map",
            source: "Grinberg 2020: the amount of I/O a request does decides how I/O-bound or CPU-bound the benchmark is; draw both halves",
            summary: "sweep: work 0, 300, 1500, 6000 units (SHA-256 of 1 KiB each, 0.75 µs on this machine) × delay 0, 20, 80 ms at c=100, 100 sessions; sync-pool (19 workers), sync-thread, tokio-axum inline and with --offload blocking, may-green, compio-tpc (async workers 6); 5 s per point",
            settings: Settings {
                duration_s: 5,
                warmup_s: 1,
                ..BASE
            },
            shape: Shape::Sweep {
                vary: &["work=0,300,1500,6000", "delay-ms=0,20,80"],
                targets: &[
                    Binary::SyncPool,
                    Binary::SyncThread,
                    Binary::TokioAxum,
                    Binary::MayGreen,
                    Binary::CompioTpc,
                ],
                offload: &[Binary::TokioAxum],
            },
        },
        Preset {
            name: "mix",
            source: "a slow request among fast ones: head-of-line blocking, the figure one overall percentile hides",
            summary: "open loop at 800 req/s on Grinberg's 100 connections and sessions (sync 19 workers, async 6): 90% of requests at 0 ms and 10% at 200 ms, then the fast class alone at its 720 req/s; every target, bench's own client timing each class",
            settings: Settings {
                tool: ToolKind::Bench,
                rate: Some(800),
                duration_s: 8,
                ..BASE
            },
            shape: Shape::Mix("fast:90:delay_ms=0,slow:10:delay_ms=200"),
        },
        Preset {
            name: "fanout",
            source: "seed 003's question on the server: a request that needs K upstream pages (the most common reason teams move to async)",
            summary: "upstream backend, each page after 50 ms, K = 1, 4 and 16 pages per request, c=100; every target (the sync ones fetch a request's pages one after another), plus sync-thread and sync-pool with --fanout threads",
            settings: Settings {
                backend: Backend::Upstream,
                delay_ms: 50,
                duration_s: 5,
                warmup_s: 1,
                ..BASE
            },
            shape: Shape::Fanout(&[1, 4, 16]),
        },
        Preset {
            name: "paterson-cpu",
            source: "Paterson 2020's claim as he stated it: no waiting, real work per request, and async's latency variance",
            summary: "no delay, 1500 units of work per request (1.1 ms of CPU on this machine), c=100, no client keep-alive, nginx without upstream keep-alive, 20 sessions, workers at the CPU count (sync-pool 19); every target; compare the tails (P99 / P50)",
            settings: Settings {
                work: 1500,
                sessions: 20,
                async_workers: None,
                client_keepalive: false,
                upstream_keepalive: false,
                ..BASE
            },
            shape: Shape::None,
        },
        Preset {
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
            shape: Shape::Sweep {
                vary: &["rate=250,500,1000,2000,3000,4000,5000,6000"],
                targets: &[],
                offload: &[],
            },
        },
        Preset {
            name: "sessions",
            source: "Grinberg 2020: where the pool, not the model, is the bound",
            summary: "sweep: grinberg with pool-size 5, 10, 19, 50, 100; every target",
            settings: Settings {
                delay_ms: 20,
                duration_s: 5,
                warmup_s: 1,
                ..BASE
            },
            shape: Shape::Sweep {
                vary: &["pool-size=5,10,19,50,100"],
                targets: &[],
                offload: &[],
            },
        },
        Preset {
            name: "leaderboard",
            source: "TechEmpower single query: one pipelined connection per worker beside a pool",
            summary: "no delay, direct, clients 16, 64, 256; each tokio target pooled (16 sessions) and pipelined (one connection per worker), pgbench with as many clients",
            settings: Settings {
                via: Via::Direct,
                sessions: 16,
                async_workers: None,
                ceiling: true,
                ..BASE
            },
            shape: Shape::Leaderboard(&[16, 64, 256]),
        },
        Preset {
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
            shape: Shape::None,
        },
        Preset {
            name: "faults",
            source: "TechEmpower #8790: what a database restart or an upstream outage costs each model",
            summary: "grinberg's load for 15 s, with a PostgreSQL restart at 5 s, then PostgreSQL stopped 5 s, then the upstream nginx stopped 5 s (upstream backend); every target; a probe at 100 req/s draws the timeline",
            settings: Settings {
                delay_ms: 20,
                duration_s: 15,
                ..BASE
            },
            shape: Shape::Faults(PRESET_FAULTS),
        },
        Preset {
            name: "soak",
            source: "hours, not seconds: what creeps, leaks or stays broken under a steady load with faults",
            summary: "every target at once for 30 min (--duration 2h works), each at 300 req/s from its own paced client on 16 connections, 20 ms delay (a quarter via the upstream), a PostgreSQL restart and an upstream outage every 10 min (--fault-every); samples every 5 s; direct",
            settings: Settings {
                delay_ms: 20,
                duration_s: 1800,
                warmup_s: 0,
                connections: 16,
                rate: Some(300),
                tool: ToolKind::Oha,
                sessions: 20,
                via: Via::Direct,
                ..BASE
            },
            shape: Shape::Soak,
        },
        Preset {
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
            shape: Shape::Connections(&[1000, 10_000]),
        },
        Preset {
            name: "slow-clients",
            source: "the articles' \"remote requests with long response times\": smartphone users beside the load",
            summary: "grinberg's load (c=100, 20 ms, 100 sessions), direct, without and with 200 slow clients that take a second to send each request and read the answer slowly",
            settings: Settings {
                delay_ms: 20,
                via: Via::Direct,
                slow_clients: 200,
                ..BASE
            },
            shape: Shape::SlowClients,
        },
        Preset {
            name: "limits",
            source: "the physical limits under every other row",
            summary: "pgbench with the targets' statement and client count; nginx `return 200` with each load tool (its ceiling here)",
            settings: BASE,
            shape: Shape::Limits,
        },
    ]
}

pub fn names() -> Vec<&'static str> {
    all().iter().map(|s| s.name).collect()
}

pub fn find(name: &str) -> Result<Preset> {
    match all().into_iter().find(|s| s.name == name) {
        Some(scenario) => Ok(scenario),
        None => bail!(
            "unknown scenario {name:?}; valid scenarios: {}",
            names().join(", ")
        ),
    }
}
