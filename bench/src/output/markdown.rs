//! A run's `report.md`: the load in one paragraph, the table with what its columns mean, then
//! a section per figure beyond the table (how evenly each connection was served, and each
//! extra's own section), the servers this run did not start, the machine and the versions.

use std::fmt::Write as _;

use super::table::{on_off, table};
use super::Section;
use crate::model::meta::{Meta, SUITE};
use crate::model::row::ceilings;
use crate::model::row::Row;
use crate::model::settings::{BoundBy, Endpoint};

/// `report.md` of a run: `sections` are the extras' (each empty when no row has its figures).
pub fn run_report(meta: &Meta, rows: &[Row], sections: &[&dyn Section]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {SUITE}: `{}`\n", meta.scenario);
    let _ = writeln!(out, "From: {}.\n", meta.source);
    let _ = writeln!(out, "{}\n", load_paragraph(meta));
    out += &table(rows, &meta.baseline);
    out += "\n- **req/s** counts 2xx responses only; with several rounds, the median and (min–max).\n\
         - **bound** is Little's law, min(clients, what limits the model: pool, workers, threads) / delay, \
         or, with `work=N`, the CPU bound when it is lower, marked (CPU): min(the requests that can hold a CPU \
         at once, the CPUs the target may use) / (N × the calibrated µs per unit, under Machine); \
         **efficiency** = req/s / bound. No bound without a delay or work.\n\
         - **#DB** is the peak of the target's sessions in `pg_stat_activity`, sampled every 100 ms.\n\
         - **CPU ms/req** is the target's user + system CPU over the measured load, per response; \
         PG and nginx the same for PostgreSQL's backends and the proxy.\n\
         - **tool CPU ms/req** is the load tool's own CPU (its process tree) per response; \
         **tool busy+wait** the share of the cores it could use (its working threads, at most its CPUs) \
         that it ran, then waited ready for a CPU; **implied c** is req/s × mean latency against the \
         connections (Little's law, closed loop only).\n\
         - **client-bound** marks a row the client capped: the tool busy or waiting at least 80% of \
         its cores' time, or an implied concurrency under 70% of the connections. Its ratio to the \
         baseline is left out.\n\n";
    out += &failures(rows);
    out += &client_limits(rows);
    out += &per_connection(rows);
    out += &cpu_tails(rows);
    out += &super::mix::section(rows);
    for section in sections {
        out += &section.markdown(&meta.scenario, rows);
    }
    out += &externals(rows);
    if !meta.missing_targets.is_empty() {
        let _ = writeln!(
            out,
            "Not built, so not measured: {}.\n",
            meta.missing_targets.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "Machine: {}. Started {}, finished {}{}.\n",
        meta.machine.describe(),
        meta.started,
        meta.finished,
        meta.commit
            .as_ref()
            .map_or(String::new(), |c| format!("; suite at commit `{c}`"))
    );
    out += "Versions:\n\n";
    for (name, version) in &meta.versions {
        let _ = writeln!(out, "- {name}: {version}");
    }
    out += "\nCharts: [throughput](throughput.svg), [latency](latency.svg).\n";
    out
}

/// The rows the CPU bounds (`work=N`, where the CPU bound is below Little's law), with their
/// tails: a model whose request holds its thread makes the others on that thread wait, which
/// shows in P99 / P50 (Paterson's latency variance). Empty when no row is CPU-bound.
pub fn cpu_tails(rows: &[Row]) -> String {
    let bound: Vec<&Row> = rows
        .iter()
        .filter(|r| r.is_ok() && r.bound_by == Some(BoundBy::Cpu))
        .collect();
    if bound.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "## Where the CPU is the bound: the tails\n\n\
         Rows whose work per request makes the CPU, not the waiting, their bound. A request that \
         holds an event loop, a green worker or a core's thread holds every request queued on it; \
         the kernel preempts a thread per request. P99 / P50 is the spread that causes.\n\n\
         | target | point | req/s | CPU bound req/s | efficiency | P50 ms | P99 ms | P99 / P50 | CPU ms/req |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    let f =
        |v: Option<f64>, digits: usize| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
    for r in bound {
        let m = &r.measurement;
        let ratio = m
            .p99_ms
            .zip(m.p50_ms)
            .filter(|(_, p50)| *p50 > 0.0)
            .map(|(p99, p50)| p99 / p50);
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            r.target,
            r.point.as_ref().map_or("–".to_string(), |p| p.label()),
            r.requests_per_sec,
            f(r.bound_rps, 0),
            f(r.efficiency, 2),
            f(m.p50_ms, 1),
            f(m.p99_ms, 1),
            f(ratio, 1),
            f(r.cpu_ms_per_request, 3),
        );
    }
    out.push('\n');
    out
}

/// Every failed row's whole reason: the table shows its first line (for a target that died,
/// how: its exit status or signal, its core, its panic), this its log's last lines too.
fn failures(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows.iter().filter(|r| !r.is_ok()) {
        let Some(failure) = row.failure.as_deref() else {
            continue;
        };
        if out.is_empty() {
            out += "## Failures\n\n";
        }
        let (first, rest) = failure.split_once('\n').unwrap_or((failure, ""));
        let _ = writeln!(out, "**{}** ({}): {first}\n", row.target, row.status.name());
        if !rest.trim().is_empty() {
            // A fence inside the log would end the block early.
            let rest = rest.trim_end().replace("```", "` ` `");
            let _ = writeln!(out, "```\n{rest}\n```\n");
        }
    }
    out
}

/// The load, in one paragraph.
fn load_paragraph(meta: &Meta) -> String {
    let s = &meta.settings;
    format!(
        "Load: {} {} connections{}, {} s measured after {} s warm-up, {} round(s); `{}` backend{}, delay {} ms{}; via {} (upstream keep-alive {}), client keep-alive {}; {} DB sessions{}; sync-pool workers {}, async workers {}{}.",
        s.tool,
        s.connections,
        s.rate.map_or(String::new(), |r| format!(" at {r} req/s (open loop)")),
        s.duration_s,
        s.warmup_s,
        s.rounds,
        s.backend.name(),
        if s.path == Endpoint::Test { String::new() } else { format!(" ({})", s.path) },
        s.delay_ms,
        match (s.work, s.offload) {
            (0, _) => String::new(),
            (n, shared::Offload::Inline) => format!(", work {n} units after it, inline"),
            (n, offload) => format!(", work {n} units after it (tokio targets: --offload {offload})"),
        },
        s.via,
        on_off(s.upstream_keepalive),
        on_off(s.client_keepalive),
        s.sessions,
        if s.pgbouncer { " through pgbouncer" } else { "" },
        s.sync_workers.map_or("default".into(), |w| w.to_string()),
        s.async_workers.map_or("default".into(), |w| w.to_string()),
        if s.pin { "; target pinned to CPU 0" } else { "" },
    )
}

/// The rows the client capped and why, the rows too short for their latencies, and the
/// tools' ceilings measured in the run.
fn client_limits(rows: &[Row]) -> String {
    let mut out = String::new();
    let unchecked: Vec<&Row> = rows.iter().filter(|r| !r.unchecked.is_empty()).collect();
    if !unchecked.is_empty() {
        out += "Measured with contract checks that could not be made (`--accept-unchecked`):\n\n";
        for r in unchecked {
            let _ = writeln!(out, "- {}: {}", r.target, r.unchecked.join("; "));
        }
        out += "\n";
    }
    let short: Vec<&Row> = rows.iter().filter(|r| r.short_run.is_some()).collect();
    if !short.is_empty() {
        out += "Rows marked short (the measured load was too short for their latencies; lengthen the run with `--duration`):\n\n";
        for r in short {
            let _ = writeln!(
                out,
                "- {}: {}",
                r.target,
                r.short_run.as_deref().unwrap_or("")
            );
        }
        out += "\n";
    }
    let notes = ceilings::notes(rows);
    if !notes.is_empty() {
        out +=
            "Client-bound rows (their throughput is the load tool's as much as the server's):\n\n";
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
        out += "\n";
    }
    let ceilings = ceilings::ceiling_lines(rows);
    if !ceilings.is_empty() {
        out += "The load tools' ceilings, nginx's `/static` page alone:\n\n";
        for line in ceilings {
            let _ = writeln!(out, "- {line}");
        }
        for r in rows.iter().filter(|r| r.subject_name() != "nginx-static") {
            if let (Some(share), Some(ceiling)) =
                (r.client.of_tool_ceiling, r.client.tool_ceiling_rps)
            {
                let _ = writeln!(
                    out,
                    "- {}: {:.0} req/s, {:.0}% of {}'s {:.0} against nginx alone",
                    r.target,
                    r.requests_per_sec,
                    share * 100.0,
                    r.tool,
                    ceiling
                );
            }
        }
        out += "\n";
    }
    out
}

/// `--per-connection`: how evenly each target served its connections.
fn per_connection(rows: &[Row]) -> String {
    let spread: Vec<&Row> = rows
        .iter()
        .filter(|r| r.connection_requests.is_some())
        .collect();
    if spread.is_empty() {
        return String::new();
    }
    let mut out = String::from("Answers per client connection (wrk, one thread per connection): how evenly each target served its connections.\n\n");
    out += "| target | connections | min | median | max | CV | starved |\n|---|--:|--:|--:|--:|--:|--:|\n";
    for r in spread {
        if let Some(c) = &r.connection_requests {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {:.2} | {} |",
                r.target, c.connections, c.min, c.median, c.max, c.cv, c.starved
            );
        }
    }
    out + "\n"
}

/// The servers this run did not start, and what is known of each.
fn externals(rows: &[Row]) -> String {
    let externals: Vec<&Row> = rows.iter().filter(|r| r.external.is_some()).collect();
    if externals.is_empty() {
        return String::new();
    }
    let mut out = String::from("Servers other than the references, marked `[external]` (`--external`), `[peer]` (the articles' Python stacks, `--peers python`) or `[remote HOST]` (a stack `bench up` started there, `--remote`) in every table and chart:\n\n");
    for r in externals {
        if let Some(e) = &r.external {
            let checked = match (e.verified, e.breaks.len()) {
                (false, _) => "not checked against the contract (`--no-verify`): unverified".to_string(),
                (true, 0) => "passed the contract checks".to_string(),
                (true, n) => format!(
                    "passed the checks the measurement rests on, and breaks {n} conformance rule{} (nothing measured depends on them): {}",
                    if n == 1 { "" } else { "s" },
                    e.breaks
                        .iter()
                        .map(|b| format!("`{}`", b.trim_end_matches('.')))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            };
            let bound = match (&e.model, e.measured_by.is_some()) {
                (_, true) => String::new(),
                (Some(model), false) => format!(" Its bound is from its model, `{model}`."),
                (None, false) => " No bound and no efficiency: its model is not stated (`--external-model NAME=pool:N`).".to_string(),
            };
            let _ = writeln!(
                out,
                "- {}: {}, {checked}.{bound}{}{}{}{}",
                r.target,
                e.url,
                e.measured_by
                    .as_ref()
                    .map_or(String::new(), |by| format!(" Measured by {by}.")),
                e.unobserved
                    .as_ref()
                    .map_or(String::new(), |why| format!(" Empty columns: {why}.")),
                e.upstream_page
                    .as_ref()
                    .map_or(String::new(), |page| format!(
                        " Its upstream backend fetched {page}."
                    )),
                e.database
                    .as_ref()
                    .map_or(String::new(), |db| format!(" Database: {db}.")),
            );
        }
    }
    out + "\n"
}
