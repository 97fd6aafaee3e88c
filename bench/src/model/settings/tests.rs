//! The unit tests of `model::settings`.

use super::*;
use crate::model::fault::parse;

#[test]
fn the_bound_is_the_lower_of_waiting_and_the_cpu() {
    let grinberg = crate::model::preset::find("grinberg").unwrap().settings;
    let two_cpus = |s: &Settings| Settings {
        pin: false,
        ..s.clone()
    };
    // No work: Little's law alone, 100 / 20 ms.
    let none = bound(&grinberg, Some(100), 2, Some(0.1), 20.0).unwrap();
    assert_eq!((none.rps, none.by), (5000.0, BoundBy::Waiting));
    // 10,000 units of 0.1 µs: 1 ms per request; 2 at once is 2000 req/s, under 5000.
    let worked = Settings {
        work: 10_000,
        ..two_cpus(&grinberg)
    };
    let cpu = bound(&worked, Some(100), 2, Some(0.1), 20.0).unwrap();
    assert_eq!(cpu.by, BoundBy::Cpu);
    assert!((cpu.rps - 2000.0).abs() < 1e-6, "{}", cpu.rps);
    // Little's law is lower with few clients: 4 / 20 ms = 200 req/s.
    let few = Settings {
        connections: 4,
        ..worked.clone()
    };
    assert_eq!(
        bound(&few, Some(4), 2, Some(0.1), 20.0).unwrap().by,
        BoundBy::Waiting
    );
    // No delay: the CPU is the only bound.
    let zero = Settings {
        delay_ms: 0,
        ..worked.clone()
    };
    assert_eq!(
        bound(&zero, Some(100), 1, Some(0.1), 0.0)
            .unwrap()
            .rps
            .round(),
        1000.0
    );
    assert_eq!(bound(&zero, Some(100), 1, None, 0.0), None);
    // What can run at once: an event loop per worker; tokio's blocking pool or a
    // thread per connection as many as the CPUs; pinned, one.
    let one_worker = Settings {
        async_workers: Some(1),
        ..worked.clone()
    };
    assert_eq!(one_worker.cpu_parallel(Binary::TokioAxum), 1);
    let cpus = worked.cpus();
    let offloaded = Settings {
        offload: Offload::Blocking,
        ..one_worker.clone()
    };
    assert_eq!(offloaded.cpu_parallel(Binary::TokioAxum), cpus.min(100));
    assert_eq!(offloaded.cpu_parallel(Binary::MayGreen), 1);
    assert_eq!(one_worker.cpu_parallel(Binary::SyncThread), cpus);
    let pinned = Settings {
        pin: true,
        ..worked
    };
    assert_eq!(pinned.cpu_parallel(Binary::SyncThread), 1);
}

#[test]
fn a_sync_target_waits_for_its_fanout_pages_one_after_another() {
    let tsutsumi = crate::model::preset::find("tsutsumi").unwrap().settings;
    let four = Settings {
        fanout: 4,
        ..tsutsumi.clone()
    };
    // 19 workers, 100 ms each page: 190 req/s with one page, 47.5 with four in turn.
    let pool_wait = four.wait_ms(Some(Binary::SyncPool));
    assert_eq!(pool_wait, 400.0);
    let pool = bound(&four, Some(19), 2, None, pool_wait).unwrap().rps;
    assert!((pool - 47.5).abs() < 1e-9, "{pool}");
    assert_eq!(four.wait_ms(Some(Binary::TokioAxum)), 100.0);
    assert_eq!(four.wait_ms(Some(Binary::MayGreen)), 100.0);
    assert_eq!(four.wait_ms(None), 100.0);
    let threads = Settings {
        fanout_with: Fanout::Threads,
        ..four.clone()
    };
    assert_eq!(threads.wait_ms(Some(Binary::SyncThread)), 100.0);
    assert!(four.check_load().is_ok());
    let db = Settings {
        backend: Backend::Db,
        ..four
    };
    assert!(db.check_load().unwrap_err().contains("--backend upstream"));
}

/// Little's law over the mean wait: 90% at 0 ms and 10% at 200 ms wait 20 ms on average,
/// so 19 workers allow 950 req/s and 100 clients 5000; the CPU bound takes the mean work.
#[test]
fn a_mixed_bound_is_littles_law_over_the_mean_wait() {
    let grinberg = crate::model::preset::find("grinberg").unwrap().settings;
    let mixed = Settings {
        mix: Some(crate::model::mix::parse("fast:90:delay_ms=0,slow:10:delay_ms=200").unwrap()),
        ..grinberg.clone()
    };
    let wait = mixed.wait_ms(Some(Binary::SyncPool));
    assert!((wait - 20.0).abs() < 1e-9, "{wait}");
    let pool = bound(&mixed, Some(19), 2, None, wait).unwrap();
    assert!((pool.rps - 950.0).abs() < 1e-6, "{}", pool.rps);
    let tokio = bound(
        &mixed,
        Some(100),
        2,
        None,
        mixed.wait_ms(Some(Binary::TokioAxum)),
    )
    .unwrap();
    assert!((tokio.rps - 5000.0).abs() < 1e-6);
    // A class without a delay of its own waits the settings' (20 ms).
    let defaulted = Settings {
        mix: Some(crate::model::mix::parse("a:1:,b:1:delay_ms=40").unwrap()),
        ..grinberg.clone()
    };
    assert!((defaulted.wait_ms(None) - 30.0).abs() < 1e-9);
    // Work: half the requests 10,000 units of 0.1 µs, so 0.5 ms each on average.
    let worked = Settings {
        mix: Some(crate::model::mix::parse("light:1:,heavy:1:work=10000").unwrap()),
        delay_ms: 0,
        ..grinberg
    };
    let cpu = bound(&worked, Some(100), 2, Some(0.1), worked.wait_ms(None)).unwrap();
    assert_eq!(cpu.by, BoundBy::Cpu);
    assert!((cpu.rps - 4000.0).abs() < 1e-6, "{}", cpu.rps);
}

#[test]
fn a_fault_the_run_cannot_have_is_refused_before_the_load() {
    let grinberg = crate::model::preset::find("grinberg").unwrap().settings;
    let check = |fault: &str, settings: &Settings, private: bool| {
        Settings {
            faults: vec![parse(fault).unwrap()],
            ..settings.clone()
        }
        .check_faults(private)
    };
    assert!(check("db-restart", &grinberg, true).is_ok());
    assert!(check("pool-drain", &grinberg, true)
        .unwrap_err()
        .contains("--pgbouncer"));
    assert!(check("db-stop", &grinberg, false)
        .unwrap_err()
        .contains("--database-url"));
    assert!(check("upstream-stop", &grinberg, true)
        .unwrap_err()
        .contains("--backend upstream"));
    assert!(check("db-stop@8:5", &grinberg, true)
        .unwrap_err()
        .contains("before the measured load"));
    let two = [
        parse("db-stop@2:3").unwrap(),
        parse("db-restart@4").unwrap(),
    ];
    assert!(Settings {
        faults: two.to_vec(),
        ..grinberg.clone()
    }
    .check_faults(true)
    .unwrap_err()
    .contains("overlaps"));
}

#[test]
fn the_flags_words_are_kept_by_name_and_an_unknown_one_is_named() {
    let settings = Settings {
        offload: Offload::Blocking,
        fanout_with: Fanout::Threads,
        db_mode: DbMode::Pipelined,
        ..crate::model::preset::find("tsutsumi").unwrap().settings
    };
    let json = serde_json::to_value(&settings).unwrap();
    assert_eq!(
        (
            &json["backend"],
            &json["db_mode"],
            &json["offload"],
            &json["fanout_with"]
        ),
        (
            &serde_json::json!("upstream"),
            &serde_json::json!("pipelined"),
            &serde_json::json!("blocking"),
            &serde_json::json!("threads")
        )
    );
    assert_eq!(
        serde_json::from_value::<Settings>(json.clone()).unwrap(),
        settings
    );
    for (field, said) in [
        ("backend", "unknown backend"),
        ("db_mode", "unknown db mode"),
    ] {
        let mut bad = json.clone();
        bad[field] = serde_json::json!("redis");
        let error = serde_json::from_value::<Settings>(bad)
            .unwrap_err()
            .to_string();
        assert!(error.contains(said), "{error}");
    }
}
