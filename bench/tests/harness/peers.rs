//! The articles' Python stacks beside the references, on the real stack: a peer started by
//! `bench run --peers`, and a Python server a user started by hand (`--external`) with its own
//! workers and its own upstream page. Both are real gunicorn processes from
//! `peers/python/.venv` (made by `peers/python/install`, which `scripts/test` runs). Without
//! that environment (no network to PyPI), each test says skipped and why; under
//! `scripts/test` the reason is in `BENCH_PEERS_SKIPPED`, and anywhere else a missing
//! environment fails the test.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::{out_dir, read_json, show, Bench};
use super::lock;
use bench::stack::{peers, Stack, StackOptions};
use serde_json::Value;

fn rows(dir: &Path) -> (Value, Vec<Value>) {
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap().clone();
    (results, rows)
}

fn row<'a>(rows: &'a [Value], target: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["label"] == target)
        .unwrap_or_else(|| panic!("no row {target} in {rows:?}"))
}

/// `peers/python/`, when its environment is installed; `None` (the test is skipped, and
/// says why) when scripts/test could not install it.
fn python_peers() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../peers/python");
    match peers::ready(&dir) {
        Ok(_) => Some(dir),
        Err(why) => match std::env::var("BENCH_PEERS_SKIPPED") {
            Ok(reason) => {
                eprintln!("skipped: the Python peers are not installed: {reason}");
                None
            }
            Err(_) => panic!("{why}"),
        },
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// `bench run --peers flask-sync`: gunicorn's sync workers started with the preset's sync
/// workers (quick: 4) and measured as fully as the reference beside it.
#[test]
fn a_python_peer_is_measured_as_fully_as_a_target() {
    let Some(_) = python_peers() else { return };
    let _guard = lock();
    let dir = out_dir("peer-flask-sync");
    let output = Bench::new("run")
        .scenario("quick")
        .targets("sync-pool")
        .arg("--peers", "flask-sync")
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let (results, rows) = rows(&dir);
    let names: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(names, ["sync-pool", "flask-sync [peer]"]);
    let peer = row(&rows, "flask-sync [peer]");
    assert_eq!(peer["status"], "ok", "{peer}");
    // The process tree: the master and its 4 workers, each a process with one thread.
    assert_eq!(peer["processes_peak"], 5, "{peer}");
    assert_eq!(peer["threads_peak"], 5, "{peer}");
    assert!(peer["cpu_ms_per_request"].as_f64().unwrap() > 0.0, "{peer}");
    assert!(peer["rss_peak_mib"].as_f64().unwrap() > 10.0, "{peer}");
    // Its sessions, by its application_name: one per worker, all busy at 8 clients.
    assert_eq!(peer["db_sessions_peak"], 4, "{peer}");
    // Its bound from its model: 4 workers / 5 ms.
    assert_eq!(peer["external"]["model"], "pool:4", "{peer}");
    assert_eq!(peer["bound_rps"].as_f64(), Some(800.0), "{peer}");
    let efficiency = peer["efficiency"].as_f64().unwrap();
    assert!(efficiency > 0.2 && efficiency <= 1.05, "{peer}");
    let model = peer["model"].as_str().unwrap();
    assert!(
        model.contains("gunicorn's sync workers") && model.contains("cf. sync-pool"),
        "{model}"
    );
    // Measured, with the rule gunicorn breaks listed: Flask answers HEAD on a GET route.
    assert_eq!(peer["external"]["verified"], true, "{peer}");
    let breaks = strings(&peer["external"]["breaks"]);
    assert!(
        breaks
            .iter()
            .any(|b| b.starts_with("other_methods_are_405_with_allow: HEAD")),
        "{breaks:?}"
    );
    assert!(peer["external"]["unobserved"].is_null(), "{peer}");
    let flags = strings(&peer["flags"]);
    assert!(flags.iter().any(|f| f.contains("--workers 4")), "{flags:?}");
    let versions = results["versions"].as_array().unwrap();
    assert!(
        versions
            .iter()
            .any(|v| v[0] == "gunicorn (peers)" && v[1] == "27.0.1"),
        "{versions:?}"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("flask-sync [peer]") && report.contains("conformance rule"),
        "{report}"
    );
    // The peer and its workers are gone with the run.
    let gone = Command::new("pgrep")
        .args(["-f", "flask_sync:app"])
        .output()
        .unwrap();
    assert!(gone.stdout.is_empty(), "left running: {gone:?}");
}

/// An upstream page of its own (1000 bytes, after the delay asked): what a user's server
/// fetches when it cannot know the harness's upstream before the run. Answers every
/// connection's requests until stopped.
struct OwnUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl OwnUpstream {
    fn start() -> OwnUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        std::thread::spawn(move || serve_page(stream));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        OwnUpstream { addr, stop }
    }
}

impl Drop for OwnUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Answers the requests of one keep-alive connection, each after its `delay_ms`.
fn serve_page(stream: std::net::TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let page = "x".repeat(1000);
    for _ in 0..100_000 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        let delay: u64 = line
            .split("delay_ms=")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(delay));
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
            page.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A gunicorn the user started: its master's pid is all the harness is told.
struct Gunicorn(std::process::Child);

impl Drop for Gunicorn {
    fn drop(&mut self) {
        // SAFETY: a signal to our own child; gunicorn stops its workers on SIGTERM.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// A Flask app on 3 gunicorn workers, started by hand and fetching its own upstream page:
/// `--external` measures it, with its whole process tree from `--external-pid`, the page
/// accepted because its length is consistent, the rules it breaks listed, and no bound
/// until its model is stated.
#[test]
fn a_users_python_server_is_measured_with_its_workers_and_its_own_upstream() {
    let Some(dir) = python_peers() else { return };
    let _guard = lock();
    let stack = Stack::start(&StackOptions::from_env()).expect("a stack for the server");
    let upstream = OwnUpstream::start();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Gunicorn(
        Command::new(dir.join(".venv/bin/gunicorn"))
            .args(["flask_sync:app", "--chdir", dir.to_str().unwrap()])
            .args(["--workers", "3", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--no-control-socket")
            .env("DATABASE_URL", stack.database_url())
            .env("UPSTREAM_URL", format!("http://{}/page", upstream.addr))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gunicorn starts"),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while bench::client::get(addr, "/health").is_err() {
        assert!(
            Instant::now() < deadline,
            "gunicorn did not answer on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = out_dir("external-python");
    let external = format!("mine=http://{addr}/test");
    let pid = format!("mine={}", server.0.id());
    let output = Bench::new("run")
        .scenario("quick")
        .targets("sync-pool")
        .arg("--backend", "upstream")
        .arg("--database-url", stack.database_url())
        .arg("--external", &external)
        .arg("--external-pid", &pid)
        .out(&out)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let (_, rows) = rows(&out);
    let mine = row(&rows, "mine [external]");
    // Its own page (1000 bytes, not the harness's) did not refuse it.
    assert_eq!(mine["status"], "ok", "{mine}");
    assert_eq!(mine["external"]["verified"], true, "{mine}");
    // The master and its 3 workers.
    assert_eq!(mine["processes_peak"], 4, "{mine}");
    assert!(mine["cpu_ms_per_request"].as_f64().unwrap() > 0.0, "{mine}");
    // Nobody said what bounds it.
    assert!(
        mine["bound_rps"].is_null() && mine["efficiency"].is_null(),
        "{mine}"
    );
    assert!(
        !strings(&mine["external"]["breaks"]).is_empty(),
        "Flask's HEAD is listed: {mine}"
    );
}
