//! Everything the seven targets share: the contract in one place.
//!
//! A target server is its concurrency model and nothing else. Flags, routes, parameter
//! validation, SQL, byte-exact bodies, errors and their status codes, the `Date` header and the
//! HTTP plumbing live here, once, so that two servers read side by side differ only where their
//! models differ: how a request waits for PostgreSQL or for the upstream.
//!
//! The core (always compiled) is plain `std` plus the parsers it needs (clap, httparse, url).
//! Optional features carry the driver code that several targets share:
//!
//! - `blocking`: the `postgres` driver, our blocking pool and keep-alive upstream client, for
//!   sync-thread and sync-pool (the blocking HTTP layer itself is core);
//! - `tokio`: the `tokio-postgres` + `deadpool-postgres` pool, the hyper-util upstream client
//!   and the limits under hyper (`guarded`), for tokio-axum, tokio-actix and tokio-hyper;
//! - `green`: may-green's cooperative PostgreSQL and upstream clients, over may's sockets;
//! - `compio`: compio-tpc's runtime per thread (`compio_stack`), and its per-thread pool,
//!   pipelined connection and upstream client (`wait::compio`), tokio-postgres and hyper
//!   over compio's sockets;
//!
//! Where a request waits, in each model, is [`wait`]: the four files side by side.
//! - `fuzzing`: the blocking HTTP layer's fuzz oracle, for the fuzz crate only.
//!
//! Nothing in the core or in `green` may block a coroutine's thread.

pub mod config;
pub mod date;
pub mod error;
pub mod http;
pub mod panics;
pub mod render;
pub mod request;
pub mod shutdown;
pub mod sql;
pub mod start;
pub mod upstream;
pub mod wait;
pub mod work;

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "compio")]
pub mod compio_stack;
#[cfg(feature = "green")]
pub mod green;
#[cfg(any(feature = "tokio", feature = "compio"))]
pub mod guarded;
#[cfg(any(feature = "tokio", feature = "compio"))]
pub mod hyper_reply;
#[cfg(any(feature = "blocking", feature = "tokio", feature = "compio"))]
pub mod pg;
#[cfg(any(feature = "tokio", feature = "compio"))]
pub mod places;
#[cfg(feature = "tokio")]
pub mod tokio_stack;

pub use config::{
    Backend, Binary, Config, ConnLimits, DatabaseUrl, DbMode, Fanout, Model, Offload,
    RequestDefaults, UpstreamUrl,
};
pub use error::AppError;
pub use render::DbRow;
pub use request::{plan, Reply, UpstreamReply, Work};
