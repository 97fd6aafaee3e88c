//! What the fuzz target and the corpus replay run: any bytes, split at any point, must give
//! well-formed responses and never a panic. Test-only: compiled for this crate's tests and for
//! the fuzz crate (feature `fuzzing`), never into a target.

use super::*;

/// A scripted socket: reads hand out the chunks in order, then end of stream.
pub struct Scripted {
    pub chunks: std::collections::VecDeque<Vec<u8>>,
    pub written: Vec<u8>,
}

impl Read for Scripted {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let Some(mut chunk) = self.chunks.pop_front() else {
            return Ok(0);
        };
        let n = chunk.len().min(out.len());
        out[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            self.chunks.push_front(chunk.split_off(n));
        }
        Ok(n)
    }
}

impl Write for Scripted {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Scripted {
    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `data` through the layer, split in two at a point the data picks, and checks the
/// output: a sequence of complete responses, each 200 or a 4xx, each with our headers.
pub fn fuzz_one(data: &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut stream = Scripted {
        chunks: [data[..split].to_vec(), data[split..].to_vec()]
            .into_iter()
            .collect(),
        written: Vec::new(),
    };
    let limits = Limits::default();
    // The methods of the requests the handler saw, in order: their responses come first,
    // then at most one error from the layer itself.
    let mut methods: Vec<String> = Vec::new();
    let _ = serve_connection(
        &mut stream,
        "fuzz",
        KeepAlive::PerConnection,
        &limits,
        &|| false,
        |method, path, query| {
            methods.push(method.to_string());
            let defaults = crate::RequestDefaults {
                backend: crate::Backend::Db,
                delay_ms: 0,
                rows: 10,
                panic_route: false,
                work: 0,
            };
            match crate::plan(&defaults, method, path, query) {
                crate::Work::Reply(reply) => reply,
                _ => Reply::ok(bytes::Bytes::from_static(b"{}")),
            }
        },
    );
    let mut rest = &stream.written[..];
    let mut responses = 0usize;
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(rest) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!(
                "unparseable response {other:?}: {:?}",
                String::from_utf8_lossy(rest)
            ),
        };
        let status = response.code.unwrap_or(0);
        assert!(
            status == 200 || (400..500).contains(&status),
            "status {status}"
        );
        let length: usize = response
            .headers
            .iter()
            .find(|h| h.name == "Content-Length")
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
            .expect("every response has a Content-Length");
        assert!(response
            .headers
            .iter()
            .any(|h| h.name == "Server" && h.value == b"fuzz"));
        // A response to HEAD has no body; its Content-Length says what GET would get.
        let after_head = methods.get(responses).is_some_and(|m| m == "HEAD");
        let body = if after_head { 0 } else { length };
        assert!(rest.len() >= head_len + body, "response cut short");
        rest = &rest[head_len + body..];
        responses += 1;
    }
    assert!(
        responses <= methods.len() + 1,
        "{responses} responses to {} requests",
        methods.len()
    );
}
