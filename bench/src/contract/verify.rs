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

use super::{run_all, run_on_stack, CheckOutcome, Kind, Outcome, Server, TABLE_ROWS};
use crate::model::external::External;
use crate::stack::Stack;

/// What the checks make of a server that is measured: the conformance rules it breaks, and
/// the checks that could not be made (each `check: why`), which its row lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checked {
    pub breaks: Vec<String>,
    pub unchecked: Vec<String>,
}

/// Runs the contract checks on `targets`: each is refused (with why) or measured (with the
/// checks that could not be made). A target must keep every rule; a check it could not be
/// given refuses it when the measurement rests on it, unless `accept_unchecked`.
pub fn check_targets(
    stack: &Stack,
    targets: &[Binary],
    accept_unchecked: bool,
) -> Result<Vec<(Binary, Result<Checked, String>)>> {
    let mut verdicts = Vec::new();
    for &binary in targets {
        let outcomes = run_on_stack(stack, binary)?;
        let (verdict, summary) = judge(&outcomes, true, accept_unchecked);
        eprintln!("bench: verify {:<12} {summary}", binary.name());
        verdicts.push((binary, verdict));
    }
    Ok(verdicts)
}

/// Runs the contract checks on an external server against the stack's database and
/// upstream, through an nginx of the stack when it has none of its own (as `bench run` loads
/// it). `Err`: why it is refused; `Ok`: the rules it breaks and the checks not made.
pub fn check_external(
    stack: &Stack,
    external: &External,
    accept_unchecked: bool,
) -> Result<Checked, String> {
    let remote_nginx = external.remote.as_ref().and_then(|r| r.via_nginx);
    let local_proxy = match remote_nginx {
        Some(_) => None,
        None => Some(
            stack
                .proxy(&[(external.name.clone(), external.addr)], true, 1)
                .map_err(|e| format!("cannot start nginx in front of {}: {e:#}", external.name))?,
        ),
    };
    let server = Server {
        binary: external.binary,
        name: external.name.clone(),
        direct: external.addr,
        proxied: remote_nginx.or_else(|| local_proxy.as_ref().map(|(_, routes)| routes[0].listen)),
        database_url: stack.database_url().to_string(),
        upstream: Some(stack.upstream_addr),
        rows: TABLE_ROWS,
        app: external.app.clone(),
    };
    let (verdict, summary) = judge(&run_all(&server), false, accept_unchecked);
    eprintln!(
        "bench: verify {:<12} {summary} ({})",
        external.name, external.url
    );
    verdict
}

/// Outcomes judged: refused at the first failure of a rule the measurement rests on (of any
/// rule, for a reference, `strict`), or at the first such check that could not be made
/// unless `accept_unchecked`; else measured with the conformance rules it breaks and the
/// checks not made. And the tally in words.
pub fn judge(
    outcomes: &[CheckOutcome],
    strict: bool,
    accept_unchecked: bool,
) -> (Result<Checked, String>, String) {
    let (measured, conformance): (Vec<&CheckOutcome>, Vec<&CheckOutcome>) =
        outcomes.iter().partition(|o| o.kind == Kind::Measured);
    let (failed, breaks) = (failures(&measured), failures(&conformance));
    let (unmade, unmade_conformance) = (unchecked(&measured), unchecked(&conformance));
    let mut summary = format!(
        "{}/{} checks the measurement rests on pass, {}/{} conformance rules kept",
        measured.len() - failed.len() - unmade.len(),
        measured.len(),
        conformance.len() - breaks.len() - unmade_conformance.len(),
        conformance.len(),
    );
    let not_made = unmade.len() + unmade_conformance.len();
    if not_made > 0 {
        summary += &format!(", {not_made} could not be checked");
    }
    let refusal = if let Some(first) = failed.first() {
        Some(format!(
            "failed the contract check {first}, which the measurement rests on (measure it anyway with --no-verify)"
        ))
    } else if let Some(first) = breaks.first().filter(|_| strict) {
        Some(format!("failed the contract check {first}"))
    } else {
        unmade.first().filter(|_| !accept_unchecked).map(|first| {
            format!(
                "could not check {first}, which the measurement rests on (measure it anyway with --accept-unchecked)"
            )
        })
    };
    let verdict = match refusal {
        Some(why) => Err(why),
        None => Ok(Checked {
            breaks,
            unchecked: unmade.into_iter().chain(unmade_conformance).collect(),
        }),
    };
    (verdict, summary)
}

/// Each failed check as `check: what came back`, its first line cut at 160 characters.
fn failures(outcomes: &[&CheckOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| match o.outcome() {
            Outcome::Fail(text) => Some(format!("{}: {}", o.check, first_line(&text))),
            Outcome::Pass | Outcome::CannotCheck(_) => None,
        })
        .collect()
}

/// Each check that could not be made, as `check: why`.
fn unchecked(outcomes: &[&CheckOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| match o.outcome() {
            Outcome::CannotCheck(why) => Some(format!("{}: {}", o.check, first_line(&why))),
            Outcome::Pass | Outcome::Fail(_) => None,
        })
        .collect()
}

/// The first line of `text`, cut at 160 characters.
fn first_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default().trim_end();
    let cut: String = first.chars().take(160).collect();
    let more = if cut.len() < first.len() { "…" } else { "" };
    format!("{cut}{more}")
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

    /// Every check's outcome: failing those named in `failing`, not made those in `unmade`.
    fn outcomes_with(failing: &[&str], unmade: &[&str]) -> Vec<CheckOutcome> {
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
                } else if unmade.contains(&c.name) {
                    Err(super::super::CannotCheck("another client under its role".into()).into())
                } else {
                    Ok(())
                },
            })
            .collect()
    }

    fn outcomes(failing: &[&str]) -> Vec<CheckOutcome> {
        outcomes_with(failing, &[])
    }

    #[test]
    fn an_external_breaking_only_conformance_rules_is_measured_with_them_listed() {
        let (verdict, summary) = judge(
            &outcomes(&[
                "heads_over_8_kib_are_431",
                "other_methods_are_405_with_allow",
                "headers_follow_the_contract",
            ]),
            false,
            false,
        );
        let breaks = verdict.unwrap().breaks;
        assert_eq!(breaks.len(), 3, "{breaks:?}");
        assert!(breaks[0].starts_with("headers_follow_the_contract: "));
        // One line each, cut short.
        assert!(breaks
            .iter()
            .all(|b| !b.contains('\n') && b.chars().count() < 220));
        assert_eq!(
            summary,
            "9/9 checks the measurement rests on pass, 6/9 conformance rules kept"
        );
        assert_eq!(
            judge(&outcomes(&[]), false, false).0,
            Ok(Checked::default())
        );
        // A reference must keep them all.
        let (strict, _) = judge(&outcomes(&["heads_over_8_kib_are_431"]), true, false);
        assert!(strict.unwrap_err().contains("heads_over_8_kib_are_431"));
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
            "work_is_done_and_its_result_right",
            "fanout_reports_k_pages_and_their_bytes",
        ] {
            let (verdict, summary) =
                judge(&outcomes(&[rule, "heads_over_8_kib_are_431"]), false, true);
            let why = verdict.unwrap_err();
            assert!(why.contains(rule) && why.contains("--no-verify"), "{why}");
            assert!(summary.starts_with("8/9"), "{summary}");
        }
    }

    /// Three outcomes: a check that could not be made is neither a pass nor a failure. On a
    /// rule the measurement rests on it refuses, unless accepted; then the row lists it.
    #[test]
    fn a_check_not_made_is_counted_apart_and_refuses_unless_accepted() {
        let unmade = outcomes_with(
            &[],
            &["one_statement_per_request", "headers_follow_the_contract"],
        );
        let words: Vec<&str> = unmade.iter().map(|o| o.outcome().word()).collect();
        assert_eq!(words.iter().filter(|w| **w == "CANNOT CHECK").count(), 2);
        assert!(!words.contains(&"FAIL"));
        let (verdict, summary) = judge(&unmade, false, false);
        let why = verdict.unwrap_err();
        assert!(
            why.starts_with("could not check one_statement_per_request: another client")
                && why.contains("--accept-unchecked"),
            "{why}"
        );
        assert_eq!(
            summary,
            "8/9 checks the measurement rests on pass, 8/9 conformance rules kept, 2 could not be checked"
        );
        let (verdict, _) = judge(&unmade, true, true);
        let checked = verdict.unwrap();
        assert!(checked.breaks.is_empty());
        assert_eq!(checked.unchecked.len(), 2, "{checked:?}");
        assert!(checked.unchecked[0].starts_with("one_statement_per_request: "));
    }

    /// No check passes without having made its requests: against a server that is not there
    /// (nothing listens, no database, no nginx), each one fails or says it could not check.
    #[test]
    fn no_check_passes_without_a_request() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let server = Server {
            binary: None,
            name: "nothing".into(),
            direct: closed,
            proxied: None,
            database_url: format!("postgres://nobody@{closed}/nothing"),
            upstream: None,
            rows: TABLE_ROWS,
            app: None,
        };
        for outcome in run_all(&server) {
            assert_ne!(
                outcome.outcome(),
                Outcome::Pass,
                "{} passed unrun",
                outcome.check
            );
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
