//! The `Date` header value, formatted at most once a second per thread.
//!
//! Each OS thread keeps the last value and the second it was made for. A response reads the
//! clock (a vDSO call, no syscall) and reformats only when the second has changed. A per-thread
//! cache needs no lock, and it works the same for OS threads, tokio workers and may's scheduler
//! threads (a coroutine never holds it across a yield).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static CACHE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// The current time as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT` (29 bytes).
pub fn http_date() -> [u8; 29] {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            let formatted = httpdate::fmt_http_date(now);
            let mut bytes = [b' '; 29];
            let len = formatted.len().min(29);
            bytes[..len].copy_from_slice(&formatted.as_bytes()[..len]);
            *cache = (second, bytes);
        }
        cache.1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_an_imf_fixdate_of_now() {
        let date = String::from_utf8_lossy(&http_date()).into_owned();
        assert_eq!(date.len(), 29);
        assert!(date.ends_with(" GMT"), "{date}");
        let parsed = httpdate::parse_http_date(&date).unwrap();
        let skew = SystemTime::now().duration_since(parsed).unwrap();
        assert!(skew.as_secs() < 2, "{date}");
    }
}
