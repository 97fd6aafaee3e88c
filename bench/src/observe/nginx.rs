//! Watching nginx while targets run: its stub_status counters (client connections open,
//! requests in flight), and a sampler of the peak in flight.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

/// Client connections nginx holds open right now (stub_status "Active connections"), minus
/// the status request's own.
pub fn nginx_active(status_addr: SocketAddr) -> Result<i64> {
    stub_status(status_addr, "connections:")
}

/// Requests nginx is working on right now (stub_status "Writing"), minus the status request
/// itself.
pub fn nginx_in_flight(status_addr: SocketAddr) -> Result<i64> {
    stub_status(status_addr, "Writing:")
}

/// The number after `label` on nginx's stub_status page, less the status request's own 1.
fn stub_status(status_addr: SocketAddr, label: &str) -> Result<i64> {
    let response = crate::client::get(status_addr, "/nginx_status")?;
    let text = response.text();
    let value = text
        .split_whitespace()
        .skip_while(|word| *word != label)
        .nth(1)
        .and_then(|n| n.parse::<i64>().ok())
        .with_context(|| format!("unexpected stub_status page: {text}"))?;
    Ok(value - 1)
}

/// Samples [`nginx_in_flight`] on a thread until finished; returns the peak.
pub struct InFlightSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<i64>>,
}

impl InFlightSampler {
    pub fn start(status_addr: SocketAddr, interval: Duration) -> InFlightSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut peak = 0;
                loop {
                    peak = peak.max(nginx_in_flight(status_addr)?);
                    if stop.load(Ordering::SeqCst) {
                        return Ok(peak);
                    }
                    std::thread::sleep(interval);
                }
            }
        });
        InFlightSampler { stop, handle }
    }

    pub fn finish(self) -> Result<i64> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the nginx sampler panicked"))?
    }
}
