//! The two statements of the db backend. Every target prepares them once per connection and
//! runs exactly one of them per request: one round trip, one `pg_stat_statements` call.
//!
//! With a delay, the sleep runs inside the same statement. The planner puts the index scan on
//! the outer side of the nested loop, so PostgreSQL sleeps once when the row exists and not at
//! all when it does not (checked with EXPLAIN ANALYZE on PostgreSQL 15).

/// `$1`: the id (int4).
pub const SELECT_ROW: &str = "SELECT a, b FROM test WHERE a = $1";

/// `$1`: the id (int4); `$2`: the sleep in seconds (float8).
pub const SELECT_ROW_AFTER_SLEEP: &str = "SELECT a, b FROM test, pg_sleep($2) WHERE a = $1";

/// The `pg_sleep` argument for a delay in milliseconds.
pub fn sleep_seconds(delay_ms: u32) -> f64 {
    f64::from(delay_ms) / 1000.0
}

/// `application_name` of a target's sessions, so that they can be counted per target in
/// `pg_stat_activity`.
pub fn application_name(binary: crate::Binary) -> &'static str {
    binary.name()
}
