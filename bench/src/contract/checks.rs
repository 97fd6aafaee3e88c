//! Each rule of the contract as one check: the name says what it checks, the error what was
//! expected and what came back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::{CannotCheck, Server};
use crate::client::{self, Response};
use crate::observe::Observer;

pub(super) fn expect_status(response: &Response, status: u16, what: &str) -> Result<()> {
    ensure!(
        response.status == status,
        "{what}: expected {status}, got {} {} with body {}",
        response.status,
        response.reason,
        response.text()
    );
    Ok(())
}

/// A JSON error body: `{"error":"<one line>"}` with Content-Type application/json.
fn expect_error(response: &Response, status: u16, what: &str) -> Result<()> {
    expect_status(response, status, what)?;
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .with_context(|| format!("{what}: error body is not JSON: {}", response.text()))?;
    let message = body
        .get("error")
        .and_then(|m| m.as_str())
        .with_context(|| format!("{what}: no \"error\" string in {}", response.text()))?;
    ensure!(
        !message.is_empty() && !message.contains('\n'),
        "{what}: error message is not one line: {message:?}"
    );
    ensure!(
        body.as_object().map(|o| o.len()) == Some(1),
        "{what}: error body has more than \"error\": {}",
        response.text()
    );
    expect_json_content_type(response, what)
}

pub(super) fn expect_json_content_type(response: &Response, what: &str) -> Result<()> {
    let content_type = response.header("content-type").unwrap_or("(none)");
    ensure!(
        content_type.eq_ignore_ascii_case("application/json"),
        "{what}: Content-Type is {content_type}, expected application/json"
    );
    Ok(())
}

/// The body a row must have: `a` zero-padded to 10 digits.
fn expected_row_body(a: i32, b: &str) -> String {
    format!(r#"{{"a":"{a:010}","b":"{b}"}}"#)
}

fn row_of(server: &Server, a: i32) -> Result<String> {
    Observer::connect(&server.database_url)?
        .row(a)?
        .with_context(|| format!("the database has no row {a}: is sql/data.sql loaded?"))
}

pub fn row_body_is_byte_exact(server: &Server) -> Result<()> {
    for a in [1, 12345, server.rows] {
        let b = row_of(server, a)?;
        let response = client::get(server.direct, &format!("/test?id={a}"))?;
        expect_status(&response, 200, &format!("/test?id={a}"))?;
        let expected = expected_row_body(a, &b);
        ensure!(
            response.body == expected.as_bytes(),
            "/test?id={a}: body {:?}, expected {expected:?}",
            response.text()
        );
        if b.len() == 20 {
            ensure!(
                response.body.len() == 45,
                "a 20-letter row must be 45 bytes"
            );
        }
    }
    Ok(())
}

pub fn random_rows_are_real_rows(server: &Server) -> Result<()> {
    let mut observer = Observer::connect(&server.database_url)?;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let response = client::get(server.direct, "/test")?;
        expect_status(&response, 200, "/test")?;
        let body: serde_json::Value = serde_json::from_slice(&response.body)
            .with_context(|| format!("/test: body is not JSON: {}", response.text()))?;
        let a_text = body["a"].as_str().context("/test: no string \"a\"")?;
        ensure!(
            a_text.len() == 10,
            "/test: \"a\" is not 10 digits: {a_text}"
        );
        let a: i32 = a_text.parse().context("/test: \"a\" is not a number")?;
        ensure!(
            (1..=server.rows).contains(&a),
            "/test: id {a} outside 1..={}",
            server.rows
        );
        let b = observer
            .row(a)?
            .context("/test returned a row the DB lacks")?;
        ensure!(
            response.body == expected_row_body(a, &b).as_bytes(),
            "/test: body {} does not match row {a}",
            response.text()
        );
        seen.insert(a);
    }
    ensure!(
        seen.len() > 10,
        "/test drew only {} distinct ids in 20 requests",
        seen.len()
    );
    Ok(())
}

pub fn headers_follow_the_contract(server: &Server) -> Result<()> {
    for target in ["/test?id=7", "/json", "/health", "/test?id=0", "/nope"] {
        let response = client::get(server.direct, target)?;
        expect_json_content_type(&response, target)?;
        let length = response
            .header("content-length")
            .with_context(|| format!("{target}: no Content-Length"))?;
        ensure!(
            length.trim().parse::<usize>().ok() == Some(response.body.len()),
            "{target}: Content-Length {length} but {} body bytes",
            response.body.len()
        );
        if let Some(binary) = server.binary {
            let named = response.header("server").unwrap_or("(none)");
            ensure!(
                named == binary.name(),
                "{target}: Server is {named:?}, expected {:?}",
                binary.name()
            );
        }
        ensure!(
            response.header_count("server") == 1,
            "{target}: more than one Server header"
        );
        let date = response
            .header("date")
            .with_context(|| format!("{target}: no Date"))?;
        let parsed = httpdate::parse_http_date(date)
            .with_context(|| format!("{target}: Date {date:?} is not an HTTP date"))?;
        let skew = match parsed.duration_since(std::time::SystemTime::now()) {
            Ok(ahead) => ahead,
            Err(behind) => behind.duration(),
        };
        ensure!(
            skew < Duration::from_secs(3),
            "{target}: Date {date} is {skew:?} off"
        );
    }
    Ok(())
}

pub fn date_changes_across_a_second(server: &Server) -> Result<()> {
    let first = client::get(server.direct, "/json")?;
    std::thread::sleep(Duration::from_millis(1100));
    let second = client::get(server.direct, "/json")?;
    let (a, b) = (first.header("date"), second.header("date"));
    ensure!(
        a.is_some() && a != b,
        "Date did not change across 1.1 s: {a:?} then {b:?}"
    );
    Ok(())
}

pub fn json_and_health_answer_fixed_bodies(server: &Server) -> Result<()> {
    for (target, body) in [
        ("/json", &br#"{"message":"Hello, World!"}"#[..]),
        ("/health", br#"{"status":"ok"}"#),
    ] {
        let response = client::get(server.direct, target)?;
        expect_status(&response, 200, target)?;
        ensure!(
            response.body == body,
            "{target}: body {:?}, expected {:?}",
            response.text(),
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

/// Every bad parameter the contract names.
pub const BAD_PARAMETERS: [&str; 18] = [
    "/test?delay_ms=-1",
    "/test?delay_ms=10001",
    "/test?delay_ms=abc",
    "/test?id=0",
    "/test?id=abc",
    "/test?id=2147483648",
    "/test?id=-5",
    "/test?unknown=1",
    "/test?id=1&id=2",
    "/test?delay_ms=1&delay_ms=1",
    "/test?backend=redis",
    "/test?work=100001",
    "/test?work=-1",
    "/test?work=1&work=1",
    "/test?backend=upstream&fanout=0",
    "/test?backend=upstream&fanout=17",
    "/test?backend=db&fanout=2",
    "/json?x=1",
];

pub fn bad_parameters_are_400(server: &Server) -> Result<()> {
    for target in BAD_PARAMETERS {
        let response = client::get(server.direct, target)?;
        expect_error(&response, 400, target)?;
    }
    Ok(())
}

pub fn unknown_path_and_missing_row_are_404(server: &Server) -> Result<()> {
    for target in ["/", "/nope", "/test/extra"] {
        let response = client::get(server.direct, target)?;
        expect_error(&response, 404, target)?;
    }
    let missing = server.rows.saturating_add(1);
    if missing > server.rows {
        let target = format!("/test?id={missing}");
        let response = client::get(server.direct, &target)?;
        expect_error(&response, 404, &target)?;
        // The sleep is skipped when no row matches; the 404 still comes.
        let target = format!("/test?id={missing}&delay_ms=50");
        expect_error(&client::get(server.direct, &target)?, 404, &target)?;
    }
    Ok(())
}

pub fn other_methods_are_405_with_allow(server: &Server) -> Result<()> {
    for (method, path) in [
        ("POST", "/test"),
        ("PUT", "/json"),
        ("DELETE", "/health"),
        ("HEAD", "/test"),
    ] {
        let what = format!("{method} {path}");
        let response = client::request(server.direct, method, path)?;
        if method == "HEAD" {
            // A HEAD response has no body to check.
            expect_status(&response, 405, &what)?;
        } else {
            expect_error(&response, 405, &what)?;
        }
        let allow = response.header("allow").unwrap_or("(none)");
        ensure!(
            allow == "GET",
            "{what}: Allow is {allow:?}, expected \"GET\""
        );
    }
    Ok(())
}

/// sync-pool answers one request per connection; an external server may too, when its first
/// answer says `Connection: close`.
fn one_request_per_connection(server: &Server, first: &Response) -> bool {
    match server.binary {
        Some(binary) => binary.model().closes_each_connection(),
        None => first
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close")),
    }
}

pub fn keep_alive_follows_the_model(server: &Server) -> Result<()> {
    let mut conn = client::Conn::open(server.direct)?;
    let first = conn.get("/json")?;
    expect_status(&first, 200, "first request")?;
    if one_request_per_connection(server, &first) {
        // gunicorn's sync worker: one request per connection.
        let connection = first.header("connection").unwrap_or("(none)");
        ensure!(
            connection.eq_ignore_ascii_case("close"),
            "{} must answer Connection: close, got {connection:?}",
            server.name
        );
        ensure!(
            conn.is_closed_by_peer(Duration::from_secs(5)),
            "{} did not close the connection after its response",
            server.name
        );
        return Ok(());
    }
    ensure!(
        first.reusable,
        "the response closes a keep-alive connection"
    );
    for target in ["/test?id=3", "/health"] {
        let response = conn.get(target)?;
        expect_status(
            &response,
            200,
            &format!("{target} on a kept-alive connection"),
        )?;
    }
    Ok(())
}

/// `Connection: close` and HTTP/1.0 (ab without -k) get their answer and then a close;
/// malformed input gets a 400 and a close, never silence; pipelined requests are answered
/// in order.
pub fn close_requests_and_malformed_input_end_the_connection(server: &Server) -> Result<()> {
    let wait = Duration::from_secs(5);
    for (what, raw) in [
        (
            "Connection: close",
            &b"GET /json HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"[..],
        ),
        ("HTTP/1.0", &b"GET /json HTTP/1.0\r\n\r\n"[..]),
    ] {
        let mut conn = client::Conn::open(server.direct)?;
        conn.send(raw)?;
        let response = conn.read(false)?;
        expect_status(&response, 200, what)?;
        ensure!(
            response.body == br#"{"message":"Hello, World!"}"#,
            "{what}: wrong body"
        );
        ensure!(
            conn.is_closed_by_peer(wait),
            "{what}: the connection stayed open after the response"
        );
    }

    let mut conn = client::Conn::open(server.direct)?;
    conn.send(
        b"GET /json HTTP/1.1\r\nHost: bench\r\n\r\nGET /health HTTP/1.1\r\nHost: bench\r\n\r\n",
    )?;
    let first = conn.read(false)?;
    if one_request_per_connection(server, &first) {
        // One request per connection: the second is never read.
        expect_status(&first, 200, "the first of two pipelined requests")?;
        ensure!(
            conn.is_closed_by_peer(wait),
            "{} kept a pipelined connection open",
            server.name
        );
    } else {
        let second = conn.read(false)?;
        ensure!(
            first.body == br#"{"message":"Hello, World!"}"# && second.body == br#"{"status":"ok"}"#,
            "pipelined /json and /health were not answered in order"
        );
    }

    let mut conn = client::Conn::open(server.direct)?;
    conn.send(b"GET /json HT\x01TP/1.1\r\nHost: bench\r\n\r\n")?;
    let response = conn
        .read(false)
        .context("a malformed request got no answer")?;
    expect_status(&response, 400, "a malformed request line")?;
    ensure!(
        conn.is_closed_by_peer(wait),
        "the connection stayed open after a malformed request"
    );
    Ok(())
}

pub fn db_delay_sleeps_in_the_statement(server: &Server) -> Result<()> {
    let started = Instant::now();
    let response = client::get(server.direct, "/test?id=5&delay_ms=200")?;
    let elapsed = started.elapsed();
    expect_status(&response, 200, "/test?id=5&delay_ms=200")?;
    let b = row_of(server, 5)?;
    ensure!(
        response.body == expected_row_body(5, &b).as_bytes(),
        "wrong body for id 5"
    );
    ensure!(
        elapsed >= Duration::from_millis(200),
        "a 200 ms delay answered in {elapsed:?}: the sleep did not run"
    );
    Ok(())
}

/// The upstream page's length, fetched from nginx directly.
/// What a server's upstream backend fetched: the length it reports, and the length of the
/// harness's own page at `upstream` (equal when it fetched the run's page).
pub fn upstream_lengths(direct: SocketAddr, upstream: SocketAddr) -> Result<(u64, usize)> {
    let response = client::get(direct, "/test?backend=upstream&delay_ms=0")?;
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .with_context(|| format!("its upstream answer is not JSON: {}", response.text()))?;
    let reported = body["bytes"]
        .as_u64()
        .with_context(|| format!("its upstream answer has no bytes: {}", response.text()))?;
    Ok((reported, upstream_page_length(upstream)?))
}

fn upstream_page_length(upstream: SocketAddr) -> Result<usize> {
    let page = client::get(upstream, "/upstream?delay_ms=0")?;
    expect_status(&page, 200, "the upstream page itself")?;
    Ok(page.body.len())
}

/// The upstream backend answers `{"status":200,"bytes":N}` with N the length of the harness's
/// upstream page, and asks nginx for the delay. A server the suite did not build may fetch a
/// page of its own (it cannot know the harness's upstream before the run): then N must be the
/// same on every answer, and above zero.
pub fn upstream_backend_reports_status_and_length(server: &Server) -> Result<()> {
    let mut bytes = match server.upstream {
        Some(upstream) => Some(upstream_page_length(upstream)?),
        None => None,
    };
    for delay in [0, 100] {
        let target = format!("/test?backend=upstream&delay_ms={delay}");
        let started = Instant::now();
        let response = client::get(server.direct, &target)?;
        let elapsed = started.elapsed();
        expect_status(&response, 200, &target)?;
        expect_json_content_type(&response, &target)?;
        let body: serde_json::Value = serde_json::from_slice(&response.body)
            .with_context(|| format!("{target}: body is not JSON: {}", response.text()))?;
        ensure!(
            body["status"] == 200,
            "{target}: upstream status {}",
            body["status"]
        );
        let reported = body["bytes"].as_u64().filter(|&n| n > 0);
        if server.binary.is_none() && delay == 0 && reported != bytes.map(|b| b as u64) {
            // Its own page: every later answer must report the same length.
            bytes = reported.map(|n| n as usize);
        }
        if let Some(bytes) = bytes {
            let expected = format!(r#"{{"status":200,"bytes":{bytes}}}"#);
            ensure!(
                response.body == expected.as_bytes(),
                "{target}: body {}, expected {expected}",
                response.text()
            );
        }
        ensure!(
            elapsed >= Duration::from_millis(delay),
            "{target} answered in {elapsed:?}: the delay was not asked of nginx"
        );
    }
    Ok(())
}

pub fn nginx_passes_the_same_bodies(server: &Server) -> Result<()> {
    let Some(proxied) = server.proxied else {
        return Err(CannotCheck(format!(
            "no nginx in front of {} to compare its bodies through",
            server.name
        ))
        .into());
    };
    for target in [
        "/test?id=42",
        "/json",
        "/health",
        "/test?id=0",
        "/nope",
        "/test?backend=upstream",
    ] {
        let direct = client::get(server.direct, target)?;
        let via = client::get(proxied, target)?;
        ensure!(
            direct.status == via.status && direct.body == via.body,
            "{target}: direct {} {:?}, via nginx {} {:?}",
            direct.status,
            direct.text(),
            via.status,
            via.text()
        );
    }
    Ok(())
}

/// Request smuggling (RFC 9112 section 6.3): a body length that two parsers could read two
/// ways is refused with 400 and the connection closes, so that no second request hides in a
/// body. The first case is the pair that got two answers from may-green's upstream library.
pub fn ambiguous_body_framing_is_400_and_closes(server: &Server) -> Result<()> {
    let smuggled = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    let cases = [
        (
            "Content-Length 33, then 0",
            "Content-Length: 33\r\nContent-Length: 0\r\n",
        ),
        ("Content-Length +33", "Content-Length: +33\r\n"),
        ("Content-Length 33, 0", "Content-Length: 33, 0\r\n"),
        (
            "Content-Length with Transfer-Encoding",
            "Content-Length: 33\r\nTransfer-Encoding: chunked\r\n",
        ),
    ];
    for (what, framing) in cases {
        let mut conn = client::Conn::open(server.direct)?;
        conn.send(format!("GET /json HTTP/1.1\r\nHost: x\r\n{framing}\r\n{smuggled}").as_bytes())?;
        let response = conn.read(false)?;
        // hyper and actix answer their own parse errors with an empty body, which the
        // contract allows for bare errors of the HTTP layer.
        expect_status(&response, 400, what)?;
        ensure!(
            conn.is_closed_by_peer(Duration::from_secs(5)),
            "{what}: the connection stayed open after the 400 (the smuggled request may be read)"
        );
    }
    Ok(())
}

/// The same head limit in every HTTP layer: request line and headers over 8 KiB are 431.
pub fn heads_over_8_kib_are_431(server: &Server) -> Result<()> {
    for size in [9 * 1024, 64 * 1024] {
        let what = format!("a {} KiB header", size / 1024);
        let mut conn = client::Conn::open(server.direct)?;
        conn.send(
            format!(
                "GET /json HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(size)
            )
            .as_bytes(),
        )?;
        let response = conn.read(false)?;
        expect_status(&response, 431, &what)?;
    }
    let mut conn = client::Conn::open(server.direct)?;
    conn.send(
        format!(
            "GET /json HTTP/1.1\r\nHost: x\r\nX-Fits: {}\r\n\r\n",
            "a".repeat(7 * 1024)
        )
        .as_bytes(),
    )?;
    expect_status(&conn.read(false)?, 200, "a 7 KiB header")
}
