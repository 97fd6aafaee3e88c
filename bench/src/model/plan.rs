//! Every command's plan, in one place: what a measuring command runs ([`Plan`]), what a
//! sweep adds ([`SweepPlan`]), what `bench client` measures ([`ClientPlan`]), what `bench up`
//! keeps up ([`UpPlan`]) and how the stack comes up ([`StackOptions`]). Plain values: `cli/`
//! builds them from the flags, `ops` carries them out.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;
use shared::Binary;

use super::client::Model;
use super::external::External;
use super::knob::Vary;
use super::preset::Preset;
use super::settings::Settings;

/// What a measuring command runs: the preset and its settings after the flags, the targets,
/// the servers beside them, and where the results go.
pub struct Plan {
    pub scenario: Preset,
    pub settings: Settings,
    pub targets: Vec<Binary>,
    /// Servers the harness did not start (`--external`), measured beside the targets.
    pub externals: Vec<External>,
    /// The versions on a remote stack's host (`--remote`).
    pub remote_versions: Vec<(String, String)>,
    /// The Python peers' interpreter and packages (`--peers python`).
    pub peer_versions: Vec<(String, String)>,
    pub missing_targets: Vec<String>,
    /// The name every row's `relative` divides by: a target, or `pgbench`.
    pub baseline: String,
    pub verify: bool,
    /// Measure a server whose checks the measurement rests on could not be made
    /// (`--accept-unchecked`); its row lists them.
    pub accept_unchecked: bool,
    pub out: PathBuf,
    pub progress: bool,
    /// The soak preset's fault spacing (`--fault-every`), when given.
    pub fault_every_s: Option<f64>,
}

/// What to sweep: a run's plan (its settings are every point's base), and the sweep's own.
pub struct SweepPlan {
    pub base: Plan,
    pub varies: Vec<Vary>,
    pub seed: u64,
    pub slo_p99_ms: f64,
    /// Pairs for heatmaps, besides the default (best async or green target / sync-pool).
    pub heatmaps: Vec<(Binary, Binary)>,
    pub resume: bool,
    /// tokio targets measured a second time at every point with `--offload blocking`, as
    /// `NAME offload` (`--also-offload`, or the preset's).
    pub offload: Vec<Binary>,
}

/// What `bench client` measures.
#[derive(Clone, Debug, Serialize)]
pub struct ClientPlan {
    pub requests: u32,
    pub delay_ms: u32,
    pub models: Vec<Model>,
    pub rounds: u32,
}

/// What `bench up` asks for.
pub struct UpPlan {
    pub options: StackOptions,
    pub binaries: Vec<Binary>,
    /// Flags for every target (`--name value`), over the preset's.
    pub flags: Vec<(String, String)>,
    /// Start the targets with this preset's flags first.
    pub scenario: Option<String>,
    pub upstream_keepalive: bool,
    pub host: IpAddr,
    /// The status endpoint's token.
    pub token: crate::token::Token,
}

/// How to bring the stack up.
#[derive(Clone, Debug, Default)]
pub struct StackOptions {
    /// Use this database instead of a private cluster.
    pub database_url: Option<String>,
    /// Where the target binaries are (default: beside this executable).
    pub bin_dir: Option<PathBuf>,
    /// Where run folders go (default: `target/stack`).
    pub root: Option<PathBuf>,
    /// The address targets and proxies listen on (default: 127.0.0.1).
    pub listen_host: Option<IpAddr>,
}
