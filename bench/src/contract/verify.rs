//! The checks as the measuring commands use them: a target that fails one, or an external
//! server that fails one the measurement rests on ([`Kind::Measured`]), is refused (not
//! measured), with its first such failure as the reason; an external that breaks only
//! conformance rules is measured and its row lists them. An external is reached once before
//! anything starts, so that a wrong URL fails fast.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Result;
use shared::Binary;

use super::{run_all, run_on_stack, CheckOutcome, Kind, Server, TABLE_ROWS};
use crate::model::external::External;
use crate::stack::Stack;

/// Runs the contract checks on `targets`; returns each failing target with its first failure.
pub fn refused_targets(stack: &Stack, targets: &[Binary]) -> Result<Vec<(Binary, String)>> {
    let mut refused = Vec::new();
    for &binary in targets {
        let outcomes = run_on_stack(stack, binary)?;
        if let Some(why) = tally(binary.name(), "", &outcomes) {
            refused.push((binary, why));
        }
    }
    Ok(refused)
}

/// Runs the contract checks on an external server against the stack's database and
/// upstream. `Err`: why it is refused (its first failure of a rule the measurement rests
/// on); `Ok`: the conformance rules it breaks, each as `check: what came back`.
pub fn check_external(stack: &Stack, external: &External) -> Result<Vec<String>, String> {
    let server = Server {
        binary: external.binary,
        name: external.name.clone(),
        direct: external.addr,
        proxied: external.remote.as_ref().and_then(|r| r.via_nginx),
        database_url: stack.database_url().to_string(),
        upstream: Some(stack.upstream_addr),
        rows: TABLE_ROWS,
        app: external.app.clone(),
    };
    let (verdict, summary) = judge(&run_all(&server));
    eprintln!(
        "bench: verify {:<12} {summary} ({})",
        external.name, external.url
    );
    verdict
}

/// An external's outcomes judged: refused at its first failure of a rule the measurement
/// rests on, else measured with the conformance rules it breaks; and the tally in words.
pub fn judge(outcomes: &[CheckOutcome]) -> (Result<Vec<String>, String>, String) {
    let (measured, conformance): (Vec<&CheckOutcome>, Vec<&CheckOutcome>) =
        outcomes.iter().partition(|o| o.kind == Kind::Measured);
    let (failed, breaks) = (broken(&measured), broken(&conformance));
    let summary = format!(
        "{}/{} checks the measurement rests on pass, {}/{} conformance rules kept",
        measured.len() - failed.len(),
        measured.len(),
        conformance.len() - breaks.len(),
        conformance.len(),
    );
    let verdict = match failed.first() {
        Some(first) => Err(format!(
            "failed the contract check {first}, which the measurement rests on (measure it anyway with --no-verify)"
        )),
        None => Ok(breaks),
    };
    (verdict, summary)
}

/// Each failed check as `check: what came back`, its first line cut at 160 characters.
fn broken(outcomes: &[&CheckOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| {
            let e = o.result.as_ref().err()?;
            let text = format!("{e:#}");
            let first = text.lines().next().unwrap_or_default().trim_end();
            let cut: String = first.chars().take(160).collect();
            let more = if cut.len() < first.len() { "…" } else { "" };
            Some(format!("{}: {cut}{more}", o.check))
        })
        .collect()
}

/// Prints how many checks `name` passed; returns its first failure as the reason to refuse it.
fn tally(name: &str, note: &str, outcomes: &[CheckOutcome]) -> Option<String> {
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .map(|e| format!("{}: {e:#}", o.check))
        })
        .collect();
    eprintln!(
        "bench: verify {name:<12} {}/{} checks pass{note}",
        outcomes.len() - failures.len(),
        outcomes.len()
    );
    failures
        .first()
        .map(|first| format!("failed the contract check {first}"))
}

/// Fails fast, with one line naming it, when nothing answers HTTP at its address: not
/// listening, or listening but not speaking HTTP/1.x within 3 s.
pub fn reach(external: &External) -> Result<(), String> {
    let name = &external.name;
    let url = &external.url;
    let mut stream = TcpStream::connect_timeout(&external.addr, Duration::from_secs(3))
        .map_err(|e| format!("--external {name}={url}: cannot connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        external.addr
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("--external {name}={url}: cannot send a request: {e}"))?;
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 8 {
        match stream.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => {
                return Err(format!(
                    "--external {name}={url}: no HTTP answer to GET /health within 3 s ({e})"
                ))
            }
        }
    }
    if !head[..got].starts_with(b"HTTP/1.") {
        let seen = String::from_utf8_lossy(&head[..got]);
        return Err(format!(
            "--external {name}={url}: does not speak HTTP/1.x (GET /health got {seen:?})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::externals::parse;
    use crate::externals::{assemble, Observed};

    /// Every check's outcome, failing those named.
    fn outcomes(failing: &[&str]) -> Vec<CheckOutcome> {
        super::super::CHECKS
            .iter()
            .map(|c| CheckOutcome {
                check: c.name,
                kind: c.kind,
                result: if failing.contains(&c.name) {
                    Err(anyhow::anyhow!(
                        "a 9 KiB header: expected 431, got 400 Bad Request with body {}\nmore",
                        "a".repeat(400)
                    ))
                } else {
                    Ok(())
                },
            })
            .collect()
    }

    #[test]
    fn an_external_breaking_only_conformance_rules_is_measured_with_them_listed() {
        let (verdict, summary) = judge(&outcomes(&[
            "heads_over_8_kib_are_431",
            "other_methods_are_405_with_allow",
            "headers_follow_the_contract",
        ]));
        let breaks = verdict.unwrap();
        assert_eq!(breaks.len(), 3, "{breaks:?}");
        assert!(breaks[0].starts_with("headers_follow_the_contract: "));
        // One line each, cut short.
        assert!(breaks
            .iter()
            .all(|b| !b.contains('\n') && b.chars().count() < 220));
        assert_eq!(
            summary,
            "7/7 checks the measurement rests on pass, 6/9 conformance rules kept"
        );
        assert_eq!(judge(&outcomes(&[])).0, Ok(Vec::new()));
    }

    #[test]
    fn an_external_failing_what_is_measured_is_refused() {
        for rule in [
            "row_body_is_byte_exact",
            "json_and_health_answer_fixed_bodies",
            "db_delay_sleeps_in_the_statement",
            "upstream_backend_reports_status_and_length",
            "one_statement_per_request",
            "nginx_passes_the_same_bodies",
        ] {
            let (verdict, summary) = judge(&outcomes(&[rule, "heads_over_8_kib_are_431"]));
            let why = verdict.unwrap_err();
            assert!(why.contains(rule) && why.contains("--no-verify"), "{why}");
            assert!(summary.starts_with("6/7"), "{summary}");
        }
    }

    #[test]
    fn nothing_listening_and_not_http_fail_fast() {
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let urls = [parse(&format!("gone=http://127.0.0.1:{port}/test")).unwrap()];
        let gone = &assemble(&urls, &Observed::default()).unwrap()[0];
        let error = reach(gone).unwrap_err();
        assert!(
            error.contains("gone=") && error.contains("cannot connect"),
            "{error}"
        );

        // A listener that answers something else than HTTP.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 256];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        });
        let urls = [parse(&format!("ssh=http://{addr}/test")).unwrap()];
        let ssh = &assemble(&urls, &Observed::default()).unwrap()[0];
        let error = reach(ssh).unwrap_err();
        assert!(error.contains("does not speak HTTP"), "{error}");
        server.join().unwrap();
    }
}
