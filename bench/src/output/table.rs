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

pub fn table(rows: &[Row], baseline: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| target | req/s | vs {baseline} | P50 ms | P99 ms | P99.9 ms | max ms | errors | bound req/s | efficiency | #DB | RSS MiB | CPU ms/req | PG CPU ms/req | nginx CPU ms/req | tool CPU ms/req | tool busy+wait | implied c |"
    );
    let _ = writeln!(
        out,
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
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
                "| {} | {} | {} |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |",
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
        let _ = writeln!(
            out,
            "| {} | {:.0}{spread}{saturated}{client_bound}{short} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.target,
            r.requests_per_sec,
            match r.relative {
                None if r.client.client_bound => "left out".to_string(),
                relative => dash(relative, 2),
            },
            dash(m.p50_ms, 1),
            dash(m.p99_ms, 1),
            dash(m.p999_ms, 1),
            dash(m.max_ms, 1),
            m.errors.total,
            dash(r.bound_rps, 0),
            dash(r.efficiency, 2),
            r.db_sessions_peak.map_or("–".into(), |v| v.to_string()),
            dash(r.rss_peak_mib, 1),
            dash(r.cpu_ms_per_request, 3),
            dash(r.postgres_cpu_ms_per_request, 3),
            dash(r.nginx_cpu_ms_per_request, 3),
            dash(c.tool_cpu_ms_per_request, 3),
            busy.unwrap_or("–".into()),
            c.implied_concurrency
                .map_or("–".into(), |i| format!("{i:.0}/{}", r.config.connections)),
        );
    }
    out
}

pub fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}
