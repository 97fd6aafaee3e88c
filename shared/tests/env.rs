//! Every flag is also read from its environment variable, and a flag beats the variable.
//! One test in its own process: the environment is process-wide.

use shared::{Backend, Binary, Config};

#[test]
fn flags_come_from_the_environment_and_flags_win() {
    let vars = [
        ("LISTEN", "127.0.0.1:9999"),
        ("DATABASE_URL", "postgres://bench@db:6000/perf"),
        ("POOL_SIZE", "7"),
        ("POOL_TIMEOUT_MS", "250"),
        ("WORKERS", "3"),
        ("MAX_THREADS", "64"),
        ("BACKEND", "upstream"),
        ("DELAY_MS", "20"),
        ("UPSTREAM_URL", "http://127.0.0.1:1234/page"),
        ("ROWS", "5000"),
    ];
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
    let config = Config::try_parse_from(Binary::SyncThread, ["sync-thread"]).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:9999");
    assert_eq!(config.database.to_string(), "postgres://bench@db:6000/perf");
    assert_eq!(config.pool_size, 7);
    assert_eq!(config.pool_timeout.as_millis(), 250);
    assert_eq!(config.workers, 3);
    assert_eq!(config.max_threads, 64);
    assert_eq!(config.defaults.backend, Backend::Upstream);
    assert_eq!(config.defaults.delay_ms, 20);
    assert_eq!(config.upstream.to_string(), "http://127.0.0.1:1234/page");
    assert_eq!(config.defaults.rows, 5000);

    let config =
        Config::try_parse_from(Binary::SyncThread, ["sync-thread", "--workers", "9"]).unwrap();
    assert_eq!(config.workers, 9, "a flag beats its variable");

    std::env::set_var("WORKERS", "lots");
    let error = Config::try_parse_from(Binary::SyncThread, ["sync-thread"]).unwrap_err();
    assert!(error.to_string().contains("--workers"), "{error}");
}
