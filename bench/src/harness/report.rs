//! The run's output: `results.json` (rows plus machine, versions and configuration),
//! `results.csv`, `report.md` (a Grinberg-style table with the bound, #DB, RSS and CPU
//! columns) and the SVG charts.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::row::LoopKind;
use super::scenario::{Endpoint, Settings};
use super::Row;

/// Everything about a run but its rows.
#[derive(Clone, Debug, Serialize)]
pub struct Meta {
    pub suite: &'static str,
    pub bench_version: &'static str,
    pub scenario: String,
    pub source: String,
    pub started: String,
    pub finished: String,
    pub settings: Settings,
    pub baseline: String,
    pub machine: Machine,
    pub versions: Vec<(String, String)>,
    /// Targets that were asked for but not built.
    pub missing_targets: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub os: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let os = fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpus: super::procfs::cpus(),
            cpu_model,
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            os,
        }
    }
}

#[derive(Serialize)]
struct Results<'a> {
    #[serde(flatten)]
    meta: &'a Meta,
    results: &'a [Row],
}

/// Writes every output file into `dir`.
pub fn write_all(dir: &Path, meta: &Meta, rows: &[Row]) -> Result<()> {
    let json = serde_json::to_string_pretty(&Results {
        meta,
        results: rows,
    })?;
    fs::write(dir.join("results.json"), json + "\n")
        .with_context(|| format!("cannot write {}", dir.display()))?;
    fs::write(dir.join("results.csv"), csv(rows))?;
    fs::write(dir.join("report.md"), markdown(meta, rows))?;
    super::chart::throughput(&dir.join("throughput.svg"), &meta.scenario, rows)?;
    super::chart::latency(&dir.join("latency.svg"), &meta.scenario, rows)?;
    for (file, title, group) in timelines(&meta.scenario, rows) {
        super::chart::timeline(&dir.join(file), &title, &group)?;
    }
    Ok(())
}

/// The timeline charts of a run with faults: one per group of rows that share their faults,
/// named after the group's first fault (`timeline-db-restart.svg`), or `timeline.svg` when
/// the whole run has the same ones.
pub fn timelines<'a>(scenario: &str, rows: &'a [Row]) -> Vec<(String, String, Vec<&'a Row>)> {
    let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
    for row in rows.iter().filter(|r| r.timeline.is_some()) {
        match groups.iter_mut().find(|(g, _)| *g == row.group) {
            Some((_, members)) => members.push(row),
            None => groups.push((row.group.clone(), vec![row])),
        }
    }
    let single = groups.len() == 1;
    groups
        .into_iter()
        .map(|(group, members)| {
            let kind = members[0].faults.first().map_or("fault", |f| f.kind.name());
            let file = if single {
                "timeline.svg".to_string()
            } else {
                format!("timeline-{kind}.svg")
            };
            let faults: Vec<String> = members[0].faults.iter().map(|f| f.fault.clone()).collect();
            let title = match group.as_str() {
                "" => format!("{scenario}, {}", faults.join(", ")),
                group => format!("{scenario}, {group}"),
            };
            (file, title, members)
        })
        .collect()
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or(String::new(), |v| format!("{v:.decimals$}"))
}

fn dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or("–".into(), |v| format!("{v:.decimals$}"))
}

const CSV_COLUMNS: &str = "target,binary,group,status,tool,loop,path,backend,delay_ms,connections,rate,via,upstream_keepalive,client_keepalive,sessions,flags,ok_responses,seconds,requests_per_sec,requests_per_sec_min,requests_per_sec_max,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,errors_total,errors_connect,errors_read,errors_write,errors_timeout,errors_non_2xx,errors_other,achieved_rate,saturated,db_sessions_peak,threads_peak,rss_peak_mib,cpu_ms_per_request,postgres_cpu_ms_per_request,nginx_cpu_ms_per_request,bound_rps,efficiency,relative,failure";

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(CSV_COLUMNS);
    out.push('\n');
    for r in rows {
        let c = &r.config;
        let m = &r.measurement;
        let e = &m.errors;
        let fields = [
            csv_field(&r.target),
            r.binary.as_deref().unwrap_or("").to_string(),
            csv_field(&r.group),
            r.status.name().to_string(),
            r.tool.clone(),
            match r.loop_kind {
                LoopKind::Closed => "closed".to_string(),
                LoopKind::Open => "open".to_string(),
            },
            c.path.to_string(),
            c.backend.name().to_string(),
            c.delay_ms.to_string(),
            c.connections.to_string(),
            c.rate.map_or(String::new(), |v| v.to_string()),
            c.via.to_string(),
            c.upstream_keepalive.to_string(),
            c.client_keepalive.to_string(),
            c.sessions.to_string(),
            csv_field(&r.flags.join(" ")),
            m.ok_responses.to_string(),
            format!("{:.3}", m.seconds),
            format!("{:.1}", r.requests_per_sec),
            format!("{:.1}", r.requests_per_sec_min),
            format!("{:.1}", r.requests_per_sec_max),
            opt(m.p50_ms, 3),
            opt(m.p90_ms, 3),
            opt(m.p99_ms, 3),
            opt(m.p999_ms, 3),
            opt(m.max_ms, 3),
            e.total.to_string(),
            e.connect.to_string(),
            e.read.to_string(),
            e.write.to_string(),
            e.timeout.to_string(),
            e.non_2xx.to_string(),
            e.other.to_string(),
            opt(r.achieved_rate, 1),
            r.saturated.map_or(String::new(), |v| v.to_string()),
            r.db_sessions_peak.map_or(String::new(), |v| v.to_string()),
            r.threads_peak.map_or(String::new(), |v| v.to_string()),
            opt(r.rss_peak_mib, 1),
            opt(r.cpu_ms_per_request, 4),
            opt(r.postgres_cpu_ms_per_request, 4),
            opt(r.nginx_cpu_ms_per_request, 4),
            opt(r.bound_rps, 1),
            opt(r.efficiency, 3),
            opt(r.relative, 2),
            csv_field(r.failure.as_deref().unwrap_or("")),
        ];
        out += &fields.join(",");
        out.push('\n');
    }
    out
}

/// The table for the terminal and report.md.
pub fn table(rows: &[Row], baseline: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| target | req/s | vs {baseline} | P50 ms | P99 ms | P99.9 ms | max ms | errors | bound req/s | efficiency | #DB | RSS MiB | CPU ms/req | PG CPU ms/req | nginx CPU ms/req |"
    );
    let _ = writeln!(
        out,
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
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
                "| {} | {} | {} |  |  |  |  |  |  |  |  |  |  |  |  |",
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
        let _ = writeln!(
            out,
            "| {} | {:.0}{spread}{saturated} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.target,
            r.requests_per_sec,
            dash(r.relative, 2),
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
        );
    }
    out
}

pub fn markdown(meta: &Meta, rows: &[Row]) -> String {
    let s = &meta.settings;
    let mut out = String::new();
    let _ = writeln!(out, "# rust-web-perf: `{}`\n", meta.scenario);
    let _ = writeln!(out, "From: {}.\n", meta.source);
    let _ = writeln!(
        out,
        "Load: {} {} connections{}, {} s measured after {} s warm-up, {} round(s); `{}` backend{}, delay {} ms; via {} (upstream keep-alive {}), client keep-alive {}; {} DB sessions{}; sync-pool workers {}, async workers {}{}.\n",
        s.tool,
        s.connections,
        s.rate.map_or(String::new(), |r| format!(" at {r} req/s (open loop)")),
        s.duration_s,
        s.warmup_s,
        s.rounds,
        s.backend.name(),
        if s.path == Endpoint::Test { String::new() } else { format!(" ({})", s.path) },
        s.delay_ms,
        s.via,
        on_off(s.upstream_keepalive),
        on_off(s.client_keepalive),
        s.sessions,
        if s.pgbouncer { " through pgbouncer" } else { "" },
        s.sync_workers.map_or("default".into(), |w| w.to_string()),
        s.async_workers.map_or("default".into(), |w| w.to_string()),
        if s.pin { "; target pinned to CPU 0" } else { "" },
    );
    let m = &meta.machine;
    let _ = writeln!(
        out,
        "Machine: {} CPUs ({}), {} GiB, {}, Linux {}. Started {}, finished {}.\n",
        m.cpus, m.cpu_model, m.memory_gib, m.os, m.kernel, meta.started, meta.finished
    );
    out += &table(rows, &meta.baseline);
    let _ = writeln!(
        out,
        "\n- **req/s** counts 2xx responses only; with several rounds, the median and (min–max).\n\
         - **bound** is Little's law, min(clients, what limits the model: pool, workers, threads) / delay; \
         **efficiency** = req/s / bound. No bound without a delay.\n\
         - **#DB** is the peak of the target's sessions in `pg_stat_activity`, sampled every 100 ms.\n\
         - **CPU ms/req** is the target's user + system CPU over the measured load, per response; \
         PG and nginx the same for PostgreSQL's backends and the proxy.\n"
    );
    let spread: Vec<&Row> = rows
        .iter()
        .filter(|r| r.connection_requests.is_some())
        .collect();
    if !spread.is_empty() {
        out += "Answers per client connection (wrk, one thread per connection): how evenly each target served its connections.\n\n";
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
        out += "\n";
    }
    let held: Vec<&Row> = rows.iter().filter(|r| r.idle.is_some()).collect();
    if !held.is_empty() {
        out += "Idle keep-alive connections held on each target (each after one `GET /json`, the target's idle timeout off): memory and threads with them held (per connection, and where it goes: the growth with the connections open and nothing sent yet, then the anonymous memory's growth after the request split into stacks, threads' and coroutines', and the heap), `/health` on a fresh connection meanwhile, and the load beside them against the same load alone.\n\n";
        out += "| target | idle asked / opened / answered | KiB per connection | of which: accepted, silent / stack / heap | RSS MiB before → held | threads before → held | /health p50 / p99 ms (failed) | load req/s alone → beside them | load P99 ms alone → beside | the first unanswered |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n";
        for r in held {
            if let Some(i) = &r.idle {
                let _ = writeln!(
                    out,
                    "| {} | {} / {} / {} | {} | {} / {} / {} | {:.1} → {:.1} | {} → {} | {} / {} ({}) | {:.0} → {:.0} | {} → {} | {} |",
                    r.binary.as_deref().unwrap_or(&r.target),
                    i.asked,
                    i.opened,
                    i.answered,
                    dash(i.kib_per_connection, 1),
                    dash(i.kib_accepted, 1),
                    dash(i.kib_stack, 1),
                    dash(i.kib_heap, 1),
                    i.rss_before_mib,
                    i.rss_held_mib,
                    i.threads_before,
                    i.threads_held,
                    dash(i.health_p50_ms, 2),
                    dash(i.health_p99_ms, 2),
                    i.health_failed,
                    i.load_alone_rps,
                    r.requests_per_sec,
                    dash(i.load_alone_p99_ms, 1),
                    dash(r.measurement.p99_ms, 1),
                    i.first_unanswered.as_deref().unwrap_or("–")
                );
            }
        }
        out += "\n";
    }
    let slow: Vec<&Row> = rows.iter().filter(|r| r.slow_clients.is_some()).collect();
    if !slow.is_empty() {
        out += "Slow clients, straight to the target beside the load tool's: each sends its request over about a second and reads the answer slowly, then starts again. What they completed during the measured load, and what the load tool got (compare with the same target without them).\n\n";
        out += "| target | slow clients | their requests completed | their errors | load req/s | load P99 ms |\n|---|--:|--:|--:|--:|--:|\n";
        for r in slow {
            if let Some(c) = &r.slow_clients {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.0} | {} |",
                    r.binary.as_deref().unwrap_or(&r.target),
                    c.clients,
                    c.completed,
                    c.errors,
                    r.requests_per_sec,
                    dash(r.measurement.p99_ms, 1)
                );
            }
        }
        out += "\n";
    }
    let faulted: Vec<&Row> = rows.iter().filter(|r| !r.faults.is_empty()).collect();
    if !faulted.is_empty() {
        out += "Faults, from the probe (100 req/s, 10 a second on each of 10 connections of its own): errors while the fault lasted and after the service was back, the time from the service being back to the first 2xx and to 90% of the probe's 2xx rate before the fault, and the slowest probe request around it.\n\n";
        out += "| target | fault | at s | back after s | errors during | errors after | first 2xx ms | 90% ms | worst latency ms | survived |\n|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n";
        for r in faulted {
            for f in &r.faults {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.1} | {:.2} | {} | {} | {} | {} | {:.0} | {} |",
                    r.binary.as_deref().unwrap_or(&r.target),
                    f.fault,
                    f.started_s,
                    f.back_s - f.started_s,
                    f.errors_during,
                    f.errors_after,
                    dash(f.first_2xx_after_back_ms, 0),
                    f.recovered_90_after_back_ms
                        .map_or("not within the load".to_string(), |ms| format!("{ms:.0}")),
                    f.worst_latency_ms,
                    if f.target_survived { "yes" } else { "no" }
                );
            }
        }
        out += "\n";
        for (file, _, _) in timelines(&meta.scenario, rows) {
            let _ = writeln!(out, "![timeline]({file})\n");
        }
    }
    let externals: Vec<&Row> = rows.iter().filter(|r| r.external.is_some()).collect();
    if !externals.is_empty() {
        out += "Servers this run did not start, marked `[external]` (`--external`) or `[remote HOST]` (a stack `bench up` started there, `--remote`) in every table and chart:\n\n";
        for r in externals {
            if let Some(e) = &r.external {
                let _ = writeln!(
                    out,
                    "- {}: {}, {}.{}{}",
                    r.target,
                    e.url,
                    if e.verified {
                        "passed the contract checks"
                    } else {
                        "not checked against the contract (`--no-verify`): unverified"
                    },
                    e.measured_by
                        .as_ref()
                        .map_or(String::new(), |by| format!(" Measured by {by}.")),
                    e.unobserved
                        .as_ref()
                        .map_or(String::new(), |why| format!(" Empty columns: {why}."))
                );
            }
        }
        out += "\n";
    }
    if !meta.missing_targets.is_empty() {
        let _ = writeln!(
            out,
            "Not built, so not measured: {}.\n",
            meta.missing_targets.join(", ")
        );
    }
    out += "Versions:\n\n";
    for (name, version) in &meta.versions {
        let _ = writeln!(out, "- {name}: {version}");
    }
    out += "\nCharts: [throughput](throughput.svg), [latency](latency.svg).\n";
    out
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// The run's output folder: given, or `results/<scenario>-<UTC time>`.
pub fn out_dir(given: Option<&Path>, scenario: &str) -> Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("results").join(format!(
            "{scenario}-{}",
            compact_utc(std::time::SystemTime::now())
        )),
    };
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// `20261123-091650` (UTC), for folder names that sort by time.
pub fn compact_utc(time: std::time::SystemTime) -> String {
    // "Mon, 23 Nov 2026 09:16:50 GMT"
    let text = httpdate::fmt_http_date(time);
    let parts: Vec<&str> = text.split_whitespace().collect();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    match parts.as_slice() {
        [_, day, month, year, clock, _] => {
            let month = MONTHS.iter().position(|m| m == month).map_or(0, |i| i + 1);
            format!("{year}{month:02}{day}-{}", clock.replace(':', ""))
        }
        _ => text.replace([' ', ',', ':'], ""),
    }
}

#[cfg(test)]
mod folder_tests {
    use super::*;

    #[test]
    fn result_folders_sort_by_time() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_425_410);
        assert_eq!(compact_utc(t), "20261123-091650");
    }
}
