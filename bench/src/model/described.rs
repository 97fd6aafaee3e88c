//! What a row says about its subject: the binary, the model, the flags it was started with,
//! and the concurrency that bounds it (a reference's from its binary and flags, an external's
//! from the model its user stated, a peer's from the harness).

use super::case::{Case, Subject};
use super::settings::{bound, Bound, Settings};

/// What a row says about its subject: the binary, the model, the flags it was started with,
/// and the concurrency that bounds it.
pub struct Described {
    pub binary: Option<String>,
    pub model: String,
    pub flags: Vec<String>,
    pub concurrency: Option<u32>,
    /// Whether its model is known well enough for a bound: false for an external server
    /// whose model nobody stated (`--external-model`).
    pub bounded: bool,
    /// How many of its requests can hold a CPU at once (`Settings::cpu_parallel`): for a
    /// server the harness did not build, the CPUs it may use.
    pub parallel: u32,
    /// A request's mean wait in ms (`Settings::wait_ms`), for Little's law.
    pub wait_ms: f64,
}

impl Described {
    /// The requests a closed loop of `s` can have in flight on it: its connections, or fewer
    /// when the model takes fewer at once (sync-thread's threads; the rest wait in its
    /// backlog, not in the client).
    pub fn in_flight(&self, s: &Settings) -> u32 {
        self.concurrency
            .filter(|_| self.bounded)
            .map_or(s.connections, |c| c.min(s.connections))
    }

    /// The bound of a row of it with settings `s`: the lower of Little's law over its
    /// concurrency and mean wait and the CPU bound (`settings::bound`); none when its model
    /// is not known.
    pub fn bound(&self, s: &Settings) -> Option<Bound> {
        bound(
            s,
            self.concurrency,
            self.parallel,
            super::meta::work_cost(),
            self.wait_ms,
        )
        .filter(|_| self.bounded)
    }

    pub fn of(case: &Case) -> Described {
        let s = &case.settings;
        let wait_ms = match &case.subject {
            Subject::Target(b) => s.wait_ms(Some(*b)),
            Subject::External(e) => s.wait_ms(e.binary),
            Subject::Pgbench | Subject::NginxStatic => s.wait_ms(None),
        };
        let (binary, model, flags, concurrency, parallel) = match &case.subject {
            Subject::Target(b) => (
                Some(b.name().to_string()),
                b.describe().to_string(),
                s.target_flags(*b)
                    .into_iter()
                    .map(|(f, v)| format!("{f} {v}"))
                    .collect(),
                s.effective_concurrency(*b),
                s.cpu_parallel(*b),
            ),
            Subject::External(e) => match (&e.remote, e.binary) {
                (Some(remote), Some(binary)) => (
                    Some(binary.name().to_string()),
                    format!(
                        "{}; on {}, started by bench up",
                        binary.describe(),
                        remote.host
                    ),
                    remote
                        .flags
                        .iter()
                        .map(|(flag, value)| format!("{flag} {value}"))
                        .collect(),
                    s.as_started_with(&remote.flags)
                        .and_then(|at| at.effective_concurrency(binary)),
                    s.as_started_with(&remote.flags)
                        .map_or(s.cpus(), |at| at.cpu_parallel(binary)),
                ),
                _ => {
                    let stated = e.model.map_or(
                        "no bound: its model is not stated (--external-model)".to_string(),
                        |m| format!("{}: {}", m.name(), m.describe()),
                    );
                    let what = e.about.clone().unwrap_or_else(|| {
                        format!("external: {} (not started by the harness)", e.url)
                    });
                    return Described {
                        binary: None,
                        model: format!("{what}; {stated}"),
                        flags: e.flags.clone(),
                        concurrency: e.model.and_then(|m| m.concurrency()),
                        bounded: e.model.is_some(),
                        parallel: s.cpus(),
                        wait_ms,
                    };
                }
            },
            Subject::Pgbench => (
                None,
                "pgbench: the database alone, same statement".to_string(),
                Vec::new(),
                Some(s.connections.min(s.sessions)),
                s.cpus(),
            ),
            Subject::NginxStatic => (
                None,
                "nginx `return 200`: the HTTP path alone".to_string(),
                Vec::new(),
                None,
                s.cpus(),
            ),
        };
        Described {
            binary,
            model,
            flags,
            concurrency,
            bounded: true,
            parallel,
            wait_ms,
        }
    }
}
