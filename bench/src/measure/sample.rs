//! What a round samples besides the load tool's own numbers: the measured process (memory,
//! threads, CPU) and its DB sessions, from this host's /proc and `pg_stat_activity`, or from
//! a remote stack's samples.

use super::SAMPLE_EVERY;
use crate::observe::procfs::{self, MemorySampler};

/// What the samplers watch in a round: the measured process (memory, threads, CPU) and its
/// DB sessions' `application_name`. Empty for pgbench and nginx alone, and for an external
/// server without `--external-pid` and `--external-app`.
#[derive(Clone, Copy, Default)]
pub struct Watched<'a> {
    pub pid: Option<u32>,
    /// Whether the process's descendants count with it (an external server's workers); a
    /// target is one process, and reading only it keeps the sampler's own cost down.
    pub tree: bool,
    pub app: Option<&'a str>,
    /// A target of a remote stack: its status endpoint and its name in the samples.
    pub remote: Option<(&'a crate::remote::StatusEndpoint, &'a str)>,
}

impl Watched<'_> {
    /// Samples the watched process's memory and threads (with its descendants') every
    /// 100 ms: from this host's /proc, or from a remote stack's samples; none without a
    /// process to watch.
    pub fn memory_sampler(&self) -> Option<MemorySampler> {
        match (self.remote, self.pid) {
            (Some((status, name)), _) => {
                let (status, name) = (status.clone(), name.to_string());
                Some(MemorySampler::start_with(SAMPLE_EVERY, move || {
                    crate::remote::memory_of(&status, &name)
                }))
            }
            (None, Some(pid)) if self.tree => Some(MemorySampler::start(pid, SAMPLE_EVERY)),
            (None, Some(pid)) => Some(MemorySampler::start_with(SAMPLE_EVERY, move || {
                procfs::usage(pid)
            })),
            (None, None) => None,
        }
    }
}

/// CPU seconds of the target, PostgreSQL and the proxy nginx over the measured load: from
/// this host's /proc, or from a remote stack's samples.
pub struct CpuWatch {
    source: CpuSource,
    before: [Option<f64>; 3],
}

enum CpuSource {
    /// The measured process (and whether its descendants count), PostgreSQL, nginx.
    Local(Option<(u32, bool)>, Option<u32>, Option<u32>),
    /// The status endpoint and the target's name in its samples.
    Remote(crate::remote::StatusEndpoint, String),
}

impl CpuWatch {
    pub fn start(
        target: Option<(u32, bool)>,
        postgres: Option<u32>,
        nginx: Option<u32>,
    ) -> CpuWatch {
        let source = CpuSource::Local(target, postgres, nginx);
        let before = source.read();
        CpuWatch { source, before }
    }

    pub fn remote(status: &crate::remote::StatusEndpoint, name: &str) -> CpuWatch {
        let source = CpuSource::Remote(status.clone(), name.to_string());
        let before = source.read();
        CpuWatch { source, before }
    }

    pub fn finish(self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let after = self.source.read();
        let delta = |i: usize| Some((after[i]? - self.before[i]?).max(0.0));
        (delta(0), delta(1), delta(2))
    }
}

impl CpuSource {
    fn read(&self) -> [Option<f64>; 3] {
        match self {
            CpuSource::Local(target, postgres, nginx) => [
                target.and_then(|(pid, tree)| procfs::cpu_seconds(pid, tree)),
                postgres.and_then(|pid| procfs::cpu_seconds(pid, true)),
                nginx.and_then(|pid| procfs::cpu_seconds(pid, true)),
            ],
            CpuSource::Remote(status, name) => {
                let samples = crate::remote::fetch_samples(status).unwrap_or_default();
                let cpu = |key: &str| samples.get(key).map(|s| s.cpu_s);
                [cpu(name), cpu("postgres"), cpu("nginx")]
            }
        }
    }
}
