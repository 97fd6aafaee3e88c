//! The unit tests of `model::case`.

use super::*;
use crate::model::knob::{parse_vary, points};
use crate::model::preset::{all, find, names};
use crate::model::settings::bound_rps;

#[test]
fn a_remote_targets_bound_comes_from_its_own_flags() {
    let s = find("grinberg").unwrap().settings;
    let flags = |f: &[(&str, &str)]| {
        f.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect::<Vec<_>>()
    };
    let bound_of = |binary: Binary, flags: &[(String, String)]| {
        s.as_started_with(flags)
            .and_then(|at| at.effective_concurrency(binary))
    };
    let pool = flags(&[("--pool-size", "19"), ("--workers", "19")]);
    assert_eq!(bound_of(Binary::SyncPool, &pool), Some(19));
    let axum = flags(&[("--pool-size", "16")]);
    assert_eq!(bound_of(Binary::TokioAxum, &axum), Some(16));
    let piped = flags(&[
        ("--pool-size", "16"),
        ("--workers", "2"),
        ("--db-mode", "pipelined"),
    ]);
    assert_eq!(bound_of(Binary::TokioHyper, &piped), Some(2));
    assert_eq!(bound_of(Binary::CompioTpc, &piped), Some(2));
    // Started with the target's defaults: unknown, so only the clients bound it.
    assert_eq!(bound_of(Binary::TokioAxum, &[]), None);
}

#[test]
fn every_preset_has_a_unique_name_and_a_source() {
    let names = names();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    for scenario in all() {
        assert!(!scenario.source.is_empty() && !scenario.summary.is_empty());
    }
}

#[test]
fn sweep_presets_parse_and_flip_map_has_twelve_points() {
    for scenario in all() {
        if let Shape::Sweep { vary, .. } = scenario.shape {
            let varies: Vec<_> = vary.iter().map(|v| parse_vary(v).unwrap()).collect();
            assert!(!varies.is_empty(), "{}", scenario.name);
        }
    }
    let Shape::Sweep { vary, targets, .. } = find("flip-map").unwrap().shape else {
        panic!("flip-map is a sweep");
    };
    let varies: Vec<_> = vary.iter().map(|v| parse_vary(v).unwrap()).collect();
    assert_eq!(points(&varies).len(), 12);
    assert_eq!(targets.len(), 4);
}

#[test]
fn unknown_scenarios_list_the_valid_names() {
    let error = find("nope").err().expect("an unknown name is an error");
    let text = error.to_string();
    for name in names() {
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn grinberg_gives_sync_pool_its_workers_as_sessions_and_async_the_rest() {
    let s = find("grinberg").unwrap().settings;
    assert_eq!(s.pool_size(Binary::SyncPool), 19);
    assert_eq!(s.pool_size(Binary::TokioAxum), 100);
    assert_eq!(s.workers(Binary::TokioAxum), Some(6));
    assert_eq!(s.workers(Binary::SyncThread), None);
}

#[test]
fn bounds_follow_littles_law() {
    let s = find("grinberg").unwrap().settings;
    // sync-pool: 19 workers / 20 ms = 950 req/s.
    let sync = bound_rps(&s, s.effective_concurrency(Binary::SyncPool)).unwrap();
    assert!((sync - 950.0).abs() < 1e-9);
    // async: min(100 clients, 100 sessions) / 20 ms = 5000 req/s.
    let tokio = bound_rps(&s, s.effective_concurrency(Binary::TokioHyper)).unwrap();
    assert!((tokio - 5000.0).abs() < 1e-9);
    // Thread per core: its threads' shares of the 100 sessions add up to 100.
    assert_eq!(s.effective_concurrency(Binary::CompioTpc), Some(100));
    let piped = Settings {
        db_mode: DbMode::Pipelined,
        async_workers: Some(2),
        ..s.clone()
    };
    assert_eq!(piped.effective_concurrency(Binary::CompioTpc), Some(2));
    assert_eq!(
        piped.target_flags(Binary::CompioTpc).last(),
        Some(&("--db-mode".to_string(), "pipelined".to_string()))
    );
    // No delay, no bound.
    let p = find("paterson").unwrap().settings;
    assert_eq!(bound_rps(&p, Some(20)), None);
    // Upstream: nothing in an async target limits it; the clients do.
    let t = find("tsutsumi").unwrap().settings;
    assert_eq!(t.effective_concurrency(Binary::TokioAxum), None);
    let bound = bound_rps(&t, None).unwrap();
    assert!((bound - 4000.0).abs() < 1e-9);
    // Open loop: never above the rate asked for.
    let open = Settings {
        rate: Some(10),
        delay_ms: 5,
        ..s
    };
    assert_eq!(bound_rps(&open, Some(100)), Some(10.0));
}

#[test]
fn tsutsumi_sweeps_sync_pool_and_gasc_runs_both_paths_at_both_rates() {
    let targets = [Binary::SyncPool, Binary::TokioAxum];
    let t = find("tsutsumi").unwrap();
    let cases = expand(&t, &t.settings, &targets);
    assert_eq!(cases.len(), 2 + 8);
    assert_eq!(cases.last().unwrap().label, "sync-pool w=1000");
    assert_eq!(cases.last().unwrap().settings.sync_workers, Some(1000));

    let g = find("gasc").unwrap();
    let cases = expand(&g, &g.settings, &targets);
    assert_eq!(cases.len(), 2 * 2 * 2);
    assert!(cases.iter().all(|c| c.settings.rate.is_some()));
    assert!(cases.iter().any(|c| c.settings.path == Endpoint::Json));

    // limits: pgbench, then nginx alone with each load tool.
    let l = find("limits").unwrap();
    let cases = expand(&l, &l.settings, &targets);
    assert_eq!(cases[0].subject, Subject::Pgbench);
    let tools: Vec<ToolKind> = cases[1..]
        .iter()
        .filter(|c| c.subject == Subject::NginxStatic && c.settings.path == Endpoint::Static)
        .map(|c| c.settings.tool)
        .collect();
    assert_eq!(tools, ToolKind::ALL);
    assert_eq!(cases[1].label, "nginx-static wrk c=100");
}

#[test]
fn the_leaderboard_pipelines_every_target_on_tokio_postgres() {
    let board = find("leaderboard").unwrap();
    let cases = expand(&board, &board.settings, &Binary::ALL);
    let at_16: Vec<&str> = cases
        .iter()
        .filter(|c| c.group == "c=16" && matches!(c.subject, Subject::Target(_)))
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(
        at_16,
        [
            "tokio-axum pool c=16",
            "tokio-axum pipelined c=16",
            "tokio-actix pool c=16",
            "tokio-actix pipelined c=16",
            "tokio-hyper pool c=16",
            "tokio-hyper pipelined c=16",
            "compio-tpc pool c=16",
            "compio-tpc pipelined c=16",
        ]
    );
}

#[test]
fn a_ceiling_adds_nginx_alone_once_per_load() {
    let targets = [Binary::SyncPool, Binary::TokioAxum];
    // The leaderboard asks for its ceilings: one nginx row per client count.
    let board = find("leaderboard").unwrap();
    let cases = expand(&board, &board.settings, &targets);
    let ceilings: Vec<&str> = cases
        .iter()
        .filter(|c| c.subject == Subject::NginxStatic)
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(
        ceilings,
        [
            "nginx-static wrk c=16",
            "nginx-static wrk c=64",
            "nginx-static wrk c=256"
        ]
    );
    // --ceiling on an open loop: nginx alone in a closed loop at the same connections.
    let g = find("gasc").unwrap();
    let open = Settings {
        ceiling: true,
        ..g.settings.clone()
    };
    let cases = expand(&g, &open, &targets);
    let last = cases.last().unwrap();
    assert_eq!(last.subject, Subject::NginxStatic);
    assert_eq!(
        (last.settings.rate, last.settings.tool),
        (None, ToolKind::Oha)
    );
    assert_eq!(
        cases
            .iter()
            .filter(|c| c.subject == Subject::NginxStatic)
            .count(),
        1
    );
}
