//! Cases: what one row measures (a [`Subject`] with its settings and group), and how a preset
//! expands into them for the chosen targets, the externals beside them, or a remote stack.

use shared::{Backend, Binary, DbMode, Fanout, Model};

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
        Shape::Fanout(counts) => fanout(settings, targets, counts),
        Shape::Mix(spec) => mix(settings, targets, spec),
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

/// Every target with the mix (the settings', or the preset's `spec`), and with its first
/// class alone at that class's share of the rate: two groups, the same load of the first class
/// with and without the others.
fn mix(settings: &Settings, targets: &[Binary], spec: &str) -> Vec<Case> {
    let mix = settings
        .mix
        .clone()
        .or_else(|| super::mix::parse(spec).ok())
        .unwrap_or_else(|| super::mix::Mix {
            classes: Vec::new(),
        });
    // The first class alone at its own share of the rate: the same load of it,
    // without the others.
    let alone = mix.first_alone();
    let share = |rate: u32| {
        let first = alone.classes.first().map_or(0, |c| c.weight);
        (u64::from(rate) * u64::from(first) / u64::from(mix.total_weight().max(1))).max(1) as u32
    };
    let first = alone.classes.first().map_or("first", |c| c.name.as_str());
    let groups = [
        (
            format!("{first} alone"),
            Settings {
                mix: Some(alone.clone()),
                rate: settings.rate.map(share),
                ..settings.clone()
            },
        ),
        (
            "mixed".to_string(),
            Settings {
                mix: Some(mix.clone()),
                ..settings.clone()
            },
        ),
    ]
    .into_iter();
    groups_of_every_target(groups, targets, ", ")
}

/// One group per K (a `--fanout` on the command line replaces the preset's): every target,
/// then each sync target again with `--fanout threads`, labelled `NAME threads, k=K`.
fn fanout(settings: &Settings, targets: &[Binary], counts: &[u8]) -> Vec<Case> {
    let asked = [settings.fanout];
    let counts = if settings.fanout > 1 {
        &asked[..]
    } else {
        counts
    };
    let mut cases = Vec::new();
    for &k in counts {
        let group = format!("k={k}");
        let at = Settings {
            fanout: k,
            ..settings.clone()
        };
        for &binary in targets {
            cases.push(target_case(
                binary,
                at.clone(),
                format!("{binary}, {group}"),
                &group,
            ));
        }
        for &binary in targets {
            if Fanout::Threads.supported_by(binary) {
                let threads = Settings {
                    fanout_with: Fanout::Threads,
                    ..at.clone()
                };
                cases.push(target_case(
                    binary,
                    threads,
                    format!("{binary} threads, {group}"),
                    &group,
                ));
            }
        }
    }
    cases
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
mod tests;
