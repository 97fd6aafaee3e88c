//! The checks as the measuring commands use them: a target or an external server that fails
//! one is refused (not measured), with its first failure as the reason; and an external is
//! reached once before anything starts, so that a wrong URL fails fast.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Result;
use shared::Binary;

use super::{run_all, run_on_stack, CheckOutcome, Server, TABLE_ROWS};
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
/// upstream; returns its first failure, if any.
pub fn refused_externals(stack: &Stack, external: &External) -> Option<String> {
    let server = Server {
        binary: external.binary,
        name: external.name.clone(),
        direct: external.addr,
        proxied: external.remote.as_ref().and_then(|r| r.via_nginx),
        database_url: stack.database_url().to_string(),
        upstream: Some(stack.upstream_addr),
        rows: TABLE_ROWS,
    };
    let outcomes = run_all(&server);
    let note = format!(" ({})", external.url);
    tally(&external.name, &note, &outcomes)
        .map(|why| format!("{why} (measure it anyway with --no-verify)"))
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
    use crate::model::external::{assemble, parse};

    #[test]
    fn nothing_listening_and_not_http_fail_fast() {
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let urls = [parse(&format!("gone=http://127.0.0.1:{port}/test")).unwrap()];
        let gone = &assemble(&urls, &[], &[]).unwrap()[0];
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
        let ssh = &assemble(&urls, &[], &[]).unwrap()[0];
        let error = reach(ssh).unwrap_err();
        assert!(error.contains("does not speak HTTP"), "{error}");
        server.join().unwrap();
    }
}
