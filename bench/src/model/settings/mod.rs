//! What one measured run asks of a target, fully resolved: [`Settings`], the row's
//! configuration, with what follows from it (each target's flags, the concurrency that limits
//! it, the Little's-law bound). Plain values: nothing here starts or measures anything.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shared::{Backend, Binary, DbMode, Fanout, Model, Offload};

use super::fault::{Fault, FaultKind};
use super::mix::{Class, Mix};
use super::tool::ToolKind;

/// The target flags that decide its bound: written by [`Settings::target_flags`], read back
/// by [`Settings::as_started_with`].
const POOL_SIZE: &str = "--pool-size";
const WORKERS: &str = "--workers";
const DB_MODE: &str = "--db-mode";

/// What a case requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    /// `/test`: the backend, with the delay.
    #[serde(rename = "/test")]
    Test,
    /// `/json`: no I/O.
    #[serde(rename = "/json")]
    Json,
    /// `/health`: the smallest answer, no I/O.
    #[serde(rename = "/health")]
    Health,
    /// nginx's own `/static` page (the limits rows).
    #[serde(rename = "/static")]
    Static,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Test => "/test",
            Endpoint::Json => "/json",
            Endpoint::Health => "/health",
            Endpoint::Static => "/static",
        }
    }

    /// `--path`: a target's endpoint (`/static` is nginx's page, not a target's).
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        match text.trim_start_matches('/') {
            "test" => Ok(Endpoint::Test),
            "json" => Ok(Endpoint::Json),
            "health" => Ok(Endpoint::Health),
            _ => Err(format!(
                "{text:?} is not a target's endpoint: use /test, /json or /health"
            )),
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

/// The target flags' words (`--backend`, `--db-mode`, `--offload`, `--fanout`), which
/// results.json keeps by name: one pair of serde functions serves them all.
trait Named: Sized {
    /// What the word names, for the error on an unknown one.
    const WHAT: &'static str;
    fn word(&self) -> &'static str;
    fn from_word(word: &str) -> Option<Self>;
}

macro_rules! named {
    ($($kind:ty => $what:literal),* $(,)?) => {$(
        impl Named for $kind {
            const WHAT: &'static str = $what;
            fn word(&self) -> &'static str {
                self.name()
            }
            fn from_word(word: &str) -> Option<Self> {
                <$kind>::from_name(word)
            }
        }
    )*};
}

named!(Backend => "backend", DbMode => "db mode", Offload => "offload", Fanout => "fanout");

fn by_name<T: Named, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.word())
}

fn from_name<'de, T: Named, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    let name = String::deserialize(deserializer)?;
    T::from_word(&name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown {} {name:?}", T::WHAT)))
}

fn one() -> u8 {
    1
}

/// What one measured run asks of a target, fully resolved: the row's configuration, in four
/// groups: the load, the target's flags, the topology, and the extras beside the load.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    // The load: what the load tool asks, how, and for how long.
    pub path: Endpoint,
    /// Concurrent client connections.
    pub connections: u32,
    /// Open-loop rate in requests per second; `None` is a closed loop.
    pub rate: Option<u32>,
    pub duration_s: u32,
    pub warmup_s: u32,
    pub tool: ToolKind,
    pub client_keepalive: bool,
    /// wrk with one thread per connection, each counting its answers: how evenly the target
    /// serves its connections (the row's `connection_requests`).
    #[serde(default)]
    pub per_connection: bool,
    /// Repeated rounds per case (the row keeps the median and the spread).
    pub rounds: u32,
    /// Also load nginx's `/static` page alone with the same tool and connections: the tool's
    /// ceiling on this machine, which every row is then a share of (`--ceiling`).
    #[serde(default)]
    pub ceiling: bool,

    // The target's flags (`Settings::target_flags`).
    /// What `/test` does.
    #[serde(serialize_with = "by_name", deserialize_with = "from_name")]
    pub backend: Backend,
    pub delay_ms: u32,
    /// Units of work per request after its I/O (`work=N`: SHA-256 chained N times).
    #[serde(default)]
    pub work: u32,
    /// Where the tokio targets run that work (`--offload`; the others always inline).
    #[serde(default, serialize_with = "by_name", deserialize_with = "from_name")]
    pub offload: Offload,
    /// Upstream pages per request (`fanout=K`, the upstream backend; 1 is one page).
    #[serde(default = "one")]
    pub fanout: u8,
    /// How the sync targets make those fetches (`--fanout-with`: one after another, or a
    /// thread each); the others make them at once in their own way.
    #[serde(default, serialize_with = "by_name", deserialize_with = "from_name")]
    pub fanout_with: Fanout,
    /// A mix of request classes (`--mix`), run on bench's own client; `None`: every request
    /// alike.
    #[serde(default)]
    pub mix: Option<Mix>,
    /// DB sessions in total, as in Grinberg's pgbouncer; each target's `--pool-size`.
    pub sessions: u32,
    /// `--workers` of sync-pool (each one a worker, as gunicorn's sync workers).
    pub sync_workers: Option<u32>,
    /// `--workers` of the async and green targets.
    pub async_workers: Option<u32>,
    /// The targets' `--rows`: random ids are drawn from 1..=rows (pgbench too).
    pub rows: i32,
    /// The tokio targets' `--db-mode` (the others always pool).
    #[serde(default, serialize_with = "by_name", deserialize_with = "from_name")]
    pub db_mode: DbMode,

    // The topology: what stands between the tool, the target and the database.
    pub via: Via,
    pub upstream_keepalive: bool,
    pub pgbouncer: bool,
    /// Target on CPU 0, load tool on the others.
    pub pin: bool,

    // The extras beside the load (`measure::extras`).
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

impl Settings {
    /// `--workers` for `binary`, when the scenario sets one.
    pub fn workers(&self, binary: Binary) -> Option<u32> {
        match binary.model() {
            Model::ThreadPool => self.sync_workers,
            Model::ThreadPerConnection => None,
            Model::Tokio | Model::Green | Model::ThreadPerCore => self.async_workers,
        }
    }

    /// `--pool-size` for `binary`: the scenario's sessions, or for sync-pool no more than its
    /// workers, which could never use more.
    pub fn pool_size(&self, binary: Binary) -> u32 {
        match binary.model() {
            Model::ThreadPool => self
                .sync_workers
                .map_or(self.sessions, |w| w.min(self.sessions)),
            Model::ThreadPerConnection | Model::Tokio | Model::Green | Model::ThreadPerCore => {
                self.sessions
            }
        }
    }

    /// The target's flags for this case.
    pub fn target_flags(&self, binary: Binary) -> Vec<(String, String)> {
        let mut flags = vec![
            ("--backend".to_string(), self.backend.name().to_string()),
            ("--delay-ms".to_string(), self.delay_ms.to_string()),
            (POOL_SIZE.to_string(), self.pool_size(binary).to_string()),
            ("--rows".to_string(), self.rows.to_string()),
        ];
        if let Some(workers) = self.workers(binary) {
            flags.push((WORKERS.to_string(), workers.to_string()));
        }
        if binary.pipelines() {
            flags.push((DB_MODE.to_string(), self.db_mode.name().to_string()));
        }
        if self.work > 0 {
            flags.push(("--work".to_string(), self.work.to_string()));
        }
        if self.offload != Offload::Inline && self.offload.supported_by(binary) {
            flags.push(("--offload".to_string(), self.offload.name().to_string()));
        }
        if self.fanout_with != Fanout::Inline && self.fanout_with.supported_by(binary) {
            flags.push(("--fanout".to_string(), self.fanout_with.name().to_string()));
        }
        if self.idle_connections > 0 {
            flags.push(("--keep-alive-timeout-ms".to_string(), "0".to_string()));
            // The budget keeps about half the descriptors for upstream fetches;
            // these never do, so each needs one: room for the idle ones, the load and a margin.
            if self.backend == Backend::Db {
                let held = self.idle_connections + self.connections + self.slow_clients + 100;
                flags.push(("--max-connections".to_string(), held.to_string()));
            }
        }
        flags
    }

    /// The targets' worker threads: the scenario's, or the CPU count (their default).
    pub fn async_worker_count(&self) -> u32 {
        self.async_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
    }

    /// The CPUs a target may use: one when pinned (`--pin`), else the CPUs this process may
    /// run on, which a target it starts inherits.
    pub fn cpus(&self) -> u32 {
        if self.pin {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
        }
    }

    /// How many of `binary`'s requests can hold a CPU at once: the threads that run its
    /// requests' work (each event loop, green worker or core thread runs one at a time; the
    /// sync targets one per thread; tokio's blocking pool, at most 512, with `--offload
    /// blocking`), and no more than the CPUs it may use.
    pub fn cpu_parallel(&self, binary: Binary) -> u32 {
        let threads = match binary.model() {
            Model::ThreadPool => self.sync_workers.unwrap_or(5),
            Model::ThreadPerConnection => self.connections.min(1024),
            Model::Tokio => match self.offload {
                Offload::Inline => self.async_worker_count(),
                Offload::Blocking => self.connections.min(512),
            },
            Model::Green | Model::ThreadPerCore => self.async_worker_count(),
        };
        threads.min(self.cpus())
    }

    /// How many delays a request of `binary` with `fanout` pages on `backend` waits one after
    /// another: K for a sync target's pages fetched inline, else one (the others, and a server
    /// the harness did not build, as far as it knows, fetch them at once).
    fn serial_waits(&self, binary: Option<Binary>, backend: Backend, fanout: u8) -> u32 {
        let Some(binary) = binary else { return 1 };
        if self.path != Endpoint::Test || backend != Backend::Upstream {
            return 1;
        }
        match (binary.model(), self.fanout_with) {
            (Model::ThreadPerConnection | Model::ThreadPool, Fanout::Inline) => {
                u32::from(fanout.max(1))
            }
            (Model::ThreadPerConnection | Model::ThreadPool, Fanout::Threads)
            | (Model::Tokio | Model::Green | Model::ThreadPerCore, _) => 1,
        }
    }

    /// A mix class's delay, backend, fanout and work: its own parameters, else the settings'.
    fn class_load(&self, class: &Class) -> (u32, Backend, u8, u32) {
        (
            class.number("delay_ms").unwrap_or(self.delay_ms),
            class
                .backend()
                .and_then(Backend::from_name)
                .unwrap_or(self.backend),
            class.number("fanout").map_or(1, |k| k as u8),
            class.number("work").unwrap_or(self.work),
        )
    }

    /// The mean time a request of `binary` waits, in ms: the delay, K times for a sync
    /// target's `fanout=K` pages fetched one after another; with a mix, the classes' waits
    /// weighted (Little's law over the mean wait).
    pub fn wait_ms(&self, binary: Option<Binary>) -> f64 {
        match &self.mix {
            None => {
                f64::from(self.delay_ms)
                    * f64::from(self.serial_waits(binary, self.backend, self.fanout))
            }
            Some(mix) => mix.mean(|class| {
                let (delay, backend, fanout, _) = self.class_load(class);
                f64::from(delay) * f64::from(self.serial_waits(binary, backend, fanout))
            }),
        }
    }

    /// The mean units of work per request: the settings', or the mix's classes weighted.
    pub fn mean_work(&self) -> f64 {
        match &self.mix {
            None => f64::from(self.work),
            Some(mix) => mix.mean(|class| f64::from(self.class_load(class).3)),
        }
    }

    /// Why this load cannot run, checked before the stack starts: `fanout` asks for upstream
    /// pages, which the db backend and `/json` do not fetch.
    pub fn check_load(&self) -> Result<(), String> {
        if self.fanout > 1 && (self.backend != Backend::Upstream || self.path != Endpoint::Test) {
            return Err(format!(
                "--fanout {}: fanout asks for upstream pages; add --backend upstream (and /test)",
                self.fanout
            ));
        }
        Ok(())
    }

    /// The query a reference's load URL carries beyond its flags: `?fanout=K` (the targets
    /// take no default for it), or nothing.
    pub fn load_query(&self) -> String {
        if self.path == Endpoint::Test && self.fanout > 1 {
            format!("?fanout={}", self.fanout)
        } else {
            String::new()
        }
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
        match binary.model() {
            Model::ThreadPool => {
                let workers = self.sync_workers.unwrap_or(5);
                Some(if db {
                    workers.min(self.pool_size(binary))
                } else {
                    workers
                })
            }
            Model::ThreadPerConnection => Some(if db {
                max_threads.min(self.sessions)
            } else {
                max_threads
            }),
            // Pipelined: PostgreSQL runs one query at a time on each of the W connections.
            Model::Tokio | Model::Green | Model::ThreadPerCore
                if binary.pipelines() && self.db_mode == DbMode::Pipelined =>
            {
                db.then(|| self.async_worker_count())
            }
            // Pooled: a request holds a session while it waits; nothing else in the target
            // limits how many wait at once.
            Model::Tokio | Model::Green | Model::ThreadPerCore => db.then_some(self.sessions),
        }
    }

    /// These settings as a target started with `flags` has them (a remote stack's target
    /// keeps the flags `bench up` gave it): its pool size, workers and DB mode, read the way
    /// [`Settings::target_flags`] writes them. `None` when the flags do not give its pool size.
    pub fn as_started_with(&self, flags: &[(String, String)]) -> Option<Settings> {
        let value = |name: &str| {
            flags
                .iter()
                .find(|(flag, _)| flag == name)
                .map(|(_, value)| value.as_str())
        };
        let number = |name: &str| value(name)?.parse::<u32>().ok();
        let workers = number(WORKERS);
        Some(Settings {
            sessions: number(POOL_SIZE)?,
            sync_workers: workers,
            async_workers: workers,
            db_mode: value(DB_MODE)
                .and_then(DbMode::from_name)
                .unwrap_or(DbMode::Pool),
            ..self.clone()
        })
    }

    /// Why these settings' faults cannot run (checked before the stack starts): a fault that
    /// would touch something the run does not have, or that does not fit in the measured load.
    pub fn check_faults(&self, private_db: bool) -> Result<(), String> {
        let (faults, settings) = (&self.faults, self);
        let mut windows: Vec<(f64, f64, &Fault)> = Vec::new();
        for fault in faults {
            let why = match fault.kind {
                FaultKind::DbRestart | FaultKind::DbStop if !private_db => {
                    Some("the database is not the stack's own (--database-url): only the private cluster is stopped")
                }
                FaultKind::DbRestart | FaultKind::DbStop if !settings.queries_the_database() => {
                    Some("this load never queries the database (backend upstream, or /json)")
                }
                FaultKind::UpstreamStop
                    if settings.backend != Backend::Upstream || settings.path != Endpoint::Test =>
                {
                    Some("this load never fetches the upstream page: add --backend upstream")
                }
                FaultKind::PoolDrain if !settings.pgbouncer => {
                    Some("there is no pgbouncer to drain: add --pgbouncer")
                }
                _ => None,
            };
            if let Some(why) = why {
                return Err(format!("--fault {fault}: {why}"));
            }
            let at = fault.at(settings.duration_s);
            let end = at + if fault.kind.lasts() { fault.for_s } else { 0.0 };
            if at <= 0.0 || end >= f64::from(settings.duration_s) {
                return Err(format!(
                    "--fault {fault}: it must start after 0 s and end before the measured load does ({} s); give --duration or @AT:FOR",
                    settings.duration_s
                ));
            }
            if let Some((_, _, other)) = windows.iter().find(|(a, b, _)| at <= *b && *a <= end) {
                return Err(format!(
                    "--fault {fault} overlaps --fault {other}: one at a time"
                ));
            }
            windows.push((at, end, fault));
        }
        Ok(())
    }
}

/// What bounds a row's throughput: requests waiting (Little's law), or the CPU their work
/// needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoundBy {
    Waiting,
    Cpu,
}

impl BoundBy {
    pub fn name(self) -> &'static str {
        match self {
            BoundBy::Waiting => "waiting",
            BoundBy::Cpu => "cpu",
        }
    }
}

/// The highest throughput a row can reach, and what sets it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    pub rps: f64,
    pub by: BoundBy,
}

/// The row's bound: the lower of Little's law ([`bound_rps`], over `concurrency`) and the CPU
/// bound ([`cpu_bound_rps`], over `parallel` requests on CPUs at once and a unit of work's
/// cost). `None` when neither applies.
pub fn bound(
    settings: &Settings,
    concurrency: Option<u32>,
    parallel: u32,
    us_per_unit: Option<f64>,
    wait_ms: f64,
) -> Option<Bound> {
    let waiting = little(settings, concurrency, wait_ms).map(|rps| Bound {
        rps,
        by: BoundBy::Waiting,
    });
    let cpu = us_per_unit
        .and_then(|us| cpu_bound_rps(settings, parallel, us))
        .map(|rps| Bound {
            rps,
            by: BoundBy::Cpu,
        });
    match (waiting, cpu) {
        (Some(w), Some(c)) => Some(if c.rps < w.rps { c } else { w }),
        (w, c) => w.or(c),
    }
}

/// The CPU bound: at most `parallel` requests hold a CPU at once, and each needs its work,
/// `work` × `us_per_unit` µs (the handler's own CPU, PostgreSQL's and nginx's left out: an
/// upper bound; with a mix, the classes' mean work). `None` without work.
pub fn cpu_bound_rps(settings: &Settings, parallel: u32, us_per_unit: f64) -> Option<f64> {
    let work = settings.mean_work();
    if work <= 0.0 || settings.path != Endpoint::Test || us_per_unit <= 0.0 {
        return None;
    }
    let seconds = work * us_per_unit / 1e6;
    let bound = f64::from(parallel.max(1)) / seconds;
    Some(match settings.rate {
        Some(rate) => bound.min(f64::from(rate)),
        None => bound,
    })
}

/// Little's law: at most `min(clients, concurrency)` requests are in flight, each takes at
/// least the delay. `None` when the delay is 0 (no bound worth the name) or for `/json`.
pub fn bound_rps(settings: &Settings, concurrency: Option<u32>) -> Option<f64> {
    little(settings, concurrency, settings.wait_ms(None))
}

/// Little's law over a request's mean wait, `wait_ms` ([`Settings::wait_ms`]: K delays for a
/// sync target's `fanout=K` pages in turn, the classes' weighted mean for a mix):
/// min(clients, concurrency) / mean wait.
fn little(settings: &Settings, concurrency: Option<u32>, wait_ms: f64) -> Option<f64> {
    if wait_ms <= 0.0 || settings.path != Endpoint::Test {
        return None;
    }
    let in_flight = concurrency.map_or(settings.connections, |c| c.min(settings.connections));
    let bound = f64::from(in_flight) / (wait_ms / 1000.0);
    Some(match settings.rate {
        Some(rate) => bound.min(f64::from(rate)),
        None => bound,
    })
}

#[cfg(test)]
mod tests;
