use super::*;

/// A short soak, as the `soak` preset runs a long one: every target at once for 80 s, each at
/// 300 req/s from its own paced client, with two PostgreSQL restarts and two upstream outages.
/// Every row is sampled every 5 s (memory, threads, descriptors, sessions), every target
/// recovers from every fault with no error outside their windows, the upstream outages do
/// fail the upstream requests (so the windows hold real errors), and the slopes are reported
/// but, over so short a soak, not judged.
#[test]
fn a_short_soak_samples_every_target_through_its_faults() {
    let _guard = lock();
    let dir = out_dir("soak");
    let output = Bench::new("run")
        .scenario("soak")
        .arg("--duration", "80s")
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    assert_format_kept(&dir.join("results.json"), "soak", "soak");
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    assert_eq!(rows.len(), built_targets().len());
    let versions = results["versions"].to_string();
    assert!(
        !versions.contains("oha"),
        "the soak's load is its own: {versions}"
    );
    for row in rows {
        let name = row["target"].as_str().unwrap();
        assert_eq!(row["status"], "ok", "{name}: {row}");
        assert_eq!(row["tool"], "paced", "{name}");
        let soak = &row["soak"];
        let samples = soak["samples"].as_array().unwrap();
        assert!(samples.len() >= 14, "{name}: {} samples", samples.len());
        for sample in samples {
            for field in ["rss_mib", "threads", "fds"] {
                assert!(sample[field].as_f64().unwrap() > 0.0, "{name}: {sample}");
            }
        }
        let ok: u64 = samples.iter().map(|s| s["ok"].as_u64().unwrap()).sum();
        assert!(ok > 300 * 60, "{name}: {ok} answers sampled");
        let faults = soak["faults"].as_array().unwrap();
        let kinds: Vec<&str> = faults.iter().map(|f| f["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["db-restart", "upstream-stop", "db-restart", "upstream-stop"],
            "{name}"
        );
        for fault in faults {
            assert!(fault["recovered_after_s"].is_number(), "{name}: {fault}");
            if fault["kind"] == "upstream-stop" {
                assert!(
                    fault["errors"]["non_2xx"].as_u64().unwrap() > 0,
                    "{name}: {fault}"
                );
            }
        }
        assert_eq!(
            soak["errors_outside_faults"]["non_2xx"], 0,
            "{name}: {soak}"
        );
        assert!(soak["rss_slope_mib_per_h"].is_number(), "{name}");
        let verdict = &soak["verdict"];
        assert_eq!(
            verdict["no_errors_outside_faults"], true,
            "{name}: {verdict}"
        );
        assert_eq!(verdict["recovered_every_fault"], true, "{name}: {verdict}");
        assert!(
            verdict["flat_memory"].is_null(),
            "{name}: too short to judge"
        );
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("held (too short to judge the slopes)"),
        "{report}"
    );
    let svg = std::fs::read_to_string(dir.join("soak.svg")).unwrap();
    for binary in built_targets() {
        assert!(svg.contains(binary.name()), "soak.svg names {binary}");
    }
    let held = format!("of {} targets held", built_targets().len());
    assert_report_html(&dir, &held);
}

/// What the soak cannot run with, and where it cannot run, is refused before anything starts.
#[test]
fn the_soak_refuses_what_would_change_it() {
    for (args, said) in [
        (
            &["run", "--scenario", "soak", "--tool", "wrk"][..],
            "--tool",
        ),
        (
            &["run", "--scenario", "soak", "--fault", "db-restart"][..],
            "--fault",
        ),
        (
            &["run", "--scenario", "quick", "--fault-every", "1m"][..],
            "--fault-every",
        ),
        (
            &["compare", "--scenario", "soak", "sync-pool", "tokio-axum"][..],
            "bench run --scenario soak",
        ),
    ] {
        let output = bench(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", show(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(said), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
    }
}
