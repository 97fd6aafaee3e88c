use super::*;

/// Nothing of the run of bench `pid` is left: no folder `target/stack/run-PID-*`, and no
/// process whose command line names it.
fn assert_stack_left_clean(pid: u32) {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_bench"));
    let stack_root = exe.parent().unwrap().parent().unwrap().join("stack");
    let prefix = format!("run-{pid}-");
    let folders: Vec<String> = std::fs::read_dir(&stack_root)
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|name| name.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    assert!(folders.is_empty(), "left behind: {folders:?}");
    let mut survivors = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&prefix) {
            survivors.push(cmdline);
        }
    }
    assert!(survivors.is_empty(), "still running: {survivors:?}");
}

/// Checks the faults of every row of a run: each carried out, recovered within the load, the
/// target alive; and a timeline chart that parses.
fn assert_faults_measured(dir: &Path, kinds: &[&str]) {
    assert_format_kept(&dir.join("results.json"), "run", "run-base");
    assert_report_html(dir, "At <code>quick</code>");
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["status"], "ok", "{row}");
        let faults = row["faults"].as_array().expect("faults in the row");
        let seen: Vec<&str> = faults.iter().map(|f| f["kind"].as_str().unwrap()).collect();
        assert_eq!(seen, kinds);
        for fault in faults {
            let (started, back) = (
                fault["started_s"].as_f64().unwrap(),
                fault["back_s"].as_f64().unwrap(),
            );
            assert!(0.5 < started && started < back, "{fault}");
            assert!(
                fault["probe_2xx_per_s_before"].as_f64().unwrap() > 10.0,
                "{fault}"
            );
            assert!(
                fault["first_2xx_after_back_ms"].as_f64().is_some(),
                "{fault}"
            );
            assert!(
                fault["recovered_90_after_back_ms"].as_f64().is_some(),
                "{fault}"
            );
            assert!(fault["worst_latency_ms"].as_f64().unwrap() > 0.0, "{fault}");
            assert_eq!(fault["target_survived"], true);
        }
        let timeline = &row["timeline"];
        let ok: u64 = timeline["ok"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert!(ok > 100, "the probe got {ok} 2xx");
        let sum = |key: &str| -> u64 {
            timeline[key]
                .as_array()
                .unwrap_or_else(|| panic!("timeline.{key}"))
                .iter()
                .map(|n| n.as_u64().unwrap())
                .sum()
        };
        let errors = sum("errors");
        assert!(errors > 0, "the probe saw no error during the fault");
        assert_eq!(
            errors,
            sum("non_2xx") + sum("connect") + sum("timeout") + sum("broken"),
            "errors by kind do not add up"
        );
    }
    let chart = parse_svg(&dir.join("timeline.svg"));
    assert!(chart.contains("probe 2xx"), "{chart}");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("![timeline](timeline.svg)"));
}

/// A database restart and a stop under two targets: every row has its recovery figures, the
/// targets live through it (a dead one would be a failed row), and the stack is left clean.
#[test]
fn database_faults_are_measured_and_survived_and_the_stack_is_left_clean() {
    let _guard = lock();
    let dir = out_dir("faults-db");
    let (output, pid) = Bench::new("run")
        .scenario("quick")
        .targets("tokio-hyper,sync-thread")
        .arg("--fault", "db-restart@1.5")
        .arg("--fault", "db-stop@3.5:1")
        .short("6s")
        .no_verify()
        .out(&dir)
        .output_with_pid();
    assert!(output.status.success(), "{}", show(&output));
    assert_faults_measured(&dir, &["db-restart", "db-stop"]);
    assert_stack_left_clean(pid);
}

/// The upstream nginx stopped, and pgbouncer's pool drained, under two targets.
#[test]
fn upstream_and_pool_faults_are_measured_and_the_stack_is_left_clean() {
    let _guard = lock();
    for (name, extra) in [
        (
            "faults-upstream",
            &["--backend", "upstream", "--fault", "upstream-stop@1.5:1"][..],
        ),
        (
            "faults-pool",
            &["--pgbouncer", "--fault", "pool-drain@1.5:1"][..],
        ),
    ] {
        let dir = out_dir(name);
        let mut args = vec![
            "run",
            "--scenario",
            "quick",
            "--targets",
            "may-green,sync-pool",
            "--duration",
            "4s",
            "--warmup",
            "0s",
            "--no-verify",
            "--out",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (output, pid) = bench_with_pid(&args);
        assert!(output.status.success(), "{name}: {}", show(&output));
        let kind = extra.last().unwrap().split('@').next().unwrap();
        assert_faults_measured(&dir, &[kind]);
        assert_stack_left_clean(pid);
    }
}

/// A fault the run cannot have is refused before anything starts, with one line naming it.
#[test]
fn a_fault_the_run_cannot_have_is_refused_before_the_load() {
    for (args, named) in [
        (&["--fault", "pool-drain"][..], "--pgbouncer"),
        (&["--fault", "upstream-stop"][..], "--backend upstream"),
        (&["--fault", "db-stop@2:30"][..], "before the measured load"),
        (&["--fault", "db-crash"][..], "db-crash"),
    ] {
        let mut all = vec!["run", "--scenario", "quick"];
        all.extend_from_slice(args);
        let output = bench(&all);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", show(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(!stderr.contains("starting the stack"), "{args:?}: {stderr}");
    }
}
