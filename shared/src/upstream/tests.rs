//! The upstream protocol, tested on scripted answers.

use super::*;

/// A reader that hands out its bytes a few at a time, like a slow socket.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(self.data.len()).min(out.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn read_all_ways(raw: &[u8]) -> Vec<Result<Response, String>> {
    [1, 2, 3, 7, 64, 4096]
        .into_iter()
        .map(|step| {
            let mut stream = Trickle { data: raw, step };
            read_response(&mut stream, &mut Vec::new()).map_err(|e| format!("{e:?}"))
        })
        .collect()
}

fn reply(status: u16, bytes: usize, reusable: bool) -> Response {
    Response {
        reply: UpstreamReply { status, bytes },
        reusable,
    }
}

#[test]
fn content_length_bodies_are_counted() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    for result in read_all_ways(raw) {
        assert_eq!(result.unwrap(), reply(200, 5, true));
    }
}

#[test]
fn chunked_bodies_are_counted_across_any_split() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n";
    for result in read_all_ways(raw) {
        assert_eq!(result.unwrap(), reply(200, 31, true));
    }
}

#[test]
fn large_chunks_do_not_need_to_fit_in_the_buffer() {
    let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(format!("{:x}\r\n", 100_000).as_bytes());
    raw.extend(std::iter::repeat_n(b'x', 100_000));
    raw.extend_from_slice(b"\r\n3\r\nabc\r\n0\r\n\r\n");
    for result in read_all_ways(&raw) {
        assert_eq!(result.unwrap(), reply(200, 100_003, true));
    }
}

#[test]
fn close_delimited_and_connection_close_are_not_reused() {
    let raw = b"HTTP/1.0 404 Not Found\r\n\r\n0123456789";
    for result in read_all_ways(raw) {
        assert_eq!(result.unwrap(), reply(404, 10, false));
    }
    let raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    for result in read_all_ways(raw) {
        assert_eq!(result.unwrap(), reply(200, 2, false));
    }
}

#[test]
fn broken_responses_are_errors_not_panics() {
    for raw in [
        &b""[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"NOT HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: y",
    ] {
        for result in read_all_ways(raw) {
            assert!(result.is_err(), "{raw:?} gave {result:?}");
        }
    }
    let mut stream = Trickle { data: b"", step: 1 };
    assert!(matches!(
        read_response(&mut stream, &mut Vec::new()),
        Err(ReadError::ClosedBeforeResponse)
    ));
}

#[test]
fn captured_responses_keep_head_and_decoded_body() {
    let raw =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    for step in [1, 5, 4096] {
        let mut stream = Trickle { data: raw, step };
        let mut captured = Captured::default();
        let response =
            read_response_capturing(&mut stream, &mut Vec::new(), Some(&mut captured), false)
                .unwrap();
        assert_eq!(response.reply.bytes, 5);
        assert_eq!(captured.body, b"abcde");
        assert!(captured.head.ends_with(b"chunked\r\n\r\n"));
    }
    let raw = b"HTTP/1.0 200 OK\r\n\r\nuntil close";
    let mut stream = Trickle { data: raw, step: 3 };
    let mut captured = Captured::default();
    read_response_capturing(&mut stream, &mut Vec::new(), Some(&mut captured), false).unwrap();
    assert_eq!(captured.body, b"until close");
}

#[test]
fn pipelined_responses_are_read_one_after_the_other() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    for step in [1, 7, 4096] {
        let mut stream = Trickle { data: raw, step };
        let mut buf = Vec::new();
        let replies: Vec<u16> = (0..3)
            .map(|_| read_response(&mut stream, &mut buf).unwrap().reply.status)
            .collect();
        assert_eq!(replies, [200, 404, 200]);
        assert!(buf.is_empty());
    }
}

#[test]
fn head_responses_have_no_body() {
    let raw = b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 20\r\n\r\n";
    let mut stream = Trickle { data: raw, step: 4 };
    let response = read_response_capturing(&mut stream, &mut Vec::new(), None, true).unwrap();
    assert_eq!(
        response.reply,
        UpstreamReply {
            status: 405,
            bytes: 0
        }
    );
}

#[test]
fn requests_ask_for_the_delay_and_name_the_host() {
    let url = UpstreamUrl::parse("http://127.0.0.1:8090/upstream").unwrap();
    let request = String::from_utf8(request_bytes(&url, 250)).unwrap();
    assert!(request.starts_with("GET /upstream?delay_ms=250 HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n"));
    assert!(request.ends_with("\r\n\r\n"));
    assert_eq!(upstream_timeout(250), Duration::from_millis(3250));
}

#[test]
fn timeouts_are_504_and_other_failures_502() {
    let timeout = io::Error::from(io::ErrorKind::TimedOut);
    assert_eq!(io_error(&timeout, Duration::from_millis(7)).status(), 504);
    let would_block = io::Error::from(io::ErrorKind::WouldBlock);
    assert_eq!(io_error(&would_block, Duration::ZERO).status(), 504);
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    assert_eq!(io_error(&refused, Duration::ZERO).status(), 502);
}

/// The sync targets' gate lets in as many fetches as it has places; the next waits until one
/// leaves. A client without a limit gets a count every gate can hold.
#[test]
fn a_gate_lets_in_its_places_and_the_next_waits_for_one_to_leave() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let gate = Arc::new(BlockingGate::with_places(2));
    gate.enter();
    gate.enter();
    let entered = Arc::new(AtomicBool::new(false));
    let third = {
        let (gate, entered) = (gate.clone(), entered.clone());
        std::thread::spawn(move || {
            gate.enter();
            entered.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        !entered.load(Ordering::SeqCst),
        "a third fetch got in past 2 places"
    );
    gate.leave();
    third.join().unwrap();
    assert!(entered.load(Ordering::SeqCst));
    let url = UpstreamUrl::parse("http://127.0.0.1:9/upstream").unwrap();
    let _unlimited: KeepAliveClient<
        std::net::TcpStream,
        std::sync::Mutex<Vec<std::net::TcpStream>>,
        BlockingGate,
    > = KeepAliveClient::new(&url, None);
}
