//! The contract checks (docs/contract.md), shared by `bench verify` and the conformance suite.
//!
//! Each check takes a [`Subject`]: a running target, the database it reads, and optionally the
//! nginx port in front of it. A check returns `Err` with a message that says what was expected
//! and what came back.
//!
//! Concurrency is proved by counting sessions in `pg_stat_activity` and requests in flight at
//! nginx ([`burst_with_peaks`]), never by timing. Where a check looks at time, it is a lower
//! bound (a request that asked for 200 ms of sleep cannot answer sooner), which cannot race.

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use shared::Binary;

use crate::client::{self, Response};
use crate::observe::{InFlightSampler, Observer, Peaks, Sampler};
use crate::stack::Stack;

/// What a check runs against.
#[derive(Clone, Debug)]
pub struct Subject {
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
}

/// The rows `sql/data.sql` loads: the `--rows` of a target started with its defaults, and
/// what an external server is checked against.
pub const TABLE_ROWS: i32 = 1_000_000;

/// A named check.
pub struct Check {
    pub name: &'static str,
    pub run: fn(&Subject) -> Result<()>,
}

/// Every check that runs against a target started with default flags.
pub const CHECKS: &[Check] = &[
    Check {
        name: "row_body_is_byte_exact",
        run: row_body_is_byte_exact,
    },
    Check {
        name: "random_rows_are_real_rows",
        run: random_rows_are_real_rows,
    },
    Check {
        name: "headers_follow_the_contract",
        run: headers_follow_the_contract,
    },
    Check {
        name: "date_changes_across_a_second",
        run: date_changes_across_a_second,
    },
    Check {
        name: "json_and_health_answer_fixed_bodies",
        run: json_and_health_answer_fixed_bodies,
    },
    Check {
        name: "bad_parameters_are_400",
        run: bad_parameters_are_400,
    },
    Check {
        name: "unknown_path_and_missing_row_are_404",
        run: unknown_path_and_missing_row_are_404,
    },
    Check {
        name: "other_methods_are_405_with_allow",
        run: other_methods_are_405_with_allow,
    },
    Check {
        name: "keep_alive_follows_the_model",
        run: keep_alive_follows_the_model,
    },
    Check {
        name: "close_requests_and_malformed_input_end_the_connection",
        run: close_requests_and_malformed_input_end_the_connection,
    },
    Check {
        name: "ambiguous_body_framing_is_400_and_closes",
        run: ambiguous_body_framing_is_400_and_closes,
    },
    Check {
        name: "heads_over_8_kib_are_431",
        run: heads_over_8_kib_are_431,
    },
    Check {
        name: "db_delay_sleeps_in_the_statement",
        run: db_delay_sleeps_in_the_statement,
    },
    Check {
        name: "upstream_backend_reports_status_and_length",
        run: upstream_backend_reports_status_and_length,
    },
    Check {
        name: "one_statement_per_request",
        run: one_statement_per_request,
    },
    Check {
        name: "nginx_passes_the_same_bodies",
        run: nginx_passes_the_same_bodies,
    },
];

/// The result of one check.
#[derive(Debug)]
pub struct Outcome {
    pub check: &'static str,
    pub result: Result<()>,
}

/// Runs every check against `subject`, in order.
pub fn run_all(subject: &Subject) -> Vec<Outcome> {
    CHECKS
        .iter()
        .map(|check| Outcome {
            check: check.name,
            result: (check.run)(subject),
        })
        .collect()
}

/// Starts `binary` with its defaults behind its own nginx on `stack`, runs every check, and
/// stops both: what `bench verify` and `bench run` do before any load.
pub fn run_on_stack(stack: &Stack, binary: Binary) -> Result<Vec<Outcome>> {
    let target = stack.launch(binary, &[])?;
    let (_proxy, routes) = stack.proxy(&[(binary.name().to_string(), target.addr)], true, 1)?;
    let subject = Subject {
        binary: Some(binary),
        name: binary.name().to_string(),
        direct: target.addr,
        proxied: Some(routes[0].listen),
        database_url: stack.database_url().to_string(),
        upstream: Some(stack.upstream_addr),
        rows: 1_000_000,
    };
    Ok(run_all(&subject))
}

fn expect_status(response: &Response, status: u16, what: &str) -> Result<()> {
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

fn expect_json_content_type(response: &Response, what: &str) -> Result<()> {
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

fn row_of(subject: &Subject, a: i32) -> Result<String> {
    Observer::connect(&subject.database_url)?
        .row(a)?
        .with_context(|| format!("the database has no row {a}: is sql/data.sql loaded?"))
}

fn row_body_is_byte_exact(subject: &Subject) -> Result<()> {
    for a in [1, 12345, subject.rows] {
        let b = row_of(subject, a)?;
        let response = client::get(subject.direct, &format!("/test?id={a}"))?;
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

fn random_rows_are_real_rows(subject: &Subject) -> Result<()> {
    let mut observer = Observer::connect(&subject.database_url)?;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let response = client::get(subject.direct, "/test")?;
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
            (1..=subject.rows).contains(&a),
            "/test: id {a} outside 1..={}",
            subject.rows
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

fn headers_follow_the_contract(subject: &Subject) -> Result<()> {
    for target in ["/test?id=7", "/json", "/health", "/test?id=0", "/nope"] {
        let response = client::get(subject.direct, target)?;
        expect_json_content_type(&response, target)?;
        let length = response
            .header("content-length")
            .with_context(|| format!("{target}: no Content-Length"))?;
        ensure!(
            length.trim().parse::<usize>().ok() == Some(response.body.len()),
            "{target}: Content-Length {length} but {} body bytes",
            response.body.len()
        );
        if let Some(binary) = subject.binary {
            let server = response.header("server").unwrap_or("(none)");
            ensure!(
                server == binary.name(),
                "{target}: Server is {server:?}, expected {:?}",
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

fn date_changes_across_a_second(subject: &Subject) -> Result<()> {
    let first = client::get(subject.direct, "/json")?;
    std::thread::sleep(Duration::from_millis(1100));
    let second = client::get(subject.direct, "/json")?;
    let (a, b) = (first.header("date"), second.header("date"));
    ensure!(
        a.is_some() && a != b,
        "Date did not change across 1.1 s: {a:?} then {b:?}"
    );
    Ok(())
}

fn json_and_health_answer_fixed_bodies(subject: &Subject) -> Result<()> {
    for (target, body) in [
        ("/json", &br#"{"message":"Hello, World!"}"#[..]),
        ("/health", br#"{"status":"ok"}"#),
    ] {
        let response = client::get(subject.direct, target)?;
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
pub const BAD_PARAMETERS: [&str; 12] = [
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
    "/json?x=1",
];

fn bad_parameters_are_400(subject: &Subject) -> Result<()> {
    for target in BAD_PARAMETERS {
        let response = client::get(subject.direct, target)?;
        expect_error(&response, 400, target)?;
    }
    Ok(())
}

fn unknown_path_and_missing_row_are_404(subject: &Subject) -> Result<()> {
    for target in ["/", "/nope", "/test/extra"] {
        let response = client::get(subject.direct, target)?;
        expect_error(&response, 404, target)?;
    }
    let missing = subject.rows.saturating_add(1);
    if missing > subject.rows {
        let target = format!("/test?id={missing}");
        let response = client::get(subject.direct, &target)?;
        expect_error(&response, 404, &target)?;
        // The sleep is skipped when no row matches; the 404 still comes.
        let target = format!("/test?id={missing}&delay_ms=50");
        expect_error(&client::get(subject.direct, &target)?, 404, &target)?;
    }
    Ok(())
}

fn other_methods_are_405_with_allow(subject: &Subject) -> Result<()> {
    for (method, path) in [
        ("POST", "/test"),
        ("PUT", "/json"),
        ("DELETE", "/health"),
        ("HEAD", "/test"),
    ] {
        let what = format!("{method} {path}");
        let response = client::request(subject.direct, method, path)?;
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
fn one_request_per_connection(subject: &Subject, first: &Response) -> bool {
    match subject.binary {
        Some(binary) => binary == Binary::SyncPool,
        None => first
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close")),
    }
}

fn keep_alive_follows_the_model(subject: &Subject) -> Result<()> {
    let mut conn = client::Conn::open(subject.direct)?;
    let first = conn.get("/json")?;
    expect_status(&first, 200, "first request")?;
    if one_request_per_connection(subject, &first) {
        // gunicorn's sync worker: one request per connection.
        let connection = first.header("connection").unwrap_or("(none)");
        ensure!(
            connection.eq_ignore_ascii_case("close"),
            "{} must answer Connection: close, got {connection:?}",
            subject.name
        );
        ensure!(
            conn.is_closed_by_peer(Duration::from_secs(5)),
            "{} did not close the connection after its response",
            subject.name
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
fn close_requests_and_malformed_input_end_the_connection(subject: &Subject) -> Result<()> {
    let wait = Duration::from_secs(5);
    for (what, raw) in [
        (
            "Connection: close",
            &b"GET /json HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"[..],
        ),
        ("HTTP/1.0", &b"GET /json HTTP/1.0\r\n\r\n"[..]),
    ] {
        let mut conn = client::Conn::open(subject.direct)?;
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

    let mut conn = client::Conn::open(subject.direct)?;
    conn.send(
        b"GET /json HTTP/1.1\r\nHost: bench\r\n\r\nGET /health HTTP/1.1\r\nHost: bench\r\n\r\n",
    )?;
    let first = conn.read(false)?;
    if one_request_per_connection(subject, &first) {
        // One request per connection: the second is never read.
        expect_status(&first, 200, "the first of two pipelined requests")?;
        ensure!(
            conn.is_closed_by_peer(wait),
            "{} kept a pipelined connection open",
            subject.name
        );
    } else {
        let second = conn.read(false)?;
        ensure!(
            first.body == br#"{"message":"Hello, World!"}"# && second.body == br#"{"status":"ok"}"#,
            "pipelined /json and /health were not answered in order"
        );
    }

    let mut conn = client::Conn::open(subject.direct)?;
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

fn db_delay_sleeps_in_the_statement(subject: &Subject) -> Result<()> {
    let started = Instant::now();
    let response = client::get(subject.direct, "/test?id=5&delay_ms=200")?;
    let elapsed = started.elapsed();
    expect_status(&response, 200, "/test?id=5&delay_ms=200")?;
    let b = row_of(subject, 5)?;
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
fn upstream_page_length(upstream: SocketAddr) -> Result<usize> {
    let page = client::get(upstream, "/upstream?delay_ms=0")?;
    expect_status(&page, 200, "the upstream page itself")?;
    Ok(page.body.len())
}

fn upstream_backend_reports_status_and_length(subject: &Subject) -> Result<()> {
    let bytes = match subject.upstream {
        Some(upstream) => Some(upstream_page_length(upstream)?),
        None => None,
    };
    for delay in [0, 100] {
        let target = format!("/test?backend=upstream&delay_ms={delay}");
        let started = Instant::now();
        let response = client::get(subject.direct, &target)?;
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

fn one_statement_per_request(subject: &Subject) -> Result<()> {
    let mut observer = Observer::connect(&subject.database_url)?;
    if !observer.has_statement_stats() {
        bail!("pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements (and preload it)");
    }
    let missing = subject.rows.saturating_add(1);
    let mut requests: Vec<(String, bool)> = Vec::new();
    for i in 1..=10 {
        requests.push((format!("/test?id={i}"), true));
    }
    for i in 1..=4 {
        requests.push((format!("/test?id={i}&delay_ms=1"), true));
    }
    for _ in 0..3 {
        requests.push(("/test".to_string(), true));
    }
    if missing > subject.rows {
        requests.push((format!("/test?id={missing}"), true));
    }
    // No statement for these.
    for target in [
        "/test?id=0",
        "/json",
        "/health",
        "/nope",
        "/test?backend=upstream",
    ] {
        requests.push((target.to_string(), false));
    }
    let expected: i64 = requests.iter().filter(|(_, db)| *db).count() as i64;
    let before = observer.statement_calls()?;
    for (target, _) in &requests {
        client::get(subject.direct, target)?;
    }
    // The server records a call when the statement's portal closes, which can be just after
    // the client has its rows: wait for the count to settle.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delta;
    loop {
        delta = observer.statement_calls()? - before;
        if delta >= expected || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    delta = observer.statement_calls()? - before;
    ensure!(
        delta == expected,
        "{expected} requests that read the DB ran {delta} statements (pg_stat_statements calls); the contract allows exactly one each"
    );
    Ok(())
}

fn nginx_passes_the_same_bodies(subject: &Subject) -> Result<()> {
    let Some(proxied) = subject.proxied else {
        return Ok(());
    };
    for target in [
        "/test?id=42",
        "/json",
        "/health",
        "/test?id=0",
        "/nope",
        "/test?backend=upstream",
    ] {
        let direct = client::get(subject.direct, target)?;
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
fn ambiguous_body_framing_is_400_and_closes(subject: &Subject) -> Result<()> {
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
        let mut conn = client::Conn::open(subject.direct)?;
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
fn heads_over_8_kib_are_431(subject: &Subject) -> Result<()> {
    for size in [9 * 1024, 64 * 1024] {
        let what = format!("a {} KiB header", size / 1024);
        let mut conn = client::Conn::open(subject.direct)?;
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
    let mut conn = client::Conn::open(subject.direct)?;
    conn.send(
        format!(
            "GET /json HTTP/1.1\r\nHost: x\r\nX-Fits: {}\r\n\r\n",
            "a".repeat(7 * 1024)
        )
        .as_bytes(),
    )?;
    expect_status(&conn.read(false)?, 200, "a 7 KiB header")
}

/// `n` concurrent GETs of `target`, each on its own connection, released together.
pub fn burst(addr: SocketAddr, target: &str, n: usize) -> Vec<Result<Response>> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            let target = target.to_string();
            std::thread::spawn(move || {
                let mut conn = client::Conn::open(addr)?;
                barrier.wait();
                conn.get(&target)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("request thread panicked")))
        })
        .collect()
}

/// What a burst did: its responses, the peak of the target's sessions in `pg_sleep`, and the
/// peak of fetches in flight at the upstream nginx.
pub struct BurstPeaks {
    pub responses: Vec<Result<Response>>,
    pub db: Peaks,
    pub upstream_in_flight: Option<i64>,
}

/// The statuses of `responses`, in order; a failed request counts as 0.
pub fn statuses(responses: &[Result<Response>]) -> Vec<u16> {
    responses
        .iter()
        .map(|r| r.as_ref().map_or(0, |r| r.status))
        .collect()
}

impl BurstPeaks {
    /// The statuses, in order; a failed request counts as 0.
    pub fn statuses(&self) -> Vec<u16> {
        statuses(&self.responses)
    }

    pub fn all_ok(&self) -> bool {
        self.statuses().iter().all(|s| *s == 200)
    }
}

/// Runs a [`burst`] while sampling every 10 ms.
pub fn burst_with_peaks(subject: &Subject, target: &str, n: usize) -> Result<BurstPeaks> {
    let interval = Duration::from_millis(10);
    let sampler = Sampler::start(&subject.database_url, &subject.name, interval)?;
    let in_flight = subject
        .upstream
        .map(|addr| InFlightSampler::start(addr, interval));
    let responses = burst(subject.direct, target, n);
    Ok(BurstPeaks {
        responses,
        db: sampler.finish()?,
        upstream_in_flight: match in_flight {
            Some(sampler) => Some(sampler.finish()?),
            None => None,
        },
    })
}
