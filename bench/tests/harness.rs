//! The harness end to end: `bench run`, `bench compare` and the limits rows on the real stack
//! with the real load tools, and the faults a user will meet (a target dying mid-run, a name
//! that does not exist). The assertions are about the content of the results, not only that
//! files exist.
//!
//! The tests take a lock so that their loads never overlap.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

mod common;

use bench::measure::{tools, Runner};
use bench::model::case::{Case, Subject};
use bench::model::fault::ProbeOutcome;
use bench::model::preset;
use bench::model::settings::Settings;
use bench::stack::{Stack, StackOptions};
use common::{bench, bench_with_pid, out_dir, read_json, run_within, show};
use serde_json::Value;
use shared::Binary;

static ONE_LOAD_AT_A_TIME: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_LOAD_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The field paths of a JSON value (a list is `[]`), as the samples list them.
fn field_paths(value: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = format!("{prefix}{key}");
                field_paths(inner, &format!("{path}."), out);
                out.insert(path);
            }
        }
        Value::Array(items) => {
            for item in items {
                field_paths(item, &format!("{prefix}[]."), out);
            }
        }
        _ => {}
    }
}

/// A checked-in sample of field paths (bench/tests/samples/NAME.keys).
fn sample(name: &str) -> std::collections::BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/samples/{name}.keys"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The results file at `path` keeps the format of the samples written before the harness was
/// redesigned: every field it has is in `all` (none renamed or added unnoticed), and it has
/// every field of `base` (none lost).
fn assert_format_kept(path: &Path, all: &str, base: &str) {
    let mut paths = std::collections::BTreeSet::new();
    field_paths(&read_json(path), "", &mut paths);
    let unknown: Vec<String> = paths.difference(&sample(all)).cloned().collect();
    assert!(
        unknown.is_empty(),
        "{}: fields not in tests/samples/{all}.keys: {unknown:?}",
        path.display()
    );
    let lost: Vec<String> = sample(base).difference(&paths).cloned().collect();
    assert!(
        lost.is_empty(),
        "{}: fields of tests/samples/{base}.keys missing: {lost:?}",
        path.display()
    );
}

/// The folder's `report.html`: its verdict, a figure per SVG chart of the folder (each with
/// values on hover), a table, and the command. (bench/tests/report.rs loads one in a browser.)
fn assert_report_html(dir: &Path, verdict: &str) {
    let html = std::fs::read_to_string(dir.join("report.html"))
        .unwrap_or_else(|e| panic!("no report.html in {}: {e}", dir.display()));
    let said = html
        .split("<p class=\"verdict\">")
        .nth(1)
        .and_then(|v| v.split("</p>").next())
        .expect("a verdict");
    assert!(said.contains(verdict), "verdict {said:?} lacks {verdict:?}");
    let charts = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    assert!(charts > 0, "no chart in {}", dir.display());
    assert_eq!(
        html.matches("<figure").count(),
        charts,
        "a figure per chart"
    );
    assert!(html.matches("<title>").count() >= charts, "values on hover");
    assert!(html.contains("<table class=\"sortable\">") && html.contains("<h2>Reproduce</h2>"));
}

fn built_targets() -> Vec<Binary> {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_bench"));
    bench::stack::built_targets(exe.parent().unwrap())
}

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

#[test]
fn quick_run_measures_every_target_within_its_bound_and_pool() {
    let _guard = lock();
    let dir = out_dir("quick");
    let output = bench(&["run", "--scenario", "quick", "--out", dir.to_str().unwrap()]);
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

/// `bench compare tokio-axum sync-pool` on the quick preset: three rounds of 1 s, unchecked,
/// with `--fail-below FLOOR`, into `dir`.
fn quick_compare(dir: &Path, floor: &str) -> Output {
    bench(&[
        "compare",
        "tokio-axum",
        "sync-pool",
        "--scenario",
        "quick",
        "--rounds",
        "3",
        "--duration",
        "1s",
        "--warmup",
        "0",
        "--no-verify",
        "--fail-below",
        floor,
        "--out",
        dir.to_str().unwrap(),
    ])
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

#[test]
fn limits_rows_measure_pgbench_and_nginx_alone() {
    let _guard = lock();
    let dir = out_dir("limits");
    let output = bench(&[
        "run",
        "--scenario",
        "limits",
        "--connections",
        "8",
        "--duration",
        "2s",
        "--warmup",
        "0",
        "--out",
        dir.to_str().unwrap(),
    ]);
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

#[test]
fn pgbouncer_caps_the_sessions_and_passes_the_application_name() {
    let _guard = lock();
    let dir = out_dir("pgbouncer");
    let output = bench(&[
        "run",
        "--scenario",
        "quick",
        "--targets",
        "tokio-axum",
        "--pgbouncer",
        "--pool-size",
        "3",
        "--duration",
        "2s",
        "--no-verify",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", show(&output));
    let results = read_json(&dir.join("results.json"));
    let row = &results["results"][0];
    assert_eq!(row["status"], "ok", "{row}");
    assert_eq!(row["config"]["pgbouncer"], true);
    assert_eq!(row["db_sessions_peak"], 3, "{row}");
    assert_eq!(row["errors"]["total"], 0);
}

#[test]
fn unknown_names_are_refused_with_the_valid_ones() {
    let output = bench(&["run", "--scenario", "nope"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in preset::names() {
        assert!(stderr.contains(name), "{stderr}");
    }

    let output = bench(&["run", "--tool", "siege"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("wrk, oha, ab, hey"),
        "{stderr}"
    );

    let output = bench(&["run", "--targets", "flask"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("sync-pool"),
        "{stderr}"
    );

    let output = bench(&["run", "--rate", "100"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("--tool oha"),
        "{stderr}"
    );

    let output = bench(&["compare", "tokio-axum", "sync-pool", "--rounds", "2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("at least 3"),
        "{stderr}"
    );
}

#[test]
fn scenarios_lists_every_preset_with_its_source() {
    let output = bench(&["scenarios"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for s in preset::all() {
        assert!(
            stdout.contains(s.name) && stdout.contains(s.source),
            "{stdout}"
        );
    }
}

/// PostgreSQL restarted behind the stack's back (a new PID, as a DB restart in a fault test or
/// by hand gives) is still stopped when the stack goes, before its data folder is removed.
/// Servers get their ports from outside the kernel's ephemeral range, so client connections
/// cannot hold one: with 2,000 client connections open (their local ports drawn from that
/// range, as a load tool's are), the stack and a target start, and each port they listen on
/// (PostgreSQL, the upstream nginx, the target) is outside the range.
#[test]
fn the_stack_starts_among_thousands_of_open_client_connections() {
    const HELD: usize = 2000;
    let _guard = lock();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit on this process, with a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur > 3 * HELD as u64,
        "a descriptor limit of {}",
        limit.rlim_cur
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = std::thread::spawn(move || {
        (0..HELD)
            .map(|_| listener.accept().unwrap().0)
            .collect::<Vec<_>>()
    });
    let clients: Vec<std::net::TcpStream> = (0..HELD)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let accepted = acceptor.join().unwrap();
    let (low, high) = bench::stack::process::ephemeral_range();
    let ephemeral = |port: u16| (low..=high).contains(&port);
    assert!(
        clients
            .iter()
            .all(|c| ephemeral(c.local_addr().unwrap().port())),
        "client ports come from {low}-{high}"
    );
    let stack = Stack::start(&StackOptions::from_env()).expect("the stack starts");
    let target = stack
        .launch(Binary::TokioAxum, &[])
        .expect("a target starts");
    let mut ports = vec![stack.upstream_addr.port(), target.addr.port()];
    if stack.postgres.is_embedded() {
        ports.push(stack.postgres.port);
    }
    for port in ports {
        assert!(!ephemeral(port), "port {port} is in {low}-{high}");
    }
    let health = bench::client::get(target.addr, "/health").expect("/health answers");
    assert_eq!(health.status, 200);
    drop((clients, accepted));
}

#[test]
fn the_stack_stops_a_restarted_postgres_before_removing_its_folder() {
    use bench::stack::postgres::{postgres_bin_dir, postmaster_pid};
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;

    let _guard = lock();
    let stack = Stack::start(&StackOptions::from_env()).expect("the stack starts");
    if !stack.postgres.is_embedded() {
        eprintln!("skipped: the database is not ours to restart");
        return;
    }
    let dir = stack
        .postgres
        .data_dir()
        .expect("a data folder")
        .to_path_buf();
    let first = postmaster_pid(&dir).expect("a running postmaster");
    let owner = std::fs::metadata(&dir).expect("the data folder").uid();
    let group = std::fs::metadata(&dir).expect("the data folder").gid();
    let status = Command::new(postgres_bin_dir().unwrap().join("pg_ctl"))
        .args(["restart", "-m", "fast", "-w", "-t", "30", "-D"])
        .arg(&dir)
        .arg("-l")
        .arg(dir.join("restarted.log"))
        .uid(owner)
        .gid(group)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("pg_ctl runs");
    assert!(status.success(), "pg_ctl restart failed: {status}");
    let second = postmaster_pid(&dir).expect("the restarted postmaster");
    assert_ne!(first, second, "pg_ctl restart kept the PID");

    drop(stack);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while bench::stack::process::alive(second) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !bench::stack::process::alive(second),
        "the restarted PostgreSQL (pid {second}) outlived the stack"
    );
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

/// Parses an SVG as XML, as a browser would, and returns its text.
fn parse_svg(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let document = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    text
}

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
    let output = bench(&[
        "sweep",
        "--scenario",
        "quick",
        "--targets",
        "sync-pool,tokio-hyper",
        "--vary",
        "delay-ms=0,5",
        "--vary",
        "connections=4,8",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--no-verify",
        "--seed",
        "7",
        "--out",
        dir.to_str().unwrap(),
    ]);
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
    let output = bench(&[
        "sweep",
        "--scenario",
        "quick",
        "--targets",
        "tokio-axum",
        "--vary",
        "rate=50,1000000",
        "--delay-ms",
        "0",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--no-verify",
        "--out",
        dir.to_str().unwrap(),
    ]);
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

/// The leaderboard: each tokio target pooled and pipelined beside pgbench at each client
/// count, one group per count, every row measured against pgbench. Pipelined holds one DB
/// session per worker thread whatever the clients; the pool at most its 16.
#[test]
fn the_leaderboard_sets_pool_and_pipelined_beside_pgbench() {
    let _guard = lock();
    let dir = out_dir("leaderboard");
    let output = bench(&[
        "run",
        "--scenario",
        "leaderboard",
        "--targets",
        "tokio-hyper",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--no-verify",
        "--out",
        dir.to_str().unwrap(),
    ]);
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

/// A sweep over `db-mode` pipelines only the tokio targets: the others have a row at `pool`
/// alone.
#[test]
fn a_db_mode_sweep_pipelines_only_the_tokio_targets() {
    let _guard = lock();
    let dir = out_dir("sweep-db-mode");
    let output = bench(&[
        "sweep",
        "--scenario",
        "quick",
        "--targets",
        "sync-pool,tokio-axum",
        "--vary",
        "db-mode=pool,pipelined",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--no-verify",
        "--seed",
        "3",
        "--out",
        dir.to_str().unwrap(),
    ]);
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
    let (output, pid) = bench_with_pid(&[
        "run",
        "--scenario",
        "quick",
        "--targets",
        "tokio-hyper,sync-thread",
        "--fault",
        "db-restart@1.5",
        "--fault",
        "db-stop@3.5:1",
        "--duration",
        "6s",
        "--warmup",
        "0s",
        "--no-verify",
        "--out",
        dir.to_str().unwrap(),
    ]);
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

/// `bench client` with N = 20 and d = 100 ms proves each client model by its bound: one
/// after another takes N × d, ten threads about ⌈N / 10⌉ × d, and the models that overlap
/// every request about d.
#[test]
fn bench_client_proves_each_model_by_its_bound() {
    let _guard = lock();
    let dir = out_dir("client");
    let output = bench(&[
        "client",
        "--requests",
        "20",
        "--delay-ms",
        "100",
        "--threads",
        "10",
        "--out",
        dir.to_str().unwrap(),
    ]);
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

/// The slow-clients preset at small sizes: every target without and with slow clients, and
/// the slow clients complete requests of their own.
#[test]
fn slow_clients_run_beside_the_load_and_complete_requests() {
    let _guard = lock();
    let dir = out_dir("slow-clients");
    let output = bench(&[
        "run",
        "--scenario",
        "slow-clients",
        "--targets",
        "tokio-axum,sync-thread",
        "--slow-clients",
        "8",
        "--connections",
        "8",
        "--duration",
        "4s",
        "--warmup",
        "1s",
        "--no-verify",
        "--out",
        dir.to_str().unwrap(),
    ]);
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
    let output = bench(&[
        "run",
        "--scenario",
        "connections",
        "--idle-connections",
        "200",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--no-verify",
        "--out",
        dir.to_str().unwrap(),
    ]);
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
        // connections cost it no new memory. sync-pool closes each connection.
        let free = ["may-green", "sync-pool"].contains(&row["binary"].as_str().unwrap());
        let least = if free { 0.0 } else { 0.01 };
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

/// A bad --vary exits 2 with a message naming it; a knob in --vary and as its own flag is an
/// error, not a silent override.
#[test]
fn bad_vary_exits_2_and_names_what_is_wrong() {
    for (args, named) in [
        (&["--vary", "threads=1,2"][..], "threads"),
        (&["--vary", "delay-ms="][..], "delay-ms"),
        (&["--vary", "connections=4,many"][..], "many"),
        (
            &["--vary", "delay-ms=1,2", "--delay-ms", "5"][..],
            "delay-ms",
        ),
        (&["--vary", "rate=1", "--vary", "rate=2"][..], "rate"),
        (&["--vary", "db-mode=pool,sharded"][..], "sharded"),
    ] {
        let mut all = vec!["sweep", "--scenario", "quick"];
        all.extend_from_slice(args);
        let output = bench(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", show(&output));
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
    let output = bench(&["run", "--scenario", "flip-map"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("bench sweep --scenario flip-map"),
        "{}",
        show(&output)
    );
}

/// A reference binary started by this test on a port of its choosing, as a server the harness
/// did not start.
struct OwnServer {
    child: std::process::Child,
    url: String,
}

impl OwnServer {
    fn start(binary: Binary, stack: &Stack) -> OwnServer {
        OwnServer::start_on(binary, stack, stack.database_url())
    }

    /// Started with `database_url` as its `--database-url` (another role, say).
    fn start_on(binary: Binary, stack: &Stack, database_url: &str) -> OwnServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_bench"))
            .parent()
            .unwrap()
            .join(binary.name());
        let child = Command::new(exe)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            .args(["--upstream-url", &stack.upstream_url()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the binary starts");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while bench::client::get(addr, "/health").is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{binary} did not answer on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        OwnServer {
            child,
            url: format!("http://127.0.0.1:{port}/test"),
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The statement check on a database that other clients use: `bench verify` of sync-pool
/// while tokio-axum (started here) loads the same database at 200 req/s. As a role of its
/// own, the loader's statements are told apart (pg_stat_statements counts per role) and the
/// check passes; as the same role, the check cannot count and says so, naming the loader,
/// instead of blaming sync-pool.
#[test]
fn the_statement_check_holds_while_another_client_loads_the_same_database() {
    use bench::measure::paced::{Pace, Paced};
    let _guard = lock();
    let stack = Stack::start(&StackOptions::from_env()).expect("a stack to share");
    let mut admin = postgres::Client::connect(stack.database_url(), postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS loader; CREATE ROLE loader LOGIN; GRANT SELECT ON test TO loader",
        )
        .unwrap();
    let loader_url = stack.database_url().replacen("postgres@", "loader@", 1);
    let verify_while_loaded = |database_url: &str| {
        let loader = OwnServer::start_on(Binary::TokioAxum, &stack, database_url);
        let addr = bench::model::external::address_of(&loader.url).unwrap();
        let pace = Pace {
            rate: 200,
            connections: 8,
            timeout: Duration::from_secs(10),
            paths: vec!["/test?delay_ms=1".to_string()],
        };
        let load = Paced::start(addr, &pace, std::time::Instant::now(), Vec::new);
        let output = bench(&[
            "verify",
            "--targets",
            "sync-pool",
            "--database-url",
            stack.database_url(),
        ]);
        let (threads, _) = load.finish();
        let answered = threads
            .iter()
            .flatten()
            .filter(|e| e.outcome == ProbeOutcome::Ok);
        // The load really ran beside the check.
        assert!(answered.count() > 200, "the loader answered too little");
        output
    };
    let apart = verify_while_loaded(&loader_url);
    assert!(apart.status.success(), "{}", show(&apart));
    assert!(
        String::from_utf8_lossy(&apart.stdout).contains("16/16 checks pass"),
        "{}",
        show(&apart)
    );
    let mixed = verify_while_loaded(stack.database_url());
    assert!(!mixed.status.success(), "{}", show(&mixed));
    let said = show(&mixed);
    assert!(
        said.contains("cannot count sync-pool's statements")
            && said.contains("tokio-axum (")
            && said.contains("as postgres"),
        "{said}"
    );
    admin
        .batch_execute("REVOKE SELECT ON test FROM loader; DROP ROLE loader")
        .unwrap();
}

/// `--external`: tokio-axum started here, not by the harness, beside the same binary as a
/// reference. Its row is marked external, its throughput matches the reference's within
/// noise, and its RSS, threads and CPU are filled only when its pid is given.
#[test]
fn an_external_server_is_measured_beside_the_same_binary_as_a_reference() {
    let _guard = lock();
    let stack = Stack::start(&StackOptions::from_env()).expect("a stack for the external");
    let own = OwnServer::start(Binary::TokioAxum, &stack);
    let external = format!("mine={}", own.url);
    // `bench verify --url` checks it as a server of unknown make.
    let output = bench(&[
        "verify",
        "--url",
        &own.url,
        "--database-url",
        stack.database_url(),
    ]);
    assert!(output.status.success(), "{}", show(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("16/16 checks pass"),
        "{}",
        show(&output)
    );
    let run = |name: &str, extra: &[&str]| -> Vec<Value> {
        let dir = out_dir(name);
        let mut args = vec![
            "run",
            "--scenario",
            "quick",
            "--targets",
            "tokio-axum",
            "--database-url",
            stack.database_url(),
            "--external",
            &external,
            "--out",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let output = bench(&args);
        assert!(output.status.success(), "{}", show(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("mine [external]"), "{stdout}");
        let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(
            report.contains("Servers other than the references"),
            "{report}"
        );
        let svg = std::fs::read_to_string(dir.join("throughput.svg")).unwrap();
        assert!(
            svg.contains("mine [external]"),
            "the chart names the external"
        );
        read_json(&dir.join("results.json"))["results"]
            .as_array()
            .unwrap()
            .clone()
    };

    let rows = run("external-unobserved", &[]);
    let names: Vec<&str> = rows.iter().map(|r| r["target"].as_str().unwrap()).collect();
    assert_eq!(names, ["tokio-axum", "mine [external]"]);
    let (reference, mine) = (&rows[0], &rows[1]);
    assert_eq!(mine["status"], "ok", "{mine}");
    assert_eq!(mine["external"]["verified"], true, "{mine}");
    assert_eq!(mine["external"]["url"], own.url.as_str());
    assert!(reference["external"].is_null());
    for column in [
        "rss_peak_mib",
        "threads_peak",
        "cpu_ms_per_request",
        "db_sessions_peak",
    ] {
        assert!(mine[column].is_null(), "{column} without a pid: {mine}");
        assert!(!reference[column].is_null(), "{column} of the reference");
    }
    let why = mine["external"]["unobserved"].as_str().unwrap();
    assert!(why.contains("--external-pid mine=PID"), "{why}");
    assert!(why.contains("--external-app mine="), "{why}");
    // The same binary under the same load: both near the bound (8 clients, 5 ms).
    let (a, b) = (
        reference["requests_per_sec"].as_f64().unwrap(),
        mine["requests_per_sec"].as_f64().unwrap(),
    );
    assert!(
        (b / a - 1.0).abs() < 0.25,
        "external {b:.0} req/s against the reference's {a:.0}"
    );
    // Its model is not stated: no bound and no efficiency rather than a wrong one.
    assert!(
        mine["bound_rps"].is_null() && mine["efficiency"].is_null(),
        "{mine}"
    );
    assert!(
        mine["model"].as_str().unwrap().contains("--external-model"),
        "{mine}"
    );

    // bench compare takes NAME=URL where it takes a target.
    let dir = out_dir("external-compare");
    let output = bench(&[
        "compare",
        "tokio-axum",
        &external,
        "--scenario",
        "quick",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--database-url",
        stack.database_url(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", show(&output));
    let comparison = read_json(&dir.join("compare.json"));
    assert_eq!(comparison["a"], "tokio-axum");
    assert_eq!(comparison["b"], "mine [external]");
    let ratio = comparison["ratio"]["median"].as_f64().unwrap();
    assert!((0.75..1.33).contains(&ratio), "the same binary: {ratio}");

    let pid = own.child.id().to_string();
    let rows = run(
        "external-observed",
        &[
            "--external-pid",
            &format!("mine={pid}"),
            "--external-app",
            "mine=tokio-axum",
            "--external-model",
            "mine=pool:8",
        ],
    );
    let mine = &rows[1];
    // Stated as the reference's pool of 8: the reference's bound.
    assert_eq!(mine["bound_rps"], rows[0]["bound_rps"], "{mine}");
    assert_eq!(mine["external"]["model"], "pool:8");
    assert_eq!(mine["processes_peak"], 1, "{mine}");
    assert_eq!(mine["status"], "ok", "{mine}");
    assert_eq!(mine["external"]["pid"].as_u64().unwrap().to_string(), pid);
    assert!(mine["rss_peak_mib"].as_f64().unwrap() > 1.0, "{mine}");
    assert!(mine["threads_peak"].as_u64().unwrap() >= 2, "{mine}");
    assert!(mine["cpu_ms_per_request"].as_f64().unwrap() > 0.0, "{mine}");
    assert!(mine["db_sessions_peak"].as_i64().unwrap() >= 1, "{mine}");
    assert!(mine["external"]["unobserved"].is_null(), "{mine}");
}

/// A bad --external fails before the stack starts, in one line that names it.
#[test]
fn a_bad_external_fails_fast_naming_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("gone=http://127.0.0.1:{closed}/test");
    for (args, code, says) in [
        (vec!["--external", "mine"], 2, "NAME=VALUE"),
        (
            vec!["--external", "mine=ftp://127.0.0.1:21/"],
            2,
            "plain HTTP",
        ),
        (
            vec!["--external", "mine=http://127.0.0.1:9/test"],
            2,
            "--database-url",
        ),
        (
            vec![
                "--external",
                unreachable.as_str(),
                "--database-url",
                "postgres://nobody@127.0.0.1:1/none",
            ],
            1,
            "gone=",
        ),
        (
            vec!["--external-pid", "theirs=1", "--no-verify"],
            2,
            "no --external is called theirs",
        ),
    ] {
        let mut all = vec!["run", "--scenario", "quick"];
        all.extend(args.iter().copied());
        let started = std::time::Instant::now();
        let output = bench(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{all:?}: {}",
            show(&output)
        );
        assert!(stderr.contains(says), "{all:?}: {stderr}");
        assert!(!stderr.contains("starting the stack"), "{all:?}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(10), "{all:?}");
    }
}

/// `bench up --listen-host` and `bench run --remote` as two processes over loopback: the code
/// path of a load host and a stack host. The rows are the remote targets, checked and loaded
/// from here, with RSS, threads and CPU from the stack host's samples; a description from
/// another version is refused naming both.
#[test]
fn a_stack_from_bench_up_is_measured_with_remote_and_another_version_is_refused() {
    use std::io::BufRead;
    let _guard = lock();
    let mut up = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "up",
            "--targets",
            "sync-pool,tokio-axum",
            "--listen-host",
            "127.0.0.1",
        ])
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("bench up starts");
    let stop = stop_bench_up;
    let mut lines = std::io::BufReader::new(up.stdout.take().unwrap()).lines();
    let mut description_url = None;
    for line in lines.by_ref().take(40) {
        let line = line.unwrap_or_default();
        if let Some(url) = line.strip_prefix("From another host: bench run --remote ") {
            description_url = Some(url.trim().to_string());
            break;
        }
    }
    let Some(description_url) = description_url else {
        stop(&mut up);
        panic!("bench up printed no description URL");
    };

    let dir = out_dir("remote");
    let output = bench(&[
        "run",
        "--remote",
        &description_url,
        "--scenario",
        "quick",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = get_text(&description_url);
    stop(&mut up);
    assert!(output.status.success(), "{}", show(&output));
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["target"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "sync-pool [remote 127.0.0.1]",
            "tokio-axum [remote 127.0.0.1]"
        ]
    );
    for row in rows {
        assert_eq!(row["status"], "ok", "{row}");
        assert_eq!(row["external"]["verified"], true, "{row}");
        let by = row["external"]["measured_by"].as_str().unwrap();
        assert!(by.contains("127.0.0.1") && by.contains("/samples"), "{by}");
        assert!(row["rss_peak_mib"].as_f64().unwrap() > 1.0, "{row}");
        assert!(row["threads_peak"].as_u64().unwrap() >= 2, "{row}");
        assert!(row["cpu_ms_per_request"].as_f64().unwrap() > 0.0, "{row}");
        assert!(
            row["postgres_cpu_ms_per_request"].as_f64().unwrap() > 0.0,
            "{row}"
        );
        assert!(row["db_sessions_peak"].as_i64().unwrap() >= 1, "{row}");
    }
    // sync-pool is the baseline: the remote rows compare as the references do.
    assert_eq!(rows[0]["relative"], 1.0);
    assert!(rows[1]["relative"].as_f64().unwrap() > 1.0, "{}", rows[1]);
    let versions = results["versions"].to_string();
    assert!(versions.contains("(stack host)"), "{versions}");

    // The same description from another version of the suite.
    let mut other: Value = serde_json::from_str(&text).unwrap();
    other["bench_version"] = "0.0.0-other".into();
    let file = out_dir("remote-other").with_extension("json");
    std::fs::write(&file, other.to_string()).unwrap();
    let output = bench(&["run", "--remote", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("0.0.0-other") && stderr.contains(env!("CARGO_PKG_VERSION")),
        "{stderr}"
    );
    assert!(!stderr.contains("starting the stack"), "{stderr}");
}

/// Stops a `bench up` as Ctrl-C would (SIGINT: it stops its stack), killed after 30 s.
fn stop_bench_up(up: &mut std::process::Child) {
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(up.id() as i32, libc::SIGINT) };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while up.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = up.kill();
    let _ = up.wait();
}

/// The body of a `GET http://HOST:PORT/path`.
fn get_text(url: &str) -> String {
    let addr = bench::model::external::address_of_any(url).unwrap();
    let path = url
        .splitn(4, '/')
        .nth(3)
        .map_or("/".into(), |p| format!("/{p}"));
    bench::client::get(addr, &path).unwrap().text()
}

/// `bench up --listen-host` with an address other than loopback exposes the private cluster:
/// it listens there too and the `postgres` role gets a password, which the URL carries.
#[test]
fn exposing_the_private_cluster_gives_a_url_with_a_password() {
    let stack = Stack::start(&StackOptions::from_env()).expect("a stack");
    let url = stack
        .postgres
        .expose("127.0.0.1".parse().unwrap())
        .expect("exposed");
    let port = stack.postgres.port;
    assert!(url.starts_with("postgres://postgres:"), "{url}");
    assert!(
        url.ends_with(&format!("@127.0.0.1:{port}/postgres")),
        "{url}"
    );
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("the URL connects");
    let listen: String = client
        .query_one("SHOW listen_addresses", &[])
        .unwrap()
        .get(0);
    assert_eq!(listen, "127.0.0.1,127.0.0.1");
    let has_password: bool = client
        .query_one(
            "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'postgres'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(has_password);
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
        let output = bench(&[
            "run",
            "--scenario",
            "quick",
            "--targets",
            "tokio-axum",
            "--baseline",
            "tokio-axum",
            "--pin",
            "--delay-ms",
            "20",
            "--connections",
            "16",
            "--duration",
            "3s",
            "--warmup",
            "0",
            "--no-verify",
            "--out",
            dir.to_str().unwrap(),
        ]);
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
    let output = bench(&[
        "run",
        "--scenario",
        "quick",
        "--targets",
        "tokio-axum",
        "--path",
        "/json",
        "--ceiling",
        "--duration",
        "2s",
        "--warmup",
        "0",
        "--no-verify",
        "--out",
        dir.to_str().unwrap(),
    ]);
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
    let output = bench(&["run", "--scenario", "quick", "--path", "/nope"]);
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("use /test, /json or /health"), "{stderr}");
}

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
    let output = bench(&[
        "run",
        "--scenario",
        "soak",
        "--duration",
        "80s",
        "--out",
        dir.to_str().unwrap(),
    ]);
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

/// Two network namespaces joined by a veth pair, on addresses private to the pair: a stack
/// host and a load host with nothing in common but that link. Deleted (with the processes'
/// link) on drop.
struct TwoHosts {
    stack_ns: String,
    load_ns: String,
}

impl TwoHosts {
    const STACK_ADDR: &'static str = "10.213.0.1";
    const LOAD_ADDR: &'static str = "10.213.0.2";

    fn create() -> TwoHosts {
        let tag = std::process::id() % 100_000;
        let hosts = TwoHosts {
            stack_ns: format!("rwp-stack-{tag}"),
            load_ns: format!("rwp-load-{tag}"),
        };
        let (stack_if, load_if) = (format!("rwps{tag}"), format!("rwpl{tag}"));
        let ip = |args: &[&str]| {
            let output = Command::new("ip").args(args).output().expect("ip runs");
            assert!(output.status.success(), "ip {args:?}: {}", show(&output));
        };
        ip(&["netns", "add", &hosts.stack_ns]);
        ip(&["netns", "add", &hosts.load_ns]);
        ip(&[
            "link",
            "add",
            &stack_if,
            "netns",
            &hosts.stack_ns,
            "type",
            "veth",
            "peer",
            "name",
            &load_if,
            "netns",
            &hosts.load_ns,
        ]);
        for (ns, link, addr) in [
            (&hosts.stack_ns, &stack_if, TwoHosts::STACK_ADDR),
            (&hosts.load_ns, &load_if, TwoHosts::LOAD_ADDR),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", link]);
            ip(&["-n", ns, "link", "set", link, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        hosts
    }

    /// `bench ARGS` in namespace `ns`.
    fn bench_in(ns: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_bench")])
            .args(args)
            .env_remove("DATABASE_URL");
        command
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        for ns in [&self.stack_ns, &self.load_ns] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).output();
        }
    }
}

/// The stack host and the load host as two network namespaces over a real (veth) interface:
/// `bench up --listen-host` in one, `bench run --remote` with a short grinberg load in the
/// other. The rows are measured over the pair (their host is the stack's address there), the
/// stack host's samples arrive over it, and its PostgreSQL, exposed off loopback, refuses the
/// load host without the generated password and takes it with.
#[test]
fn a_stack_host_and_a_load_host_in_two_namespaces_measure_over_the_link() {
    use std::io::BufRead;
    let _guard = lock();
    let hosts = TwoHosts::create();
    let mut up = TwoHosts::bench_in(
        &hosts.stack_ns,
        &[
            "up",
            "--targets",
            "sync-pool,tokio-axum",
            "--listen-host",
            TwoHosts::STACK_ADDR,
            "--scenario",
            "grinberg",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("bench up starts in the stack namespace");
    // `ip netns exec` runs bench in its own process (exec), so the signal reaches it.
    let stop = stop_bench_up;
    let mut lines = std::io::BufReader::new(up.stdout.take().unwrap()).lines();
    let (mut database_url, mut description_url) = (None, None);
    for line in lines.by_ref().take(40).map_while(Result::ok) {
        if let Some(url) = line.strip_prefix("PostgreSQL") {
            database_url = Some(url.trim().to_string());
        }
        if let Some(url) = line.strip_prefix("From another host: bench run --remote ") {
            description_url = Some(url.trim().to_string());
            break;
        }
    }
    let (Some(database_url), Some(description_url)) = (database_url, description_url) else {
        stop(&mut up);
        panic!("bench up printed no database URL or no description URL");
    };
    // The status endpoint, as every server of the stack, is outside the ephemeral range.
    let port: u16 = description_url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let bounds: Vec<u16> = range
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        port < bounds[0] || port > bounds[1],
        "{description_url} in {range}"
    );
    let dir = out_dir("two-hosts");
    let run = run_within(
        &mut TwoHosts::bench_in(
            &hosts.load_ns,
            &[
                "run",
                "--remote",
                &description_url,
                "--scenario",
                "grinberg",
                "--duration",
                "3s",
                "--warmup",
                "1s",
                "--out",
                dir.to_str().unwrap(),
            ],
        ),
        common::BENCH_LIMIT,
    )
    .0;
    // From the load host: the stack's database, with and without its generated password.
    let psql = |url: &str| {
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &hosts.load_ns,
                "psql",
                url,
                "-Atc",
                "SELECT 1",
            ])
            .env("PGCONNECT_TIMEOUT", "5")
            .env("PGPASSFILE", "/dev/null")
            .env_remove("PGPASSWORD");
        run_within(&mut command, Duration::from_secs(30)).0
    };
    let with_password = psql(&database_url);
    let (user, host) = database_url.split_once('@').unwrap();
    let without = format!("postgres://postgres@{host}");
    let without_password = psql(&without);
    stop(&mut up);
    assert!(
        user.starts_with("postgres://postgres:") && host.starts_with("10.213.0.1:"),
        "{database_url}"
    );
    assert!(with_password.status.success(), "{}", show(&with_password));
    assert!(
        !without_password.status.success(),
        "{}",
        show(&without_password)
    );
    assert!(
        String::from_utf8_lossy(&without_password.stderr).contains("password"),
        "{}",
        show(&without_password)
    );
    let description = read_json(&dir.join("results.json"));
    assert!(run.status.success(), "{}", show(&run));
    let rows = description["results"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["target"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "sync-pool [remote 10.213.0.1]",
            "tokio-axum [remote 10.213.0.1]"
        ]
    );
    for row in rows {
        assert_eq!(row["status"], "ok", "{row}");
        let by = row["external"]["measured_by"].as_str().unwrap();
        assert!(by.contains("10.213.0.1") && by.contains("/samples"), "{by}");
        assert!(
            row["rss_peak_mib"].as_f64().unwrap() > 1.0,
            "samples arrived: {row}"
        );
        assert!(row["cpu_ms_per_request"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["db_sessions_peak"].as_i64().unwrap() >= 1, "{row}");
    }
}
