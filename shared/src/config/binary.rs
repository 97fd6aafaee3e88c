//! The seven targets, and the two choices every target's `/test` and DB layer are built around:
//! its [`Binary`] (the name is the binary's, the `Server` header and the `application_name`),
//! the [`Backend`] of `/test`, and the tokio targets' [`DbMode`].

use std::fmt;

use clap::ValueEnum;

/// The seven targets of the suite. The name is the binary's name, the `Server` header and the
/// PostgreSQL `application_name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    SyncThread,
    SyncPool,
    TokioAxum,
    TokioActix,
    TokioHyper,
    MayGreen,
    CompioTpc,
}

impl Binary {
    pub const ALL: [Binary; 7] = [
        Binary::SyncThread,
        Binary::SyncPool,
        Binary::TokioAxum,
        Binary::TokioActix,
        Binary::TokioHyper,
        Binary::MayGreen,
        Binary::CompioTpc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Binary::SyncThread => "sync-thread",
            Binary::SyncPool => "sync-pool",
            Binary::TokioAxum => "tokio-axum",
            Binary::TokioActix => "tokio-actix",
            Binary::TokioHyper => "tokio-hyper",
            Binary::MayGreen => "may-green",
            Binary::CompioTpc => "compio-tpc",
        }
    }

    pub fn from_name(name: &str) -> Option<Binary> {
        Binary::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The three async targets on tokio (and tokio-postgres).
    pub fn is_tokio(self) -> bool {
        matches!(
            self,
            Binary::TokioAxum | Binary::TokioActix | Binary::TokioHyper
        )
    }

    /// The targets on tokio-postgres, which pipelines concurrent queries on one connection:
    /// the tokio targets and compio-tpc (tokio-postgres over compio's sockets).
    pub fn pipelines(self) -> bool {
        self.is_tokio() || self == Binary::CompioTpc
    }

    /// One line on the concurrency model, for `--help` and reports.
    pub fn model(self) -> &'static str {
        match self {
            Binary::SyncThread => "one OS thread per connection",
            Binary::SyncPool => "fixed pool of OS threads, one request each, Connection: close",
            Binary::TokioAxum => "async tasks on a tokio multi-thread runtime (axum)",
            Binary::TokioActix => "async tasks on single-threaded runtimes (actix-web)",
            Binary::TokioHyper => "async tasks on a tokio multi-thread runtime (bare hyper)",
            Binary::MayGreen => "green threads: may coroutines on a few OS threads",
            Binary::CompioTpc => {
                "thread per core: an io_uring runtime per thread, nothing shared (compio)"
            }
        }
    }

    /// `--workers` when the flag is absent: the CPU count, or 2 × CPU + 1 for sync-pool
    /// (gunicorn's advice for sync workers).
    pub fn default_workers(self, cpus: usize) -> usize {
        match self {
            Binary::SyncPool => 2 * cpus + 1,
            _ => cpus,
        }
    }

    /// `--pool-size` when the flag is absent: 16, or the worker count for sync-pool, whose
    /// workers can never use more connections than there are of them.
    pub fn default_pool_size(self, workers: usize) -> usize {
        match self {
            Binary::SyncPool => workers,
            _ => 16,
        }
    }
}

impl fmt::Display for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `/test` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Fetch one PostgreSQL row.
    Db,
    /// Fetch a page from the upstream nginx.
    Upstream,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Db => "db",
            Backend::Upstream => "upstream",
        }
    }

    pub fn from_name(name: &str) -> Option<Backend> {
        match name {
            "db" => Some(Backend::Db),
            "upstream" => Some(Backend::Upstream),
            _ => None,
        }
    }
}

/// How the tokio targets reach PostgreSQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DbMode {
    /// A pool of `--pool-size` connections; a request holds one for its query.
    #[default]
    Pool,
    /// One connection per worker thread, shared by its tasks: their queries are pipelined on
    /// it (the design of the fastest TechEmpower entries). `--pool-size` is not used.
    Pipelined,
}

impl DbMode {
    pub fn name(self) -> &'static str {
        match self {
            DbMode::Pool => "pool",
            DbMode::Pipelined => "pipelined",
        }
    }

    pub fn from_name(name: &str) -> Option<DbMode> {
        match name {
            "pool" => Some(DbMode::Pool),
            "pipelined" => Some(DbMode::Pipelined),
            _ => None,
        }
    }

    /// Whether `binary` can run in this mode: every target pools, only the targets on
    /// tokio-postgres pipeline (it pipelines concurrent queries on one client).
    pub fn supported_by(self, binary: Binary) -> bool {
        self == DbMode::Pool || binary.pipelines()
    }
}

impl fmt::Display for DbMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_names_round_trip() {
        for binary in Binary::ALL {
            assert_eq!(Binary::from_name(binary.name()), Some(binary));
        }
        assert_eq!(Binary::from_name("flask"), None);
    }
}
