//! may-green's cooperative PostgreSQL client against the real cluster: one test per
//! authentication method (trust, MD5, SCRAM-SHA-256), the errors a user meets, and a static
//! check that the green code never names a blocking API.

use std::sync::OnceLock;
use std::time::Duration;

use bench::observe::Observer;
use bench::stack::postgres::{MD5_ROLE, SCRAM_ROLE};
use bench::stack::{Stack, StackOptions};
use shared::green::pg::{ConnectParams, Connection, PgError};
use shared::wait::green::Pool;
use shared::{AppError, DatabaseUrl};

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let stack = Stack::start(&StackOptions::from_env()).expect("the stack starts");
        assert!(
            stack.postgres.is_embedded(),
            "the auth tests need the private cluster (its pg_hba.conf has the md5 and scram lines)"
        );
        stack
            .postgres
            .create_password_role(MD5_ROLE, "md5 secret", "md5")
            .unwrap();
        stack
            .postgres
            .create_password_role(SCRAM_ROLE, "scram 'secret'", "scram-sha-256")
            .unwrap();
        stack
    })
}

fn params(user: &str, password: Option<&str>, application_name: &str) -> ConnectParams {
    let url = DatabaseUrl::parse(stack().database_url()).unwrap();
    ConnectParams {
        addr: url.socket_addr().unwrap(),
        user: user.into(),
        password: password.map(str::to_string),
        dbname: url.dbname,
        application_name: application_name.into(),
        connect_timeout: Duration::from_secs(5),
    }
}

/// Runs `f` in a may coroutine, as may-green does, and returns its result.
fn in_coroutine<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    // SAFETY (may's contract for go!): the closure owns everything it uses and uses no
    // thread-local state across a yield.
    let handle = may::go!(f);
    handle.join().expect("the coroutine does not panic")
}

/// Connects as `user`, fetches row 42 with and without a delay, and checks it against the
/// database, and that the session carried its application_name.
fn fetches_real_rows_as(user: &'static str, password: Option<&'static str>) {
    let app = format!("green-test-{user}");
    let p = params(user, password, &app);
    let expected = Observer::connect(stack().database_url())
        .unwrap()
        .row(42)
        .unwrap()
        .expect("row 42 exists");
    let (row, delayed, missing, seen) = in_coroutine(move || {
        let mut conn = Connection::connect(&p).expect("connects");
        let row = conn.fetch_row(42, 0).expect("fetches");
        let delayed = conn.fetch_row(42, 5).expect("fetches after a sleep");
        let missing = conn
            .fetch_row(2_000_000, 0)
            .expect("a missing row is no error");
        // The session is visible under its application_name while open.
        let mut observer = Observer::connect(stack().database_url()).unwrap();
        let seen = observer.sessions(&p.application_name).unwrap().total;
        (row, delayed, missing, seen)
    });
    let row = row.expect("row 42");
    assert_eq!((row.a, row.b.as_str()), (42, expected.as_str()));
    assert_eq!(delayed, Some(row));
    assert_eq!(missing, None);
    assert_eq!(seen, 1, "one session named {app}");
}

#[test]
fn trust_authentication_fetches_real_rows() {
    fetches_real_rows_as("postgres", None);
}

#[test]
fn md5_authentication_fetches_real_rows() {
    fetches_real_rows_as(MD5_ROLE, Some("md5 secret"));
}

#[test]
fn scram_authentication_fetches_real_rows() {
    fetches_real_rows_as(SCRAM_ROLE, Some("scram 'secret'"));
}

#[test]
fn a_wrong_or_missing_password_is_a_clear_error() {
    for (user, password) in [(MD5_ROLE, Some("wrong")), (SCRAM_ROLE, Some("wrong"))] {
        let p = params(user, password, "green-test-wrong");
        let error = in_coroutine(move || Connection::connect(&p).err());
        let text = format!("{:?}", error.expect("refused"));
        assert!(text.contains("28P01"), "{user}: {text}");
    }
    let p = params(SCRAM_ROLE, None, "green-test-none");
    let error = in_coroutine(move || Connection::connect(&p).err());
    let text = format!("{:?}", error.expect("refused"));
    assert!(text.contains("put it in the database URL"), "{text}");
}

#[test]
fn server_errors_keep_the_connection_and_unreachable_databases_are_503() {
    let p = params("postgres", None, "green-test-errors");
    let running = may::go!(move || {
        let mut conn = Connection::connect(&p).unwrap();
        let cancelled = conn.fetch_row(1, 3000);
        (cancelled, conn.fetch_row(1, 0))
    });
    // Cancel the sleep from outside: PostgreSQL answers ErrorResponse 57014.
    let mut admin = stack().postgres.connect().unwrap();
    let mut cancelled = 0;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(50));
        let row = admin
            .query_one(
                "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = 'green-test-errors' AND query LIKE '%pg_sleep%'
                   AND state = 'active'",
                &[],
            )
            .unwrap();
        cancelled = row.get::<_, i64>(0);
        if cancelled > 0 {
            break;
        }
    }
    assert_eq!(cancelled, 1);
    let (error, after) = running.join().unwrap();
    match error {
        Err(e @ PgError::Server { .. }) => {
            assert!(!e.is_fatal());
            let app = e.into_app_error();
            assert_eq!(app.status(), 500);
            assert!(format!("{app:?}").contains("57014"), "{app:?}");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    assert!(after.unwrap().is_some(), "the connection is still usable");

    let mut unreachable = params("postgres", None, "green-test-down");
    unreachable.addr = "127.0.0.1:1".parse().unwrap();
    let pool = Pool::new(unreachable, 2, Duration::from_millis(500));
    let error = in_coroutine(move || pool.fetch_row(1, 0));
    match error {
        Err(e @ AppError::DbUnavailable(_)) => assert_eq!(e.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
}

#[test]
fn the_pool_waits_cooperatively_and_times_out_with_503() {
    let pool: &'static Pool = Box::leak(Box::new(Pool::new(
        params("postgres", None, "green-test-pool"),
        1,
        Duration::from_millis(100),
    )));
    // One coroutine holds the only connection for 600 ms; the other waits 100 ms, then 503.
    let slow = may::go!(move || pool.fetch_row(7, 600));
    std::thread::sleep(Duration::from_millis(200));
    let waited = in_coroutine(move || pool.fetch_row(7, 0));
    match waited {
        Err(e @ AppError::PoolTimeout { .. }) => assert_eq!(e.status(), 503),
        other => panic!("expected a pool timeout, got {other:?}"),
    }
    assert!(slow.join().unwrap().unwrap().is_some());
}

/// The green code must never call what blocks an OS thread. The counting tests prove it at
/// run time; this keeps the names out of the source.
#[test]
fn green_code_names_no_blocking_api() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let files = [
        "shared/src/green/mod.rs",
        "shared/src/green/pg.rs",
        "shared/src/green/upstream.rs",
        "servers/may-green/src/main.rs",
    ];
    let forbidden = [
        "std::net::TcpStream",
        "std::net::TcpListener",
        "std::thread::sleep",
        "std::sync::Mutex",
        "postgres::Client",
        "to_socket_addrs",
        "blocking::",
    ];
    for file in files {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for name in forbidden {
            assert!(!code.contains(name), "{file} uses {name}");
        }
    }
}
