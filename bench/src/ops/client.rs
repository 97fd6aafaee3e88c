//! `bench client`: the client side of the argument (the aiohttp-vs-Flask analysis). N GETs of
//! the upstream nginx page, each answered after a known delay d, made one after another, from
//! T threads, as N futures on one tokio runtime, and as N may coroutines. The clients are the
//! shared crate's own blocking, tokio and green upstream clients, the ones the servers use, so
//! that the client side reads as side by side as the servers do. Every result has its bound:
//! N × d one after another, ⌈N / T⌉ × d from T threads, d when everything overlaps.

use std::net::SocketAddr;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::client::{ClientRow, Model};
use crate::model::plan::ClientPlan;
use crate::model::row::Spread;
use crate::observe::procfs::MemorySampler;
use anyhow::{Context, Result};
use shared::UpstreamUrl;

/// One run of one model: its wall time and errors.
struct Run {
    wall: Duration,
    errors: u64,
}

fn sequential(url: &UpstreamUrl, n: u32, delay_ms: u32) -> Run {
    let client = shared::wait::blocking::Upstream::new(url, None);
    let started = Instant::now();
    let errors = (0..n).filter(|_| !ok(client.fetch(delay_ms))).count() as u64;
    Run {
        wall: started.elapsed(),
        errors,
    }
}

fn ok(reply: Result<shared::UpstreamReply, shared::AppError>) -> bool {
    reply.is_ok_and(|r| r.status == 200)
}

fn threads(url: &UpstreamUrl, n: u32, delay_ms: u32, t: u32) -> Run {
    let next = AtomicU32::new(0);
    let errors = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..t {
            scope.spawn(|| {
                // Each thread its own client, so its own keep-alive connection.
                let client = shared::wait::blocking::Upstream::new(url, None);
                while next.fetch_add(1, Ordering::SeqCst) < n {
                    if !ok(client.fetch(delay_ms)) {
                        errors.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    Run {
        wall: started.elapsed(),
        errors: errors.load(Ordering::SeqCst) as u64,
    }
}

fn tokio_gather(url: &UpstreamUrl, n: u32, delay_ms: u32) -> Result<Run> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    let client = Arc::new(shared::wait::tokio::Upstream::for_url(url).map_err(anyhow::Error::msg)?);
    let started = Instant::now();
    let errors = runtime.block_on(async {
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..n {
            let client = client.clone();
            all.spawn(async move { ok(client.fetch(delay_ms).await) });
        }
        let mut errors = 0u64;
        while let Some(done) = all.join_next().await {
            if !done.unwrap_or(false) {
                errors += 1;
            }
        }
        errors
    });
    Ok(Run {
        wall: started.elapsed(),
        errors,
    })
}

fn may_green(url: &UpstreamUrl, n: u32, delay_ms: u32) -> Run {
    let client = Arc::new(shared::green::upstream::Upstream::new(url, None));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let coroutines: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            let errors = errors.clone();
            // SAFETY (may's contract for `go!`): the coroutine makes no blocking OS call and
            // keeps no thread-local state across its waits; the cooperative client parks it.
            may::go!(move || {
                if !ok(client.fetch(delay_ms)) {
                    errors.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for coroutine in coroutines {
        if coroutine.join().is_err() {
            errors.fetch_add(1, Ordering::SeqCst);
        }
    }
    Run {
        wall: started.elapsed(),
        errors: errors.load(Ordering::SeqCst) as u64,
    }
}

/// Samples nginx's open client connections every 5 ms, keeping the peak.
struct ConnectionSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<i64>,
}

impl ConnectionSampler {
    fn start(status: SocketAddr) -> ConnectionSampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut peak = 0;
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(active) = crate::observe::nginx_active(status) {
                        peak = peak.max(active);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                peak
            }
        });
        ConnectionSampler { stop, handle }
    }

    fn finish(self) -> i64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or(0)
    }
}

/// Runs every model of `plan` against the upstream page at `upstream` (nginx, with its
/// stub_status at the same address), `plan.rounds` times each.
pub fn measure_models(upstream: SocketAddr, plan: &ClientPlan) -> Result<Vec<ClientRow>> {
    let url =
        UpstreamUrl::parse(&format!("http://{upstream}/upstream")).map_err(anyhow::Error::msg)?;
    let delay = Duration::from_millis(u64::from(plan.delay_ms));
    let mut rows = Vec::new();
    for &model in &plan.models {
        let mut walls = Vec::new();
        let mut errors = 0;
        let connections = ConnectionSampler::start(upstream);
        let memory = MemorySampler::start(std::process::id(), Duration::from_millis(5));
        for _ in 0..plan.rounds.max(1) {
            let run = match model {
                Model::Sequential => sequential(&url, plan.requests, plan.delay_ms),
                Model::Threads(t) => threads(&url, plan.requests, plan.delay_ms, t),
                Model::TokioGather => tokio_gather(&url, plan.requests, plan.delay_ms)?,
                Model::MayGreen => may_green(&url, plan.requests, plan.delay_ms),
            };
            walls.push(run.wall.as_secs_f64());
            errors += run.errors;
        }
        let peak_connections = connections.finish();
        let peak = memory.finish();
        let (rss_peak_mib, threads_peak) = (peak.rss_mib, peak.threads);
        let spread = Spread::of(&walls);
        let bound_s = model.bound(plan.requests, delay).as_secs_f64();
        rows.push(ClientRow {
            model: model.name(),
            requests: plan.requests,
            delay_ms: plan.delay_ms,
            wall_s: spread.median,
            wall_s_min: spread.min,
            wall_s_max: spread.max,
            requests_per_sec: f64::from(plan.requests) / spread.median.max(1e-9),
            bound_s,
            efficiency: bound_s / spread.median.max(1e-9),
            errors,
            peak_connections,
            rss_peak_mib,
            threads_peak,
        });
    }
    Ok(rows)
}
