//! Observing what runs, by counting: PostgreSQL's sessions and statements
//! ([`postgres`]), nginx's connections and requests in flight ([`nginx`]), and what the kernel
//! knows of a process ([`procfs`]: CPU, memory, threads, pinning) and of the machine
//! ([`machine`]). The checks prove concurrency with these counts, and the runner samples
//! them during a load.

pub mod machine;
pub mod nginx;
pub mod postgres;
pub mod procfs;

pub use nginx::{nginx_active, nginx_in_flight, InFlightSampler};
pub use postgres::{Observer, Peaks, Sampler, Sessions};
