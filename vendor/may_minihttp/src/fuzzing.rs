//! PATCH (rust-web-perf): what the fuzz target (`fuzz/fuzz_targets/green_request.rs`) and the
//! corpus replay (`servers/may-green/tests/fuzz_corpus.rs`) run: any bytes, split in two at a
//! point the data picks, go through the connection loop's parse-and-answer steps as
//! `each_connection_loop` takes them (the same `parse`, `encode` and `encode_refusal`, no
//! socket), and the output must be well formed. Compiled only with the `fuzzing` feature.

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};

use crate::request::{self, Refusal, FEW_HEADERS};
use crate::response::{self, Response};
use crate::{MAX_BODY, MAX_HEAD};

/// What the loop answered, in order: the status, whether it said `Connection: close`, and
/// whether the request was a `HEAD` (no body sent).
#[derive(Clone, Copy, Debug)]
pub struct Expected {
    pub status: u16,
    pub close: bool,
    pub head: bool,
}

/// Runs `data` through the parse and the answers; `Err` says which rule the output broke.
/// Never panics on its own account: a panic is the parser's.
pub fn fuzz_one(data: &[u8]) -> Result<(), String> {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut req_buf = BytesMut::new();
    let mut rsp_buf = BytesMut::new();
    let mut body_buf = BytesMut::new();
    let mut expected = Vec::new();
    'connection: for chunk in [&data[..split], &data[split..]] {
        req_buf.extend_from_slice(chunk);
        loop {
            match step(&mut req_buf, &mut rsp_buf, &mut body_buf)? {
                None => break,
                Some(answer) => {
                    let close = answer.close;
                    expected.push(answer);
                    if close {
                        break 'connection;
                    }
                }
            }
        }
    }
    check_output(&rsp_buf, &expected)
}

/// One turn of the inner loop: a request answered (or refused), or `None` for "more bytes
/// needed"; what waits in the buffer then is bounded.
fn step(
    req_buf: &mut BytesMut,
    rsp_buf: &mut BytesMut,
    body_buf: &mut BytesMut,
) -> Result<Option<Expected>, String> {
    let mut few = [MaybeUninit::uninit(); FEW_HEADERS];
    let mut many = Vec::new();
    let buffered = req_buf.len();
    let (taken, keep_alive, head) = match request::parse(&mut few, &mut many, req_buf) {
        Ok(None) if buffered > MAX_HEAD + MAX_BODY => {
            return Err(format!("{buffered} bytes wait in the buffer for more"));
        }
        Ok(None) => return Ok(None),
        Err(refusal) => return refused(&refusal, rsp_buf).map(Some),
        Ok(Some(parsed)) => {
            let req = &parsed.req;
            if req.method.is_none() || req.path.is_none() || req.version.is_none() {
                return Err("a complete request without a method, path or version".into());
            }
            (parsed.taken, parsed.keep_alive, req.method == Some("HEAD"))
        }
    };
    if taken == 0 || taken > buffered || taken > MAX_HEAD + MAX_BODY {
        return Err(format!("a request took {taken} of {buffered} buffered bytes"));
    }
    req_buf.advance(taken);
    let mut rsp = Response::new(body_buf);
    rsp.header("Content-Type: application/json");
    rsp.body("{\"fuzz\":true}");
    response::encode(rsp, rsp_buf, !keep_alive, head);
    Ok(Some(Expected {
        status: 200,
        close: !keep_alive,
        head,
    }))
}

fn refused(refusal: &Refusal, rsp_buf: &mut BytesMut) -> Result<Expected, String> {
    if ![400, 408, 413, 431].contains(&refusal.status) {
        return Err(format!("refused with {}", refusal.status));
    }
    response::encode_refusal(refusal, rsp_buf);
    Ok(Expected {
        status: refusal.status as u16,
        close: true,
        head: false,
    })
}

/// The output is the expected responses, each complete, in order, and nothing else: status,
/// `Server`, `Date`, `Content-Length` matching the body (absent after `HEAD`), and
/// `Connection: close` on the last one exactly when it closes.
pub fn check_output(mut out: &[u8], expected: &[Expected]) -> Result<(), String> {
    for (i, want) in expected.iter().enumerate() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(out) {
            Ok(httparse::Status::Complete(n)) => n,
            other => return Err(format!("response {i} does not parse: {other:?}")),
        };
        if response.code != Some(want.status) {
            return Err(format!("response {i} is {:?}, not {}", response.code, want.status));
        }
        let value = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
        };
        if value("Server").is_none() || value("Date").is_none() {
            return Err(format!("response {i} lacks Server or Date"));
        }
        if (value("Connection").as_deref() == Some("close")) != want.close {
            return Err(format!("response {i}: Connection: close should be {}", want.close));
        }
        let length: usize = value("Content-Length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("response {i} has no Content-Length"))?;
        let body = if want.head { 0 } else { length };
        if out.len() < head_len + body {
            return Err(format!("response {i} is cut short"));
        }
        out = &out[head_len + body..];
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the last response", out.len()))
    }
}
