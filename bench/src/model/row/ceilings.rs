//! The rows of a run read together for what the client cost them: each row's share of the
//! tool's own ceiling (nginx alone, the same tool and connections), and the lines a report
//! puts under a table with client-bound rows ([`super::super::client_limit`] marks them).

use super::Row;

/// Fills in each row's tool ceiling from the run's nginx `/static` rows: the same tool, the
/// same connections and keep-alive, nginx alone.
pub fn set_ceilings(rows: &mut [Row]) {
    let ceilings: Vec<(String, u32, bool, f64)> = rows
        .iter()
        .filter(|r| r.is_ok() && r.subject_name() == "nginx-static")
        .map(|r| {
            let s = &r.config;
            (
                r.tool.clone(),
                s.connections,
                s.client_keepalive,
                r.requests_per_sec,
            )
        })
        .collect();
    for row in rows.iter_mut().filter(|r| r.is_ok()) {
        let s = &row.config;
        let ceiling = ceilings.iter().find(|(tool, c, keepalive, _)| {
            *tool == row.tool && *c == s.connections && *keepalive == s.client_keepalive
        });
        if let Some(&(_, _, _, rps)) = ceiling.filter(|c| c.3 > 0.0) {
            row.client.tool_ceiling_rps = Some(rps);
            row.client.of_tool_ceiling = Some(row.requests_per_sec / rps);
        }
    }
}

/// The lines a report puts under a table that has client-bound rows, naming each and why:
/// empty when there are none.
pub fn notes(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.client.client_bound)
        .map(|r| {
            format!(
                "{}: client-bound ({}); its relative figure is left out",
                r.target,
                r.client.client_bound_reason.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// One sentence per tool ceiling measured in the run: "wrk reaches N req/s against nginx
/// alone here (c=C)".
pub fn ceiling_lines(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.is_ok() && r.subject_name() == "nginx-static")
        .map(|r| {
            format!(
                "{} reaches {:.0} req/s against nginx alone here (c={}, {:.0}% of its cores busy)",
                r.tool,
                r.requests_per_sec,
                r.config.connections,
                r.client.tool_cpu_share.unwrap_or(0.0) * 100.0
            )
        })
        .collect()
}
