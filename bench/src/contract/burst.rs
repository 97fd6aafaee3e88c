//! Bursts: `n` concurrent requests released together, and the peaks they caused (the
//! target's sessions in `pg_sleep`, fetches in flight at the upstream nginx), counted while
//! they run.

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use anyhow::Result;

use super::Server;
use crate::client::{self, Response};
use crate::observe::{InFlightSampler, Peaks, Sampler};

/// `n` concurrent GETs of `target`, each on its own connection, released together.
pub fn burst(addr: SocketAddr, target: &str, n: usize) -> Vec<Result<Response>> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            let target = target.to_string();
            std::thread::spawn(move || {
                let mut conn = client::Conn::open(addr)?;
                barrier.wait();
                conn.get(&target)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("request thread panicked")))
        })
        .collect()
}

/// What a burst did: its responses, the peak of the target's sessions in `pg_sleep`, and the
/// peak of fetches in flight at the upstream nginx.
pub struct BurstPeaks {
    pub responses: Vec<Result<Response>>,
    pub db: Peaks,
    pub upstream_in_flight: Option<i64>,
}

/// The statuses of `responses`, in order; a failed request counts as 0.
pub fn statuses(responses: &[Result<Response>]) -> Vec<u16> {
    responses
        .iter()
        .map(|r| r.as_ref().map_or(0, |r| r.status))
        .collect()
}

impl BurstPeaks {
    /// The statuses, in order; a failed request counts as 0.
    pub fn statuses(&self) -> Vec<u16> {
        statuses(&self.responses)
    }

    pub fn all_ok(&self) -> bool {
        self.statuses().iter().all(|s| *s == 200)
    }
}

/// Runs a [`burst`] while sampling every 10 ms.
pub fn burst_with_peaks(server: &Server, target: &str, n: usize) -> Result<BurstPeaks> {
    let interval = Duration::from_millis(10);
    let sampler = Sampler::start(&server.database_url, &server.name, interval)?;
    let in_flight = server
        .upstream
        .map(|addr| InFlightSampler::start(addr, interval));
    let responses = burst(server.direct, target, n);
    Ok(BurstPeaks {
        responses,
        db: sampler.finish()?,
        upstream_in_flight: match in_flight {
            Some(sampler) => Some(sampler.finish()?),
            None => None,
        },
    })
}
