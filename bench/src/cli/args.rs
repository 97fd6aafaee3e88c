//! The arguments several commands share: the stack (`--targets`, `--database-url`), the
//! load (`--scenario`, `--tool`, `--out`, `--no-verify` and the flags that override a
//! preset's settings), and what may be observed of an external server.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use shared::Binary;

use super::UsageError;
use crate::contract;
use crate::measure::tools::{self, Tool};
use crate::model::external::{self, External, ExternalModel, Named};
use crate::model::fault::{self, Fault};
use crate::model::knob::{Knob, Value};
use crate::model::plan::Plan;
use crate::model::preset::{self, Preset};
use crate::model::settings::{Endpoint, Settings, Via};
use crate::model::tool::ToolKind;
use crate::stack::StackOptions;

/// Which targets, and the stack to run them on.
#[derive(Args, Debug, Clone, Default)]
pub struct StackArgs {
    /// Comma-separated targets [default: all]. Names: sync-thread, sync-pool, tokio-axum,
    /// tokio-actix, tokio-hyper, may-green, compio-tpc.
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Use this PostgreSQL instead of a private cluster (sql/ is loaded into it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StackArgs {
    pub fn stack_options(&self) -> StackOptions {
        StackOptions {
            database_url: self.database_url.clone(),
            ..StackOptions::from_env()
        }
    }

    pub fn binaries(&self) -> Result<Vec<Binary>> {
        super::parse_targets("--targets", &self.targets)
    }
}

/// What `run` and `compare` share: the preset, the tool, the output and the overrides.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The preset (see `bench scenarios`).
    #[arg(long, default_value = "grinberg")]
    pub scenario: String,
    /// The load tool [default: the preset's, wrk for most].
    #[arg(long, value_enum)]
    pub tool: Option<ToolKind>,
    /// Results folder [default: results/<scenario>-<time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip the contract checks before the load (they refuse a broken target).
    #[arg(long)]
    pub no_verify: bool,
    /// Measure a server even when a check the measurement rests on could not be made (the
    /// harness could not tell: another client under its database role, say); its row lists
    /// the checks not made.
    #[arg(long)]
    pub accept_unchecked: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

impl LoadArgs {
    /// The plan of a run or a sweep: the chosen targets (and those not built) and its output.
    pub fn plan(
        &self,
        scenario: Preset,
        settings: Settings,
        (targets, missing_targets): (Vec<Binary>, Vec<String>),
        baseline: String,
        out: &std::path::Path,
    ) -> Plan {
        Plan {
            scenario,
            settings,
            targets,
            externals: Vec::new(),
            remote_versions: Vec::new(),
            peer_versions: Vec::new(),
            missing_targets,
            baseline,
            verify: !self.no_verify,
            accept_unchecked: self.accept_unchecked,
            out: out.to_path_buf(),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            fault_every_s: None,
        }
    }

    /// The preset, its settings after the flags, and the load tool (found, or refused).
    pub fn settings(&self) -> Result<(Preset, Settings, Tool)> {
        let scenario = super::find_preset(&self.scenario)?;
        if scenario.shape == preset::Shape::Soak && self.tool.is_some() {
            return Err(UsageError(
                "the soak preset cannot run with --tool (it loads with its own paced client)"
                    .into(),
            )
            .into());
        }
        let mut settings = scenario.settings.clone();
        self.overrides.apply(&mut settings);
        settings.tool = self.tool.unwrap_or(settings.tool);
        // A mix runs on bench's own client unless another tool is asked for (and refused).
        if self.overrides.mix.is_some() && self.tool.is_none() {
            settings.tool = ToolKind::Bench;
        }
        let mixed = settings.mix.is_some() || matches!(scenario.shape, preset::Shape::Mix(_));
        settings
            .tool
            .check_rate(settings.rate)
            .and_then(|()| settings.tool.check_mix(mixed))
            .map_err(|e| UsageError(format!("{e:#}")))?;
        if settings.per_connection && settings.tool != ToolKind::Wrk {
            return Err(UsageError(format!(
                "--per-connection counts answers in wrk's threads; {} cannot: use --tool wrk",
                settings.tool
            ))
            .into());
        }
        let tool = tools::locate(settings.tool)?;
        Ok((scenario, settings, tool))
    }
}

/// Flags that override a scenario's settings.
#[derive(Args, Debug, Clone, Default)]
pub struct Overrides {
    /// The endpoint the load asks for: /test (the backend, with the delay), /json or
    /// /health (no I/O: the HTTP path and the model alone).
    #[arg(long, value_parser = Endpoint::parse)]
    pub path: Option<Endpoint>,
    /// Concurrent client connections.
    #[arg(long, value_parser = Knob::Connections.flag_parser())]
    pub connections: Option<u32>,
    /// Open loop at this many requests per second (needs --tool oha or hey).
    #[arg(long, value_parser = Knob::Rate.flag_parser())]
    pub rate: Option<u32>,
    /// Measured load per target, e.g. 10s, 1m or 2h.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<u32>,
    /// Warm-up before the measured load, e.g. 2s (0 for none).
    #[arg(long, value_parser = parse_warmup)]
    pub warmup: Option<u32>,
    /// Delay per request, in milliseconds (pg_sleep, or nginx's echo_sleep).
    #[arg(long, value_parser = Knob::DelayMs.flag_parser())]
    pub delay_ms: Option<u32>,
    /// Units of work per request after its row or page (SHA-256 chained N times, 0 to
    /// 100000): CPU the request holds where its model runs it. `bench` prints what a unit
    /// costs here.
    #[arg(long, value_parser = Knob::Work.flag_parser())]
    pub work: Option<u32>,
    /// Where the tokio targets run that work: inline on the worker, or blocking, on tokio's
    /// blocking pool (spawn_blocking). The other targets always run it inline.
    #[arg(long, value_enum)]
    pub offload: Option<shared::Offload>,
    /// Upstream pages per request (fanout=K, 1 to 16; the upstream backend): K fetches, made
    /// the way each model makes several at once.
    #[arg(long, value_parser = Knob::Fanout.flag_parser())]
    pub fanout: Option<u32>,
    /// How the sync targets make those fetches: inline, one after another (what sync code
    /// does), or threads, a scoped thread each (its --fanout).
    #[arg(long, value_enum)]
    pub fanout_with: Option<shared::Fanout>,
    /// Requests that are not all alike: classes NAME:WEIGHT:PARAM=V[&PARAM=V…],… (e.g.
    /// fast:90:delay_ms=0,slow:10:delay_ms=200), each request's class drawn by weight; every
    /// row gets each class's req/s, errors and latencies. Runs on bench's own client.
    #[arg(long, value_name = "NAME:WEIGHT:PARAM=V,…", value_parser = crate::model::mix::parse)]
    pub mix: Option<crate::model::mix::Mix>,
    /// What /test does.
    #[arg(long, value_enum)]
    pub backend: Option<shared::Backend>,
    /// DB sessions: every target's --pool-size (sync-pool: at most its workers).
    #[arg(long, value_parser = Knob::PoolSize.flag_parser())]
    pub pool_size: Option<u32>,
    /// --workers of every target that has them (sync-pool and the async and green ones).
    #[arg(long, value_parser = Knob::Workers.flag_parser())]
    pub workers: Option<u32>,
    /// Load the targets directly or through nginx.
    #[arg(long, value_enum)]
    pub via: Option<Via>,
    /// nginx keeps connections to the target open.
    #[arg(long, value_enum)]
    pub upstream_keepalive: Option<OnOff>,
    /// The load tool keeps its connections open.
    #[arg(long, value_enum)]
    pub client_keepalive: Option<OnOff>,
    /// Put pgbouncer (session mode, --pool-size server sessions in total) in front of PostgreSQL.
    #[arg(long)]
    pub pgbouncer: bool,
    /// Pin the target to CPU 0 and the load tool to the other CPUs.
    #[arg(long)]
    pub pin: bool,
    /// The tokio targets' DB connections: a pool, or one pipelined connection per worker
    /// (the other targets only pool, and are left out in pipelined mode).
    #[arg(long, value_enum)]
    pub db_mode: Option<shared::DbMode>,
    /// wrk only: one thread per connection, each counting its answers; rows get how evenly
    /// the target served its connections (`connection_requests`).
    #[arg(long)]
    pub per_connection: bool,
    /// A fault during the measured load (repeatable): KIND[@AT][:FOR] with KIND db-restart,
    /// db-stop, upstream-stop or pool-drain; AT seconds into the load [default: a third of
    /// it], FOR seconds [default: 5]. E.g. --fault db-stop@5:3.
    #[arg(long, value_name = "KIND[@AT][:FOR]", value_parser = fault::parse)]
    pub fault: Vec<Fault>,
    /// Slow clients beside the load tool's, straight to the target: each sends its request
    /// over about a second and reads the answer slowly (the slow-clients preset sets 200).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=5000))]
    pub slow_clients: Option<u32>,
    /// Idle keep-alive connections held on each target (each after one GET /json) while the
    /// load runs, with the target's idle timeout off; rows get what they cost.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub idle_connections: Option<u32>,
    /// Rounds per target; rows keep the median and the min–max.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_ROUNDS))]
    pub rounds: Option<u32>,
    /// The targets' --rows: ids are drawn from 1..=ROWS (pgbench's too).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=i64::from(contract::TABLE_ROWS)))]
    pub rows: Option<i32>,
}

impl Overrides {
    /// The knobs these flags set, as `--vary` would set them: [`Knob::apply`] is the one
    /// place that knows how each sets the settings.
    pub fn knobs(&self) -> Vec<(Knob, Value)> {
        let number = |knob, value: Option<u32>| value.map(|v| (knob, Value::Number(v)));
        let word = |knob, value: Option<String>| value.map(|v| (knob, Value::Word(v)));
        [
            number(Knob::DelayMs, self.delay_ms),
            number(Knob::Work, self.work),
            number(Knob::Fanout, self.fanout),
            number(Knob::Connections, self.connections),
            number(Knob::PoolSize, self.pool_size),
            number(Knob::Workers, self.workers),
            number(Knob::Rate, self.rate),
            word(Knob::Backend, self.backend.map(|b| b.name().to_string())),
            word(Knob::Via, self.via.map(|v| v.to_string())),
            word(Knob::DbMode, self.db_mode.map(|m| m.name().to_string())),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The settings of a preset after these flags.
    pub fn apply(&self, settings: &mut Settings) {
        for (knob, value) in self.knobs() {
            knob.apply(&value, settings);
        }
        // The flags a sweep does not vary.
        let s = settings;
        s.path = self.path.unwrap_or(s.path);
        s.duration_s = self.duration.unwrap_or(s.duration_s);
        s.warmup_s = self.warmup.unwrap_or(s.warmup_s);
        s.rounds = self.rounds.unwrap_or(s.rounds);
        s.rows = self.rows.unwrap_or(s.rows);
        s.offload = self.offload.unwrap_or(s.offload);
        s.fanout_with = self.fanout_with.unwrap_or(s.fanout_with);
        if let Some(mix) = &self.mix {
            s.mix = Some(mix.clone());
        }
        s.upstream_keepalive = self
            .upstream_keepalive
            .map_or(s.upstream_keepalive, OnOff::is_on);
        s.client_keepalive = self
            .client_keepalive
            .map_or(s.client_keepalive, OnOff::is_on);
        s.pgbouncer |= self.pgbouncer;
        s.pin |= self.pin;
        s.per_connection |= self.per_connection;
        s.slow_clients = self.slow_clients.unwrap_or(s.slow_clients);
        s.idle_connections = self.idle_connections.unwrap_or(s.idle_connections);
        if !self.fault.is_empty() {
            s.faults = self.fault.clone();
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnOff {
    #[default]
    On,
    Off,
}

impl OnOff {
    pub fn is_on(self) -> bool {
        self == OnOff::On
    }
}

/// The most rounds a flag asks for (`--rounds`).
pub const MAX_ROUNDS: i64 = 1000;

/// The longest load or period a flag gives: two days.
const MAX_SECONDS: u32 = 48 * 3600;

/// `--duration`: a measured load of 1 s to 48 h.
/// The token of a status endpoint (`bench up`, `bench describe`).
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The status endpoint's token, the first line of this file (at least 16 letters, digits
    /// or -._~); without it, one is made from /dev/urandom. Either way the URL printed for
    /// the load host carries it: http://TOKEN@HOST:PORT/stack.json.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token read from the file, or made; a bad file is a usage error.
    pub fn token(&self) -> Result<crate::token::Token> {
        match &self.token_file {
            Some(path) => crate::token::Token::from_file(path)
                .map_err(|why| UsageError(format!("--token-file {why}")).into()),
            None => crate::token::Token::generate(),
        }
    }
}

pub fn parse_duration(text: &str) -> Result<u32, String> {
    parse_seconds(text).and_then(|s| within(text, s, 1, MAX_SECONDS))
}

/// `--warmup`: 0 (none) to an hour.
pub fn parse_warmup(text: &str) -> Result<u32, String> {
    parse_seconds(text).and_then(|s| within(text, s, 0, 3600))
}

/// `--fault-every`: 0 (none) to 48 h.
pub fn parse_period(text: &str) -> Result<u32, String> {
    parse_seconds(text).and_then(|s| within(text, s, 0, MAX_SECONDS))
}

fn within(text: &str, seconds: u32, min: u32, max: u32) -> Result<u32, String> {
    if (min..=max).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!("{text:?} is not from {min} s to {max} s"))
    }
}

/// `10`, `10s`, `2m` or `2h`, in seconds.
pub fn parse_seconds(text: &str) -> Result<u32, String> {
    let (number, unit) = if let Some(n) = text.strip_suffix('h') {
        (n, 3600)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60)
    } else {
        (text.strip_suffix('s').unwrap_or(text), 1)
    };
    number
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{text:?} is not a duration: write e.g. 10s, 2m or 2h"))
}

/// What the harness may observe of an external server's process.
#[derive(Args, Debug, Clone, Default)]
pub struct ExternalObserve {
    /// An external server's process on this machine (NAME=PID): fills its RSS, threads and
    /// CPU columns, which are empty otherwise.
    #[arg(long, value_name = "NAME=PID", value_parser = external::parse_pid, num_args = 1..)]
    pub external_pid: Vec<Named<u32>>,
    /// An external server's application_name in pg_stat_activity (NAME=APP): fills its DB
    /// sessions column.
    #[arg(long, value_name = "NAME=APP", value_parser = external::parse_app)]
    pub external_app: Vec<Named<String>>,
    /// What bounds an external server (NAME=pool:N, NAME=threads:N or NAME=unbounded): gives
    /// its row a bound and an efficiency, which are empty otherwise.
    #[arg(long, value_name = "NAME=MODEL", value_parser = external::parse_model)]
    pub external_model: Vec<Named<ExternalModel>>,
}

impl ExternalObserve {
    /// The externals named by `urls`, with their pids and apps (not yet reached: that is
    /// `ops::prepare::reach`). Checking them against the contract needs the database they
    /// read.
    pub fn assemble(
        &self,
        urls: &[Named<String>],
        database_url: Option<&str>,
        verify: bool,
    ) -> Result<Vec<External>> {
        let observed = crate::externals::Observed {
            pids: &self.external_pid,
            apps: &self.external_app,
            models: &self.external_model,
        };
        let externals = crate::externals::assemble(urls, &observed).map_err(UsageError)?;
        if !externals.is_empty() && verify && database_url.is_none() {
            return Err(UsageError(format!(
                "--external {}: its rows are checked on the database it reads; give that database as --database-url (`bench up` prints one), or measure it unchecked with --no-verify",
                externals[0].name
            ))
            .into());
        }
        Ok(externals)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn a_duration_is_seconds_minutes_or_hours() {
        assert_eq!(parse_seconds("10"), Ok(10));
        assert_eq!(parse_seconds("10s"), Ok(10));
        assert_eq!(parse_seconds("2m"), Ok(120));
        assert_eq!(parse_seconds("2h"), Ok(7200));
        for bad in ["", "1x", "h", "-1m", "9999999h"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
