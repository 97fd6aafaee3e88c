//! A panic in a request's handler is a bug in the server, not the end of it: every target
//! runs its app's `respond` through [`catch`] (blocking and green models) or [`catch_async`]
//! (tokio and compio), on the thread or task that runs the request. The panic is logged with
//! the request (after the runtime's own panic message, which has the file and line), the
//! request is answered 500 with `Connection: close` (the handler's state is not to be trusted
//! for another request on the connection), and the worker, the pool and the process go on.
//!
//! `--panic-route` adds `GET /panic`, whose handler panics, to test exactly this.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Poll;

use crate::error::AppError;
use crate::request::Reply;

/// The request a panic is logged with: method, path and query as they arrived.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub server: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// `respond()`, with a panic in it answered 500 and logged.
pub fn catch(request: Request<'_>, respond: impl FnOnce() -> Reply) -> Reply {
    catch_unwind(AssertUnwindSafe(respond)).unwrap_or_else(|payload| caught(request, &*payload))
}

/// `respond`, awaited, with a panic in any of its polls answered 500 and logged.
pub async fn catch_async(request: Request<'_>, respond: impl Future<Output = Reply>) -> Reply {
    let mut respond = std::pin::pin!(respond);
    std::future::poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| respond.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(reply)) => Poll::Ready(reply),
            Err(payload) => Poll::Ready(caught(request, &*payload)),
        },
    )
    .await
}

/// Logs the panic with its request and makes the 500 that answers it.
fn caught(request: Request<'_>, payload: &(dyn Any + Send)) -> Reply {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".into());
    let query = request.query.map_or(String::new(), |q| format!("?{q}"));
    // One write: the runtime's panic message goes to stderr unlocked, a write per piece, and
    // `eprintln!` would interleave with another thread's.
    let line = format!(
        "{}: a request's handler panicked ({} {}{query}): {message}; answered 500, the process goes on\n",
        request.server,
        request.method,
        crate::error::truncate(request.path),
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    Reply::error(&AppError::Panicked).closing()
}

/// The handler's panic for `GET /panic` (`--panic-route`), raised where each model runs the
/// request.
pub fn on_request(server: &str) -> ! {
    panic!("{server}: GET /panic asked for a panic (--panic-route)")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: Request<'static> = Request {
        server: "t",
        method: "GET",
        path: "/panic",
        query: Some("x=1"),
    };

    fn is_caught_500(reply: &Reply) -> bool {
        reply.status == 500
            && reply.close
            && reply
                .body
                .starts_with(br#"{"error":"the request's handler panicked"#)
    }

    #[test]
    fn a_panic_is_a_500_that_closes_and_a_reply_passes_through() {
        assert!(is_caught_500(&catch(REQUEST, || on_request("t"))));
        let ok = catch(REQUEST, || Reply::ok(bytes::Bytes::from_static(b"{}")));
        assert_eq!((ok.status, ok.close), (200, false));
    }

    #[test]
    fn a_panic_after_an_await_is_caught_too() {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut yielded = false;
        let respond = std::future::poll_fn(|cx| {
            if !yielded {
                yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            on_request("t")
        });
        let mut caught = std::pin::pin!(catch_async(REQUEST, respond));
        assert!(caught.as_mut().poll(&mut cx).is_pending());
        match caught.as_mut().poll(&mut cx) {
            Poll::Ready(reply) => assert!(is_caught_500(&reply)),
            Poll::Pending => panic!("the second poll should have panicked and been caught"),
        }
    }
}
