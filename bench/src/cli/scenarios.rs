//! `bench scenarios`: the presets, their parameters and the article each comes from.

use std::process::ExitCode;

use anyhow::Result;

use crate::model::preset;

pub fn exec() -> Result<ExitCode> {
    println!(
        "{:<13} {:<5} {:>5} {:>8} {:>8} {:>6}  what it runs  [source]",
        "scenario", "tool", "c", "delay", "backend", "#DB"
    );
    for s in preset::all() {
        let c = &s.settings;
        println!(
            "{:<13} {:<5} {:>5} {:>6}ms {:>8} {:>6}  {}  [{}]",
            s.name,
            c.tool,
            c.connections,
            c.delay_ms,
            c.backend.name(),
            c.sessions,
            s.summary,
            s.source
        );
    }
    println!("\nOverride any parameter with flags, e.g. `bench run --scenario grinberg --duration 30s --rounds 3`.");
    Ok(ExitCode::SUCCESS)
}
