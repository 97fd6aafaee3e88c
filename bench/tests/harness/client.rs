use super::*;

/// `bench client` with N = 20 and d = 100 ms proves each client model by its bound: one
/// after another takes N × d, ten threads about ⌈N / 10⌉ × d, and the models that overlap
/// every request about d.
#[test]
fn bench_client_proves_each_model_by_its_bound() {
    let _guard = lock();
    let dir = out_dir("client");
    let output = Bench::new("client")
        .arg("--requests", "20")
        .arg("--delay-ms", "100")
        .arg("--threads", "10")
        .out(&dir)
        .output();
    assert!(output.status.success(), "{}", show(&output));
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    let wall = |model: &str| -> f64 {
        let row = rows
            .iter()
            .find(|r| r["model"] == model)
            .unwrap_or_else(|| panic!("no row {model}"));
        assert_eq!(row["errors"], 0, "{row}");
        row["wall_s"].as_f64().unwrap()
    };
    let (sequential, threads, gather, green) = (
        wall("sequential"),
        wall("threads-10"),
        wall("tokio-gather"),
        wall("may-green"),
    );
    assert!(
        sequential >= 2.0,
        "sequential took {sequential} s, under 20 × 100 ms"
    );
    assert!(gather < 0.5, "tokio-gather took {gather} s");
    assert!(green < 0.5, "may-green took {green} s");
    assert!(
        (0.2..2.0).contains(&threads),
        "threads-10 took {threads} s: not between its bound (0.2 s) and sequential"
    );
    let peak = |model: &str| {
        rows.iter().find(|r| r["model"] == model).unwrap()["peak_connections"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(peak("sequential"), 1, "one keep-alive connection");
    assert!(
        peak("tokio-gather") > 10,
        "the gather overlapped on many connections"
    );
    parse_svg(&dir.join("wall.svg"));
    assert!(std::fs::read_to_string(dir.join("report.md"))
        .unwrap()
        .contains("| threads-10 |"));
    assert_report_html(&dir, " GETs of ");
}
