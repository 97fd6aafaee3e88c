//! bench's own load client (`--tool bench`, run as `bench load`): a closed loop of one thread
//! per connection, each drawing every request's class from the mix by weight and recording
//! its latency in that class. It is the tool that can load a mix (`--mix`): wrk, oha, ab and
//! hey give one spectrum for all requests, and a fast class's tail cannot be read from it.
//!
//! It runs as a child process, like the other tools, so that the harness accounts its CPU the
//! same way (`wait4`), and prints one JSON `Measurement` with a `classes` entry per class.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::client;
use crate::model::mix::{Class, Mix};
use crate::model::settings::Settings;
use crate::model::tool::{spectrum_of_sorted, ClassMeasurement, Errors, Measurement, TIMEOUT_S};

/// What `bench load` runs.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    pub addr: SocketAddr,
    /// The path the classes' queries are appended to (`/test`).
    pub path: String,
    pub mix: Mix,
    pub connections: u32,
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
    let defaults = [
        ("delay_ms", settings.delay_ms.to_string()),
        ("backend", settings.backend.name().to_string()),
        ("work", settings.work.to_string()),
        ("fanout", settings.fanout.to_string()),
    ];
    Mix {
        classes: mix
            .classes
            .into_iter()
            .map(|mut class| {
                for (key, value) in &defaults {
                    let default =
                        (*key == "work" && value == "0") || (*key == "fanout" && value == "1");
                    if !default && !class.query.iter().any(|(k, _)| k == key) {
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
}

/// Runs the load and measures it: the overall figures, and each class's.
pub fn run(plan: &LoadPlan) -> Measurement {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(u64::from(plan.seconds));
    let handles: Vec<_> = (0..plan.connections.max(1))
        .map(|i| {
            let plan = plan.clone();
            let stop = stop.clone();
            std::thread::spawn(move || connection(&plan, i, deadline, &stop))
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
    let mut overall = Tally::default();
    let mut classes = Vec::new();
    for (class, tally) in plan.mix.classes.iter().zip(tallies) {
        overall.latencies_ms.extend(&tally.latencies_ms);
        add_errors(&mut overall.errors, &tally.errors);
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
    let sorted = &tally.latencies_ms;
    let (latency_spectrum, mean_ms) = spectrum_of_sorted(sorted);
    let at = |p: f64| crate::model::tool::percentile_of_sorted(sorted, p);
    Measurement {
        ok_responses: sorted.len() as u64,
        seconds,
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        p999_ms: at(99.9),
        max_ms: sorted.last().copied(),
        mean_ms,
        latency_spectrum,
        errors: tally.errors.with_total(),
        ..Measurement::default()
    }
}

/// One connection's closed loop until `deadline`: a class drawn by weight, its request, its
/// answer checked (a 2xx, a body as long as the class's first) and timed.
fn connection(plan: &LoadPlan, index: u32, deadline: Instant, stop: &AtomicBool) -> Vec<Tally> {
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
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let mut draw = rng.u32(0..total);
        let class = plan
            .mix
            .classes
            .iter()
            .position(|c| {
                let hit = draw < c.weight;
                draw = draw.saturating_sub(c.weight);
                hit
            })
            .unwrap_or(0);
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
        let sent = Instant::now();
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
        let took_ms = sent.elapsed().as_secs_f64() * 1000.0;
        if !(200..300).contains(&response.status) {
            tally.errors.non_2xx += 1;
        } else if *tally.body_len.get_or_insert(response.body.len()) != response.body.len() {
            // A garbled answer: counted apart, not timed.
            tally.errors.other += 1;
        } else {
            tally.latencies_ms.push(took_ms);
        }
        let closes = response
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if plan.keepalive && !closes {
            conn = Some(open);
        }
    }
    tallies
}
