//! PATCH (rust-web-perf): the upstream crate refreshed one shared buffer from a coroutine
//! every 500 ms while other threads read it (a data race, and a Date up to half a second
//! stale). Here each worker thread keeps its own copy and renders it again when the second
//! changes.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

// "Sun, 06 Nov 1994 08:49:37 GMT".len()
const DATE_VALUE_LENGTH: usize = 29;

thread_local! {
    static CURRENT: RefCell<(u64, [u8; DATE_VALUE_LENGTH])> =
        const { RefCell::new((u64::MAX, [b' '; DATE_VALUE_LENGTH])) };
}

#[doc(hidden)]
#[inline]
pub fn append_date(dst: &mut BytesMut) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        if current.0 != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == DATE_VALUE_LENGTH {
                current.1.copy_from_slice(text.as_bytes());
                current.0 = second;
            }
        }
        dst.extend_from_slice(&current.1);
    });
}
