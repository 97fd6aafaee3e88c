//! The checks of what a request asks beyond its row or page: CPU work (`work=N`), recomputed
//! here, and several upstream pages (`fanout=K`), their bytes added.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::checks::{expect_json_content_type, expect_status};
use super::Server;
use crate::client;

/// `work=N` on both backends: the body of `work=0` (byte for byte the body without the
/// parameter), then SHA-256 chained N times from it, its hex the body's last field. The result
/// is recomputed here, so a server that skips or shortens the work is caught.
pub fn work_is_done_and_its_result_right(server: &Server) -> Result<()> {
    let plain = client::get(server.direct, "/test?id=7")?;
    expect_status(&plain, 200, "/test?id=7")?;
    let zero = client::get(server.direct, "/test?id=7&work=0")?;
    expect_status(&zero, 200, "/test?id=7&work=0")?;
    ensure!(
        zero.body == plain.body,
        "/test?id=7&work=0: body {:?}, expected today's {:?}",
        zero.text(),
        plain.text()
    );
    let targets = [
        ("/test?id=7&work=1", 1),
        ("/test?id=7&work=1000", 1000),
        ("/test?id=7&work=100000", shared::work::MAX_WORK),
        ("/test?backend=upstream&delay_ms=0&work=5", 5),
    ];
    for (target, n) in targets {
        let response = client::get(server.direct, target)?;
        expect_status(&response, 200, target)?;
        expect_json_content_type(&response, target)?;
        shared::work::check(&response.body, n).map_err(|e| anyhow::anyhow!("{target}: {e}"))?;
        if target.contains("id=7") {
            let base = &plain.body[..plain.body.len() - 1];
            ensure!(
                response.body.starts_with(base),
                "{target}: the body before the work field is {:?}, expected the row's {:?}",
                response.text(),
                plain.text()
            );
        }
    }
    Ok(())
}

/// `fanout=K` on the upstream backend: K = 1 is the plain body, byte for byte; K > 1 answers
/// `{"status":200,"bytes":TOTAL,"fanout":K}` with TOTAL the K pages' lengths, and asks the
/// upstream for the delay each time (K fetches of 100 ms take at least 100 ms, one after
/// another or at once: how many are in flight at once is the conformance suite's count).
pub fn fanout_reports_k_pages_and_their_bytes(server: &Server) -> Result<()> {
    let one = client::get(server.direct, "/test?backend=upstream&delay_ms=0&fanout=1")?;
    expect_status(&one, 200, "/test?backend=upstream&fanout=1")?;
    let plain = client::get(server.direct, "/test?backend=upstream&delay_ms=0")?;
    ensure!(
        one.body == plain.body,
        "fanout=1: body {:?}, expected the plain upstream body {:?}",
        one.text(),
        plain.text()
    );
    let page: serde_json::Value = serde_json::from_slice(&plain.body)
        .with_context(|| format!("the upstream body is not JSON: {}", plain.text()))?;
    let bytes = page["bytes"]
        .as_u64()
        .with_context(|| format!("no bytes in {}", plain.text()))?;
    for k in [2u64, 4, 16] {
        let target = format!("/test?backend=upstream&delay_ms=100&fanout={k}");
        let started = Instant::now();
        let response = client::get(server.direct, &target)?;
        let elapsed = started.elapsed();
        expect_status(&response, 200, &target)?;
        expect_json_content_type(&response, &target)?;
        let expected = format!(r#"{{"status":200,"bytes":{},"fanout":{k}}}"#, bytes * k);
        ensure!(
            response.body == expected.as_bytes(),
            "{target}: body {:?}, expected {expected:?}",
            response.text()
        );
        ensure!(
            elapsed >= Duration::from_millis(100),
            "{target} answered in {elapsed:?}: the upstream's delay was not asked"
        );
    }
    Ok(())
}
