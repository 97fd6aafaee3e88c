//! The four ways a request waits, side by side: this is where the concurrency models differ.
//! Each file has its app's `respond` (the line that *is* the model) and the pool the request
//! waits on, and nothing else; the serving around it is in the shared crate's other modules.
//!
//! - [`blocking`]: the calling OS thread blocks in the call, and the kernel parks it
//!   (sync-thread, sync-pool): `BlockingApp::respond`;
//! - [`tokio`]: the task gives its worker thread away at an `.await` (tokio-axum, tokio-actix,
//!   tokio-hyper): `AsyncApp::respond`;
//! - [`green`]: the call looks blocking, but parks the coroutine, not the thread (may-green):
//!   `GreenApp::respond`;
//! - [`compio`]: the task gives its thread away at an `.await` too, but the thread is its
//!   own world: its runtime, its listener, its DB sessions and upstream connections, and
//!   nothing moves between threads (compio-tpc): `LocalApp::respond`.

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "compio")]
pub mod compio;
#[cfg(feature = "green")]
pub mod green;
#[cfg(feature = "tokio")]
pub mod tokio;
