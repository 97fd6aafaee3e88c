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
