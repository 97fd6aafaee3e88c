use super::*;

/// The slow-clients preset at small sizes: every target without and with slow clients, and
/// the slow clients complete requests of their own.
#[test]
fn slow_clients_run_beside_the_load_and_complete_requests() {
    let _guard = lock();
    let dir = out_dir("slow-clients");
    let output = Bench::new("run")
        .scenario("slow-clients")
        .targets("tokio-axum,sync-thread")
        .arg("--slow-clients", "8")
        .arg("--connections", "8")
        .arg("--duration", "4s")
        .arg("--warmup", "1s")
        .no_verify()
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    assert_format_kept(&dir.join("results.json"), "run", "run-base");
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "2 targets × (without, with)");
    for row in rows {
        assert_eq!(row["status"], "ok", "{row}");
        let slow = &row["slow_clients"];
        if row["group"] == "no slow clients" {
            assert!(slow.is_null(), "{row}");
        } else {
            assert_eq!(row["group"], "8 slow clients");
            assert_eq!(slow["clients"], 8);
            assert!(slow["completed"].as_u64().unwrap() >= 8, "{slow}");
            assert_eq!(slow["errors"], 0, "{slow}");
        }
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("Slow clients"), "{report}");
}

/// The connections preset at 200 idle connections: every target reports what a connection
/// costs it, and a fresh connection's /health answers while they are held.
#[test]
fn the_connections_preset_reports_a_per_connection_figure_for_every_target() {
    let _guard = lock();
    let dir = out_dir("connections");
    let output = Bench::new("run")
        .scenario("connections")
        .arg("--idle-connections", "200")
        .short("2s")
        .no_verify()
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    assert_format_kept(&dir.join("results.json"), "run", "run-base");
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    assert_eq!(rows.len(), built_targets().len());
    for row in rows {
        assert_eq!(row["status"], "ok", "{row}");
        let idle = &row["idle"];
        assert_eq!(idle["answered"], 200, "{row}");
        let per = idle["kib_per_connection"]
            .as_f64()
            .expect("a per-connection figure");
        // may keeps 1,000 coroutines (stack included) made at start-up: the first 1,000
        // connections cost it no new memory. sync-pool closes each connection. Their RSS may
        // then even give back a page or so meanwhile (-0.02 KiB per connection seen: 4 KiB
        // over 200): at most 20 KiB in all.
        let free = ["may-green", "sync-pool"].contains(&row["binary"].as_str().unwrap());
        let least = if free { -0.1 } else { 0.01 };
        assert!(per >= least && per < 1024.0, "{}: {per} KiB", row["target"]);
        assert_eq!(idle["health_failed"], 0, "{row}");
        assert!(idle["load_alone_rps"].as_f64().unwrap() > 0.0);
        // Where it goes: stacks and heap from smaps; a thread per connection touches at
        // least a page of its own stack, a task on tokio none.
        let stack = idle["kib_stack"].as_f64().expect("a stack part");
        let heap = idle["kib_heap"].as_f64().expect("a heap part");
        match row["binary"].as_str().unwrap() {
            "sync-thread" => assert!(stack >= 4.0, "{row}"),
            "may-green" => {}
            "sync-pool" => assert!(idle["kib_accepted"].is_null(), "closes: {row}"),
            _ => {
                assert!(stack < 1.0, "{row}");
                assert!(heap > 0.0, "{row}");
            }
        }
        if row["binary"] != "sync-pool" {
            assert!(idle["kib_accepted"].as_f64().is_some(), "{row}");
        }
        let flags = row["flags"].to_string();
        assert!(flags.contains("--keep-alive-timeout-ms 0"), "{flags}");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("KiB per connection"), "{report}");
}
