use super::*;

fn jsonl_rows(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .expect("results.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect()
}

/// A 2 × 2 sweep of two targets with 1 s points: every row carries its point's knob values,
/// rows are in results.jsonl as they finish, and the heatmap of the flip is drawn.
#[test]
fn a_two_by_two_sweep_runs_every_target_at_every_point_and_draws_the_heatmap() {
    let _guard = lock();
    let dir = out_dir("sweep-2x2");
    let output = Bench::new("sweep")
        .scenario("quick")
        .targets("sync-pool,tokio-hyper")
        .arg("--vary", "delay-ms=0,5")
        .arg("--vary", "connections=4,8")
        .short("1s")
        .no_verify()
        .arg("--seed", "7")
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let rows = jsonl_rows(&dir);
    assert_eq!(rows.len(), 8, "2 points × 2 points × 2 targets");
    for row in &rows {
        assert_eq!(row["status"], "ok", "{row}");
        let point = &row["point"];
        let (delay, connections) = (
            point["delay-ms"].as_u64().unwrap(),
            point["connections"].as_u64().unwrap(),
        );
        assert!(
            [0, 5].contains(&delay) && [4, 8].contains(&connections),
            "{point}"
        );
        assert_eq!(row["config"]["delay_ms"].as_u64().unwrap(), delay);
        assert_eq!(row["config"]["connections"].as_u64().unwrap(), connections);
    }
    assert_format_kept(&dir.join("results.json"), "sweep", "sweep");
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["seed"], 7);
    assert_eq!(results["results"].as_array().unwrap().len(), 8);
    assert_report_html(&dir, "Sweeping <code>quick</code> over 4 points");
    let heatmap = parse_svg(&dir.join("heatmap-tokio-hyper-vs-sync-pool.svg"));
    assert!(
        heatmap.contains("tokio-hyper / sync-pool"),
        "the heatmap names its pair"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("### delay-ms=5 connections=8"), "{report}");
}

/// An interrupted sweep keeps its rows, and --resume measures only the points not there.
#[test]
fn resume_skips_the_points_already_measured_and_one_knob_draws_lines() {
    let _guard = lock();
    let dir = out_dir("sweep-resume");
    let args = |extra: &[&str]| {
        let mut all = vec![
            "sweep",
            "--scenario",
            "quick",
            "--targets",
            "sync-thread,may-green",
            "--vary",
            "pool-size=2,4",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--no-verify",
        ];
        all.extend_from_slice(extra);
        bench(&all)
    };
    let output = args(&["--out", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", show(&output));
    let full = jsonl_rows(&dir);
    assert_eq!(full.len(), 4);
    // As if interrupted after the first point: keep its two rows only.
    let first_point = &full[0]["point"];
    let kept: Vec<&Value> = full.iter().filter(|r| &r["point"] == first_point).collect();
    assert_eq!(kept.len(), 2);
    let text: String = kept.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.join("results.jsonl"), text).unwrap();

    let output = args(&["--resume", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", show(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("2 rows were already there"),
        "{}",
        show(&output)
    );
    let resumed = jsonl_rows(&dir);
    assert_eq!(resumed.len(), 4, "two kept, two measured");
    assert_eq!(resumed[0], *kept[0], "the kept rows are not measured again");
    assert_eq!(resumed[1], *kept[1]);
    assert!(resumed[2..].iter().all(|r| &r["point"] != first_point));
    let chart = parse_svg(&dir.join("throughput.svg"));
    assert!(chart.contains("pool-size"), "the line chart names its knob");
}

/// A rate far above what the machine can carry gives saturated rows, and no capacity is
/// claimed at or above it; a low rate within the objective is the capacity.
#[test]
fn a_rate_beyond_the_machine_is_saturated_and_caps_the_capacity() {
    let _guard = lock();
    let dir = out_dir("sweep-rate");
    let output = Bench::new("sweep")
        .scenario("quick")
        .targets("tokio-axum")
        .arg("--vary", "rate=50,1000000")
        .arg("--delay-ms", "0")
        .short("2s")
        .no_verify()
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let rows = jsonl_rows(&dir);
    assert_eq!(rows.len(), 2);
    let at = |rate: u64| rows.iter().find(|r| r["requested_rate"] == rate).unwrap();
    assert_eq!(at(1_000_000)["saturated"], true, "{}", at(1_000_000));
    assert_eq!(at(50)["saturated"], false, "{}", at(50));
    assert_eq!(at(50)["loop"], "open");
    let results = read_json(&dir.join("results.json"));
    let capacity = &results["capacity"][0];
    assert_eq!(capacity["target"], "tokio-axum");
    assert_eq!(capacity["capacity_rps"], 50, "{capacity}");
    parse_svg(&dir.join("rate.svg"));
}

/// A sweep over `db-mode` pipelines only the tokio targets: the others have a row at `pool`
/// alone.
#[test]
fn a_db_mode_sweep_pipelines_only_the_tokio_targets() {
    let _guard = lock();
    let dir = out_dir("sweep-db-mode");
    let output = Bench::new("sweep")
        .scenario("quick")
        .targets("sync-pool,tokio-axum")
        .arg("--vary", "db-mode=pool,pipelined")
        .short("1s")
        .no_verify()
        .arg("--seed", "3")
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let rows = jsonl_rows(&dir);
    let mut seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["point"]["db-mode"], r["config"]["db_mode"]);
            (
                r["target"].as_str().unwrap().to_string(),
                r["point"]["db-mode"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let expected = [
        ("sync-pool", "pool"),
        ("tokio-axum", "pipelined"),
        ("tokio-axum", "pool"),
    ]
    .map(|(t, m)| (t.to_string(), m.to_string()));
    assert_eq!(seen, expected);
    let pipelined = rows
        .iter()
        .find(|r| r["point"]["db-mode"] == "pipelined")
        .unwrap();
    // quick runs the async targets with 2 workers: 2 pipelined connections at most.
    assert!(
        pipelined["db_sessions_peak"].as_i64().unwrap() <= 2,
        "{pipelined}"
    );
}
