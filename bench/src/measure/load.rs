//! bench's own load client (`--tool bench`, run as `bench load`): one thread per connection,
//! each drawing every request's class from the mix by weight and recording its latency in
//! that class; a closed loop, or an open loop at a rate (`--rate`: the requests are due at
//! fixed instants, each taken by the first thread free, so that a slow answer on one
//! connection never delays a request due meanwhile while another connection is idle; and a
//! request's latency counts from when it was due, so that one sent late is not flattered). It is the tool that can load a mix (`--mix`): wrk, oha, ab and
//! hey give one spectrum for all requests, and a fast class's tail cannot be read from it.
//!
//! It runs as a child process, like the other tools, so that the harness accounts its CPU the
//! same way (`wait4`), and prints one JSON `Measurement` with a `classes` entry per class.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::client;
use crate::model::mix::{Class, Mix};
use crate::model::settings::Settings;
use crate::model::tool::{ClassMeasurement, Errors, Measurement, TIMEOUT_S};

/// What `bench load` runs.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    pub addr: SocketAddr,
    /// The path the classes' queries are appended to (`/test`).
    pub path: String,
    pub mix: Mix,
    pub connections: u32,
    /// Requests per second in all (open loop); `None`: a closed loop.
    pub rate: Option<u32>,
    pub seconds: u32,
    pub keepalive: bool,
    pub seed: u64,
}

/// The mix a load runs: the settings' (or one class of every request alike), each class's
/// query completed with the settings' delay, backend and work where it does not set them, so
/// that a server started without the harness's flags gets the same requests.
pub fn mix_of(settings: &Settings) -> Mix {
    let mix = settings.mix.clone().unwrap_or_else(|| Mix {
        classes: vec![Class {
            name: "all".into(),
            weight: 1,
            query: Vec::new(),
        }],
    });
    // Work and fanout only where the run asks for them: 0 and 1 are every server's default.
    let mut defaults = vec![
        ("delay_ms", settings.delay_ms.to_string()),
        ("backend", settings.backend.name().to_string()),
    ];
    if settings.work > 0 {
        defaults.push(("work", settings.work.to_string()));
    }
    if settings.fanout > 1 {
        defaults.push(("fanout", settings.fanout.to_string()));
    }
    Mix {
        classes: mix
            .classes
            .into_iter()
            .map(|mut class| {
                for (key, value) in &defaults {
                    if !class.query.iter().any(|(k, _)| k == key) {
                        class.query.push((key.to_string(), value.clone()));
                    }
                }
                class
            })
            .collect(),
    }
}

/// `bench load`'s arguments for a load of `settings` on `url` for `seconds`.
pub fn args(command: &mut Command, url: &str, settings: &Settings, seconds: u32) {
    let base = url.split('?').next().unwrap_or(url);
    command.args([
        "load",
        "--url",
        base,
        "--mix",
        &mix_of(settings).to_string(),
        "--connections",
        &settings.connections.max(1).to_string(),
        "--seconds",
        &seconds.to_string(),
    ]);
    if !settings.client_keepalive {
        command.arg("--no-keepalive");
    }
    if let Some(rate) = settings.rate {
        command.args(["--rate", &rate.to_string()]);
    }
}

/// Parses what `bench load` printed: its JSON `Measurement`.
pub fn parse(stdout: &str) -> Result<Measurement> {
    let start = stdout.find('{').context("bench load printed no JSON")?;
    serde_json::from_str(&stdout[start..]).context("bench load's output is not a measurement")
}

/// One class's answers on one thread.
#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    errors: Errors,
    /// The length of the class's first 2xx body: every other must have it.
    body_len: Option<usize>,
    /// Open loop: requests due before the end and not sent.
    unsent: u64,
}

/// An open loop's schedule: request `i` is due at `t0 + i × interval`, taken by the first
/// thread free.
struct Slots {
    t0: Instant,
    next: AtomicU64,
    interval: Option<Duration>,
}

impl Slots {
    /// The next request's due instant (open loop), or now (closed loop).
    fn take(&self) -> Instant {
        match self.interval {
            Some(interval) => {
                let i = self.next.fetch_add(1, Ordering::SeqCst);
                self.t0 + interval.mul_f64(i as f64)
            }
            None => Instant::now(),
        }
    }
}

impl Tally {
    /// The requests this tally saw: timed, failed or garbled.
    fn attempts(&self) -> u64 {
        self.latencies_ms.len() as u64 + self.errors.clone().with_total().total
    }

    /// An answer that took `took_ms`: timed if it is a 2xx as long as the class's first;
    /// a garbled one (another length) is counted apart, not timed.
    fn record(&mut self, response: &client::Response, took_ms: f64) {
        if !(200..300).contains(&response.status) {
            self.errors.non_2xx += 1;
        } else if *self.body_len.get_or_insert(response.body.len()) != response.body.len() {
            self.errors.other += 1;
        } else {
            self.latencies_ms.push(took_ms);
        }
    }
}

/// The class a draw in 0..total weight falls in.
fn draw(mix: &Mix, mut at: u32) -> usize {
    mix.classes
        .iter()
        .position(|c| {
            let hit = at < c.weight;
            at = at.saturating_sub(c.weight);
            hit
        })
        .unwrap_or(0)
}

/// Runs the load and measures it: the overall figures, and each class's.
pub fn run(plan: &LoadPlan) -> Measurement {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(u64::from(plan.seconds));
    let slots = Arc::new(Slots {
        t0: started,
        next: AtomicU64::new(0),
        interval: plan.rate.map(|rate| Duration::from_secs(1) / rate.max(1)),
    });
    let handles: Vec<_> = (0..plan.connections.max(1))
        .map(|i| {
            let plan = plan.clone();
            let slots = slots.clone();
            std::thread::spawn(move || connection(&plan, i, deadline, &slots))
        })
        .collect();
    let mut tallies: Vec<Tally> = plan.mix.classes.iter().map(|_| Tally::default()).collect();
    for handle in handles {
        let Ok(thread) = handle.join() else { continue };
        for (all, one) in tallies.iter_mut().zip(thread) {
            all.latencies_ms.extend(one.latencies_ms);
            add_errors(&mut all.errors, &one.errors);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // Open loop: the requests due before the end that no thread was free to send.
    if let Some(interval) = slots.interval {
        let due = (deadline - started).as_nanos() / interval.as_nanos().max(1);
        let sent: u64 = tallies.iter().map(Tally::attempts).sum();
        if let Some(first) = tallies.first_mut() {
            first.unsent = (due as u64).saturating_sub(sent);
        }
    }
    let mut overall = Tally::default();
    let mut classes = Vec::new();
    for (class, tally) in plan.mix.classes.iter().zip(tallies) {
        overall.latencies_ms.extend(&tally.latencies_ms);
        add_errors(&mut overall.errors, &tally.errors);
        overall.unsent += tally.unsent;
        let measurement = measure(tally, seconds);
        classes.push(ClassMeasurement {
            name: class.name.clone(),
            weight: class.weight,
            query: class.query_string(),
            requests_per_sec: measurement.requests_per_sec(),
            measurement,
        });
    }
    Measurement {
        classes,
        ..measure(overall, seconds)
    }
}

fn add_errors(to: &mut Errors, from: &Errors) {
    to.connect += from.connect;
    to.read += from.read;
    to.write += from.write;
    to.timeout += from.timeout;
    to.non_2xx += from.non_2xx;
    to.other += from.other;
}

fn measure(mut tally: Tally, seconds: f64) -> Measurement {
    tally.latencies_ms.sort_by(f64::total_cmp);
    Measurement {
        unsent: tally.unsent,
        ..Measurement::of_sorted(&tally.latencies_ms, tally.errors, seconds)
    }
}

/// One connection's loop until `deadline`: the next request due (or at once, in a closed
/// loop), a class drawn by weight, its request, its answer checked (a 2xx, a body as long as
/// the class's first) and timed.
fn connection(plan: &LoadPlan, index: u32, deadline: Instant, slots: &Slots) -> Vec<Tally> {
    let mut rng = fastrand::Rng::with_seed(plan.seed.wrapping_add(u64::from(index)));
    let total = plan.mix.total_weight().max(1);
    let targets: Vec<String> = plan
        .mix
        .classes
        .iter()
        .map(|c| match c.query_string().as_str() {
            "" => plan.path.clone(),
            query => format!("{}?{query}", plan.path),
        })
        .collect();
    let mut tallies: Vec<Tally> = plan.mix.classes.iter().map(|_| Tally::default()).collect();
    let mut conn: Option<client::Conn> = None;
    while Instant::now() < deadline {
        let due = slots.take();
        if due >= deadline {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let class = draw(&plan.mix, rng.u32(0..total));
        let tally = &mut tallies[class];
        let open = match conn.take() {
            Some(open) => Ok(open),
            None => client::Conn::open(plan.addr),
        };
        let mut open = match open {
            Ok(open) => open,
            Err(_) => {
                tally.errors.connect += 1;
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = open.set_read_timeout(Duration::from_secs(u64::from(TIMEOUT_S)));
        // Open loop: from when the request was due (it may be sent late, when every thread
        // was busy).
        let sent = if slots.interval.is_some() {
            due
        } else {
            Instant::now()
        };
        let response = match open.get(&targets[class]) {
            Ok(response) => response,
            Err(e) => {
                if e.to_string().contains("timed out") || e.to_string().contains("WouldBlock") {
                    tally.errors.timeout += 1;
                } else {
                    tally.errors.read += 1;
                }
                continue;
            }
        };
        tally.record(&response, sent.elapsed().as_secs_f64() * 1000.0);
        let closes = response
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if plan.keepalive && !closes {
            conn = Some(open);
        }
    }
    tallies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_fall_in_each_class_by_weight_and_queries_get_the_runs_defaults() {
        let mix = crate::model::mix::parse("fast:90:delay_ms=0,slow:10:delay_ms=200").unwrap();
        let counts = (0..100).fold([0; 2], |mut n, at| {
            n[draw(&mix, at)] += 1;
            n
        });
        assert_eq!(counts, [90, 10]);
        let settings = Settings {
            mix: Some(crate::model::mix::parse("a:1:,b:1:delay_ms=5&work=3").unwrap()),
            work: 7,
            ..crate::model::preset::find("grinberg").unwrap().settings
        };
        let completed = mix_of(&settings);
        assert_eq!(
            completed.to_string(),
            "a:1:delay_ms=20&backend=db&work=7,b:1:delay_ms=5&work=3&backend=db"
        );
        // Without a mix: one class of every request alike.
        let plain = mix_of(&crate::model::preset::find("grinberg").unwrap().settings);
        assert_eq!(plain.to_string(), "all:1:delay_ms=20&backend=db");
    }
}
