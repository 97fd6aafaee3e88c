use super::*;

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
        let addr = bench::externals::address_of(&loader.url).unwrap();
        let pace = Pace {
            rate: 200,
            connections: 8,
            timeout: Duration::from_secs(10),
            paths: vec!["/test?delay_ms=1".to_string()],
        };
        let load = Paced::start(addr, &pace, std::time::Instant::now(), Vec::new);
        let output = Bench::new("verify")
            .targets("sync-pool")
            .arg("--database-url", stack.database_url())
            .output();
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
        String::from_utf8_lossy(&apart.stdout).contains("18/18 checks pass"),
        "{}",
        show(&apart)
    );
    let mixed = verify_while_loaded(stack.database_url());
    // It could not check, which is not the server's failure: the exit status is 0.
    assert!(mixed.status.success(), "{}", show(&mixed));
    let said = show(&mixed);
    assert!(
        said.contains("CANNOT CHECK  one_statement_per_request")
            && said.contains("cannot count sync-pool's statements")
            && said.contains("tokio-axum as postgres")
            && !said.contains("FAIL"),
        "{said}"
    );
    admin
        .batch_execute("REVOKE SELECT ON test FROM loader; DROP ROLE loader")
        .unwrap();
}

/// `bench run` of tokio-axum with `external` beside it (and `extra` flags): the rows, after
/// checking that the table, the report and the chart name the external.
fn run_beside(database_url: &str, external: &str, name: &str, extra: &[&str]) -> Vec<Value> {
    let dir = out_dir(name);
    let mut args = vec![
        "run",
        "--scenario",
        "quick",
        "--targets",
        "tokio-axum",
        "--database-url",
        database_url,
        "--external",
        external,
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
}

/// The external's row beside the reference's, without its pid: measured and verified, its
/// process columns empty (and why), its throughput the reference's, no bound without a model.
fn assert_unobserved(rows: &[Value], url: &str) {
    let names: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(names, ["tokio-axum", "mine [external]"]);
    let (reference, mine) = (&rows[0], &rows[1]);
    // The name as given, and the kind in a field of its own.
    assert_eq!(
        (&mine["target"], &mine["kind"]),
        (&"mine".into(), &"external".into())
    );
    assert_eq!(reference["kind"], "target");
    // What its row rests on: the page it fetched and the database.
    let page = mine["external"]["upstream_page"].as_str().unwrap();
    assert!(page.starts_with("the run's page ("), "{page}");
    assert!(
        mine["external"]["database"]
            .as_str()
            .unwrap()
            .starts_with("postgres://postgres@127.0.0.1:"),
        "{mine}"
    );
    assert_eq!(mine["status"], "ok", "{mine}");
    assert_eq!(mine["external"]["verified"], true, "{mine}");
    assert_eq!(mine["external"]["url"], url);
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
    let output = Bench::new("verify")
        .arg("--url", &own.url)
        .arg("--database-url", stack.database_url())
        .output();
    assert!(output.status.success(), "{}", show(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("18/18 checks pass"),
        "{}",
        show(&output)
    );

    let run = |name: &str, extra: &[&str]| run_beside(stack.database_url(), &external, name, extra);
    assert_unobserved(&run("external-unobserved", &[]), &own.url);

    // bench compare takes NAME=URL where it takes a target.
    let dir = out_dir("external-compare");
    let output = Bench::new("compare")
        .positional("tokio-axum")
        .positional(&external)
        .scenario("quick")
        .short("2s")
        .arg("--database-url", stack.database_url())
        .out(&dir)
        .output();
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

/// `psql -c 'SELECT 1'` every 0.1 s against `url` on a thread, until dropped (at most 600
/// times): a client that connects, runs a statement and leaves.
struct PsqlLoop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<u32>>,
}

impl PsqlLoop {
    fn start(url: &str) -> PsqlLoop {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let url = url.to_string();
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut ran = 0;
                for _ in 0..600 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let mut psql = Command::new("psql");
                    psql.args([url.as_str(), "-Atc", "SELECT 1"])
                        .env("PGCONNECT_TIMEOUT", "5")
                        .env("PGAPPNAME", "psql");
                    if run_within(&mut psql, Duration::from_secs(10))
                        .0
                        .status
                        .success()
                    {
                        ran += 1;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                ran
            }
        });
        PsqlLoop {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops it; how many of its statements ran.
    fn finish(mut self) -> u32 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for PsqlLoop {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A client that comes and goes beside the check (psql every 0.1 s, as a sampler of the
/// database would): under another role it changes nothing; under the server's role the check
/// says it cannot count, naming it; in neither case is the server blamed.
#[test]
fn a_client_that_comes_and_goes_is_never_counted_as_the_servers() {
    let _guard = lock();
    let stack = Stack::start(&StackOptions::from_env()).expect("a stack to share");
    let mut admin = postgres::Client::connect(stack.database_url(), postgres::NoTls).unwrap();
    admin
        .batch_execute("DROP ROLE IF EXISTS visitor; CREATE ROLE visitor LOGIN")
        .unwrap();
    let visitor_url = stack.database_url().replacen("postgres@", "visitor@", 1);
    let verify_beside = |url: &str| {
        let psql = PsqlLoop::start(url);
        std::thread::sleep(Duration::from_millis(300));
        let output = Bench::new("verify")
            .targets("sync-pool")
            .arg("--database-url", stack.database_url())
            .output();
        assert!(psql.finish() > 3, "the psql loop hardly ran");
        output
    };
    let apart = verify_beside(&visitor_url);
    assert!(apart.status.success(), "{}", show(&apart));
    assert!(
        String::from_utf8_lossy(&apart.stdout).contains("18/18 checks pass"),
        "{}",
        show(&apart)
    );
    let same = verify_beside(stack.database_url());
    let said = show(&same);
    assert!(same.status.success(), "{said}");
    assert!(
        said.contains("CANNOT CHECK  one_statement_per_request")
            && said.to_lowercase().contains("`select $1` ×")
            && said.contains("as postgres")
            && !said.contains("FAIL"),
        "{said}"
    );
    admin.batch_execute("DROP ROLE visitor").unwrap();
}

/// A server of the test's own that runs two statements per request that reads the database
/// (`SELECT 1`, then the row), on its own role: the check still fails it, with a client that
/// comes and goes beside it under another role.
#[test]
fn a_server_that_runs_two_statements_is_still_caught() {
    let _guard = lock();
    let stack = Stack::start(&StackOptions::from_env()).expect("a stack");
    let mut admin = postgres::Client::connect(stack.database_url(), postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS twice; CREATE ROLE twice LOGIN; GRANT SELECT ON test TO twice",
        )
        .unwrap();
    let own_url = stack.database_url().replacen("postgres@", "twice@", 1);
    let server = TwoStatements::start(&own_url);
    let psql = PsqlLoop::start(stack.database_url());
    let check = bench::contract::CHECKS
        .iter()
        .find(|c| c.name == "one_statement_per_request")
        .unwrap();
    let result = (check.run)(&bench::contract::Server {
        binary: None,
        name: "twice".into(),
        direct: server.addr,
        proxied: None,
        database_url: stack.database_url().to_string(),
        upstream: None,
        rows: bench::contract::TABLE_ROWS,
        app: Some("twice".into()),
    });
    assert!(psql.finish() > 0, "the psql loop never ran");
    let outcome = bench::contract::CheckOutcome {
        check: check.name,
        kind: check.kind,
        result,
    }
    .outcome();
    match outcome {
        bench::contract::Outcome::Fail(why) => assert!(
            why.contains("ran 36 statements of its role twice") && !why.contains("psql"),
            "{why}"
        ),
        other => panic!("two statements per request, on its own role: {other:?}"),
    }
    drop(server);
    admin
        .batch_execute("REVOKE SELECT ON test FROM twice; DROP ROLE twice")
        .unwrap();
}

/// An HTTP server that answers every request with `{}`, and runs `SELECT 1` and then the row's
/// statement for each `/test` that reads the database (an `id` from 1, or none).
struct TwoStatements {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TwoStatements {
    fn start(database_url: &str) -> TwoStatements {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let mut config: postgres::Config = database_url.parse().unwrap();
        config.application_name("twice");
        let mut db = config.connect(postgres::NoTls).unwrap();
        std::thread::spawn({
            let stop = stop.clone();
            move || {
                let deadline = std::time::Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                    let Ok((stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    stream.set_nonblocking(false).unwrap();
                    let mut line = String::new();
                    let mut reader = BufReader::new(&stream);
                    let _ = reader.read_line(&mut line);
                    let target = line.split(' ').nth(1).unwrap_or("/").to_string();
                    let id = target
                        .split(['?', '&'])
                        .find_map(|p| p.strip_prefix("id="))
                        .map(|v| v.parse::<i32>().unwrap_or(0));
                    let reads = target.starts_with("/test")
                        && !target.contains("backend=")
                        && id.is_none_or(|id| id >= 1);
                    if reads {
                        db.execute("SELECT 1", &[]).unwrap();
                        db.query("SELECT b FROM test WHERE a = $1", &[&id.unwrap_or(1)])
                            .unwrap();
                    }
                    let _ = (&stream).write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                    );
                }
            }
        });
        TwoStatements { addr, stop }
    }
}

impl Drop for TwoStatements {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
