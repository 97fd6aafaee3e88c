//! pgbench with the targets' own statement and client count: the database's limit, the row
//! under every other row. The statement is `shared::sql`'s, with pgbench's variables, and the
//! ids are drawn from the run's `--rows`, as the targets draw them.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::model::settings::Settings;
use crate::model::tool::{self, Errors, Measurement};

/// The pgbench script: a random id in 1..=rows, then the statement a target would prepare.
pub fn script(settings: &Settings) -> String {
    let statement = if settings.delay_ms > 0 {
        shared::sql::SELECT_ROW_AFTER_SLEEP.replace(
            "$2",
            &shared::sql::sleep_seconds(settings.delay_ms).to_string(),
        )
    } else {
        shared::sql::SELECT_ROW.to_string()
    };
    format!(
        "\\set id random(1, {})\n{};\n",
        settings.rows,
        statement.replace("$1", ":id")
    )
}

/// The pgbench command for `settings` against `database_url`, logging every transaction
/// into `dir`. Its sessions carry `application_name` pgbench.
pub fn command(settings: &Settings, database_url: &str, dir: &Path) -> Result<Command> {
    let program =
        crate::stack::process::find_program("pgbench", &["/usr/lib/postgresql/15/bin"])
            .context("pgbench not found: install it with `apt-get install -y postgresql-client`")?;
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir)?;
    let script_file = dir.join("statement.sql");
    fs::write(&script_file, script(settings))?;
    let mut command = Command::new(program);
    command
        .args(["-n", "-M", "prepared", "-c", &clients(settings).to_string()])
        .args(["-j", &threads(settings).to_string()])
        .args(["-T", &settings.duration_s.to_string(), "-l", "--log-prefix"])
        .arg(dir.join("log"))
        .arg("-f")
        .arg(&script_file)
        .arg(database_url)
        .env("PGAPPNAME", "pgbench");
    Ok(command)
}

/// pgbench's clients: the targets' client count, at most their DB sessions.
fn clients(settings: &Settings) -> u32 {
    settings.connections.min(settings.sessions.max(1))
}

/// pgbench's threads (`-j`): two at most, like wrk's.
pub fn threads(settings: &Settings) -> u32 {
    clients(settings).min(2)
}

/// pgbench's per-transaction logs: `client txno latency_us script epoch epoch_us`.
pub fn read_logs(dir: &Path, duration_s: u32) -> Result<Measurement> {
    let mut latencies = Vec::new();
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("log.") {
            continue;
        }
        for line in fs::read_to_string(entry.path())?.lines() {
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<f64>().ok())
            {
                latencies.push(us / 1000.0);
            }
        }
    }
    if latencies.is_empty() {
        bail!("pgbench logged no transactions in {}", dir.display());
    }
    latencies.sort_by(f64::total_cmp);
    let at = |p| tool::percentile_of_sorted(&latencies, p);
    let (latency_spectrum, mean_ms) = tool::spectrum_of_sorted(&latencies);
    Ok(Measurement {
        ok_responses: latencies.len() as u64,
        seconds: f64::from(duration_s),
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        p999_ms: at(99.9),
        max_ms: latencies.last().copied(),
        mean_ms,
        latency_spectrum,
        errors: Errors::default(),
        unsent: 0,
        per_connection: Vec::new(),
        classes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_runs_the_targets_statement_over_the_runs_rows() {
        let settings = Settings {
            rows: 5000,
            delay_ms: 20,
            ..crate::model::preset::find("grinberg").unwrap().settings
        };
        assert_eq!(
            script(&settings),
            "\\set id random(1, 5000)\nSELECT a, b FROM test, pg_sleep(0.02) WHERE a = :id;\n"
        );
        let no_delay = Settings {
            delay_ms: 0,
            ..settings
        };
        assert!(script(&no_delay).ends_with("SELECT a, b FROM test WHERE a = :id;\n"));
    }
}
