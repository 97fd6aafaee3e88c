//! The seven targets and their concurrency [`Model`]s, and the two choices every target's
//! `/test` and DB layer are built around: its [`Binary`] (the name is the binary's, the `Server`
//! header and the `application_name`), the [`Backend`] of `/test`, and the tokio targets'
//! [`DbMode`].
//!
//! Everything that depends on a target's model (its bound, its default workers, whether one
//! worker overlaps requests, the flags it takes) matches [`Binary::model`] or a [`Model`]
//! method exhaustively, so a new variant of either does not compile until each place decides.

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

    /// Its concurrency model: what a request waits on, and how many it overlaps.
    pub fn model(self) -> Model {
        match self {
            Binary::SyncThread => Model::ThreadPerConnection,
            Binary::SyncPool => Model::ThreadPool,
            Binary::TokioAxum | Binary::TokioActix | Binary::TokioHyper => Model::Tokio,
            Binary::MayGreen => Model::Green,
            Binary::CompioTpc => Model::ThreadPerCore,
        }
    }

    /// Whether its PostgreSQL client pipelines concurrent queries on one connection, so that
    /// `--db-mode pipelined` exists: tokio-postgres, used by the tokio targets and (over
    /// compio's sockets) by compio-tpc. A property of the client, not of the model.
    pub fn pipelines(self) -> bool {
        match self {
            Binary::TokioAxum | Binary::TokioActix | Binary::TokioHyper | Binary::CompioTpc => true,
            Binary::SyncThread | Binary::SyncPool | Binary::MayGreen => false,
        }
    }

    /// One line on the target: its model and framework, for `--help` and reports.
    pub fn describe(self) -> &'static str {
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

    /// `--workers` when the flag is absent (see [`Model::default_workers`]).
    pub fn default_workers(self, cpus: usize) -> usize {
        self.model().default_workers(cpus)
    }

    /// `--pool-size` when the flag is absent (see [`Model::default_pool_size`]).
    pub fn default_pool_size(self, workers: usize) -> usize {
        self.model().default_pool_size(workers)
    }
}

/// A concurrency model: how a target overlaps requests, and so what bounds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// One OS thread per connection, blocking calls (sync-thread).
    ThreadPerConnection,
    /// A fixed pool of OS threads, one request each, blocking calls (sync-pool).
    ThreadPool,
    /// Async tasks on a tokio runtime (tokio-axum, tokio-actix, tokio-hyper).
    Tokio,
    /// Green threads: coroutines on a few OS threads (may-green).
    Green,
    /// Thread per core: a runtime per thread, nothing shared between them (compio-tpc).
    ThreadPerCore,
}

impl Model {
    pub const ALL: [Model; 5] = [
        Model::ThreadPerConnection,
        Model::ThreadPool,
        Model::Tokio,
        Model::Green,
        Model::ThreadPerCore,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Model::ThreadPerConnection => "thread per connection",
            Model::ThreadPool => "thread pool",
            Model::Tokio => "async (tokio)",
            Model::Green => "green threads",
            Model::ThreadPerCore => "thread per core",
        }
    }

    /// Whether one worker thread overlaps many requests: its waits (PostgreSQL, the upstream)
    /// do not block the thread. False where a request holds its OS thread while it waits.
    pub fn overlaps_requests(self) -> bool {
        match self {
            Model::Tokio | Model::Green | Model::ThreadPerCore => true,
            Model::ThreadPerConnection | Model::ThreadPool => false,
        }
    }

    /// Whether it answers one request per connection (`Connection: close`): a pool worker
    /// serves a connection to its end, so keep-alive would let one client hold a worker.
    pub fn closes_each_connection(self) -> bool {
        match self {
            Model::ThreadPool => true,
            Model::ThreadPerConnection | Model::Tokio | Model::Green | Model::ThreadPerCore => {
                false
            }
        }
    }

    /// `--workers` when the flag is absent: the CPU count, or 2 × CPU + 1 for a thread pool
    /// (gunicorn's advice for sync workers).
    pub fn default_workers(self, cpus: usize) -> usize {
        match self {
            Model::ThreadPool => 2 * cpus + 1,
            Model::ThreadPerConnection | Model::Tokio | Model::Green | Model::ThreadPerCore => cpus,
        }
    }

    /// `--pool-size` when the flag is absent: 16, or the worker count for a thread pool,
    /// whose workers can never use more connections than there are of them.
    pub fn default_pool_size(self, workers: usize) -> usize {
        match self {
            Model::ThreadPool => workers,
            Model::ThreadPerConnection | Model::Tokio | Model::Green | Model::ThreadPerCore => 16,
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// Where the tokio targets run a request's `work=N` (`--offload`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Offload {
    /// On the worker thread that runs the request's task: the async model as written, where
    /// a request that holds the CPU holds every other task on that worker.
    #[default]
    Inline,
    /// On tokio's blocking pool (`spawn_blocking`), the remedy tokio's users reach for: the
    /// worker goes on serving other tasks while a blocking thread hashes.
    Blocking,
}

impl Offload {
    pub fn name(self) -> &'static str {
        match self {
            Offload::Inline => "inline",
            Offload::Blocking => "blocking",
        }
    }

    pub fn from_name(name: &str) -> Option<Offload> {
        match name {
            "inline" => Some(Offload::Inline),
            "blocking" => Some(Offload::Blocking),
            _ => None,
        }
    }

    /// Whether `binary` can run its work this way: every target inline, only the tokio
    /// targets on a blocking pool.
    pub fn supported_by(self, binary: Binary) -> bool {
        match binary.model() {
            Model::Tokio => true,
            Model::ThreadPerConnection
            | Model::ThreadPool
            | Model::Green
            | Model::ThreadPerCore => self == Offload::Inline,
        }
    }
}

impl fmt::Display for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the sync targets make a request's `fanout=K` fetches (`--fanout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Fanout {
    /// The model's own way: one after another on the request's thread in the sync targets
    /// (the code a sync user writes); at once in the others (tasks joined, coroutines).
    #[default]
    Inline,
    /// The sync remedy: a scoped thread per fetch, joined.
    Threads,
}

impl Fanout {
    pub fn name(self) -> &'static str {
        match self {
            Fanout::Inline => "inline",
            Fanout::Threads => "threads",
        }
    }

    pub fn from_name(name: &str) -> Option<Fanout> {
        match name {
            "inline" => Some(Fanout::Inline),
            "threads" => Some(Fanout::Threads),
            _ => None,
        }
    }

    /// Whether `binary` can make its fetches this way: only the sync targets take threads.
    pub fn supported_by(self, binary: Binary) -> bool {
        match binary.model() {
            Model::ThreadPerConnection | Model::ThreadPool => true,
            Model::Tokio | Model::Green | Model::ThreadPerCore => self == Fanout::Inline,
        }
    }
}

impl fmt::Display for Fanout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

    #[test]
    fn every_model_has_a_target() {
        for model in Model::ALL {
            assert!(
                Binary::ALL.iter().any(|b| b.model() == model),
                "no target implements {model}"
            );
        }
    }
}
