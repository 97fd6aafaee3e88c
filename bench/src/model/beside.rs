//! What the extras beside the load measured ([`Beside`]), as a round and a row keep it:
//! the faults' cost and timeline, the slow clients' counts, the idle connections' cost. Each
//! figure is absent from `results.json` when its extra did not run. The extras that measure
//! them are `measure::extras`, one file each; adding one adds its field here.

use serde::{Deserialize, Serialize};

use super::fault::{FaultReport, Timeline};
use super::soak::SoakReport;

/// The figures of the extras beside the load, flattened into the row.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Beside {
    /// `--fault`: what each fault cost, from the probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultReport>,
    /// `--fault`: the probe's 2xx and errors per 100 ms of the measured load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    /// `--slow-clients`: their completed requests and errors during the measured load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_clients: Option<SlowClientsReport>,
    /// `--idle-connections`: memory, threads and `/health` with them held, and the load alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleReport>,
    /// The soak preset: the target's samples over the soak, its faults and its verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakReport>,
}
/// What holding the idle connections cost: the row's `idle`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IdleReport {
    /// Connections asked for, opened (connect succeeded within 3 s), and answered (their
    /// `/json` came back within 3 s).
    pub asked: u32,
    pub opened: u32,
    pub answered: u32,
    /// When not every opened connection was answered: what the first unanswered one saw.
    pub first_unanswered: Option<String>,
    /// The target's resident memory before and with the connections held, and the growth per
    /// answered connection.
    pub rss_before_mib: f64,
    pub rss_held_mib: f64,
    pub kib_per_connection: Option<f64>,
    /// Where the growth goes, per connection (KiB). `accepted`: with the connections open and
    /// nothing sent yet (the model's own cost: a thread, a coroutine or a task, and the
    /// framework's connection state). `stack` and `heap`: the growth of the anonymous memory
    /// with the connections held after their request, split by
    /// `observe::procfs::AnonSplit`; the heap part beyond `accepted` is what serving one request
    /// left behind (buffers kept while idle).
    #[serde(default)]
    pub kib_accepted: Option<f64>,
    #[serde(default)]
    pub kib_stack: Option<f64>,
    #[serde(default)]
    pub kib_heap: Option<f64>,
    pub threads_before: u64,
    pub threads_held: u64,
    /// `/health` on fresh connections while they are held (50 tries, 2 s each; the probe stops
    /// after 3 failures in a row).
    pub health_p50_ms: Option<f64>,
    pub health_p99_ms: Option<f64>,
    pub health_failed: u32,
    /// The same load without the idle connections (the row's own numbers are with them).
    pub load_alone_rps: f64,
    pub load_alone_p99_ms: Option<f64>,
}
/// What the slow clients did during the measured load.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SlowClientsReport {
    pub clients: u32,
    /// Requests answered with a 2xx, read to the end.
    pub completed: u64,
    /// Requests that failed: a refused or reset connection, a non-2xx, no answer in 30 s.
    pub errors: u64,
    /// The slow clients' own CPU per request (their threads, in the harness), beside the
    /// load tool's.
    #[serde(default)]
    pub cpu_ms_per_request: Option<f64>,
}
