#[macro_use]
extern crate log;

mod clock;
mod date;
mod http_server;
mod request;
mod response;

pub use http_server::{
    set_backlog, set_max_connections, set_timeouts, stop_accepting, HttpServer, HttpService, HttpServiceFactory, Timeouts, MAX_BODY,
    MAX_HEAD,
};
pub use request::{BodyReader, Request};
pub use response::{set_server_name, Response};
