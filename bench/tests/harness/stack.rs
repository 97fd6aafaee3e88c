use super::*;

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

/// What `bench up` hands a load host of the private cluster: the load role's URL, with a new
/// password, which reads the test table and every session and statement, and can do nothing
/// else: no program, no table, no other database. (Over the network: remote.rs's two hosts.)
#[test]
fn the_private_cluster_hands_out_a_load_role_that_reads_and_does_nothing_else() {
    let stack = Stack::start(&StackOptions::from_env()).expect("a stack");
    let url = stack
        .postgres
        .expose("127.0.0.1".parse().unwrap())
        .expect("exposed");
    let port = stack.postgres.port;
    assert!(url.starts_with("postgres://bench_load:"), "{url}");
    assert!(
        url.ends_with(&format!("@127.0.0.1:{port}/postgres")),
        "{url}"
    );
    let mut admin = stack.postgres.connect().unwrap();
    // Apart: CREATE DATABASE cannot run in a multi-statement batch's transaction.
    admin
        .batch_execute("DROP DATABASE IF EXISTS other")
        .unwrap();
    admin.batch_execute("CREATE DATABASE other").unwrap();
    let mut load = postgres::Client::connect(&url, postgres::NoTls).expect("the URL connects");
    let row: String = load
        .query_one("SELECT b FROM test WHERE a = 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(row.len(), 20);
    // pg_monitor: the superuser's own session and statements are visible in full.
    let seen: i64 = load
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'postgres' AND query IS NOT NULL AND query <> '<insufficient privilege>'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(seen >= 1, "the load role cannot see the other sessions");
    load.query("SELECT calls FROM pg_stat_statements LIMIT 1", &[])
        .expect("pg_stat_statements is readable");
    for (what, sql) in [
        ("COPY … PROGRAM", "COPY (SELECT 1) TO PROGRAM 'true'"),
        ("CREATE TABLE", "CREATE TABLE mine (a int)"),
        ("CREATE TEMP TABLE", "CREATE TEMP TABLE mine (a int)"),
        ("a superuser's setting", "ALTER SYSTEM SET work_mem = '1GB'"),
        ("another role", "CREATE ROLE other"),
    ] {
        let error = load.batch_execute(sql).expect_err(what);
        let said = error
            .as_db_error()
            .map_or(String::new(), |e| e.message().to_string());
        assert!(
            said.contains("permission denied") || said.contains("must be superuser"),
            "{what}: {error:?}"
        );
    }
    let elsewhere = url.replace("/postgres", "/other");
    let refused = postgres::Client::connect(&elsewhere, postgres::NoTls)
        .err()
        .expect("another database is refused");
    assert!(
        format!("{refused:?}").contains("pg_hba.conf"),
        "{refused:?}"
    );
    let wrong = url.replacen("bench_load:", "bench_load:x", 1);
    assert!(postgres::Client::connect(&wrong, postgres::NoTls).is_err());
    admin.batch_execute("DROP DATABASE other").unwrap();
}
