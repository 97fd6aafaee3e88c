//! `bench up`: the stack and the chosen targets, each direct and behind one nginx, kept up
//! for any load tool; with `--listen-host`, described in `stack.json` and on a status
//! endpoint (with samples of its processes) for `bench run --remote` on another host.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;

use crate::measure::tools::{self, ToolKind};
use crate::model::plan::UpPlan;
use crate::model::preset;
use crate::remote::{self, DescribedTarget, Description, StatusServer};
use crate::stack::{Nginx, ProxyRoute};
use crate::stack::{Stack, Target};

/// A stack that is up: stop it by dropping it.
pub struct Up {
    // Fields drop in order: the status endpoint, nginx, the targets, then the stack.
    _status: StatusServer,
    _proxy: Nginx,
    pub targets: Vec<Target>,
    pub proxied: Vec<ProxyRoute>,
    /// The database, as the load host reaches it.
    pub database_url: String,
    pub description: Description,
    pub stack_json: PathBuf,
    pub stack: Stack,
}

pub fn up(plan: UpPlan) -> Result<Up> {
    let host = plan.host;
    let stack = Stack::start(&plan.options)?;
    // The private cluster gives the load host a role of its own (never the superuser);
    // a database of the user's is handed on as given.
    let database_url = if stack.postgres.is_embedded() {
        stack.postgres.expose(host)?
    } else {
        stack.database_url().to_string()
    };
    let mut targets: Vec<Target> = Vec::new();
    for binary in &plan.binaries {
        let mut all = match &plan.scenario {
            Some(name) => preset::find(name)?.settings.target_flags(*binary),
            None => Vec::new(),
        };
        all.retain(|(name, _)| !plan.flags.iter().any(|(given, _)| given == name));
        all.extend(plan.flags.iter().cloned());
        targets.push(stack.launch(*binary, &all)?);
    }
    let routes: Vec<(String, SocketAddr)> = targets
        .iter()
        .map(|t| (t.binary.name().to_string(), t.addr))
        .collect();
    let (proxy, proxied) = stack.proxy(&routes, plan.upstream_keepalive, 1)?;
    let watched = watched(&stack, &targets, &proxy);
    let versions = tools::locate(ToolKind::Wrk)
        .map_or_else(|_| Vec::new(), |tool| super::versions(&stack, &tool, false));
    let described: Vec<DescribedTarget> = targets
        .iter()
        .zip(&proxied)
        .map(|(target, route)| {
            DescribedTarget::new(
                target.binary,
                format!("http://{}/test", target.addr),
                Some(format!("http://{}/test", route.listen)),
                target
                    .flags
                    .iter()
                    .map(|(f, v)| format!("{f} {v}"))
                    .collect(),
            )
        })
        .collect();
    let (status, description) = StatusServer::start(
        host,
        plan.token,
        |status_url| Description {
            status_url: Some(status_url),
            versions,
            ..Description::new(
                host.to_string(),
                database_url.clone(),
                stack.upstream_url(),
                described,
            )
        },
        watched,
    )?;
    // Its status URL carries the token and its database URL a password: for its owner only.
    let stack_json = stack.run_dir.join("stack.json");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&stack_json)?;
        file.write_all((serde_json::to_string_pretty(&description)? + "\n").as_bytes())?;
    }
    Ok(Up {
        targets,
        proxied,
        database_url,
        description,
        stack_json,
        _status: status,
        _proxy: proxy,
        stack,
    })
}

/// The processes the status endpoint samples: each target, PostgreSQL and nginx (with
/// their children's CPU).
fn watched(stack: &Stack, targets: &[Target], proxy: &Nginx) -> Vec<remote::Watched> {
    let mut watched: Vec<remote::Watched> = targets
        .iter()
        .map(|t| remote::Watched {
            name: t.binary.name().to_string(),
            pid: t.pid(),
            children: false,
        })
        .collect();
    if let Some(pid) = stack.postgres.server_pid() {
        watched.push(remote::Watched {
            name: "postgres".into(),
            pid,
            children: true,
        });
    }
    watched.push(remote::Watched {
        name: "nginx".into(),
        pid: proxy.pid(),
        children: true,
    });
    watched
}
