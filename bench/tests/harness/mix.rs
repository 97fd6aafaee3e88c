//! Mixed loads (`--mix`) on bench's own client, and the tools that cannot load one.

use super::*;

/// The mix preset, small: sync-pool and tokio-axum in an open loop at 100 req/s, each with 90%
/// fast requests and 10% at 200 ms, then with the fast class alone at its 90 req/s. Every row
/// has each class's figures, measured per request (the fast class never waits 200 ms in
/// tokio-axum, whose slow requests wait apart), the mixed bound is Little's law over the mean
/// wait, and report.html says what the slow class cost the fast one.
#[test]
fn a_two_class_mix_reports_each_class_and_what_the_slow_one_costs_the_fast() {
    let _guard = lock();
    let dir = out_dir("mix");
    let output = Bench::new("run")
        .scenario("mix")
        .targets("sync-pool,tokio-axum")
        .arg("--connections", "20")
        .arg("--workers", "4")
        .arg("--rate", "100")
        .short("2s")
        .no_verify()
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "2 targets × fast alone and mixed");
    for row in rows {
        let name = row["target"].as_str().unwrap();
        assert_eq!(row["status"], "ok", "{name}: {row}");
        assert_eq!(row["tool"], "bench", "{name}");
        let classes = row["classes"].as_array().expect("classes");
        let mixed = name.ends_with("mixed");
        assert_eq!(classes.len(), if mixed { 2 } else { 1 }, "{name}");
        let total: u64 = classes
            .iter()
            .map(|c| c["ok_responses"].as_u64().unwrap())
            .sum();
        assert_eq!(total, row["ok_responses"].as_u64().unwrap(), "{name}");
        for class in classes {
            assert_eq!(class["errors"]["total"], 0, "{name}: {class}");
            assert!(class["p50_ms"].as_f64().is_some(), "{name}: {class}");
        }
        if mixed {
            let (fast, slow) = (&classes[0], &classes[1]);
            assert_eq!(
                (fast["name"].as_str(), slow["name"].as_str()),
                (Some("fast"), Some("slow"))
            );
            // Each request's latency in its own class: no slow answer under its 200 ms.
            assert!(slow["p50_ms"].as_f64().unwrap() >= 200.0, "{name}: {slow}");
            let share =
                slow["ok_responses"].as_f64().unwrap() / row["ok_responses"].as_f64().unwrap();
            assert!(
                share < 0.5,
                "{name}: the slow class is {share} of the answers"
            );
            // Little's law over the mean wait: 0.9 × 0 + 0.1 × 200 = 20 ms, so 4 workers
            // allow 200 req/s, 20 connections 1000; the rate, 100, is lower still.
            let bound = row["bound_rps"].as_f64().unwrap();
            assert!((bound - 100.0).abs() < 1e-6, "{name}: bound {bound}");
        } else {
            assert_eq!(
                row["config"]["rate"], 90,
                "{name}: the fast class at its share"
            );
        }
    }
    // In tokio-axum the fast class passes the slow one: its P99 stays under the slow delay.
    let axum = rows
        .iter()
        .find(|r| r["target"] == "tokio-axum, mixed")
        .unwrap();
    assert!(
        axum["classes"][0]["p99_ms"].as_f64().unwrap() < 200.0,
        "{axum}"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("## Each class of the mix")
            && report.contains("### The `fast` class with the others, against alone"),
        "{report}"
    );
    assert_report_html(&dir, "multiplied the <code>fast</code> class&#39;s P99 by");
    assert_format_kept(&dir.join("results.json"), "run", "run-base");
}

/// Only bench's own client records each request's class: a mix with another tool is refused
/// in one line, and so is a mix no target would answer.
#[test]
fn a_mix_is_refused_with_a_tool_that_cannot_load_it_or_bad_classes() {
    for (args, says) in [
        (
            &["run", "--mix", "a:1:delay_ms=0", "--tool", "wrk"][..],
            "use --tool bench",
        ),
        (&["run", "--mix", "a:1:delay_ms=99999"][..], "--mix"),
        (&["run", "--mix", "a:0:"][..], "weight"),
        (
            &["run", "--scenario", "mix", "--tool", "oha"][..],
            "--tool bench",
        ),
    ] {
        let output = bench(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", show(&output));
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
