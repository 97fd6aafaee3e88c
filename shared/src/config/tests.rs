//! The unit tests of `config`.

use super::*;

fn parse(binary: Binary, args: &[&str]) -> Result<Config, String> {
    let argv = std::iter::once(binary.name()).chain(args.iter().copied());
    Config::try_parse_from(binary, argv).map_err(|e| clap_message(&e))
}

#[test]
fn the_connection_budget_leaves_a_descriptor_per_fetch_and_an_eighth_idle() {
    let mut config = parse(Binary::TokioAxum, &[]).unwrap();
    assert_eq!(
        config.connection_budget(),
        None,
        "the limit is not known yet"
    );
    // 300 - 64 - 16 = 220 left: 103 connections, 103 fetches and 12 idle upstream.
    config.descriptors = Some(300);
    assert_eq!(config.connection_budget(), Some(103));
    let budget = config.connection_budget().unwrap();
    assert_eq!(idle_upstream_share(budget), 12);
    assert!(budget * 2 + idle_upstream_share(budget) <= 220);
    assert!(config
        .summary()
        .ends_with("nofile=300 connections<=103 backlog=4096"));
    // This machine's 20,000 with a pool of 100.
    let mut grinberg = parse(Binary::TokioAxum, &["--pool-size", "100"]).unwrap();
    grinberg.descriptors = Some(20_000);
    assert_eq!(grinberg.connection_budget(), Some(9334));
    // Pipelined: one DB connection per worker.
    let mut pipelined = parse(
        Binary::TokioAxum,
        &["--db-mode", "pipelined", "--workers", "4"],
    )
    .unwrap();
    pipelined.descriptors = Some(300);
    assert_eq!(pipelined.connection_budget(), Some((300 - 64 - 4) * 8 / 17));
    // A load that never fetches upstream sets its own.
    let mut idle = parse(Binary::MayGreen, &["--max-connections", "10100"]).unwrap();
    idle.descriptors = Some(20_000);
    assert_eq!(idle.connection_budget(), Some(10_100));
    // Even a tiny limit leaves one.
    config.descriptors = Some(10);
    assert_eq!(config.connection_budget(), Some(1));
}

#[test]
fn defaults_follow_the_contract() {
    let config = parse(Binary::TokioAxum, &[]).unwrap();
    assert_eq!(config.listen, "127.0.0.1:8000".parse().unwrap());
    assert_eq!(config.pool_size, 16);
    assert_eq!(config.pool_timeout, Duration::from_millis(5000));
    assert_eq!(config.max_threads, 1024);
    assert_eq!(config.defaults.backend, Backend::Db);
    assert_eq!(config.defaults.delay_ms, 0);
    assert_eq!(config.defaults.rows, 1_000_000);
    assert_eq!(config.database.user, "postgres");
    assert_eq!(config.database.port, 5432);
    assert_eq!(config.upstream.target(5), "/upstream?delay_ms=5");
    assert_eq!(config.limits, ConnLimits::default());
    assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(config.db_mode, DbMode::Pool);
}

#[test]
fn only_the_targets_on_tokio_postgres_pipeline() {
    for binary in Binary::ALL {
        let parsed = parse(binary, &["--db-mode", "pipelined"]);
        if binary.pipelines() {
            assert_eq!(parsed.unwrap().db_mode, DbMode::Pipelined);
        } else {
            let message = parsed.unwrap_err();
            assert!(message.contains("--db-mode"), "{message}");
            assert!(message.contains(binary.name()), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        assert_eq!(
            parse(binary, &["--db-mode", "pool"]).unwrap().db_mode,
            DbMode::Pool
        );
    }
    let config = parse(
        Binary::TokioHyper,
        &["--db-mode", "pipelined", "--workers", "3"],
    );
    assert!(config
        .unwrap()
        .summary()
        .contains("db-mode=pipelined (3 connections"));
}

#[test]
fn only_the_tokio_targets_offload_work_and_work_is_bounded() {
    for binary in Binary::ALL {
        let parsed = parse(binary, &["--offload", "blocking", "--work", "100000"]);
        match binary.model() {
            Model::Tokio => {
                let config = parsed.unwrap();
                assert_eq!(
                    (config.offload, config.defaults.work),
                    (Offload::Blocking, 100_000)
                );
                assert!(config.summary().contains("work=100000 offload=blocking"));
            }
            Model::ThreadPerConnection
            | Model::ThreadPool
            | Model::Green
            | Model::ThreadPerCore => {
                let message = parsed.unwrap_err();
                assert!(message.contains("--offload"), "{message}");
                assert!(message.contains(binary.name()), "{message}");
                assert!(!message.contains('\n'), "{message}");
                assert_eq!(
                    parse(binary, &["--offload", "inline"]).unwrap().offload,
                    Offload::Inline
                );
            }
        }
    }
    for bad in ["100001", "-1", "x", ""] {
        let message = parse(Binary::SyncPool, &["--work", bad]).unwrap_err();
        assert!(message.contains("--work"), "{message}");
    }
}

#[test]
fn timeouts_are_flags_and_zero_disables_keep_alive_timeout() {
    let config = parse(
        Binary::MayGreen,
        &[
            "--header-timeout-ms",
            "700",
            "--keep-alive-timeout-ms",
            "0",
            "--shutdown-timeout-ms",
            "250",
        ],
    )
    .unwrap();
    assert_eq!(config.limits.header_timeout, Duration::from_millis(700));
    assert_eq!(config.limits.keep_alive_timeout, None);
    assert_eq!(config.shutdown_timeout, Duration::from_millis(250));
}

#[test]
fn sync_pool_sizes_its_pool_by_its_workers() {
    let config = parse(Binary::SyncPool, &["--workers", "7"]).unwrap();
    assert_eq!(config.pool_size, 7);
    let cpus = std::thread::available_parallelism().unwrap().get();
    let config = parse(Binary::SyncPool, &[]).unwrap();
    assert_eq!(config.workers, 2 * cpus + 1);
    assert_eq!(config.pool_size, 2 * cpus + 1);
    let config = parse(Binary::SyncPool, &["--workers", "7", "--pool-size", "3"]).unwrap();
    assert_eq!(config.pool_size, 3);
}

#[test]
fn bad_values_name_the_flag_in_one_line() {
    for (args, flag) in [
        (&["--workers", "0"][..], "--workers"),
        (&["--workers", "many"][..], "--workers"),
        (&["--pool-size", "-1"][..], "--pool-size"),
        (&["--delay-ms", "10001"][..], "--delay-ms"),
        (&["--delay-ms", "+5"][..], "--delay-ms"),
        (&["--backend", "redis"][..], "--backend"),
        (&["--db-mode", "sharded"][..], "--db-mode"),
        (&["--listen", "localhost"][..], "--listen"),
        (&["--database-url", "mysql://x"][..], "--database-url"),
        (&["--upstream-url", "https://x/"][..], "--upstream-url"),
        (&["--rows", "0"][..], "--rows"),
        (&["--pool-timeout-ms", "0"][..], "--pool-timeout-ms"),
        (&["--header-timeout-ms", "0"][..], "--header-timeout-ms"),
        (
            &["--keep-alive-timeout-ms", "x"][..],
            "--keep-alive-timeout-ms",
        ),
        (
            &["--shutdown-timeout-ms", "-5"][..],
            "--shutdown-timeout-ms",
        ),
    ] {
        let message = parse(Binary::TokioHyper, args).unwrap_err();
        assert!(message.contains(flag), "{args:?}: {message}");
        assert!(!message.contains('\n'), "{message}");
    }
}
