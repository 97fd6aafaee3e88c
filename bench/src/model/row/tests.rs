//! `Row::build`, the client-limit marks and `relative`, from made-up rounds.

use super::*;
use crate::model::preset;
use shared::Binary;

fn case(binary: Binary) -> Case {
    Case {
        label: binary.name().into(),
        subject: Subject::Target(binary),
        settings: preset::find("grinberg").unwrap().settings,
        group: String::new(),
    }
}

fn round(rps_times_ten: u64) -> Round {
    Round {
        measurement: Measurement {
            ok_responses: rps_times_ten,
            seconds: 10.0,
            p50_ms: Some(20.0),
            ..Measurement::default()
        },
        cpu_s: Some(1.0),
        sessions_peak: Some(19),
        ..Round::default()
    }
}

#[test]
fn an_external_is_bounded_only_by_the_model_its_user_states() {
    use crate::externals::parse;
    use crate::externals::{assemble, Observed};
    use crate::model::external::parse_model;
    let urls = [parse("gunicorn=http://127.0.0.1:9000/test").unwrap()];
    let external = |models: &[_]| {
        let observed = Observed {
            models,
            ..Observed::default()
        };
        let e = assemble(&urls, &observed).unwrap().remove(0);
        let mut c = case(Binary::SyncPool);
        c.label = e.label();
        c.subject = Subject::External(Box::new(e));
        Row::build(&c, vec![round(8740)], None)
    };
    // Grinberg's point: c=100, 20 ms. Unstated, there is no bound rather than the
    // unlimited model's 5000 req/s, and so no efficiency.
    let unstated = external(&[]);
    assert_eq!((unstated.bound_rps, unstated.efficiency), (None, None));
    assert!(
        unstated.model.contains("--external-model"),
        "{}",
        unstated.model
    );
    // 19 sync workers: 19 / 20 ms = 950 req/s, and 874 req/s is 0.92 of it.
    let pool = external(&[parse_model("gunicorn=pool:19").unwrap()]);
    assert_eq!(pool.bound_rps, Some(950.0));
    assert!((pool.efficiency.unwrap() - 0.92).abs() < 1e-9);
    assert!(pool.model.contains("pool:19"), "{}", pool.model);
    assert_eq!(
        pool.external.as_ref().unwrap().model.as_deref(),
        Some("pool:19")
    );
    // Unbounded: only the clients bound it, as an async reference.
    let open = external(&[parse_model("gunicorn=unbounded").unwrap()]);
    assert_eq!(open.bound_rps, Some(5000.0));
    let threads = external(&[parse_model("gunicorn=threads:50").unwrap()]);
    assert_eq!(threads.bound_rps, Some(2500.0));
}

#[test]
fn rows_take_the_median_round_and_keep_the_spread() {
    let row = Row::build(
        &case(Binary::SyncPool),
        vec![round(8000), round(9000), round(8500)],
        None,
    );
    assert_eq!(row.status, Status::Ok);
    assert_eq!(row.requests_per_sec, 850.0);
    assert_eq!(row.measurement.ok_responses, 8500);
    assert_eq!(
        (row.requests_per_sec_min, row.requests_per_sec_max),
        (800.0, 900.0)
    );
    assert_eq!(row.bound_rps, Some(950.0));
    assert!((row.efficiency.unwrap() - 850.0 / 950.0).abs() < 1e-9);
    // 1 CPU second over 8500 responses.
    assert!((row.cpu_ms_per_request.unwrap() - 1000.0 / 8500.0).abs() < 1e-9);
    assert_eq!(row.loop_kind, LoopKind::Closed);
}

/// A round whose tool was saturated (busy and waiting all of its two cores' time), or
/// whose throughput × mean latency is far short of its connections.
fn capped_round(rps_times_ten: u64, saturated_tool: bool) -> Round {
    let mut capped = round(rps_times_ten);
    capped.measurement.mean_ms = Some(if saturated_tool { 100.0 } else { 1.0 });
    capped.tool_cost = Some(ToolCost {
        cpu_s: if saturated_tool { 16.0 } else { 1.0 },
        waited_s: if saturated_tool { 4.0 } else { 0.0 },
        wall_s: 10.0,
        cores: 2,
    });
    capped
}

#[test]
fn requests_waiting_for_the_model_are_not_the_clients() {
    // sync-pool's 19 workers at grinberg's 100 connections: 900 req/s × 21 ms = 18.9 in
    // flight, short of the connections but not of what the model takes at once (the rest
    // wait in its backlog, as sync-thread's clients beyond its threads do).
    let mut r = round(9000);
    r.measurement.mean_ms = Some(21.0);
    let row = Row::build(&case(Binary::SyncPool), vec![r], None);
    assert!(
        !row.client.client_bound,
        "{:?}",
        row.client.client_bound_reason
    );
    let mut r = round(9000);
    r.measurement.mean_ms = Some(10.0);
    let row = Row::build(&case(Binary::SyncPool), vec![r], None);
    assert!(row.client.client_bound, "9 in flight of 19");
}

#[test]
fn client_bound_rows_are_marked_and_relative_and_capacity_leave_them_out() {
    // grinberg: 100 connections. 950 req/s × 100 ms = 95 in flight; 1000 × 1 ms = 1.
    let saturated = Row::build(
        &case(Binary::TokioAxum),
        vec![capped_round(9500, true)],
        None,
    );
    assert!(saturated.client.client_bound);
    assert!(saturated
        .client
        .client_bound_reason
        .as_ref()
        .unwrap()
        .contains("busy 80%"));
    assert_eq!(saturated.client.tool_cpu_share, Some(0.8));
    let short = Row::build(
        &case(Binary::TokioHyper),
        vec![capped_round(10000, false)],
        None,
    );
    assert!(short.client.client_bound);
    assert_eq!(short.client.implied_concurrency, Some(1.0));
    assert!(short
        .client
        .client_bound_reason
        .as_ref()
        .unwrap()
        .contains("1.0 requests in flight of the 100"));
    let base = Row::build(
        &case(Binary::SyncPool),
        vec![capped_round(9000, true)],
        None,
    );
    let mut rows = vec![saturated.clone(), short.clone(), base];
    set_relative(&mut rows, "sync-pool");
    assert!(
        rows.iter().all(|r| r.relative.is_none()),
        "a capped baseline gives no ratio"
    );
    // Tsutsumi's group: the preset's sync-pool, capped, then sync-pool at other worker
    // counts. The ratios are not taken against a swept row instead.
    let swept = Row::build(&case(Binary::SyncPool), vec![round(4820)], None);
    let mut rows = vec![rows[2].clone(), swept.clone(), swept];
    set_relative(&mut rows, "sync-pool");
    assert!(rows.iter().all(|r| r.relative.is_none()), "{rows:?}");
    let fair = Row::build(&case(Binary::SyncPool), vec![round(9000)], None);
    assert!(!fair.client.client_bound);
    let mut rows = vec![saturated, short, fair];
    set_relative(&mut rows, "sync-pool");
    assert_eq!(
        rows.iter().map(|r| r.relative).collect::<Vec<_>>(),
        [None, None, Some(1.0)]
    );
    // A rate sweep: 100/s kept the objective, 200/s was client-bound, 300/s kept it
    // again; the capacity stops at 100/s and says why.
    let at_rate = |rate: u32, mut row: Row| {
        row.requested_rate = Some(rate);
        row.point = Some(crate::model::knob::Point(vec![(
            crate::model::knob::Knob::Rate,
            crate::model::knob::Value::Number(rate),
        )]));
        row
    };
    let mut ok = Row::build(&case(Binary::TokioAxum), vec![round(1000)], None);
    ok.measurement.p99_ms = Some(20.0);
    let rate_rows = [
        at_rate(100, ok.clone()),
        at_rate(200, rows[0].clone()),
        at_rate(300, ok),
    ];
    let capacity = &crate::model::capacity::capacities(&rate_rows, 50.0)[0];
    assert_eq!(capacity.capacity_rps, Some(100));
    assert!(capacity
        .first_miss
        .as_ref()
        .unwrap()
        .starts_with("200/s: client-bound"));
}

#[test]
fn failures_and_empty_runs_are_failed_rows_and_relative_skips_them() {
    let failed = Row::build(&case(Binary::TokioAxum), vec![], Some("died".into()));
    assert_eq!(failed.status, Status::Failed);
    let empty = Row::build(&case(Binary::TokioHyper), vec![round(0)], None);
    assert_eq!(empty.status, Status::Failed);
    let refused = Row::refused(&case(Binary::MayGreen), "checks");
    assert_eq!(refused.status, Status::Refused);
    let base = Row::build(&case(Binary::SyncPool), vec![round(9000)], None);
    let fast = Row::build(&case(Binary::TokioActix), vec![round(27000)], None);
    let mut rows = vec![base, fast, failed, empty];
    set_relative(&mut rows, "sync-pool");
    assert_eq!(rows[0].relative, Some(1.0));
    assert_eq!(rows[1].relative, Some(3.0));
    assert_eq!(rows[2].relative, None);
    assert_eq!(rows[3].relative, None);
}

/// A run too short for its latencies is marked: tsutsumi's sync-pool at 10 workers had a P50
/// of 4.4 s in a 5 s run; a closed loop with a handful of answers per connection says little.
#[test]
fn a_run_too_short_for_its_latencies_is_marked() {
    use super::{short_run, LoopKind};
    let m = |seconds: f64, p50: f64, ok: u64| crate::model::tool::Measurement {
        seconds,
        p50_ms: Some(p50),
        mean_ms: Some(p50),
        ok_responses: ok,
        ..Default::default()
    };
    let tsutsumi = short_run(&m(5.0, 4400.0, 110), LoopKind::Closed, 400).unwrap();
    assert!(
        tsutsumi.contains("P50 latency (4400 ms)") && tsutsumi.contains("--duration"),
        "{tsutsumi}"
    );
    let few = short_run(&m(10.0, 20.0, 2000), LoopKind::Closed, 400).unwrap();
    assert!(few.starts_with("5.0 answers per connection"), "{few}");
    assert_eq!(
        short_run(&m(10.0, 20.0, 45000), LoopKind::Closed, 100),
        None
    );
    // An open loop has no connections to count answers on.
    assert_eq!(short_run(&m(10.0, 20.0, 2000), LoopKind::Open, 400), None);
}
