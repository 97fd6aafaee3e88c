use super::*;

#[test]
fn limits_rows_measure_pgbench_and_nginx_alone() {
    let _guard = lock();
    let dir = out_dir("limits");
    let output = Bench::new("run")
        .scenario("limits")
        .arg("--connections", "8")
        .arg("--duration", "2s")
        .arg("--warmup", "0")
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let pgbench = &rows[0];
    assert_eq!(pgbench["target"], "pgbench");
    assert_eq!(pgbench["tool"], "pgbench");
    assert!(pgbench["requests_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(
        pgbench["db_sessions_peak"], 8,
        "pgbench holds one session per client"
    );
    // nginx alone with each load tool: each tool's ceiling here, and what it cost.
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let versions = results["versions"].to_string();
    for (nginx, tool) in rows[1..].iter().zip(["wrk", "oha", "ab", "hey"]) {
        assert_eq!(nginx["target"], format!("nginx-static {tool} c=8"));
        assert_eq!(nginx["tool"], tool);
        assert_eq!(nginx["status"], "ok", "{nginx}");
        assert!(nginx["requests_per_sec"].as_f64().unwrap() > 0.0);
        assert!(nginx["nginx_cpu_ms_per_request"].as_f64().unwrap() > 0.0);
        assert!(
            nginx["tool_cpu_ms_per_request"].as_f64().unwrap() > 0.0,
            "{tool}"
        );
        assert!(nginx["tool_cpu_share"].as_f64().unwrap() > 0.0, "{tool}");
        assert_eq!(nginx["of_tool_ceiling"], 1.0, "{tool}: its own ceiling");
        assert!(
            versions.contains(&format!("\"{tool}\"")),
            "{tool}: {versions}"
        );
        assert!(
            report.contains(&format!("{tool} reaches ")),
            "report.md lacks {tool}'s ceiling:\n{report}"
        );
    }
}

/// The leaderboard: each tokio target pooled and pipelined beside pgbench at each client
/// count, one group per count, every row measured against pgbench. Pipelined holds one DB
/// session per worker thread whatever the clients; the pool at most its 16.
#[test]
fn the_leaderboard_sets_pool_and_pipelined_beside_pgbench() {
    let _guard = lock();
    let dir = out_dir("leaderboard");
    let output = Bench::new("run")
        .scenario("leaderboard")
        .targets("tokio-hyper")
        .short("1s")
        .no_verify()
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("vs pgbench"));
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        12,
        "3 client counts × (pool, pipelined, pgbench, nginx alone)"
    );
    let workers = std::thread::available_parallelism().unwrap().get() as i64;
    for c in [16, 64, 256] {
        let group = format!("c={c}");
        let row = |label: &str| {
            rows.iter()
                .find(|r| r["target"] == format!("{label} {group}"))
                .unwrap_or_else(|| panic!("no row {label} {group}"))
        };
        let (pool, pipelined, pgbench) = (
            row("tokio-hyper pool"),
            row("tokio-hyper pipelined"),
            row("pgbench"),
        );
        for r in [pool, pipelined, pgbench] {
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["group"], group.as_str());
            assert_eq!(r["config"]["connections"], c);
            assert_eq!(r["config"]["delay_ms"], 0);
        }
        // The baseline's ratios, unless pgbench itself was client-bound (its two threads on
        // two busy cores often are): then the group has none, and says why.
        if pgbench["client_bound"] == true {
            assert!(pgbench["client_bound_reason"].is_string(), "{pgbench}");
            assert!(pgbench["relative"].is_null() && pool["relative"].is_null());
        } else {
            assert_eq!(pgbench["relative"].as_f64(), Some(1.0));
            assert!(pool["relative"].as_f64().unwrap() > 0.0);
        }
        assert_eq!(
            pgbench["db_sessions_peak"], c,
            "one session per pgbench client"
        );
        // wrk against nginx alone at the same connections: the ceiling of the targets' rows.
        let nginx = rows
            .iter()
            .find(|r| r["target"] == format!("nginx-static wrk c={c}"))
            .unwrap_or_else(|| panic!("no ceiling row at {group}"));
        let ceiling = nginx["requests_per_sec"].as_f64().unwrap();
        assert_eq!(pool["tool_ceiling_rps"].as_f64(), Some(ceiling));
        assert!(pool["of_tool_ceiling"].as_f64().unwrap() > 0.0);
        assert_eq!(pipelined["config"]["db_mode"], "pipelined");
        assert_eq!(pool["config"]["db_mode"], "pool");
        let flags = pipelined["flags"].to_string();
        assert!(flags.contains("--db-mode pipelined"), "{flags}");
        let sessions = pipelined["db_sessions_peak"].as_i64().unwrap();
        assert!(
            (1..=workers).contains(&sessions),
            "pipelined at {group}: {sessions} sessions, one per worker ({workers}) at most"
        );
        let sessions = pool["db_sessions_peak"].as_i64().unwrap();
        assert!((1..=16).contains(&sessions), "pool at {group}: {sessions}");
    }
}

/// Real-time busy loops, one on each CPU the load tool gets with `--pin` (all but CPU 0),
/// for at most `limit`: the tool gets only what the kernel's real-time throttling leaves
/// (5% of each second). They stop when dropped.
struct Starver {
    stop: std::sync::Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Starver {
    fn start(limit: Duration) -> Starver {
        use std::sync::atomic::Ordering;
        let runtime = std::fs::read_to_string("/proc/sys/kernel/sched_rt_runtime_us").unwrap();
        assert_ne!(
            runtime.trim(),
            "-1",
            "real-time throttling is off: a busy loop would take its CPUs whole"
        );
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let cpus = std::thread::available_parallelism().unwrap().get();
        let threads = (1..cpus)
            .map(|cpu| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    // SAFETY: plain data for the kernel to read, about this thread only.
                    unsafe {
                        let mut set: libc::cpu_set_t = std::mem::zeroed();
                        libc::CPU_SET(cpu, &mut set);
                        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                        let param = libc::sched_param { sched_priority: 1 };
                        assert_eq!(
                            libc::sched_setscheduler(0, libc::SCHED_FIFO, &param),
                            0,
                            "SCHED_FIFO needs root"
                        );
                    }
                    let deadline = std::time::Instant::now() + limit;
                    let mut spins = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        spins = spins.wrapping_add(1);
                        if spins.is_multiple_of(1 << 20) && std::time::Instant::now() > deadline {
                            break;
                        }
                    }
                })
            })
            .collect();
        Starver { stop, threads }
    }
}

impl Drop for Starver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Is the client the limit? The same light load (16 connections at a 20 ms delay, 400
/// req/s) twice with the load tool on its own CPUs (`--pin`): alone, it is far from its
/// cores; then with a real-time busy loop on each of them, starved, and its row says
/// `client_bound` with why, and leaves `relative` out.
#[test]
fn a_starved_load_tool_marks_its_row_client_bound() {
    let _guard = lock();
    if std::thread::available_parallelism().unwrap().get() < 2 {
        eprintln!("skipped: --pin needs a CPU for the target and one for the load tool");
        return;
    }
    let run = |name: &str| {
        let dir = out_dir(name);
        let output = Bench::new("run")
            .scenario("quick")
            .targets("tokio-axum")
            .arg("--baseline", "tokio-axum")
            .flag("--pin")
            .arg("--delay-ms", "20")
            .arg("--connections", "16")
            .arg("--duration", "3s")
            .arg("--warmup", "0")
            .no_verify()
            .out(&dir)
            .output();
        assert!(output.status.success(), "{}", show(&output));
        let results = read_json(&dir.join("results.json"));
        (results["results"][0].clone(), dir)
    };
    let (alone, _) = run("client-alone");
    assert_eq!(alone["status"], "ok", "{alone}");
    assert_eq!(
        alone["client_bound"], false,
        "{}",
        alone["client_bound_reason"]
    );
    assert_eq!(alone["relative"], 1.0);
    let starver = Starver::start(Duration::from_secs(60));
    let (starved, dir) = run("client-starved");
    drop(starver);
    assert_eq!(starved["status"], "ok", "{starved}");
    assert_eq!(starved["client_bound"], true, "{starved}");
    let why = starved["client_bound_reason"].as_str().unwrap();
    assert!(why.contains("waiting for a CPU"), "{why}");
    assert!(
        starved["relative"].is_null(),
        "a client-bound row has no ratio"
    );
    let busy =
        starved["tool_cpu_share"].as_f64().unwrap() + starved["tool_wait_share"].as_f64().unwrap();
    assert!(busy >= 0.8, "{busy}");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("client-bound"), "{report}");
    let chart = std::fs::read_to_string(dir.join("throughput.svg")).unwrap();
    assert!(chart.contains("tokio-axum (client-bound)"));
}

/// `--path` loads any endpoint of a target, and `--ceiling` sets nginx alone beside it with
/// the same tool and connections: the row says what share of the tool's ceiling it reached.
#[test]
fn any_endpoint_from_the_command_line_with_the_tools_ceiling_beside_it() {
    let _guard = lock();
    let dir = out_dir("path-json");
    let output = Bench::new("run")
        .scenario("quick")
        .targets("tokio-axum")
        .arg("--path", "/json")
        .flag("--ceiling")
        .arg("--duration", "2s")
        .arg("--warmup", "0")
        .no_verify()
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["target"].as_str().unwrap()).collect();
    assert_eq!(names, ["tokio-axum", "nginx-static wrk c=8"]);
    let (target, nginx) = (&rows[0], &rows[1]);
    assert_eq!(target["config"]["path"], "/json");
    assert_eq!(target["status"], "ok", "{target}");
    assert!(
        target["db_sessions_peak"].is_null(),
        "/json never reads the database"
    );
    let ceiling = nginx["requests_per_sec"].as_f64().unwrap();
    assert_eq!(target["tool_ceiling_rps"].as_f64(), Some(ceiling));
    let share = target["of_tool_ceiling"].as_f64().unwrap();
    assert!((share - target["requests_per_sec"].as_f64().unwrap() / ceiling).abs() < 1e-9);
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("wrk reaches "), "{report}");
    assert!(report.contains("% of wrk's"), "{report}");
    // A path no target serves is refused before anything starts.
    let output = Bench::new("run")
        .scenario("quick")
        .arg("--path", "/nope")
        .output();
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("use /test, /json or /health"), "{stderr}");
}
