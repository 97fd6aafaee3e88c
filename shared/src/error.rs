//! The one error type of the suite, and the one place where errors become status codes.
//!
//! Every target turns a failure into an `AppError` and answers `error.status()` with the body
//! `{"error":"<one line>"}`. Messages say what went wrong and, where it helps, what to do.

use std::fmt;

use bytes::Bytes;

use crate::render::json_escape_into;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppError {
    /// A query parameter is unknown, repeated or has a bad value.
    BadParameter(String),
    /// The request itself could not be parsed.
    MalformedRequest(String),
    /// No route for this path.
    NoRoute(String),
    /// The row asked for does not exist.
    NoSuchRow(i32),
    /// A known path with a method other than GET.
    MethodNotAllowed(String),
    /// The request carried a body, which no route accepts.
    BodyTooLarge,
    /// The request line and headers exceed the limit.
    HeadersTooLarge,
    /// A request did not arrive whole within the limit (a slow client).
    RequestTimeout { waited_ms: u64 },
    /// No DB connection became free within `--pool-timeout-ms`.
    PoolTimeout { waited_ms: u64 },
    /// The database could not be reached, or the connection broke.
    DbUnavailable(String),
    /// The database answered with an error (a bug or a misconfigured schema).
    DbError(String),
    /// The upstream could not be reached or gave a bad answer.
    UpstreamFailed(String),
    /// The upstream did not answer in time.
    UpstreamTimeout { waited_ms: u64 },
    /// The process had no descriptor left for an upstream or DB connection: its own limit,
    /// not the upstream's failure.
    OutOfDescriptors(String),
    /// The request's handler panicked; the panic was caught and logged (`crate::panics`).
    Panicked,
}

impl AppError {
    /// The start-up warning when the database cannot be reached. Not fatal: `/test` answers
    /// this error's status until the database is reachable.
    pub fn warn_at_start(&self, server: &str) {
        eprintln!(
            "{server}: warning: {self}; /test will answer {} until this is fixed",
            self.status()
        );
    }

    pub fn status(&self) -> u16 {
        match self {
            AppError::BadParameter(_) | AppError::MalformedRequest(_) => 400,
            AppError::NoRoute(_) | AppError::NoSuchRow(_) => 404,
            AppError::MethodNotAllowed(_) => 405,
            AppError::RequestTimeout { .. } => 408,
            AppError::BodyTooLarge => 413,
            AppError::HeadersTooLarge => 431,
            AppError::DbError(_) | AppError::Panicked => 500,
            AppError::UpstreamFailed(_) => 502,
            AppError::PoolTimeout { .. }
            | AppError::DbUnavailable(_)
            | AppError::OutOfDescriptors(_) => 503,
            AppError::UpstreamTimeout { .. } => 504,
        }
    }

    /// `{"error":"<message>"}`, the body of every error response.
    pub fn body(&self) -> Bytes {
        let message = self.to_string();
        let mut body = Vec::with_capacity(message.len() + 12);
        body.extend_from_slice(br#"{"error":""#);
        json_escape_into(&mut body, &message);
        body.extend_from_slice(br#""}"#);
        Bytes::from(body)
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::BadParameter(msg) | AppError::MalformedRequest(msg) => f.write_str(msg),
            AppError::NoRoute(path) => write!(
                f,
                "no route for {}; try /test, /json or /health",
                truncate(path)
            ),
            AppError::NoSuchRow(id) => write!(f, "no row with id {id}"),
            AppError::MethodNotAllowed(method) => {
                write!(f, "method {} not allowed; use GET", truncate(method))
            }
            AppError::BodyTooLarge => f.write_str("request bodies are not accepted"),
            AppError::HeadersTooLarge => {
                f.write_str("request line and headers exceed 8 KiB")
            }
            AppError::RequestTimeout { waited_ms } => {
                write!(f, "the request did not arrive whole within {waited_ms} ms")
            }
            AppError::PoolTimeout { waited_ms } => write!(
                f,
                "no database connection free after {waited_ms} ms; raise --pool-size or --pool-timeout-ms, or lower the load"
            ),
            AppError::DbUnavailable(msg) => write!(f, "database unavailable: {msg}"),
            AppError::DbError(msg) => write!(f, "database error: {msg}"),
            AppError::UpstreamFailed(msg) => write!(f, "upstream failed: {msg}"),
            AppError::UpstreamTimeout { waited_ms } => {
                write!(f, "upstream gave no answer within {waited_ms} ms")
            }
            AppError::OutOfDescriptors(what) => write!(
                f,
                "out of file descriptors for {what}: the server is at its limit; retry later"
            ),
            AppError::Panicked => f.write_str(
                "the request's handler panicked (a bug in the server); its log has the panic",
            ),
        }
    }
}

impl std::error::Error for AppError {}

/// Whether an I/O error is the process's (EMFILE) or the system's (ENFILE) descriptor limit.
pub fn is_out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The first I/O error in an error's chain of sources that is [`is_out_of_descriptors`].
pub fn out_of_descriptors_in(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if is_out_of_descriptors(io) {
                return true;
            }
            // An io::Error that wraps another hides it from `source`.
            if let Some(inner) = io.get_ref() {
                if out_of_descriptors_in(inner) {
                    return true;
                }
            }
        }
        next = e.source();
    }
    false
}

/// Keeps echoed client input short in messages.
pub(crate) fn truncate(input: &str) -> String {
    const MAX: usize = 64;
    if input.len() <= MAX {
        return input.to_string();
    }
    let mut end = MAX;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &input[..end])
}

/// An error with its causes, joined by ": " ("error connecting to server: Connection
/// refused"), skipping a cause whose text the message already contains.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether an I/O error is a timeout: a read with a timeout gives `WouldBlock` on Linux and
/// `TimedOut` elsewhere, and may's sockets give `TimedOut`.
pub fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// Collapses a multi-line driver message into one line.
pub fn one_line(message: impl fmt::Display) -> String {
    message
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_contract_status() {
        let cases = [
            (AppError::BadParameter("x".into()), 400),
            (AppError::MalformedRequest("x".into()), 400),
            (AppError::NoRoute("/x".into()), 404),
            (AppError::NoSuchRow(3), 404),
            (AppError::MethodNotAllowed("POST".into()), 405),
            (AppError::RequestTimeout { waited_ms: 5 }, 408),
            (AppError::BodyTooLarge, 413),
            (AppError::HeadersTooLarge, 431),
            (AppError::DbError("x".into()), 500),
            (AppError::UpstreamFailed("x".into()), 502),
            (AppError::PoolTimeout { waited_ms: 5 }, 503),
            (AppError::DbUnavailable("x".into()), 503),
            (AppError::UpstreamTimeout { waited_ms: 5 }, 504),
            (AppError::OutOfDescriptors("x".into()), 503),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error:?}");
        }
    }

    #[test]
    fn error_bodies_are_one_json_line() {
        let body = AppError::BadParameter("bad \"id\"\nvalue".into()).body();
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["error"], "bad \"id\"\nvalue");
        assert!(!body.contains(&b'\n'));
        assert_eq!(
            &AppError::NoSuchRow(7).body()[..],
            br#"{"error":"no row with id 7"}"#
        );
    }

    #[test]
    fn long_client_input_is_truncated_in_messages() {
        let path = format!("/{}", "é".repeat(100));
        let message = AppError::NoRoute(path).to_string();
        assert!(message.len() < 120, "{message}");
    }

    #[test]
    fn one_line_joins_driver_messages() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }

    #[test]
    fn out_of_descriptors_is_found_in_an_error_chain() {
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_out_of_descriptors(&emfile));
        assert!(is_out_of_descriptors(&std::io::Error::from_raw_os_error(
            libc::ENFILE
        )));
        assert!(!is_out_of_descriptors(&std::io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
        // Wrapped, as hyper-util and tokio-postgres wrap the connect error.
        let wrapped = std::io::Error::other(emfile);
        assert!(out_of_descriptors_in(&wrapped));
        let refused = std::io::Error::other(std::io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert!(!out_of_descriptors_in(&refused));
        let answer = AppError::OutOfDescriptors("an upstream connection".into());
        assert_eq!(answer.status(), 503);
        assert!(answer.to_string().starts_with("out of file descriptors"));
    }
}
