//! PATCH (rust-web-perf): the connections' clock: timeouts without a timer per request.
//!
//! A may read with a timeout puts an entry in the worker's timer list at every wait. Instead,
//! each connection publishes its phase and since when (two relaxed atomic stores per request),
//! and one OS thread looks at every open connection ten times a second, as a gunicorn arbiter
//! would: a head that is not whole `header` after its first byte, or an idle connection past
//! `keep_alive`, is marked expired and its coroutine woken (may's `WaitIoWaker`); the coroutine
//! answers 408 or closes. So a timeout fires up to 100 ms late, never early.
//!
//! The thread makes no call that could block a coroutine: it only reads atomics and sets
//! may's wake-up flags.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use may::io::WaitIoWaker;

use crate::http_server::Timeouts;

/// Between requests.
pub(crate) const IDLE: u8 = 0;
/// Reading a head.
pub(crate) const HEAD: u8 = 1;
/// Serving a request, or writing its answer: never expired.
pub(crate) const BUSY: u8 = 2;

/// No request from the clock.
pub(crate) const NONE: u8 = 0;
/// The phase ran past its timeout.
pub(crate) const EXPIRED: u8 = 1;

/// How often the clock looks.
const TICK: Duration = Duration::from_millis(100);

/// What a connection publishes, and what the clock asks of it.
pub(crate) struct ConnClock {
    phase: AtomicU8,
    /// Milliseconds since the clock's epoch when the phase began.
    since_ms: AtomicU64,
    request: AtomicU8,
    waker: WaitIoWaker,
}

impl ConnClock {
    /// Enters `phase` now.
    pub(crate) fn enter(&self, phase: u8) {
        self.since_ms.store(now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }

    pub(crate) fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    /// Takes the clock's request, if any.
    pub(crate) fn take_request(&self) -> u8 {
        self.request.swap(NONE, Ordering::AcqRel)
    }
}

struct Clock {
    epoch: Instant,
    open: Mutex<HashMap<usize, Arc<ConnClock>>>,
    next_id: AtomicU64,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

fn clock() -> &'static Clock {
    CLOCK.get_or_init(|| {
        let clock = Clock {
            epoch: Instant::now(),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        };
        let _ = std::thread::Builder::new()
            .name("may_minihttp clock".into())
            .spawn(tick_forever);
        clock
    })
}

fn now_ms() -> u64 {
    clock().epoch.elapsed().as_millis() as u64
}

/// A connection on the clock; it leaves the clock when this drops.
pub(crate) struct Registration {
    id: usize,
    pub(crate) conn: Arc<ConnClock>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        clock()
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Puts a connection on the clock, idle from now.
pub(crate) fn register(waker: WaitIoWaker) -> Registration {
    let clock = clock();
    let conn = Arc::new(ConnClock {
        phase: AtomicU8::new(IDLE),
        since_ms: AtomicU64::new(now_ms()),
        request: AtomicU8::new(NONE),
        waker,
    });
    let id = clock.next_id.fetch_add(1, Ordering::Relaxed) as usize;
    clock
        .open
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, conn.clone());
    Registration { id, conn }
}

fn tick_forever() {
    loop {
        std::thread::sleep(TICK);
        let Some(clock) = CLOCK.get() else {
            continue;
        };
        let timeouts: Timeouts = crate::http_server::timeouts();
        let now = now_ms();
        let open = clock.open.lock().unwrap_or_else(|e| e.into_inner());
        for conn in open.values() {
            let since = conn.since_ms.load(Ordering::Relaxed);
            let waited = Duration::from_millis(now.saturating_sub(since));
            let request = match conn.phase.load(Ordering::Relaxed) {
                HEAD if waited >= timeouts.header => EXPIRED,
                IDLE if timeouts.keep_alive.is_some_and(|t| waited >= t) => EXPIRED,
                _ => NONE,
            };
            if request != NONE && conn.request.swap(request, Ordering::AcqRel) != request {
                conn.waker.wakeup();
            }
        }
    }
}
