//! `bench client`: the client side of the argument (the aiohttp-vs-Flask analysis). N GETs of
//! the upstream nginx page, each answered after a known delay d, made one after another, from
//! T threads, as N futures on one tokio runtime, and as N may coroutines. The clients are the
//! shared crate's own blocking, tokio and green upstream clients, the ones the servers use, so
//! that the client side reads as side by side as the servers do. Every result has its bound:
//! N × d one after another, ⌈N / T⌉ × d from T threads, d when everything overlaps.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use shared::UpstreamUrl;

use super::procfs::MemorySampler;
use super::row::Spread;

/// How the N requests are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "model", content = "threads")]
pub enum Model {
    /// One keep-alive connection, blocking, one request after another.
    Sequential,
    /// T OS threads, each with its own keep-alive connection, taking the next request.
    Threads(u32),
    /// All N requests as futures joined on one tokio runtime, one pooled hyper-util client.
    TokioGather,
    /// N may coroutines on the cooperative client.
    MayGreen,
}

impl Model {
    pub fn name(self) -> String {
        match self {
            Model::Sequential => "sequential".into(),
            Model::Threads(t) => format!("threads-{t}"),
            Model::TokioGather => "tokio-gather".into(),
            Model::MayGreen => "may-green".into(),
        }
    }

    /// The least wall time the model can take for `n` requests of `delay`.
    pub fn bound(self, n: u32, delay: Duration) -> Duration {
        match self {
            Model::Sequential => delay * n,
            Model::Threads(t) => delay * n.div_ceil(t.max(1)),
            Model::TokioGather | Model::MayGreen => delay,
        }
    }
}

/// What `bench client` measures.
#[derive(Clone, Debug, Serialize)]
pub struct ClientPlan {
    pub requests: u32,
    pub delay_ms: u32,
    pub models: Vec<Model>,
    pub rounds: u32,
}

/// One model's result: the median round's wall time, and the spread.
#[derive(Clone, Debug, Serialize)]
pub struct ClientRow {
    pub model: String,
    pub requests: u32,
    pub delay_ms: u32,
    /// Wall time for the N requests: the median of the rounds, and their min and max.
    pub wall_s: f64,
    pub wall_s_min: f64,
    pub wall_s_max: f64,
    pub requests_per_sec: f64,
    /// The model's least wall time (N × d, ⌈N / T⌉ × d, or d).
    pub bound_s: f64,
    /// bound / wall time (1 is the model at its best).
    pub efficiency: f64,
    /// Requests that did not get a 200 from nginx, over every round.
    pub errors: u64,
    /// The most client connections nginx held at once while the model ran (stub_status).
    pub peak_connections: i64,
    /// This process's peak resident memory and threads while the model ran.
    pub rss_peak_mib: f64,
    pub threads_peak: u64,
}

/// One run of one model: its wall time and errors.
struct Run {
    wall: Duration,
    errors: u64,
}

fn sequential(url: &UpstreamUrl, n: u32, delay_ms: u32) -> Run {
    let client = shared::blocking::Upstream::new(url);
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
                let client = shared::blocking::Upstream::new(url);
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
    let client = Arc::new(shared::tokio_stack::Upstream::for_url(url).map_err(anyhow::Error::msg)?);
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
    let client = Arc::new(shared::green::upstream::Upstream::new(url));
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
pub fn run(upstream: SocketAddr, plan: &ClientPlan) -> Result<Vec<ClientRow>> {
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
        let (rss_peak_mib, threads_peak) = memory.finish();
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

/// Parses `--threads 10,20`.
pub fn models(threads: &[u32]) -> Result<Vec<Model>> {
    if threads.contains(&0) {
        bail!("--threads: a thread count is at least 1");
    }
    let mut models = vec![Model::Sequential];
    models.extend(threads.iter().map(|&t| Model::Threads(t)));
    models.extend([Model::TokioGather, Model::MayGreen]);
    Ok(models)
}

/// The table of `bench client`, as markdown.
pub fn table(rows: &[ClientRow]) -> String {
    let mut out = String::from(
        "| model | wall s (min–max) | req/s | bound s | efficiency | errors | peak connections | RSS MiB | threads |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rows {
        out += &format!(
            "| {} | {:.3} ({:.3}–{:.3}) | {:.0} | {:.3} | {:.2} | {} | {} | {:.1} | {} |\n",
            r.model,
            r.wall_s,
            r.wall_s_min,
            r.wall_s_max,
            r.requests_per_sec,
            r.bound_s,
            r.efficiency,
            r.errors,
            r.peak_connections,
            r.rss_peak_mib,
            r.threads_peak
        );
    }
    out
}

/// results.json, results.csv, report.md and wall.svg into `dir`.
pub fn write_all(dir: &Path, plan: &ClientPlan, rows: &[ClientRow]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::json!({
        "suite": "rust-web-perf",
        "command": "client",
        "plan": plan,
        "machine": super::report::Machine::read(),
        "results": rows,
    });
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    let mut csv = String::from("model,requests,delay_ms,wall_s,wall_s_min,wall_s_max,requests_per_sec,bound_s,efficiency,errors,peak_connections,rss_peak_mib,threads_peak\n");
    for r in rows {
        csv += &format!(
            "{},{},{},{:.4},{:.4},{:.4},{:.1},{:.4},{:.3},{},{},{:.1},{}\n",
            r.model,
            r.requests,
            r.delay_ms,
            r.wall_s,
            r.wall_s_min,
            r.wall_s_max,
            r.requests_per_sec,
            r.bound_s,
            r.efficiency,
            r.errors,
            r.peak_connections,
            r.rss_peak_mib,
            r.threads_peak
        );
    }
    std::fs::write(dir.join("results.csv"), csv)?;
    let report = format!(
        "# rust-web-perf: `bench client`\n\n{} GETs of the upstream nginx page, each answered after {} ms, made by each client model ({} round(s); the median round, and min–max). The bound is the least wall time the model can take: N × d one after another, ⌈N / T⌉ × d from T threads, d when every request overlaps.\n\n{}\n![wall time](wall.svg)\n",
        plan.requests,
        plan.delay_ms,
        plan.rounds,
        table(rows)
    );
    std::fs::write(dir.join("report.md"), report)?;
    super::chart::client_wall(&dir.join("wall.svg"), plan, rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_model_has_its_bound() {
        let d = Duration::from_millis(100);
        assert_eq!(Model::Sequential.bound(20, d), Duration::from_secs(2));
        assert_eq!(Model::Threads(10).bound(20, d), Duration::from_millis(200));
        assert_eq!(Model::Threads(3).bound(20, d), Duration::from_millis(700));
        assert_eq!(Model::TokioGather.bound(20, d), d);
        assert_eq!(Model::MayGreen.bound(100, d), d);
        let names: Vec<String> = models(&[10, 20])
            .unwrap()
            .into_iter()
            .map(Model::name)
            .collect();
        assert_eq!(
            names,
            [
                "sequential",
                "threads-10",
                "threads-20",
                "tokio-gather",
                "may-green"
            ]
        );
        assert!(models(&[0]).is_err());
    }
}
