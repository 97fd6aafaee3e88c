//! The I/O of may-green: a cooperative PostgreSQL client ([`pg`]) and a cooperative upstream
//! client ([`upstream`]), both over `may::net::TcpStream`. A request waits by parking its
//! coroutine (in `wait/green.rs`); the worker thread runs the other coroutines meanwhile.
//! Nothing here makes a blocking OS call: no `std::net`, no sync `postgres`, no
//! `std::thread::sleep`, no DNS (the addresses are resolved at start-up).
//! `bench/tests/conformance.rs` proves it by counting.

pub mod pg;
pub mod upstream;
