use super::*;

/// `bench compare tokio-axum sync-pool` on the quick preset: three rounds of 1 s, unchecked,
/// with `--fail-below FLOOR`, into `dir`.
fn quick_compare(dir: &Path, floor: &str) -> Output {
    Bench::new("compare")
        .positional("tokio-axum")
        .positional("sync-pool")
        .scenario("quick")
        .arg("--rounds", "3")
        .arg("--duration", "1s")
        .arg("--warmup", "0")
        .no_verify()
        .arg("--fail-below", floor)
        .out(dir)
        .output()
}

#[test]
fn compare_interleaves_rounds_and_reports_the_ratio_spread() {
    let _guard = lock();
    let dir = out_dir("compare");
    let output = quick_compare(&dir, "0.01");
    assert!(output.status.success(), "{}", show(&output));
    assert_format_kept(&dir.join("compare.json"), "compare", "compare");
    assert_report_html(&dir, "tokio-axum / sync-pool = ");
    let c = read_json(&dir.join("compare.json"));
    let order: Vec<&str> = c["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "tokio-axum",
            "sync-pool",
            "tokio-axum",
            "sync-pool",
            "tokio-axum",
            "sync-pool"
        ]
    );
    let rounds = c["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    let ratio = &c["ratio"];
    let (min, median, max) = (
        ratio["min"].as_f64().unwrap(),
        ratio["median"].as_f64().unwrap(),
        ratio["max"].as_f64().unwrap(),
    );
    assert!(0.0 < min && min <= median && median <= max, "{ratio}");
    for round in rounds {
        let r = round["a_rps"].as_f64().unwrap() / round["b_rps"].as_f64().unwrap();
        assert!((r - round["ratio"].as_f64().unwrap()).abs() < 1e-9);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("tokio-axum / sync-pool: median"),
        "{stdout}"
    );
    // tokio-axum's bound is twice sync-pool's (8 sessions against 4 workers): a ratio the
    // rounds' noise cannot explain, with its interval inside the rounds' range.
    let [low, high] = [0, 1].map(|i| c["ratio_ci95"][i].as_f64().unwrap());
    // The interval of a ratio of sums lies within the rounds' ratios (up to rounding).
    let within = |x: f64| min - 1e-9 <= x && x <= max + 1e-9;
    assert!(
        within(low) && low <= high && within(high),
        "{low}–{high} in {min}–{max}"
    );
    assert_eq!(c["distinguishable"], true, "{}", c["ratio_ci95"]);
    assert!(stdout.contains("distinguishable from 1.0"), "{stdout}");
}

/// `--fail-below`: a ratio beyond the noise below the floor exits with status 1 and one line
/// that says so; a bad floor is a usage error.
#[test]
fn compare_fails_below_a_floor_the_ratio_cannot_reach() {
    let _guard = lock();
    let dir = out_dir("compare-floor");
    let output = quick_compare(&dir, "100");
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("below --fail-below 100 beyond the noise"),
        "{stderr}"
    );
    let c = read_json(&dir.join("compare.json"));
    assert!(c["ratio_ci95"][1].as_f64().unwrap() < 100.0);
    let output = quick_compare(&dir, "0");
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a ratio above 0"));
}
