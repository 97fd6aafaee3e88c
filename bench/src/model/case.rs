//! Cases: what one row measures (a [`Subject`] with its settings and group), and how a preset
//! expands into them for the chosen targets, the externals beside them, or a remote stack.

use shared::{Backend, Binary, DbMode, Model};

use super::external::External;
use super::fault::FaultKind;
use super::preset::{Preset, Shape};
use super::settings::{Endpoint, Settings};
use super::tool::ToolKind;

/// What is measured in one case.
#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    Target(Binary),
    /// A server the harness did not start (`--external`).
    External(Box<External>),
    /// pgbench running the targets' statement.
    Pgbench,
    /// nginx answering `return 200` by itself.
    NginxStatic,
}

impl Subject {
    /// The target's or the external server's name (`None` for pgbench and nginx alone).
    pub fn name(&self) -> Option<&str> {
        match self {
            Subject::Target(binary) => Some(binary.name()),
            Subject::External(external) => Some(&external.name),
            Subject::Pgbench | Subject::NginxStatic => None,
        }
    }

    /// The name a row of it carries: the target's, or the external's with its mark.
    pub fn label(&self) -> String {
        match self {
            Subject::External(external) => external.label(),
            other => other.name().unwrap_or_default().to_string(),
        }
    }
}

/// One row to measure.
#[derive(Clone, Debug)]
pub struct Case {
    /// The row's name: the target, or e.g. `sync-pool w=50`.
    pub label: String,
    pub subject: Subject,
    pub settings: Settings,
    /// Cases with the same group compare with each other (`relative`).
    pub group: String,
}

/// `cases` with each external beside the references: one case per group of target cases
/// (with the load settings of the group's first target), after the group's last case.
pub fn with_externals(cases: Vec<Case>, externals: &[External]) -> Vec<Case> {
    if externals.is_empty() {
        return cases;
    }
    let mut out: Vec<Case> = Vec::with_capacity(cases.len() + externals.len());
    for (i, case) in cases.iter().enumerate() {
        out.push(case.clone());
        if !matches!(case.subject, Subject::Target(_)) {
            continue;
        }
        let last_of_group = !cases[i + 1..]
            .iter()
            .any(|c| c.group == case.group && matches!(c.subject, Subject::Target(_)));
        if !last_of_group {
            continue;
        }
        let first = cases
            .iter()
            .find(|c| c.group == case.group && matches!(c.subject, Subject::Target(_)))
            .unwrap_or(case);
        for external in externals {
            let label = if case.group.is_empty() {
                external.label()
            } else {
                format!("{} {}", external.label(), case.group)
            };
            out.push(Case {
                label,
                subject: Subject::External(Box::new(external.clone())),
                settings: first.settings.clone(),
                group: case.group.clone(),
            });
        }
    }
    out
}

/// The cases of a remote stack (`--remote`): each target case runs on the remote target of
/// its binary, with the case's load settings (the target keeps the flags `bench up` gave it,
/// so a case that differs only in those is left out), labelled with its host. Cases without
/// a target (pgbench, nginx alone) are left out: they would measure this host.
pub fn onto_remote(cases: Vec<Case>, remotes: &[External]) -> Vec<Case> {
    let mut out: Vec<Case> = Vec::new();
    for case in cases {
        let Subject::Target(binary) = case.subject else {
            continue;
        };
        let Some(remote) = remotes.iter().find(|r| r.binary == Some(binary)) else {
            continue;
        };
        if out.iter().any(|c| {
            c.group == case.group && c.subject == Subject::External(Box::new(remote.clone()))
        }) {
            continue;
        }
        out.push(Case {
            label: case.label.replacen(binary.name(), &remote.label(), 1),
            subject: Subject::External(Box::new(remote.clone())),
            ..case
        });
    }
    out
}

/// The cases of `scenario` with `settings` (the scenario's, after overrides) for `targets`.
pub fn expand(scenario: &Preset, settings: &Settings, targets: &[Binary]) -> Vec<Case> {
    let cases = expand_preset(scenario, settings, targets);
    if settings.ceiling {
        with_ceilings(cases)
    } else {
        cases
    }
}

/// An nginx `/static` case for each load the cases put on their subjects (tool, connections,
/// keep-alive): the tool's ceiling here, with nothing else behind nginx. The rows of the
/// others are then a share of it ([`crate::model::row::ceilings::set_ceilings`]).
pub fn with_ceilings(mut cases: Vec<Case>) -> Vec<Case> {
    let mut ceilings: Vec<Case> = Vec::new();
    for case in &cases {
        if matches!(case.subject, Subject::Pgbench | Subject::NginxStatic) {
            continue;
        }
        let ceiling = nginx_static(&case.settings);
        if !ceilings
            .iter()
            .chain(&cases)
            .any(|c| c.label == ceiling.label)
        {
            ceilings.push(ceiling);
        }
    }
    cases.extend(ceilings);
    cases
}

/// nginx's `/static` page alone, closed loop, with the load of `settings`.
fn nginx_static(settings: &Settings) -> Case {
    let s = Settings {
        path: Endpoint::Static,
        rate: None,
        faults: Vec::new(),
        slow_clients: 0,
        idle_connections: 0,
        ..settings.clone()
    };
    Case {
        label: format!(
            "nginx-static {} c={}{}",
            s.tool,
            s.connections,
            if s.client_keepalive { "" } else { " close" }
        ),
        subject: Subject::NginxStatic,
        settings: s,
        group: String::new(),
    }
}

fn expand_preset(scenario: &Preset, settings: &Settings, targets: &[Binary]) -> Vec<Case> {
    match scenario.shape {
        Shape::None | Shape::Sweep { .. } | Shape::Soak => one_per_target(settings, targets),
        Shape::SyncPoolSweep(workers) => sync_pool_sweep(settings, targets, workers),
        Shape::OpenLoop(rates) => open_loop(settings, targets, rates),
        Shape::Leaderboard(clients) => leaderboard(settings, targets, clients),
        // A `--fault` on the command line replaces the preset's.
        Shape::Faults(faults) if settings.faults.is_empty() => {
            let groups = faults.iter().map(|fault| {
                let backend = match fault.kind {
                    FaultKind::UpstreamStop => Backend::Upstream,
                    _ => settings.backend,
                };
                let faulted = Settings {
                    faults: vec![fault.clone()],
                    backend,
                    ..settings.clone()
                };
                (fault.to_string(), faulted)
            });
            groups_of_every_target(groups, targets, " ")
        }
        Shape::Connections(counts) if settings.idle_connections == 0 => {
            let groups = counts.iter().map(|&n| {
                let held = Settings {
                    idle_connections: n,
                    ..settings.clone()
                };
                (format!("{n} idle"), held)
            });
            groups_of_every_target(groups, targets, ", ")
        }
        Shape::Faults(_) | Shape::Connections(_) => one_per_target(settings, targets),
        Shape::SlowClients => {
            let k = settings.slow_clients;
            let groups = [
                ("no slow clients".to_string(), 0),
                (format!("{k} slow clients"), k),
            ]
            .into_iter()
            .map(|(group, slow)| {
                let with = Settings {
                    slow_clients: slow,
                    ..settings.clone()
                };
                (group, with)
            });
            groups_of_every_target(groups, targets, ", ")
        }
        Shape::Limits => {
            let pgbench = Case {
                label: "pgbench".into(),
                subject: Subject::Pgbench,
                settings: settings.clone(),
                group: String::new(),
            };
            // nginx alone with each load tool: the tools' ceilings side by side.
            std::iter::once(pgbench)
                .chain(ToolKind::ALL.into_iter().map(|tool| {
                    nginx_static(&Settings {
                        tool,
                        ..settings.clone()
                    })
                }))
                .collect()
        }
    }
}

fn target_case(binary: Binary, settings: Settings, label: String, group: &str) -> Case {
    Case {
        label,
        subject: Subject::Target(binary),
        settings,
        group: group.to_string(),
    }
}

/// One case per target, ungrouped. Only the tokio targets pipeline; in pipelined mode the
/// others have no row.
fn one_per_target(settings: &Settings, targets: &[Binary]) -> Vec<Case> {
    targets
        .iter()
        .filter(|b| settings.db_mode.supported_by(**b))
        .map(|&b| target_case(b, settings.clone(), b.name().into(), ""))
        .collect()
}

/// Every target in each group, labelled `TARGET{separator}GROUP`.
fn groups_of_every_target(
    groups: impl Iterator<Item = (String, Settings)>,
    targets: &[Binary],
    separator: &str,
) -> Vec<Case> {
    let mut cases = Vec::new();
    for (group, settings) in groups {
        for &binary in targets {
            let label = format!("{binary}{separator}{group}");
            cases.push(target_case(binary, settings.clone(), label, &group));
        }
    }
    cases
}

/// Every target, then each thread-pool target (sync-pool) again at each worker count
/// (Tsutsumi's thread sweep): its workers are what bound it.
fn sync_pool_sweep(settings: &Settings, targets: &[Binary], workers: &[u32]) -> Vec<Case> {
    let mut cases = one_per_target(settings, targets);
    for &binary in targets.iter().filter(|b| b.model() == Model::ThreadPool) {
        for &w in workers {
            let swept = Settings {
                sync_workers: Some(w),
                sessions: settings.sessions.max(w),
                ..settings.clone()
            };
            let label = format!("{binary} w={w}");
            cases.push(target_case(binary, swept, label, ""));
        }
    }
    cases
}

/// Each target at each open-loop rate, for `/json` and for the db backend (API-Hour).
fn open_loop(settings: &Settings, targets: &[Binary], rates: &[u32]) -> Vec<Case> {
    let mut cases = Vec::new();
    for path in [Endpoint::Json, Endpoint::Test] {
        for &rate in rates {
            let group = format!("{path} at {rate}/s");
            for &binary in targets {
                let open = Settings {
                    path,
                    backend: Backend::Db,
                    rate: Some(settings.rate.unwrap_or(rate)),
                    ..settings.clone()
                };
                let label = format!("{} {group}", binary.name());
                cases.push(target_case(binary, open, label, &group));
            }
        }
        if settings.rate.is_some() {
            // One rate given on the command line: the loop above made duplicates.
            cases.dedup_by(|a, b| a.label == b.label);
        }
    }
    cases
}

/// At each client count: every target on tokio-postgres (the tokio targets and compio-tpc)
/// pooled and pipelined, and pgbench with as many
/// clients, in one group per count.
fn leaderboard(settings: &Settings, targets: &[Binary], clients: &[u32]) -> Vec<Case> {
    let mut cases = Vec::new();
    for &c in clients {
        let group = format!("c={c}");
        let at = Settings {
            connections: c,
            ..settings.clone()
        };
        for &binary in targets.iter().filter(|b| b.pipelines()) {
            for mode in [DbMode::Pool, DbMode::Pipelined] {
                let moded = Settings {
                    db_mode: mode,
                    ..at.clone()
                };
                let label = format!("{binary} {mode} {group}");
                cases.push(target_case(binary, moded, label, &group));
            }
        }
        cases.push(Case {
            label: format!("pgbench {group}"),
            subject: Subject::Pgbench,
            settings: Settings { sessions: c, ..at },
            group,
        });
    }
    cases
}

#[cfg(test)]
mod tests {
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
}
