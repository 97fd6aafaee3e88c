//! From a request line to the work it asks for: routing, query parameters and validation.
//!
//! Every target hands the method, path and query to [`plan`] and gets back a [`Work`]: either a
//! reply to send at once (`/json`, `/health`, every 4xx), or one of the two kinds of I/O that
//! the concurrency models differ on. So routing and validation behave the same in all six
//! targets, whatever their HTTP layer does with its own routers.

use bytes::Bytes;

use crate::config::{delay_ms, parse_digits, Backend, RequestDefaults, MAX_DELAY_MS};
use crate::error::{truncate, AppError};
use crate::render::{self, DbRow};

/// What a request asks the target to do, once parsed and validated.
#[derive(Clone, Debug, PartialEq)]
pub enum Work {
    /// Answer at once, without I/O.
    Reply(Reply),
    /// Fetch row `id`, with `delay_ms` of `pg_sleep` in the same statement, then do `work`
    /// units of work ([`crate::work`]) on its body.
    FetchRow { id: i32, delay_ms: u32, work: u32 },
    /// Fetch the upstream page `fanout` times, each asking it to wait `delay_ms` first, the
    /// way the model makes several fetches at once, then do `work` units of work on the body.
    FetchUpstream {
        delay_ms: u32,
        work: u32,
        fanout: u8,
    },
    /// Panic in the handler (`GET /panic` with `--panic-route`): the panic guard's test.
    Panic,
}

/// A response: status, JSON body, and the `Allow` header for 405.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    /// `Some("GET")` on a 405.
    pub allow: Option<&'static str>,
    /// The connection closes after this reply (`Connection: close`): a request the HTTP
    /// layer cannot frame safely.
    pub close: bool,
}

impl Reply {
    pub fn ok(body: Bytes) -> Reply {
        Reply {
            status: 200,
            body,
            allow: None,
            close: false,
        }
    }

    pub fn error(error: &AppError) -> Reply {
        Reply {
            status: error.status(),
            body: error.body(),
            allow: matches!(error, AppError::MethodNotAllowed(_)).then_some("GET"),
            close: false,
        }
    }

    /// The same reply, closing the connection after it.
    pub fn closing(self) -> Reply {
        Reply {
            close: true,
            ..self
        }
    }

    /// The reply to a row fetch.
    pub fn from_row(result: Result<DbRow, AppError>) -> Reply {
        match result {
            Ok(row) => Reply::ok(render::render_row(&row)),
            Err(error) => Reply::error(&error),
        }
    }

    /// The reply to `fanout=K`'s K fetches: the first failure's error, or with K = 1 the one
    /// page's body, else `{"status":S,"bytes":TOTAL,"fanout":K}` (S: 200, or the first other
    /// status a page had).
    pub fn from_pages(pages: Vec<Result<UpstreamReply, AppError>>) -> Reply {
        let fanout = pages.len();
        let mut status = 200;
        let mut bytes = 0;
        for page in pages {
            match page {
                Ok(page) => {
                    if status == 200 {
                        status = page.status;
                    }
                    bytes += page.bytes;
                }
                Err(error) => return Reply::error(&error),
            }
        }
        if fanout == 1 {
            return Reply::ok(render::render_upstream(status, bytes));
        }
        Reply::ok(render::render_fanout(status, bytes, fanout))
    }

    /// This reply after `n` units of work on its body ([`crate::work::with_work`]), on the
    /// calling thread: a 200 carries the result; an error is answered as it is.
    pub fn worked(self, n: u32) -> Reply {
        if n == 0 || self.status != 200 {
            return self;
        }
        Reply {
            body: crate::work::with_work(self.body, n),
            ..self
        }
    }

    /// The reason phrase for the status line.
    pub fn reason(&self) -> &'static str {
        reason_phrase(self.status)
    }
}

/// The answer to a request whose body framing the contract refuses and a framework's HTTP
/// layer let through: one with `Transfer-Encoding` (no route takes a body) is a 400 that
/// closes the connection (RFC 9112 section 6.3), as in the blocking layer and may-green.
pub fn refuse_framing(has_transfer_encoding: bool) -> Option<Reply> {
    has_transfer_encoding.then(|| {
        Reply::error(&AppError::MalformedRequest(
            "Transfer-Encoding request bodies are not accepted".into(),
        ))
        .closing()
    })
}

/// What the upstream answered: its status and the length of its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpstreamReply {
    pub status: u16,
    pub bytes: usize,
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// The routes of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Test(TestQuery),
    Json,
    Health,
}

/// The parameters `/test` accepts, each optional and at most once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestQuery {
    pub delay_ms: Option<u32>,
    pub id: Option<i32>,
    pub backend: Option<Backend>,
    pub work: Option<u32>,
    pub fanout: Option<u8>,
}

/// Routes a request. `path` is the path without the query; `query` is what follows `?`.
pub fn route(method: &str, path: &str, query: Option<&str>) -> Result<Route, AppError> {
    let route = match path {
        "/test" => Route::Test(TestQuery::default()),
        "/json" => Route::Json,
        "/health" => Route::Health,
        _ => return Err(AppError::NoRoute(path.to_string())),
    };
    if method != "GET" {
        return Err(AppError::MethodNotAllowed(method.to_string()));
    }
    match route {
        Route::Test(_) => Ok(Route::Test(parse_test_query(query)?)),
        other => {
            if let Some(name) = pairs(query).next() {
                let name = name?.0;
                return Err(AppError::BadParameter(format!(
                    "unknown parameter {:?}; {path} takes none",
                    truncate(&name)
                )));
            }
            Ok(other)
        }
    }
}

/// Splits a request-target into path and query. An absolute-form target
/// (`http://host/test?x`) is reduced to its path, as RFC 9112 asks of servers.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let target = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// Parses the `/test` query: `delay_ms`, `id`, `backend`, `work` and `fanout`, each at most
/// once.
pub fn parse_test_query(query: Option<&str>) -> Result<TestQuery, AppError> {
    let mut parsed = TestQuery::default();
    for pair in pairs(query) {
        let (name, value) = pair?;
        let repeated = match name.as_str() {
            "delay_ms" => parsed.delay_ms.replace(parse_delay(&value)?).is_some(),
            "id" => parsed.id.replace(parse_id(&value)?).is_some(),
            "backend" => parsed.backend.replace(parse_backend(&value)?).is_some(),
            "work" => parsed.work.replace(parse_work(&value)?).is_some(),
            "fanout" => parsed.fanout.replace(parse_fanout(&value)?).is_some(),
            _ => {
                return Err(AppError::BadParameter(format!(
                    "unknown parameter {:?}; /test takes delay_ms, id, backend, work and fanout",
                    truncate(&name)
                )))
            }
        };
        if repeated {
            return Err(AppError::BadParameter(format!(
                "parameter {name} is repeated; give it once"
            )));
        }
    }
    Ok(parsed)
}

/// Decoded `name=value` pairs. Empty segments (`a=1&&b=2`, a bare `?`) are skipped.
fn pairs(query: Option<&str>) -> impl Iterator<Item = Result<(String, String), AppError>> + '_ {
    query
        .unwrap_or("")
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').ok_or_else(|| {
                AppError::BadParameter(format!(
                    "parameter {:?} has no value; write name=value",
                    truncate(segment)
                ))
            })?;
            let decode = |s: &str| {
                crate::config::decode(s).map_err(|e| AppError::BadParameter(truncate(&e)))
            };
            Ok((decode(name)?, decode(value)?))
        })
}

fn parse_delay(value: &str) -> Result<u32, AppError> {
    delay_ms(value).ok_or_else(|| {
        AppError::BadParameter(format!(
            "delay_ms must be a whole number from 0 to {MAX_DELAY_MS}, got {:?}",
            truncate(value)
        ))
    })
}

fn parse_work(value: &str) -> Result<u32, AppError> {
    crate::config::work(value).ok_or_else(|| {
        AppError::BadParameter(format!(
            "work must be a whole number from 0 to {}, got {:?}",
            crate::work::MAX_WORK,
            truncate(value)
        ))
    })
}

fn parse_fanout(value: &str) -> Result<u8, AppError> {
    parse_digits(value)
        .filter(|n| (1..=u64::from(crate::config::MAX_FANOUT)).contains(n))
        .map(|n| n as u8)
        .ok_or_else(|| {
            AppError::BadParameter(format!(
                "fanout must be a whole number from 1 to {}, got {:?}",
                crate::config::MAX_FANOUT,
                truncate(value)
            ))
        })
}

fn parse_id(value: &str) -> Result<i32, AppError> {
    parse_digits(value)
        .filter(|n| (1..=i32::MAX as u64).contains(n))
        .map(|n| n as i32)
        .ok_or_else(|| {
            AppError::BadParameter(format!(
                "id must be a whole number from 1 to {}, got {:?}",
                i32::MAX,
                truncate(value)
            ))
        })
}

fn parse_backend(value: &str) -> Result<Backend, AppError> {
    Backend::from_name(value).ok_or_else(|| {
        AppError::BadParameter(format!(
            "backend must be db or upstream, got {:?}",
            truncate(value)
        ))
    })
}

/// Turns a request into the work it asks for, filling in the target's defaults and drawing a
/// random id when none is given.
pub fn plan(defaults: &RequestDefaults, method: &str, path: &str, query: Option<&str>) -> Work {
    if defaults.panic_route && path == "/panic" && method == "GET" {
        return Work::Panic;
    }
    match route(method, path, query) {
        Ok(Route::Json) => Work::Reply(Reply::ok(Bytes::from_static(render::HELLO))),
        Ok(Route::Health) => Work::Reply(Reply::ok(Bytes::from_static(render::HEALTH_OK))),
        Ok(Route::Test(query)) => {
            let delay_ms = query.delay_ms.unwrap_or(defaults.delay_ms);
            let work = query.work.unwrap_or(defaults.work);
            match query.backend.unwrap_or(defaults.backend) {
                Backend::Db if query.fanout.is_some_and(|k| k > 1) => {
                    Work::Reply(Reply::error(&AppError::BadParameter(
                        "fanout is for the upstream backend (backend=upstream); the db backend fetches one row".into(),
                    )))
                }
                Backend::Db => Work::FetchRow {
                    id: query.id.unwrap_or_else(|| fastrand::i32(1..=defaults.rows)),
                    delay_ms,
                    work,
                },
                Backend::Upstream => Work::FetchUpstream {
                    delay_ms,
                    work,
                    fanout: query.fanout.unwrap_or(1),
                },
            }
        }
        Err(error) => Work::Reply(Reply::error(&error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: RequestDefaults = RequestDefaults {
        backend: Backend::Db,
        delay_ms: 7,
        rows: 10,
        panic_route: false,
        work: 0,
    };

    fn status_of(target: &str) -> u16 {
        let (path, query) = split_target(target);
        match plan(&DEFAULTS, "GET", path, query) {
            Work::Reply(reply) => reply.status,
            _ => 200,
        }
    }

    #[test]
    fn test_route_uses_defaults_and_draws_ids_in_range() {
        for _ in 0..200 {
            match plan(&DEFAULTS, "GET", "/test", None) {
                Work::FetchRow { id, delay_ms, work } => {
                    assert!((1..=10).contains(&id));
                    assert_eq!((delay_ms, work), (7, 0));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn query_parameters_override_the_defaults() {
        assert_eq!(
            plan(&DEFAULTS, "GET", "/test", Some("id=5&delay_ms=0")),
            Work::FetchRow {
                id: 5,
                delay_ms: 0,
                work: 0
            }
        );
        assert_eq!(
            plan(
                &DEFAULTS,
                "GET",
                "/test",
                Some("backend=upstream&delay_ms=100")
            ),
            Work::FetchUpstream {
                delay_ms: 100,
                work: 0,
                fanout: 1
            }
        );
        assert_eq!(
            plan(&DEFAULTS, "GET", "/test", Some("id=%32")),
            Work::FetchRow {
                id: 2,
                delay_ms: 7,
                work: 0
            }
        );
        assert_eq!(
            plan(
                &DEFAULTS,
                "GET",
                "/test",
                Some("delay_ms=10000&id=2147483647")
            ),
            Work::FetchRow {
                id: i32::MAX,
                delay_ms: 10_000,
                work: 0
            }
        );
        assert_eq!(
            plan(
                &DEFAULTS,
                "GET",
                "/test",
                Some("work=100000&backend=upstream")
            ),
            Work::FetchUpstream {
                delay_ms: 7,
                work: 100_000,
                fanout: 1
            }
        );
        assert_eq!(
            plan(
                &DEFAULTS,
                "GET",
                "/test",
                Some("backend=upstream&fanout=16")
            ),
            Work::FetchUpstream {
                delay_ms: 7,
                work: 0,
                fanout: 16
            }
        );
        assert_eq!(status_of("/test?fanout=1"), 200);
    }

    #[test]
    fn every_bad_parameter_of_the_contract_is_a_400() {
        for target in [
            "/test?delay_ms=-1",
            "/test?delay_ms=10001",
            "/test?delay_ms=abc",
            "/test?delay_ms=",
            "/test?delay_ms=+5",
            "/test?id=0",
            "/test?id=abc",
            "/test?id=2147483648",
            "/test?id=99999999999999999999999",
            "/test?unknown=1",
            "/test?id=1&id=2",
            "/test?delay_ms=1&delay_ms=1",
            "/test?backend=redis",
            "/test?backend=db&backend=db",
            "/test?work=100001",
            "/test?work=-1",
            "/test?work=1.5",
            "/test?work=",
            "/test?work=1&work=1",
            "/test?backend=upstream&fanout=0",
            "/test?backend=upstream&fanout=17",
            "/test?backend=upstream&fanout=-1",
            "/test?backend=upstream&fanout=x",
            "/test?backend=upstream&fanout=2&fanout=2",
            "/test?fanout=2",
            "/test?id",
            "/test?id=%zz",
            "/json?x=1",
            "/health?verbose=1",
        ] {
            assert_eq!(status_of(target), 400, "{target}");
        }
    }

    #[test]
    fn unknown_paths_are_404_and_other_methods_405_with_allow() {
        for target in ["/", "/test/", "/tests", "/TEST", "/json/x"] {
            assert_eq!(status_of(target), 404, "{target}");
        }
        for method in ["POST", "HEAD", "PUT", "DELETE", "get"] {
            match plan(&DEFAULTS, method, "/test", None) {
                Work::Reply(reply) => {
                    assert_eq!(reply.status, 405);
                    assert_eq!(reply.allow, Some("GET"));
                }
                other => panic!("{other:?}"),
            }
        }
        // An unknown path is a 404 whatever the method.
        assert_eq!(
            plan(&DEFAULTS, "POST", "/nope", None),
            Work::Reply(Reply::error(&AppError::NoRoute("/nope".into())))
        );
    }

    #[test]
    fn empty_query_segments_are_ignored() {
        assert_eq!(status_of("/test?"), 200);
        assert_eq!(status_of("/test?&id=3&"), 200);
        assert_eq!(status_of("/json?"), 200);
    }

    #[test]
    fn absolute_form_targets_route_by_their_path() {
        assert_eq!(
            split_target("http://h:1/test?id=3"),
            ("/test", Some("id=3"))
        );
        assert_eq!(split_target("http://h"), ("/", None));
        assert_eq!(split_target("/json"), ("/json", None));
    }

    #[test]
    fn replies_carry_rendered_bodies() {
        let reply = Reply::from_row(Ok(DbRow {
            a: 3,
            b: "x".into(),
        }));
        assert_eq!(&reply.body[..], br#"{"a":"0000000003","b":"x"}"#);
        let reply = Reply::from_pages(vec![Err(AppError::UpstreamTimeout { waited_ms: 10 })]);
        assert_eq!(reply.status, 504);
        assert_eq!(reply.reason(), "Gateway Timeout");
        let page = |bytes| Ok(UpstreamReply { status: 200, bytes });
        assert_eq!(
            &Reply::from_pages(vec![page(612)]).body[..],
            br#"{"status":200,"bytes":612}"#
        );
        assert_eq!(
            &Reply::from_pages(vec![page(612); 4]).body[..],
            br#"{"status":200,"bytes":2448,"fanout":4}"#
        );
        let failed = Reply::from_pages(vec![
            page(1),
            Err(AppError::UpstreamTimeout { waited_ms: 1 }),
        ]);
        assert_eq!(failed.status, 504);
    }
}
