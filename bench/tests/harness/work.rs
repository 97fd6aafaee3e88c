//! `work=N` in the harness: the CPU bound, the offload series beside its target, the new
//! heatmaps, and a server that skips or shortens the work refused by the check.

use super::*;
use std::time::Instant;

/// cpu-map's plane, small: work 0 and 3000 units × delay 0 and 10 ms at c=100 for sync-pool
/// and tokio-axum, which is measured again with `--offload blocking`. Rows with work are bound
/// by the CPU where it is lower than Little's law, the offload series carries its flag, each
/// async series gets its heatmap against sync-pool, and the report gives a unit's cost and
/// the tails of the CPU-bound rows.
#[test]
fn a_cpu_map_bounds_by_the_cpu_measures_the_offload_beside_and_draws_each_heatmap() {
    let _guard = lock();
    let dir = out_dir("cpu-map");
    let output = Bench::new("sweep")
        .scenario("cpu-map")
        .targets("sync-pool,tokio-axum")
        .arg("--vary", "work=0,3000")
        .arg("--vary", "delay-ms=0,10")
        .short("1s")
        .no_verify()
        .arg("--seed", "5")
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("one unit of work (SHA-256 of 1 KiB; work=N asks for N) costs"),
        "{stderr}"
    );
    let results = read_json(&dir.join("results.json"));
    let us = results["machine"]["work_us_per_unit"].as_f64().unwrap();
    assert!(us > 0.0 && us < 100.0, "{us} µs per unit");
    let rows = results["results"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        12,
        "4 points × sync-pool, tokio-axum and its offload"
    );
    for row in rows {
        let name = row["target"].as_str().unwrap();
        assert_eq!(row["status"], "ok", "{name}: {row}");
        let work = row["config"]["work"].as_u64().unwrap();
        let delay = row["config"]["delay_ms"].as_u64().unwrap();
        let flags: Vec<&str> = row["flags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        assert_eq!(
            flags.contains(&"--offload blocking"),
            name == "tokio-axum offload",
            "{name}: {flags:?}"
        );
        assert_eq!(flags.contains(&"--work 3000"), work == 3000, "{flags:?}");
        let bound_by = row["bound_by"].as_str();
        match (work, delay) {
            (0, 0) => assert_eq!(bound_by, None, "{name}: no delay, no work"),
            (0, _) => assert_eq!(bound_by, Some("waiting"), "{name}"),
            // 3000 units of work on two CPUs: about 2.25 ms each, 900 req/s, under
            // Little's law's 1900 (sync-pool) or 10,000 at 10 ms.
            _ => {
                assert_eq!(bound_by, Some("cpu"), "{name}: {row}");
                let cpus = std::thread::available_parallelism().unwrap().get() as f64;
                let expected = cpus.min(2.0) / (3000.0 * us / 1e6);
                let bound = row["bound_rps"].as_f64().unwrap();
                assert!(
                    (bound - expected).abs() < 1e-6 * expected,
                    "{bound} vs {expected}"
                );
            }
        }
    }
    for pair in ["tokio-axum-vs-sync-pool", "tokio-axum-offload-vs-sync-pool"] {
        let svg = parse_svg(&dir.join(format!("heatmap-{pair}.svg")));
        assert!(svg.contains("work") && svg.contains("delay-ms"), "{pair}");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("## Where the CPU is the bound: the tails")
            && report.contains("| tokio-axum offload | work=3000 delay-ms=0 |")
            && report.contains("µs on one thread"),
        "{report}"
    );
    // report.html shows every heatmap (a figure per SVG), the offload's among them.
    assert_report_html(&dir, "Sweeping <code>cpu-map</code> over 4 points");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("tokio-axum offload / sync-pool throughput"));
    assert_format_kept(&dir.join("results.json"), "sweep", "sweep");
}

/// A server that drops the `work` parameter, or asks for one unit less, in front of a real
/// target: the check recomputes the result and fails it, saying what was wrong. The real
/// target alone passes.
#[test]
fn a_server_that_skips_or_shortens_the_work_is_refused() {
    let _guard = lock();
    let stack = Stack::start(&StackOptions::from_env()).expect("a stack");
    let target = stack
        .launch(shared::Binary::SyncThread, &[])
        .expect("sync-thread");
    let check = bench::contract::CHECKS
        .iter()
        .find(|c| c.name == "work_is_done_and_its_result_right")
        .unwrap();
    let outcome = |addr: std::net::SocketAddr| {
        bench::contract::CheckOutcome {
            check: check.name,
            kind: check.kind,
            result: (check.run)(&bench::contract::Server {
                binary: None,
                name: "rewriter".into(),
                direct: addr,
                proxied: None,
                database_url: stack.database_url().to_string(),
                upstream: None,
                rows: bench::contract::TABLE_ROWS,
                app: None,
            }),
        }
        .outcome()
    };
    assert!(matches!(
        outcome(target.addr),
        bench::contract::Outcome::Pass
    ));
    for (rewrite, expected) in [
        (
            Rewrite::Drop,
            "no \"work\" field at the end of the body (work=1 asks for one)",
        ),
        (Rewrite::OneLess, "work=1000: the result is"),
    ] {
        let proxy = Rewriter::start(target.addr, rewrite);
        match outcome(proxy.addr) {
            bench::contract::Outcome::Fail(why) => {
                assert!(why.contains(expected), "{rewrite:?}: {why}")
            }
            other => panic!("{rewrite:?}: {other:?}"),
        }
    }
}

/// What the rewriting server does to the `work` parameter.
#[derive(Clone, Copy, Debug)]
enum Rewrite {
    /// Leaves it out: the target answers without work.
    Drop,
    /// Asks for one unit less where it asks for more than one: a result, but the wrong one.
    OneLess,
}

/// An HTTP server that forwards each request to `to` with its `work` parameter rewritten,
/// one connection per request, and relays the answer.
struct Rewriter {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Rewriter {
    fn start(to: std::net::SocketAddr, rewrite: Rewrite) -> Rewriter {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            // Bounded: ten minutes at most, or until dropped.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stopped.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((client, _)) => {
                        std::thread::spawn(move || relay(client, to, rewrite));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Rewriter { addr, stop }
    }
}

impl Drop for Rewriter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn rewritten(target: &str, rewrite: Rewrite) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .filter_map(|pair| match (pair.strip_prefix("work="), rewrite) {
            (Some(_), Rewrite::Drop) => None,
            (Some(n), Rewrite::OneLess) => {
                let n: u32 = n.parse().unwrap_or(1);
                Some(format!("work={}", if n > 1 { n - 1 } else { n }))
            }
            (None, _) => Some(pair.to_string()),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn relay(mut client: std::net::TcpStream, to: std::net::SocketAddr, rewrite: Rewrite) {
    use std::io::{Read, Write};
    client.set_nonblocking(false).ok();
    client.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split(' ').nth(1).unwrap_or("/");
    let Ok(mut upstream) = std::net::TcpStream::connect(to) else {
        return;
    };
    upstream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n",
        rewritten(target, rewrite)
    );
    let mut answer = Vec::new();
    if upstream.write_all(request.as_bytes()).is_ok() && upstream.read_to_end(&mut answer).is_ok() {
        let _ = client.write_all(&answer);
    }
}
