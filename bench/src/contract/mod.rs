//! The contract (docs/contract.md) as checks, shared by `bench verify`, `bench run` (which
//! refuses a target that fails one) and the conformance suite.
//!
//! Each check takes a [`Server`]: a running target, the database it reads, and optionally the
//! nginx port in front of it. A check has three outcomes ([`Outcome`]): it passes; it fails,
//! with a message that says what was expected and what came back; or it cannot check, when
//! the harness could not tell (its `Err` is a [`CannotCheck`] saying why). No check passes
//! without having made its requests.
//!
//! Concurrency is proved by counting sessions in `pg_stat_activity` and requests in flight at
//! nginx ([`burst_with_peaks`]), never by timing. Where a check looks at time, it is a lower
//! bound (a request that asked for 200 ms of sleep cannot answer sooner), which cannot race.
//!
//! - `checks`: each rule of the contract, one function each;
//! - `burst`: concurrent requests with the peaks they caused;
//! - `verify`: the checks as `bench run` uses them, to refuse what fails.

mod burst;
mod checks;
mod requests;
mod statements;
mod verify;

use std::net::SocketAddr;

use anyhow::Result;
use shared::Binary;

use crate::stack::Stack;
use checks::*;
use requests::{fanout_reports_k_pages_and_their_bytes, work_is_done_and_its_result_right};
use statements::one_statement_per_request;

pub use burst::{burst, burst_with_peaks, statuses, BurstPeaks};
pub use checks::upstream_lengths;
pub use verify::{check_external, check_targets, judge, reach, Checked};

/// What a check runs against.
#[derive(Clone, Debug)]
pub struct Server {
    /// The reference target, or `None` for a server the suite did not build (`--external`):
    /// then the `Server` header is not compared with a name, and the server may keep
    /// connections open or close them after each answer, as long as it says so.
    pub binary: Option<Binary>,
    /// The name in messages: the target's, or the external's.
    pub name: String,
    /// The target itself.
    pub direct: SocketAddr,
    /// nginx in front of it, when there is one.
    pub proxied: Option<SocketAddr>,
    pub database_url: String,
    /// The upstream nginx (for the page's length), when known.
    pub upstream: Option<SocketAddr>,
    /// The target's `--rows`.
    pub rows: i32,
    /// Its sessions' `application_name`, when known: its statements are then told apart from
    /// other clients' of the same database.
    pub app: Option<String>,
}

/// The rows `sql/data.sql` loads: the `--rows` of a target started with its defaults, and
/// what an external server is checked against.
pub const TABLE_ROWS: i32 = 1_000_000;

/// A named check, and what failing it means for a server the suite did not build.
pub struct Check {
    pub name: &'static str,
    pub run: fn(&Server) -> Result<()>,
    pub kind: Kind,
}

/// The two kinds of rule. A reference must keep both; an external server that breaks only
/// conformance rules is still measured, and its row lists the rules it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// What the numbers rest on: the status codes and bodies of `/test`, `/json` and
    /// `/health` (direct and through nginx), the delay really slept or asked of the upstream,
    /// one statement per request. A server that fails one is not measured (unless
    /// `--no-verify`): its rows would not measure the same work.
    Measured,
    /// The rest: headers, error codes, keep-alive and close, framing and head limits. A
    /// framework's own 431, 408 or `Server` header changes nothing a row measures.
    Conformance,
}

/// Every check that runs against a target started with default flags.
pub const CHECKS: &[Check] = &[
    Check {
        name: "row_body_is_byte_exact",
        run: row_body_is_byte_exact,
        kind: Kind::Measured,
    },
    Check {
        name: "random_rows_are_real_rows",
        run: random_rows_are_real_rows,
        kind: Kind::Measured,
    },
    Check {
        name: "headers_follow_the_contract",
        run: headers_follow_the_contract,
        kind: Kind::Conformance,
    },
    Check {
        name: "date_changes_across_a_second",
        run: date_changes_across_a_second,
        kind: Kind::Conformance,
    },
    Check {
        name: "json_and_health_answer_fixed_bodies",
        run: json_and_health_answer_fixed_bodies,
        kind: Kind::Measured,
    },
    Check {
        name: "bad_parameters_are_400",
        run: bad_parameters_are_400,
        kind: Kind::Conformance,
    },
    Check {
        name: "unknown_path_and_missing_row_are_404",
        run: unknown_path_and_missing_row_are_404,
        kind: Kind::Conformance,
    },
    Check {
        name: "other_methods_are_405_with_allow",
        run: other_methods_are_405_with_allow,
        kind: Kind::Conformance,
    },
    Check {
        name: "keep_alive_follows_the_model",
        run: keep_alive_follows_the_model,
        kind: Kind::Conformance,
    },
    Check {
        name: "close_requests_and_malformed_input_end_the_connection",
        run: close_requests_and_malformed_input_end_the_connection,
        kind: Kind::Conformance,
    },
    Check {
        name: "ambiguous_body_framing_is_400_and_closes",
        run: ambiguous_body_framing_is_400_and_closes,
        kind: Kind::Conformance,
    },
    Check {
        name: "heads_over_8_kib_are_431",
        run: heads_over_8_kib_are_431,
        kind: Kind::Conformance,
    },
    Check {
        name: "db_delay_sleeps_in_the_statement",
        run: db_delay_sleeps_in_the_statement,
        kind: Kind::Measured,
    },
    Check {
        name: "upstream_backend_reports_status_and_length",
        run: upstream_backend_reports_status_and_length,
        kind: Kind::Measured,
    },
    Check {
        name: "fanout_reports_k_pages_and_their_bytes",
        run: fanout_reports_k_pages_and_their_bytes,
        kind: Kind::Measured,
    },
    Check {
        name: "work_is_done_and_its_result_right",
        run: work_is_done_and_its_result_right,
        kind: Kind::Measured,
    },
    Check {
        name: "one_statement_per_request",
        run: one_statement_per_request,
        kind: Kind::Measured,
    },
    Check {
        name: "nginx_passes_the_same_bodies",
        run: nginx_passes_the_same_bodies,
        kind: Kind::Measured,
    },
];

/// Why a check could not be made: the harness could not tell whether the server keeps the
/// rule (another client under its database role, no nginx in front of it). Not the server's
/// failure: a check returns it as its `Err`, and [`CheckOutcome::outcome`] tells it apart.
#[derive(Debug)]
pub struct CannotCheck(pub String);

impl std::fmt::Display for CannotCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CannotCheck {}

/// The three outcomes of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// The server broke the rule: what was expected and what came back.
    Fail(String),
    /// The harness could not tell, and why.
    CannotCheck(String),
}

impl Outcome {
    /// The word a report prints for it.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "FAIL",
            Outcome::CannotCheck(_) => "CANNOT CHECK",
        }
    }
}

/// The result of one check.
#[derive(Debug)]
pub struct CheckOutcome {
    pub check: &'static str,
    pub kind: Kind,
    pub result: Result<()>,
}

impl CheckOutcome {
    pub fn outcome(&self) -> Outcome {
        match &self.result {
            Ok(()) => Outcome::Pass,
            Err(e) => match e.downcast_ref::<CannotCheck>() {
                Some(why) => Outcome::CannotCheck(why.0.clone()),
                None => Outcome::Fail(format!("{e:#}")),
            },
        }
    }
}

/// Runs every check against `server`, in order.
pub fn run_all(server: &Server) -> Vec<CheckOutcome> {
    CHECKS
        .iter()
        .map(|check| CheckOutcome {
            check: check.name,
            kind: check.kind,
            result: (check.run)(server),
        })
        .collect()
}

/// Starts `binary` with its defaults behind its own nginx on `stack`, runs every check, and
/// stops both: what `bench verify` and `bench run` do before any load.
pub fn run_on_stack(stack: &Stack, binary: Binary) -> Result<Vec<CheckOutcome>> {
    let target = stack.launch(binary, &[])?;
    let (_proxy, routes) = stack.proxy(&[(binary.name().to_string(), target.addr)], true, 1)?;
    let server = Server {
        binary: Some(binary),
        name: binary.name().to_string(),
        direct: target.addr,
        proxied: Some(routes[0].listen),
        database_url: stack.database_url().to_string(),
        upstream: Some(stack.upstream_addr),
        rows: 1_000_000,
        app: Some(shared::sql::application_name(binary).to_string()),
    };
    Ok(run_all(&server))
}
