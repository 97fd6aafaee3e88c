//! The commands' work, below their arguments (cargo's `ops`): each function takes a plan of
//! plain values and a started stack, does the command's work through the measuring session,
//! and writes its results; `cli/` parses the flags into the plan and prints.
//!
//! - `run`: a preset's cases, each target (and external) in turn;
//! - `compare`: two subjects in turn, round by round, and their ratio;
//! - `sweep`: every target at every point of a grid of knobs;
//! - `client`: the client side, N GETs per client model;
//! - `up`: a stack kept up for any load tool, with its description and status endpoint;
//! - `prepare`: what run, compare, sweep, verify and client share before their work (the
//!   stack, the targets built, the externals reached).

pub mod client;
pub mod compare;
pub mod prepare;
pub mod run;
pub mod sweep;
pub mod up;

use std::process::Command;

use crate::measure::tools::{self, Tool};
use crate::model::meta::{Meta, SUITE};
use crate::model::plan::Plan;
use crate::observe::machine;
use crate::stack::Stack;

/// Versions of everything that shaped the numbers.
pub fn versions(stack: &Stack, tool: &Tool, pgbouncer: bool) -> Vec<(String, String)> {
    let mut out = vec![
        ("bench".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        (tool.kind.name().to_string(), tool.version.clone()),
    ];
    let command_line = |program: &str, args: &[&str]| -> Option<String> {
        let o = Command::new(program).args(args).output().ok()?;
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        text.lines().next().map(|l| l.trim().to_string())
    };
    if let Some(v) = command_line("rustc", &["-V"]) {
        out.push(("rustc".into(), v));
    }
    if let Ok(mut client) = stack.postgres.connect() {
        if let Ok(row) = client.query_one("SELECT version()", &[]) {
            out.push(("postgresql".into(), row.get(0)));
        }
    }
    if let Some(nginx) = crate::stack::process::find_program("nginx", &["/usr/sbin"]) {
        if let Some(v) = command_line(&nginx.to_string_lossy(), &["-v"]) {
            out.push(("nginx".into(), v));
        }
    }
    if pgbouncer {
        if let Some(v) = tools::dpkg_version("pgbouncer") {
            out.push(("pgbouncer".into(), v));
        }
    }
    out
}

/// Now, as an HTTP date.
pub fn now() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

/// Everything about a run but its rows, when it ends.
pub fn meta(stack: &Stack, plan: &Plan, tool: &Tool, started: String) -> Meta {
    let mut versions = versions(stack, tool, plan.settings.pgbouncer);
    versions.extend(
        plan.remote_versions
            .iter()
            .map(|(name, version)| (format!("{name} (stack host)"), version.clone())),
    );
    versions.extend(plan.peer_versions.iter().cloned());
    Meta {
        suite: SUITE,
        bench_version: env!("CARGO_PKG_VERSION"),
        scenario: plan.scenario.name.to_string(),
        source: plan.scenario.source.to_string(),
        started,
        finished: now(),
        settings: plan.settings.clone(),
        baseline: plan.baseline.clone(),
        machine: machine::read(),
        versions,
        missing_targets: plan.missing_targets.clone(),
        command: crate::output::html::command_line(),
        commit: commit(),
    }
}

/// The checkout's commit the harness was built from, `+dirty` when files differ from it; none
/// outside a git checkout.
pub fn commit() -> Option<String> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}+dirty") } else { head })
}
