//! A paced client: threads that each send `GET` at a fixed pace on their own keep-alive
//! connection (opened again after any error), never catching up on a missed slot, so that
//! the rate is the client's, whatever the server does (an open loop). Each thread hands every
//! answer to its [`Recorder`]: the fault probe keeps each event, a soak tallies them per
//! second and per minute.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client;
use crate::model::fault::{ProbeEvent, ProbeOutcome};
use crate::observe::procfs;

/// What a paced thread does with each answer: `path` is the index of the path it asked for.
pub trait Recorder: Send + 'static {
    fn record(&mut self, path: usize, event: ProbeEvent);
}

/// Every event, in the order the thread made them.
impl Recorder for Vec<ProbeEvent> {
    fn record(&mut self, _path: usize, event: ProbeEvent) {
        self.push(event);
    }
}

/// How a paced client loads: `rate` requests per second in all over `connections` threads,
/// each request waiting at most `timeout` for its answer; the threads go round `paths` (so
/// `["/a", "/a", "/a", "/b"]` sends a quarter of the requests to `/b`).
#[derive(Clone, Debug)]
pub struct Pace {
    pub rate: u32,
    pub connections: usize,
    pub timeout: Duration,
    pub paths: Vec<String>,
}

/// The running threads; [`Paced::finish`] stops them and gives their recorders back.
pub struct Paced<R> {
    stop: Arc<AtomicBool>,
    /// Each thread's recorder, and the CPU seconds it used.
    handles: Vec<JoinHandle<(R, f64)>>,
}

impl<R: Recorder> Paced<R> {
    /// Starts the threads; times in the events are from `t0`, and the threads' first requests
    /// are spread over the first interval from it.
    pub fn start(addr: SocketAddr, pace: &Pace, t0: Instant, recorder: impl Fn() -> R) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let connections = pace.connections.max(1) as u32;
        let interval = Duration::from_secs(1) * connections / pace.rate.max(1);
        let handles = (0..connections)
            .map(|i| {
                let stop = stop.clone();
                let thread = Thread {
                    addr,
                    paths: pace.paths.clone(),
                    first_path: i as usize,
                    timeout: pace.timeout,
                    t0,
                    first: t0 + interval * i / connections,
                    interval,
                };
                let recorder = recorder();
                std::thread::spawn(move || thread.run(recorder, &stop))
            })
            .collect();
        Paced { stop, handles }
    }

    /// Stops the threads; their recorders, and the CPU seconds they used (the client's own
    /// cost, beside the load tool's).
    pub fn finish(self) -> (Vec<R>, f64) {
        self.stop.store(true, Ordering::SeqCst);
        let mut recorders = Vec::new();
        let mut cpu_s = 0.0;
        for handle in self.handles {
            if let Ok((recorder, cpu)) = handle.join() {
                recorders.push(recorder);
                cpu_s += cpu;
            }
        }
        (recorders, cpu_s)
    }
}

/// One paced thread.
struct Thread {
    addr: SocketAddr,
    paths: Vec<String>,
    first_path: usize,
    timeout: Duration,
    t0: Instant,
    first: Instant,
    interval: Duration,
}

impl Thread {
    fn run<R: Recorder>(self, mut recorder: R, stop: &AtomicBool) -> (R, f64) {
        let cpu_at_start = procfs::thread_cpu_seconds();
        let mut conn: Option<client::Conn> = None;
        let mut slot = 0u32;
        let mut sent = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let due = self.first + self.interval * slot;
            let now = Instant::now();
            if now < due {
                std::thread::sleep((due - now).min(Duration::from_millis(50)));
                continue;
            }
            // A slot missed while a request hung is skipped, not made up.
            let since_first = now.duration_since(self.first).as_secs_f64();
            slot = (since_first / self.interval.as_secs_f64()) as u32 + 1;
            let path = (self.first_path + sent) % self.paths.len().max(1);
            sent += 1;
            let started = Instant::now();
            let outcome = self.once(self.paths.get(path).map_or("/", |p| p), &mut conn);
            recorder.record(
                path,
                ProbeEvent {
                    start_ms: started.duration_since(self.t0).as_secs_f64() * 1000.0,
                    latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                    outcome,
                },
            );
        }
        (recorder, procfs::thread_cpu_seconds() - cpu_at_start)
    }

    fn once(&self, path: &str, conn: &mut Option<client::Conn>) -> ProbeOutcome {
        if conn.is_none() {
            match client::Conn::open(self.addr) {
                Ok(opened) => {
                    let _ = opened.set_read_timeout(self.timeout);
                    *conn = Some(opened);
                }
                Err(_) => return ProbeOutcome::Connect,
            }
        }
        let Some(open) = conn.as_mut() else {
            return ProbeOutcome::Connect;
        };
        match open.get(path) {
            Ok(response) => {
                if !response.reusable {
                    *conn = None;
                }
                if (200..300).contains(&response.status) {
                    ProbeOutcome::Ok
                } else {
                    ProbeOutcome::Status(response.status)
                }
            }
            Err(e) => {
                *conn = None;
                let timed_out = e.chain().any(|cause| {
                    cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                        matches!(
                            io.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        )
                    })
                });
                if timed_out {
                    ProbeOutcome::Timeout
                } else {
                    ProbeOutcome::Io
                }
            }
        }
    }
}
