//! The table every command prints and every `report.md` starts with: req/s against the
//! baseline, latencies, errors, the bound and its efficiency, sessions, memory and CPU, and
//! what the load tool cost (a row the client capped says so beside its req/s).

use std::fmt::Write as _;

use crate::model::row::Row;

pub fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or(String::new(), |v| format!("{v:.decimals$}"))
}

pub fn dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or("–".into(), |v| format!("{v:.decimals$}"))
}

/// The table, then a line per empty cell's reason: every `–` says why it is empty.
pub fn table(rows: &[Row], baseline: &str) -> String {
    let mut out = String::new();
    let mut empty = Empty::default();
    let _ = writeln!(
        out,
        "| target | req/s | vs {baseline} | P50 ms | P99 ms | P99.9 ms | max ms | errors | bound req/s | efficiency | #DB | RSS MiB | PSS MiB | threads | CPU ms/req | PG CPU ms/req | nginx CPU ms/req | tool CPU ms/req | tool busy+wait | implied c |"
    );
    let _ = writeln!(
        out,
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    );
    for r in rows {
        let m = &r.measurement;
        if !r.is_ok() {
            let why = r
                .failure
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("");
            let _ = writeln!(
                out,
                "| {} | {} | {} |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |",
                r.target,
                r.status.name().to_uppercase(),
                why.replace('|', "/")
            );
            continue;
        }
        let spread = if r.rounds_rps.len() > 1 {
            format!(
                " ({:.0}–{:.0})",
                r.requests_per_sec_min, r.requests_per_sec_max
            )
        } else {
            String::new()
        };
        let saturated = if r.saturated == Some(true) {
            " saturated"
        } else {
            ""
        };
        let client_bound = if r.client.client_bound {
            " client-bound"
        } else {
            ""
        };
        let short = if r.short_run.is_some() { " short" } else { "" };
        let c = &r.client;
        let busy = c
            .tool_cpu_share
            .zip(c.tool_wait_share)
            .map(|(cpu, wait)| format!("{:.0}%+{:.0}%", cpu * 100.0, wait * 100.0));
        let threads = r.threads_peak.map(|t| match r.processes_peak {
            Some(p) if p > 1 => format!("{t} in {p} procs"),
            _ => t.to_string(),
        });
        let mut cell =
            |column: Column, value: Option<String>| value.unwrap_or_else(|| empty.mark(column, r));
        let relative = match r.relative {
            None if r.client.client_bound => "left out".to_string(),
            relative => cell(Column::Relative, relative.map(|v| format!("{v:.2}"))),
        };
        let f = |v: Option<f64>, decimals: usize| v.map(|v| format!("{v:.decimals$}"));
        let cells = [
            relative,
            cell(Column::Latency, f(m.p50_ms, 1)),
            cell(Column::Latency, f(m.p99_ms, 1)),
            cell(Column::P999, f(m.p999_ms, 1)),
            cell(Column::Latency, f(m.max_ms, 1)),
            m.errors.total.to_string(),
            cell(Column::Bound, bound_cell(r)),
            cell(Column::Bound, f(r.efficiency, 2)),
            cell(Column::Sessions, r.db_sessions_peak.map(|v| v.to_string())),
            cell(Column::Process, f(r.rss_peak_mib, 1)),
            cell(Column::Pss, f(r.pss_peak_mib, 1)),
            cell(Column::Process, threads),
            cell(Column::Process, f(r.cpu_ms_per_request, 3)),
            cell(Column::Postgres, f(r.postgres_cpu_ms_per_request, 3)),
            cell(Column::Nginx, f(r.nginx_cpu_ms_per_request, 3)),
            cell(Column::Tool, f(c.tool_cpu_ms_per_request, 3)),
            cell(Column::Tool, busy),
            cell(
                Column::Implied,
                c.implied_concurrency
                    .map(|i| format!("{i:.0}/{}", r.config.connections)),
            ),
        ];
        let _ = writeln!(
            out,
            "| {} | {:.0}{spread}{saturated}{client_bound}{short} | {} |",
            r.target,
            r.requests_per_sec,
            cells.join(" | ")
        );
    }
    out += &empty.notes();
    out
}

/// The columns a cell may be empty in, each for its own reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Column {
    Relative,
    Latency,
    P999,
    Bound,
    Sessions,
    Process,
    Pss,
    Postgres,
    Nginx,
    Tool,
    Implied,
}

impl Column {
    fn heading(self) -> &'static str {
        match self {
            Column::Relative => "vs baseline",
            Column::Latency => "latency",
            Column::P999 => "P99.9",
            Column::Bound => "bound and efficiency",
            Column::Sessions => "#DB",
            Column::Process => "RSS, threads and CPU",
            Column::Pss => "PSS",
            Column::Postgres => "PG CPU",
            Column::Nginx => "nginx CPU",
            Column::Tool => "tool CPU and busy+wait",
            Column::Implied => "implied c",
        }
    }
}

/// The bound, marked `(CPU)` when the CPU sets it.
fn bound_cell(r: &Row) -> Option<String> {
    match (r.bound_rps, r.bound_by) {
        (Some(rps), Some(crate::model::settings::BoundBy::Cpu)) => Some(format!("{rps:.0} (CPU)")),
        (rps, _) => rps.map(|v| format!("{v:.0}")),
    }
}

/// Why a row's cell in `column` is empty.
fn why_empty(column: Column, r: &Row) -> String {
    let subject = r.subject_name();
    let not_a_server = matches!(subject, "pgbench" | "nginx-static");
    let external = r.external.as_ref();
    let remote = external.is_some_and(|e| e.measured_by.is_some());
    let no_pid = external.is_some_and(|e| e.pid.is_none()) && !remote;
    match column {
        Column::Relative => "no baseline row measured in its group to divide by".into(),
        Column::Latency => format!("{} reported no latencies", r.tool),
        Column::P999 if r.tool == "ab" => "ab does not report P99.9".into(),
        Column::P999 => format!("{} reported no P99.9", r.tool),
        Column::Bound if not_a_server => "not a server of the contract".into(),
        Column::Bound if external.is_some_and(|e| e.model.is_none()) => {
            "no --external-model stated: the harness cannot see what bounds a server it did not build".into()
        }
        Column::Bound => "nothing in its configuration bounds it (no delay and no work, or no limit on what waits)".into(),
        Column::Sessions if not_a_server => "not a server of the contract".into(),
        Column::Sessions if external.is_some_and(|e| e.application_name.is_none()) => {
            "no --external-app NAME=APP given: its sessions cannot be told apart".into()
        }
        Column::Sessions => "its sessions were not sampled (no database sessions seen)".into(),
        Column::Process | Column::Pss if no_pid => {
            "no --external-pid NAME=PID given: its process is not watched".into()
        }
        Column::Pss if remote => "a remote stack's samples have RSS, not PSS".into(),
        Column::Process | Column::Pss if remote => "the stack host's samples did not arrive".into(),
        Column::Process | Column::Pss if subject == "pgbench" => "pgbench is the load itself".into(),
        Column::Process => "its process was not watched".into(),
        Column::Pss => "not sampled (a soak samples RSS alone)".into(),
        Column::Postgres if remote => "the database is the stack host's: its processes are watched there".into(),
        Column::Postgres => {
            "the database is not the stack's own (--database-url, or a remote stack): its processes are not watched".into()
        }
        Column::Nginx if r.config.via == crate::model::settings::Via::Direct || not_a_server => {
            "loaded directly (--via direct): no proxy nginx in between".into()
        }
        Column::Nginx => "the proxy nginx was not watched".into(),
        Column::Tool => "the load tool's cost was not measured".into(),
        Column::Implied if r.loop_kind == crate::model::tool::LoopKind::Open => {
            "open loop: a fixed rate holds no fixed number of connections".into()
        }
        Column::Implied => "no mean latency to multiply by".into(),
    }
}

/// The empty cells of a table, by column and reason, with the rows they are in.
#[derive(Default)]
struct Empty {
    reasons: Vec<(Column, String, Vec<String>)>,
}

impl Empty {
    /// `–`, with the reason recorded.
    fn mark(&mut self, column: Column, r: &Row) -> String {
        let why = why_empty(column, r);
        match self
            .reasons
            .iter_mut()
            .find(|(c, w, _)| *c == column && *w == why)
        {
            Some((_, _, rows)) if rows.contains(&r.target) => {}
            Some((_, _, rows)) => rows.push(r.target.clone()),
            None => self.reasons.push((column, why, vec![r.target.clone()])),
        }
        "–".into()
    }

    /// A line per reason under the table: `– in COLUMN (rows): why`.
    fn notes(&self) -> String {
        let mut out = String::new();
        if self.reasons.is_empty() {
            return out;
        }
        out += "\n";
        let mut reasons: Vec<&(Column, String, Vec<String>)> = self.reasons.iter().collect();
        reasons.sort_by_key(|(c, _, _)| *c);
        for (column, why, rows) in reasons {
            let _ = writeln!(
                out,
                "- – in {} ({}): {why}",
                column.heading(),
                rows.join(", ")
            );
        }
        out
    }
}

pub fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::case::{Case, Subject};
    use crate::model::preset;
    use crate::model::row::Round;
    use crate::model::tool::Measurement;

    fn row(subject: Subject, label: &str, round: Round) -> Row {
        let case = Case {
            label: label.into(),
            subject,
            settings: preset::find("grinberg").unwrap().settings,
            group: String::new(),
        };
        Row::build(&case, vec![round], None)
    }

    /// Every `–` says why: a target on a database that is not the stack's own has no PG CPU,
    /// and ab reports no P99.9; each reason is one line under the table, naming the rows.
    #[test]
    fn every_dash_has_a_reason_under_the_table() {
        let measured = Round {
            measurement: Measurement {
                ok_responses: 9000,
                seconds: 10.0,
                p50_ms: Some(20.0),
                p99_ms: Some(30.0),
                max_ms: Some(40.0),
                mean_ms: Some(21.0),
                ..Measurement::default()
            },
            cpu_s: Some(1.0),
            rss_peak_mib: Some(11.0),
            pss_peak_mib: Some(9.5),
            threads_peak: Some(7),
            processes_peak: Some(1),
            sessions_peak: Some(19),
            nginx_cpu_s: Some(0.5),
            ..Round::default()
        };
        let mut axum = row(
            Subject::Target(shared::Binary::TokioAxum),
            "tokio-axum",
            measured.clone(),
        );
        axum.tool = "ab".into();
        let mut pool = row(
            Subject::Target(shared::Binary::SyncPool),
            "sync-pool",
            measured,
        );
        pool.measurement.p999_ms = Some(35.0);
        let text = table(&[axum, pool], "sync-pool");
        let dashes = text.matches(" – ").count();
        assert!(dashes >= 4, "{text}");
        assert!(
            text.contains("- – in P99.9 (tokio-axum): ab does not report P99.9"),
            "{text}"
        );
        assert!(
            text.contains(
                "- – in PG CPU (tokio-axum, sync-pool): the database is not the stack's own"
            ),
            "{text}"
        );
        // Each reason once, every empty column explained.
        for heading in ["P99.9", "PG CPU", "tool CPU and busy+wait"] {
            assert_eq!(
                text.matches(&format!("- – in {heading} (")).count(),
                1,
                "{text}"
            );
        }
        assert!(text.contains("| 7 |"), "threads: {text}");
        assert!(text.contains("| 9.5 |"), "PSS: {text}");
    }
}
