#[macro_use]
extern crate log;

mod clock;
mod date;
/// PATCH (rust-web-perf): the fuzz target's oracle; only with the `fuzzing` feature.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod http_server;
mod request;
mod response;

pub use http_server::{
    set_backlog, set_max_connections, set_timeouts, stop_accepting, HttpServer, HttpService, HttpServiceFactory, Timeouts, MAX_BODY,
    MAX_HEAD,
};
pub use request::{BodyReader, Request};
pub use response::{set_server_name, Response};
