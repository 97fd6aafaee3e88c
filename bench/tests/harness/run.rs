use super::*;

/// The fields of a row, as docs/results.md lists them (its table's first column), sorted.
fn documented_row_fields() -> Vec<String> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results.md");
    let text = std::fs::read_to_string(&doc).expect("docs/results.md");
    let section = text
        .split("## Fields of a row")
        .nth(1)
        .expect("a section \"Fields of a row\"");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut fields: Vec<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .map(str::to_string)
        .collect();
    fields.sort();
    assert!(fields.len() > 20, "only {} fields documented", fields.len());
    fields
}

/// One row of the quick run: measured, within its bound and pool, its latencies from the
/// 5 ms delay up, its spectrum whole, and the client far from the limit.
fn assert_quick_row(row: &Value) {
    let name = row["target"].as_str().unwrap();
    assert_eq!(row["status"], "ok", "{name}: {row}");
    assert_eq!(row["loop"], "closed");
    let rps = row["requests_per_sec"].as_f64().unwrap();
    assert!(rps > 0.0, "{name}: no throughput");
    let bound = row["bound_rps"]
        .as_f64()
        .expect("a bound: the delay is 5 ms");
    let efficiency = row["efficiency"].as_f64().unwrap();
    assert!(
        efficiency > 0.0 && efficiency <= 1.1,
        "{name}: efficiency {efficiency} ({rps} of {bound})"
    );
    assert!((efficiency - rps / bound).abs() < 1e-9);
    let pool = row["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|f| {
            f.as_str()?
                .strip_prefix("--pool-size ")?
                .parse::<i64>()
                .ok()
        })
        .expect("the row names its pool size");
    let peak = row["db_sessions_peak"].as_i64().unwrap();
    assert!(
        (1..=pool).contains(&peak),
        "{name}: {peak} sessions, pool {pool}"
    );
    assert_eq!(row["errors"]["total"], 0, "{name}: {}", row["errors"]);
    assert!(row["rss_peak_mib"].as_f64().unwrap() > 0.5, "{name}");
    assert!(row["cpu_ms_per_request"].as_f64().unwrap() > 0.0, "{name}");
    assert!(
        row["postgres_cpu_ms_per_request"].as_f64().unwrap() > 0.0,
        "{name}"
    );
    assert!(
        row["nginx_cpu_ms_per_request"].as_f64().unwrap() > 0.0,
        "{name}"
    );
    let p50 = row["p50_ms"].as_f64().unwrap();
    let p999 = row["p999_ms"].as_f64().unwrap();
    let max = row["max_ms"].as_f64().unwrap();
    // Each request sleeps 5 ms in PostgreSQL: no response can be faster.
    assert!(
        p50 >= 5.0 && p50 <= p999 && p999 <= max,
        "{name}: {p50} {p999} {max}"
    );
    // What the client cost: wrk's CPU, its share of its cores, Little's law. Eight
    // connections at a 5 ms delay are far from what wrk can do: not client-bound.
    assert!(
        row["tool_cpu_ms_per_request"].as_f64().unwrap() > 0.0,
        "{name}"
    );
    let share = row["tool_cpu_share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 0.8, "{name}: tool share {share}");
    let implied = row["implied_concurrency"].as_f64().unwrap();
    assert!(
        (0.8 * 8.0..=8.8).contains(&implied),
        "{name}: implied {implied}"
    );
    assert_eq!(
        row["client_bound"], false,
        "{name}: {}",
        row["client_bound_reason"]
    );
    // The whole spectrum, from the fastest to the slowest, in order.
    let spectrum: Vec<(f64, f64)> = row["latency_spectrum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(spectrum.first().unwrap().0, 0.0, "{name}");
    assert_eq!(*spectrum.last().unwrap(), (100.0, max), "{name}");
    assert!(
        spectrum.windows(2).all(|w| w[0].1 <= w[1].1),
        "{name}: {spectrum:?}"
    );
    let mean = row["mean_ms"].as_f64().unwrap();
    assert!(mean >= 5.0 && mean <= max, "{name}: mean {mean}");
}

#[test]
fn quick_run_measures_every_target_within_its_bound_and_pool() {
    let _guard = lock();
    let dir = out_dir("quick");
    let output = Bench::new("run").scenario("quick").out(&dir).output();
    assert!(output.status.success(), "{}", show(&output));
    assert_format_kept(&dir.join("results.json"), "run", "run-base");

    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["scenario"], "quick");
    assert_eq!(results["machine"]["cpus"].as_u64().unwrap() as usize, {
        std::thread::available_parallelism().unwrap().get()
    });
    let versions = results["versions"].to_string();
    assert!(
        versions.contains("wrk") && versions.contains("PostgreSQL"),
        "{versions}"
    );
    let rows = results["results"].as_array().expect("a results array");
    // Every row has exactly the documented fields.
    let documented = documented_row_fields();
    for row in rows {
        let mut keys: Vec<String> = row.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys, documented,
            "a row's fields differ from docs/results.md"
        );
    }
    let names: Vec<&str> = rows.iter().map(|r| r["target"].as_str().unwrap()).collect();
    let expected: Vec<&str> = built_targets().iter().map(|b| b.name()).collect();
    assert_eq!(names, expected);

    for row in rows {
        assert_quick_row(row);
    }
    // sync-pool is the baseline: its own relative is 1, and 4 workers make its bound 800/s.
    if let Some(pool) = rows.iter().find(|r| r["target"] == "sync-pool") {
        assert_eq!(pool["relative"], 1.0);
        assert_eq!(pool["bound_rps"], 800.0);
        assert!(pool["db_sessions_peak"].as_i64().unwrap() <= 4);
    }

    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), rows.len() + 1);
    assert!(csv.starts_with("target,"));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for chart in ["throughput.svg", "latency.svg"] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        assert!(svg.starts_with("<svg"), "{chart}");
        for name in &names {
            assert!(svg.contains(name), "{chart} lacks {name}");
            assert!(
                report.contains(&format!("| {name} |")),
                "report.md lacks {name}"
            );
        }
    }
    // The terminal shows the same table.
    assert!(String::from_utf8_lossy(&output.stdout).contains("| target | req/s |"));
}

#[test]
fn a_target_that_dies_mid_run_is_a_failed_row_and_the_next_one_runs() {
    let _guard = lock();
    let stack = Stack::start(&StackOptions::from_env()).expect("the stack starts");
    let interrupted = AtomicBool::new(false);
    let tool = tools::locate(tools::ToolKind::Wrk).expect("wrk is installed");
    let work = out_dir("dies");
    let runner = Runner::new(&stack, tool, &work, &interrupted, None).unwrap();
    let settings = Settings {
        duration_s: 4,
        warmup_s: 0,
        ..preset::find("quick").unwrap().settings
    };
    let case = |binary: Binary| Case {
        label: binary.name().into(),
        subject: Subject::Target(binary),
        settings: settings.clone(),
        group: String::new(),
    };
    // Kill our tokio-hyper child a second into its load.
    let killer = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(1500));
        let me = std::process::id().to_string();
        let mut killed = 0;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let Some(rest) = stat.strip_prefix(&format!(
                "{} (tokio-hyper) ",
                entry.file_name().to_string_lossy()
            )) else {
                continue;
            };
            if rest.split_whitespace().nth(1) == Some(me.as_str()) {
                let pid: i32 = entry.file_name().to_string_lossy().parse().unwrap();
                // SAFETY: kill has no memory preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed += 1;
            }
        }
        killed
    });
    let dead = runner.measure(&case(Binary::TokioHyper)).unwrap();
    assert_eq!(killer.join().unwrap(), 1, "the target was found and killed");
    assert_eq!(dead.status, bench::model::row::Status::Failed, "{dead:?}");
    assert!(
        dead.failure.as_deref().unwrap_or("").contains("died"),
        "{:?}",
        dead.failure
    );
    let next = runner.measure(&case(Binary::TokioAxum)).unwrap();
    assert_eq!(next.status, bench::model::row::Status::Ok, "{next:?}");
    assert!(next.requests_per_sec > 0.0);
}

#[test]
fn pgbouncer_caps_the_sessions_and_passes_the_application_name() {
    let _guard = lock();
    let dir = out_dir("pgbouncer");
    let output = Bench::new("run")
        .scenario("quick")
        .targets("tokio-axum")
        .flag("--pgbouncer")
        .arg("--pool-size", "3")
        .arg("--duration", "2s")
        .no_verify()
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let results = read_json(&dir.join("results.json"));
    let row = &results["results"][0];
    assert_eq!(row["status"], "ok", "{row}");
    assert_eq!(row["config"]["pgbouncer"], true);
    assert_eq!(row["db_sessions_peak"], 3, "{row}");
    assert_eq!(row["errors"]["total"], 0);
}
