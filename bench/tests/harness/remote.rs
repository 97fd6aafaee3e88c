use super::*;

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
    let output = Bench::new("run")
        .arg("--remote", &description_url)
        .scenario("quick")
        .out(&dir)
        .output();
    let text = get_text(&description_url);
    // Without its token the endpoint gives nothing but 401; the URL printed carries it.
    let (token, bare) = bench::remote::split_url(&description_url);
    let refused = get_status(&bare, None);
    let samples_refused = get_status(&bare.replace("/stack.json", "/samples"), None);
    let wrong = get_status(&bare, Some("not-the-token-0123456789"));
    stop(&mut up);
    assert!(output.status.success(), "{}", show(&output));
    assert_the_token_was_needed_and_kept_out(
        token.as_ref(),
        [refused, samples_refused, wrong],
        &dir,
    );
    let results = read_json(&dir.join("results.json"));
    let rows = results["results"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
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
    let output = Bench::new("run")
        .arg("--remote", file.to_str().unwrap())
        .output();
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

/// The body of a `GET http://[TOKEN@]HOST:PORT/path`, with the token as a bearer's.
fn get_text(url: &str) -> String {
    let (token, url) = bench::remote::split_url(url);
    get(&url, token.as_ref().map(bench::remote::Token::as_str)).text()
}

/// The status of a `GET http://HOST:PORT/path` with this bearer token, or none.
fn get_status(url: &str, token: Option<&str>) -> u16 {
    get(url, token).status
}

fn get(url: &str, token: Option<&str>) -> bench::client::Response {
    let addr = bench::externals::address_of_any(url).unwrap();
    let path = url
        .splitn(4, '/')
        .nth(3)
        .map_or("/".into(), |p| format!("/{p}"));
    bench::client::get_with_token(addr, &path, token).unwrap()
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

/// `sql` with psql from the namespace, at `url`, with no password but the URL's.
fn psql_in(namespace: &str, url: &str, sql: &str) -> Output {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", namespace, "psql", url, "-Atc", sql])
        .env("PGCONNECT_TIMEOUT", "5")
        .env("PGPASSFILE", "/dev/null")
        .env_remove("PGPASSWORD");
    run_within(&mut command, Duration::from_secs(30)).0
}

/// The port of `url` is outside the kernel's ephemeral range.
fn assert_outside_the_ephemeral_range(description_url: &str) {
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
}

/// The rows of a run over the link: both remote targets, measured, with the stack host's
/// samples in their process columns.
fn assert_measured_remotely(description: &Value) {
    let rows = description["results"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
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
    assert_outside_the_ephemeral_range(&description_url);
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
    let tried = try_the_load_role(&hosts.load_ns, &database_url);
    stop(&mut up);
    assert_only_a_load_role(&database_url, &tried);
    let description = read_json(&dir.join("results.json"));
    assert!(run.status.success(), "{}", show(&run));
    assert_measured_remotely(&description);
}

/// From the load host: the stack's database as the load role (a read of what a load host
/// needs, then what it must not do), the superuser, and the role without its password.
fn try_the_load_role(namespace: &str, database_url: &str) -> Vec<(&'static str, Output)> {
    let psql = |url: &str, sql: &str| psql_in(namespace, url, sql);
    let (user, host) = database_url.split_once('@').unwrap();
    let (_, password) = user.rsplit_once(':').unwrap();
    let database = host.rsplit('/').next().unwrap();
    vec![
        (
            "reads",
            psql(
                database_url,
                "SELECT b FROM test WHERE a = 1; SELECT count(*) > 0 FROM pg_stat_statements; \
                 SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name IN ('sync-pool', 'tokio-axum')",
            ),
        ),
        (
            "the superuser",
            psql(&format!("postgres://postgres:{password}@{host}"), "SELECT 1"),
        ),
        (
            "the load role without its password",
            psql(&format!("postgres://bench_load@{host}"), "SELECT 1"),
        ),
        (
            "another database",
            psql(
                &database_url.replace(&format!("/{database}"), "/template1"),
                "SELECT 1",
            ),
        ),
        (
            "COPY … PROGRAM",
            psql(database_url, "COPY (SELECT 1) TO PROGRAM 'true'"),
        ),
        ("CREATE TABLE", psql(database_url, "CREATE TABLE mine (a int)")),
        (
            "CREATE TEMP TABLE",
            psql(database_url, "CREATE TEMP TABLE mine (a int)"),
        ),
    ]
}

/// The load role read what a load host needs and was refused everything else, and nobody
/// else got in.
fn assert_only_a_load_role(database_url: &str, tried: &[(&str, Output)]) {
    let (user, host) = database_url.split_once('@').unwrap();
    assert!(
        user.starts_with("postgres://bench_load:") && host.starts_with("10.213.0.1:"),
        "{database_url}"
    );
    let (_, reads) = &tried[0];
    assert!(reads.status.success(), "{}", show(reads));
    let read = String::from_utf8_lossy(&reads.stdout);
    assert_eq!(
        read.lines().skip(1).collect::<Vec<_>>(),
        ["t", "t"],
        "{read}"
    );
    let expected = [
        ("the superuser", "pg_hba.conf"),
        ("the load role without its password", "password"),
        ("another database", "pg_hba.conf"),
        ("COPY … PROGRAM", "must be superuser"),
        ("CREATE TABLE", "permission denied"),
        ("CREATE TEMP TABLE", "permission denied"),
    ];
    for ((what, refused), (named, says)) in tried[1..].iter().zip(expected) {
        assert_eq!(*what, named);
        assert!(!refused.status.success(), "{what}: {}", show(refused));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(says),
            "{what}: {}",
            show(refused)
        );
    }
}

/// The endpoint answered 401 without its token and with another (`statuses`), and the
/// reports of the run in `dir` give the command with the token left out.
fn assert_the_token_was_needed_and_kept_out(
    token: Option<&bench::remote::Token>,
    statuses: [u16; 3],
    dir: &std::path::Path,
) {
    let token = token.expect("the URL bench up printed carries a token");
    assert_eq!(statuses, [401, 401, 401]);
    for file in ["results.json", "report.md", "report.html"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(!text.contains(token.as_str()), "{file} holds the token");
    }
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        page.contains("--remote http://TOKEN@127.0.0.1:"),
        "report.html gives no command"
    );
}
