//! Open-loop capacity: the highest offered rate at which a target kept a latency objective,
//! from the rows of a rate sweep. A client-bound row ends its series like a miss: no
//! capacity rests on a rate the load tool may not have held.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::knob::Knob;
use super::row::Row;

/// A target's capacity: the highest offered rate at which it kept the objective, with every
/// lower rate of its series kept too (a pass above a failure is noise, not capacity).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Capacity {
    pub target: String,
    /// The other knobs' values, when the rate is not the only one varied.
    pub series: String,
    /// `None` when even the lowest rate missed the objective.
    pub capacity_rps: Option<u32>,
    /// The lowest rate that missed it, and why.
    pub first_miss: Option<String>,
}

/// Capacities at a p99 objective, from the rows of a rate sweep.
pub fn capacities(rows: &[Row], slo_p99_ms: f64) -> Vec<Capacity> {
    let mut series: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let (Some(point), Some(_)) = (&row.point, row.requested_rate) else {
            continue;
        };
        if point.get(Knob::Rate).is_none() {
            continue;
        }
        series
            .entry((row.target.clone(), point.without(Knob::Rate).label()))
            .or_default()
            .push(row);
    }
    series
        .into_iter()
        .map(|((target, series), mut rows)| {
            rows.sort_by_key(|r| r.requested_rate);
            let mut capacity = None;
            let mut first_miss = None;
            for row in rows {
                let rate = row.requested_rate.unwrap_or(0);
                let p99 = row.measurement.p99_ms;
                let miss = if !row.is_ok() {
                    Some(format!("{rate}/s: {}", row.status.name()))
                } else if row.saturated == Some(true) {
                    Some(format!(
                        "{rate}/s: saturated ({:.0}/s answered)",
                        row.achieved_rate.unwrap_or(0.0)
                    ))
                } else if row.client.client_bound {
                    // The tool, not the target, may have missed the rate: no capacity rests
                    // on this row, nor on any rate above it.
                    Some(format!(
                        "{rate}/s: client-bound ({})",
                        row.client.client_bound_reason.as_deref().unwrap_or("")
                    ))
                } else if p99.is_none_or(|p| p > slo_p99_ms) {
                    Some(format!(
                        "{rate}/s: p99 {} ms",
                        p99.map_or("–".into(), |p| format!("{p:.1}"))
                    ))
                } else {
                    None
                };
                match miss {
                    Some(why) => {
                        first_miss = Some(why);
                        break;
                    }
                    None => capacity = Some(rate),
                }
            }
            Capacity {
                target,
                series,
                capacity_rps: capacity,
                first_miss,
            }
        })
        .collect()
}
