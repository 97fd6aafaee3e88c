//! `results.csv`: one line per row, the documented columns (docs/results.md) in a fixed
//! order.

use super::table::opt;
use crate::model::row::{LoopKind, Row};

const CSV_COLUMNS: &str = "target,kind,label,binary,group,status,tool,loop,path,backend,delay_ms,connections,rate,via,upstream_keepalive,client_keepalive,sessions,flags,ok_responses,seconds,requests_per_sec,requests_per_sec_min,requests_per_sec_max,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,mean_ms,errors_total,errors_connect,errors_read,errors_write,errors_timeout,errors_non_2xx,errors_other,achieved_rate,saturated,db_sessions_peak,threads_peak,processes_peak,rss_peak_mib,pss_peak_mib,cpu_ms_per_request,postgres_cpu_ms_per_request,nginx_cpu_ms_per_request,tool_cpu_ms_per_request,tool_cpu_share,tool_wait_share,implied_concurrency,client_bound,client_bound_reason,of_tool_ceiling,bound_rps,efficiency,relative,failure";

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
            csv_field(&r.given),
            r.kind.clone(),
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
            opt(m.mean_ms, 3),
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
            r.processes_peak.map_or(String::new(), |v| v.to_string()),
            opt(r.rss_peak_mib, 1),
            opt(r.pss_peak_mib, 1),
            opt(r.cpu_ms_per_request, 4),
            opt(r.postgres_cpu_ms_per_request, 4),
            opt(r.nginx_cpu_ms_per_request, 4),
            opt(r.client.tool_cpu_ms_per_request, 4),
            opt(r.client.tool_cpu_share, 3),
            opt(r.client.tool_wait_share, 3),
            opt(r.client.implied_concurrency, 1),
            r.client.client_bound.to_string(),
            csv_field(r.client.client_bound_reason.as_deref().unwrap_or("")),
            opt(r.client.of_tool_ceiling, 3),
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
