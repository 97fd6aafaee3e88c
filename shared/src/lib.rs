//! Everything the six targets share: the contract in one place.
//!
//! A target server is its concurrency model and nothing else. Flags, routes, parameter
//! validation, SQL, byte-exact bodies, errors and their status codes, the `Date` header and the
//! HTTP plumbing live here, once, so that two servers read side by side differ only where their
//! models differ: how a request waits for PostgreSQL or for the upstream.
//!
//! The core (always compiled) is plain `std`. Two optional features carry the driver code that
//! several targets share:
//!
//! - `blocking`: the `postgres` + `r2d2_postgres` pool and the blocking HTTP layer's server and
//!   client, for sync-thread and sync-pool;
//! - `tokio`: the `tokio-postgres` + `deadpool-postgres` pool and the hyper-util upstream client,
//!   for tokio-axum, tokio-actix and tokio-hyper.
//!
//! may-green carries its own cooperative clients: nothing here may block a coroutine's thread.

pub mod config;
pub mod date;
pub mod error;
pub mod http;
pub mod render;
pub mod request;
pub mod sql;
pub mod upstream;

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "green")]
pub mod green;
#[cfg(any(feature = "blocking", feature = "tokio"))]
pub mod pg;
#[cfg(feature = "tokio")]
pub mod tokio_stack;

pub use config::{Backend, Binary, Config, DatabaseUrl, RequestDefaults, UpstreamUrl};
pub use error::AppError;
pub use render::Row;
pub use request::{plan, Reply, UpstreamReply, Work};
