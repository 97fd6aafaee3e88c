//! Was the client the limit? What the load tool cost ([`ToolCost`]), the concurrency a
//! closed-loop row implies by Little's law, and the mark of a row the client capped
//! (`client_bound`), which `relative`, capacities, `compare`'s ratio and a sweep's map never
//! use silently. The thresholds are measured on the suite's 2-core machine (docs/scenarios.md,
//! "Was the client the limit?").

use serde::{Deserialize, Serialize};

use super::tool::{LoopKind, Measurement, ToolCost};

/// A tool that was running or ready to run (waiting for a CPU) this share of its cores' time
/// was hardly ever waiting for the server: it had work the whole time, and the row measured
/// it as much as the server. Measured on the suite's two cores: with `/json` at zero delay,
/// wrk ran or waited 0.85 to 0.97 beside every target (16 to 256 connections), 0.58 and 0.70
/// against nginx's single worker alone at 16 and 64; with Grinberg's 20 ms delay 0.03 to 0.18;
/// starved on purpose (a real-time busy loop on its CPU) 1.0 and more.
pub const BUSY_SHARE: f64 = 0.8;

/// A closed loop whose throughput × mean latency is under this share of its connections
/// spent the rest of its time in the client (between an answer and the next request, or
/// reconnecting), not waiting for the server. Measured on the suite's two cores: with `/json`
/// at zero delay, the async and green targets and nginx alone imply 0.76 to 0.95 of their
/// connections, sync-thread (whose threads take wrk's CPU) 0.50 to 0.61, sync-pool (whose
/// closed connections wrk opens again) 0.27 to 0.51; with a 20 ms delay every target 0.99.
pub const IMPLIED_SHARE: f64 = 0.7;

/// What the client cost and whether it capped the row: the row's fields, flattened in.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClientCost {
    /// The load tool's user + system CPU per answered request (its whole process tree).
    pub tool_cpu_ms_per_request: Option<f64>,
    /// The tool's CPU as a share of the cores it could keep busy (its working threads, at
    /// most the CPUs it may run on: all of them, or all but CPU 0 with `--pin`).
    pub tool_cpu_share: Option<f64>,
    /// The share of those cores' time the tool was ready to run but had no CPU.
    pub tool_wait_share: Option<f64>,
    /// Closed loop: answered requests per second × their mean latency, the requests the
    /// server held on average (Little's law); at most the connections.
    pub implied_concurrency: Option<f64>,
    /// The client capped this row (see `client_bound_reason`): its throughput is the
    /// tool's as much as the server's.
    #[serde(default)]
    pub client_bound: bool,
    pub client_bound_reason: Option<String>,
    /// The same tool at the same connections against nginx's `/static` alone in this run
    /// (the tool's ceiling here), and this row's throughput as a share of it.
    pub tool_ceiling_rps: Option<f64>,
    pub of_tool_ceiling: Option<f64>,
}

impl ClientCost {
    /// What a round's tool cost says, with the mark when the client capped it. `connections`
    /// is what a closed loop can have in flight: its connections, or the model's cap when
    /// lower.
    pub fn of(
        cost: Option<ToolCost>,
        m: &Measurement,
        loop_kind: LoopKind,
        connections: u32,
    ) -> ClientCost {
        let answered = m.ok_responses + m.errors.non_2xx;
        let implied_concurrency = match loop_kind {
            LoopKind::Closed if m.seconds > 0.0 => m
                .mean_ms
                .map(|mean| answered as f64 / m.seconds * mean / 1000.0),
            _ => None,
        };
        let tool_cpu_share = cost.and_then(|c| c.cpu_share());
        let tool_wait_share = cost.and_then(|c| c.wait_share());
        let mut reasons = Vec::new();
        if let (Some(cpu), Some(wait), Some(cost)) = (tool_cpu_share, tool_wait_share, cost) {
            if cpu + wait >= BUSY_SHARE {
                reasons.push(format!(
                    "the load tool was busy {:.0}% and waiting for a CPU {:.0}% of its {} core{}' time",
                    cpu * 100.0,
                    wait * 100.0,
                    cost.cores,
                    if cost.cores == 1 { "" } else { "s" }
                ));
            }
        }
        // Requests lost to the socket (timeouts, resets) hold a connection without a
        // latency: the shortfall would be theirs, shown in the errors, not the client's.
        let socket_errors = m.errors.total - m.errors.non_2xx;
        if let Some(implied) = implied_concurrency.filter(|_| socket_errors == 0) {
            let c = f64::from(connections.max(1));
            if answered > 0 && implied < IMPLIED_SHARE * c {
                reasons.push(format!(
                    "throughput × mean latency implies {implied:.1} requests in flight of the {connections} the connections and the model allow: the rest of their time was spent in the client (between an answer and the next request, or reconnecting)"
                ));
            }
        }
        ClientCost {
            tool_cpu_ms_per_request: cost
                .filter(|_| answered > 0)
                .map(|c| c.cpu_s * 1000.0 / answered as f64),
            tool_cpu_share,
            tool_wait_share,
            implied_concurrency,
            client_bound: !reasons.is_empty(),
            client_bound_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            tool_ceiling_rps: None,
            of_tool_ceiling: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tool::Errors;

    fn measurement(answered: u64, mean_ms: f64) -> Measurement {
        Measurement {
            ok_responses: answered,
            seconds: 10.0,
            mean_ms: Some(mean_ms),
            ..Measurement::default()
        }
    }

    fn cost(cpu_s: f64, waited_s: f64) -> Option<ToolCost> {
        Some(ToolCost {
            cpu_s,
            waited_s,
            wall_s: 10.0,
            cores: 2,
        })
    }

    #[test]
    fn a_tool_at_its_cores_marks_the_row() {
        // 100 connections, 5000 req/s at 20 ms: Little's law holds.
        let m = measurement(50_000, 20.0);
        let idle = ClientCost::of(cost(2.0, 0.5), &m, LoopKind::Closed, 100);
        assert!(!idle.client_bound, "{idle:?}");
        assert_eq!(idle.implied_concurrency, Some(100.0));
        assert_eq!(idle.tool_cpu_share, Some(0.1));
        assert!((idle.tool_cpu_ms_per_request.unwrap() - 0.04).abs() < 1e-12);
        // Busy 70% and waiting 25% of two cores for ten seconds.
        let busy = ClientCost::of(cost(14.0, 5.0), &m, LoopKind::Closed, 100);
        assert!(busy.client_bound);
        let why = busy.client_bound_reason.unwrap();
        assert!(why.contains("busy 70%") && why.contains("25%"), "{why}");
    }

    #[test]
    fn an_implied_concurrency_short_of_the_connections_marks_the_row() {
        // 100 connections, 2000 req/s at 20 ms: 40 requests in flight.
        let m = measurement(20_000, 20.0);
        let short = ClientCost::of(cost(1.0, 0.0), &m, LoopKind::Closed, 100);
        assert_eq!(short.implied_concurrency, Some(40.0));
        assert!(short.client_bound);
        assert!(short
            .client_bound_reason
            .unwrap()
            .contains("40.0 requests in flight of the 100"));
        // An open loop implies nothing; nor a row whose shortfall is its socket errors.
        let open = ClientCost::of(cost(1.0, 0.0), &m, LoopKind::Open, 100);
        assert!(!open.client_bound && open.implied_concurrency.is_none());
        let timeouts = Measurement {
            errors: Errors {
                timeout: 3,
                ..Errors::default()
            }
            .with_total(),
            ..m
        };
        assert!(!ClientCost::of(cost(1.0, 0.0), &timeouts, LoopKind::Closed, 100).client_bound);
    }
}
