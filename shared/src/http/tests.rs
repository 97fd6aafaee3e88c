//! The blocking HTTP layer, tested on scripted streams.

use super::fuzzing::Scripted;
use super::*;

/// Serves `chunks` (then end of stream) with a handler that echoes the route as JSON, and
/// returns what the server wrote and how the call ended.
fn serve(chunks: &[&[u8]], keep_alive: KeepAlive) -> (String, io::Result<()>) {
    let mut stream = Scripted {
        chunks: chunks.iter().map(|c| c.to_vec()).collect(),
        written: Vec::new(),
    };
    let result = serve_connection(
        &mut stream,
        "t",
        keep_alive,
        &Limits::default(),
        &|| false,
        |m, p, q| {
            Reply::ok(bytes::Bytes::from(format!(
                r#"{{"m":"{m}","p":"{p}","q":"{}"}}"#,
                q.unwrap_or("")
            )))
        },
    );
    (
        String::from_utf8_lossy(&stream.written).into_owned(),
        result,
    )
}

fn statuses(written: &str) -> Vec<&str> {
    written
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|r| r.split(' ').next().unwrap_or(""))
        .collect()
}

#[test]
fn keep_alive_serves_requests_in_sequence() {
    let (out, result) = serve(
        &[
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /b?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
        KeepAlive::PerConnection,
    );
    result.unwrap();
    assert_eq!(statuses(&out), ["200", "200"]);
    assert!(out.contains(r#"{"m":"GET","p":"/a","q":""}"#));
    assert!(out.contains(r#"{"m":"GET","p":"/b","q":"x=1"}"#));
    assert!(!out.contains("Connection: close"));
    assert!(out.contains("Server: t\r\n"));
    assert!(out.contains("Content-Type: application/json\r\n"));
    assert!(out.contains("Date: "));
}

#[test]
fn connection_close_gets_one_response_that_says_so() {
    let (out, _) = serve(
        &[b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n"],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["200"]);
    assert!(out.contains("Connection: close\r\n"));
}

#[test]
fn http10_closes_unless_it_asks_for_keep_alive() {
    let (out, _) = serve(
        &[b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n"],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["200"]);
    let (out, _) = serve(
        &[b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n"],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["200", "200"]);
    assert!(out.contains("Connection: keep-alive\r\n"));
}

#[test]
fn one_request_per_connection_when_keep_alive_is_off() {
    let (out, _) = serve(
        &[b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"],
        KeepAlive::OneRequest,
    );
    assert_eq!(statuses(&out), ["200"]);
    assert!(out.contains("Connection: close\r\n"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (out, _) = serve(
        &[b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"],
        KeepAlive::PerConnection,
    );
    let first = out.find(r#""p":"/1""#).unwrap();
    let second = out.find(r#""p":"/2""#).unwrap();
    let third = out.find(r#""p":"/3""#).unwrap();
    assert!(first < second && second < third);
}

#[test]
fn requests_split_across_many_reads_are_reassembled() {
    let raw = b"GET /split?q=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";
    let chunks: Vec<&[u8]> = raw.chunks(1).collect();
    let (out, _) = serve(&chunks, KeepAlive::PerConnection);
    assert_eq!(statuses(&out), ["200"]);
    assert!(out.contains(r#""p":"/split","q":"q=1""#));
}

#[test]
fn oversized_heads_are_431() {
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    let (out, _) = serve(&[big.as_bytes()], KeepAlive::PerConnection);
    assert_eq!(statuses(&out), ["431"]);
    // Too large even before it ends.
    let unfinished = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(9000));
    let (out, _) = serve(&[unfinished.as_bytes()], KeepAlive::PerConnection);
    assert_eq!(statuses(&out), ["431"]);
    let many: String = (0..120).map(|i| format!("X-{i}: y\r\n")).collect();
    let (out, _) = serve(
        &[format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["431"]);
    assert!(out.contains(r#"{"error":"#));
}

#[test]
fn small_bodies_are_skipped_and_large_ones_refused() {
    let (out, _) = serve(
        &[
            b"GET /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
            b"loGET /b HTTP/1.1\r\n\r\n",
        ],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["200", "200"]);
    assert!(out.contains(r#""p":"/b""#));
    let (out, _) = serve(
        &[b"GET /a HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["413"]);
    let (out, _) = serve(
        &[b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["400"]);
    let (out, _) = serve(
        &[b"GET /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n"],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["400"]);
    let (out, _) = serve(
        &[b"GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["400"]);
}

#[test]
fn malformed_input_is_400_and_closes() {
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
        b"GET /a HTTP/1.1\r\n\r\n\x16\x03\x01",
    ] {
        let (out, result) = serve(&[raw], KeepAlive::PerConnection);
        result.unwrap();
        assert_eq!(statuses(&out).last(), Some(&"400"), "{raw:?}: {out}");
        assert!(out.ends_with(r#""}"#) || out.contains("Connection: close"));
    }
}

#[test]
fn head_requests_get_no_body() {
    let (out, _) = serve(
        &[b"HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"],
        KeepAlive::PerConnection,
    );
    assert_eq!(statuses(&out), ["200", "200"]);
    assert!(!out.contains(r#""p":"/a""#));
    assert!(out.contains(r#""p":"/b""#));
}

#[test]
fn fuzz_harness_accepts_valid_and_invalid_input() {
    fuzzing::fuzz_one(b"\x05GET /test?id=1 HTTP/1.1\r\n\r\nGET /json HTTP/1.1\r\n\r\n");
    fuzzing::fuzz_one(b"");
    fuzzing::fuzz_one(b"\xff\xfe garbage");
    fuzzing::fuzz_one(b"\x03HEAD /json HTTP/1.1\r\n\r\n");
}

/// Over real sockets: a client that stops mid-request gets a 408; an idle kept-alive one is
/// closed; neither holds the thread past its timeout.
#[test]
fn slow_and_idle_clients_are_timed_out_on_real_sockets() {
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        request_timeout: Duration::from_millis(200),
        idle_timeout: Some(Duration::from_millis(200)),
        ..Limits::default()
    };
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = serve_connection(
                &mut stream,
                "t",
                KeepAlive::PerConnection,
                &limits,
                &|| false,
                |_, _, _| Reply::ok(bytes::Bytes::from_static(b"{}")),
            );
        }
    });
    // Slowloris: half a request, then nothing.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    // Idle: one request, then silence; the server closes after the idle timeout.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"GET /a HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    idle.read_to_string(&mut answer).unwrap();
    assert_eq!(statuses(&answer), ["200"]);
    server.join().unwrap();
}

/// Replays the fuzz corpus (fuzz/corpus/http_request) the way the fuzz target runs it, so
/// that every input the fuzzer kept stays fixed on every test run.
#[test]
fn every_fuzz_corpus_input_gives_well_formed_responses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/http_request");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus folder") {
        let path = entry.expect("a corpus entry").path();
        let data = std::fs::read(&path).expect("a corpus file");
        let outcome = std::panic::catch_unwind(|| fuzzing::fuzz_one(&data));
        assert!(outcome.is_ok(), "corpus input {} fails", path.display());
        replayed += 1;
    }
    assert!(
        replayed >= 20,
        "only {replayed} corpus inputs in {}",
        dir.display()
    );
}
