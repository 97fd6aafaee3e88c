//! The status endpoint of `bench up` and `bench describe`: `GET /stack.json` (the
//! description) and `GET /samples` (RSS, threads and CPU of the stack's processes, from this
//! host's /proc), one request per connection, each with the endpoint's token (else 401 and
//! nothing else); and the load host's side, which fetches the samples.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::Description;
use crate::observe::procfs;
use crate::token::{StatusEndpoint, Token};

/// One process of the stack's host at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessSample {
    pub rss_mib: f64,
    pub threads: u64,
    /// CPU seconds so far (with its reaped children for PostgreSQL and nginx).
    pub cpu_s: f64,
}

/// The processes of the stack's host: each target by name, `postgres` and `nginx`.
pub type Samples = BTreeMap<String, ProcessSample>;

/// A process `bench up` watches: its name in the samples, pid, and whether its children's CPU
/// counts (PostgreSQL's backends, nginx's workers).
#[derive(Clone, Debug)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
    pub children: bool,
}

fn sample(watched: &[Watched]) -> Samples {
    watched
        .iter()
        .filter_map(|w| {
            let (rss_mib, threads) = procfs::rss_and_threads(w.pid)?;
            let cpu_s = procfs::cpu_seconds(w.pid, w.children)?;
            Some((
                w.name.clone(),
                ProcessSample {
                    rss_mib,
                    threads,
                    cpu_s,
                },
            ))
        })
        .collect()
}

/// The status endpoint of `bench up`: `GET /stack.json` and `GET /samples`, one request per
/// connection. Stops on drop.
pub struct StatusServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl StatusServer {
    /// Serves on `host` at a free port outside the kernel's ephemeral range (as every server
    /// of the stack: a load's client connections cannot hold it), to the bearers of `token`.
    /// `describe` gets the server's own URL, `http://TOKEN@HOST:PORT`, and returns the
    /// description to serve.
    pub fn start(
        host: IpAddr,
        token: Token,
        describe: impl FnOnce(String) -> Description,
        watched: Vec<Watched>,
    ) -> Result<(StatusServer, Description)> {
        let listener = crate::stack::process::listen_on_free_port(host)
            .with_context(|| format!("cannot listen on {host} for the status endpoint"))?;
        let addr = listener.local_addr()?;
        let description = describe(format!("http://{}@{addr}", token.as_str()));
        let server = StatusServer::run(listener, token, &description, watched)?;
        Ok((server, description))
    }

    /// Serves `description` on `listen` with no samples (`bench describe`), to the bearers of
    /// `token`.
    pub fn serve(
        listen: SocketAddr,
        token: Token,
        description: Description,
    ) -> Result<StatusServer> {
        let listener = TcpListener::bind(listen)
            .with_context(|| format!("cannot listen on {listen} for the status endpoint"))?;
        StatusServer::run(listener, token, &description, Vec::new())
    }

    fn run(
        listener: TcpListener,
        token: Token,
        description: &Description,
        watched: Vec<Watched>,
    ) -> Result<StatusServer> {
        let addr = listener.local_addr()?;
        let json = serde_json::to_string_pretty(description)? + "\n";
        let stop = Arc::new(AtomicBool::new(false));
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let _ = answer(stream, &token, &json, &watched);
                    }
                }
            }
        });
        Ok(StatusServer {
            addr,
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn answer(
    stream: TcpStream,
    token: &Token,
    description: &str,
    watched: &[Watched],
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // The rest of the head, of which only the token matters (at most 100 lines).
    let mut authorization = None;
    for _ in 0..100 {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match (method, target) {
        _ if !token.admits(authorization.as_deref()) => (
            "401 Unauthorized",
            "{\"error\":\"this endpoint needs its token: Authorization: Bearer TOKEN (the URL bench printed carries it: http://TOKEN@HOST:PORT/stack.json)\"}\n".to_string(),
        ),
        ("GET", "/stack.json") => ("200 OK", description.to_string()),
        ("GET", "/samples") => (
            "200 OK",
            serde_json::to_string(&sample(watched)).unwrap_or_default() + "\n",
        ),
        ("GET", _) => (
            "404 Not Found",
            "{\"error\":\"GET /stack.json or /samples\"}\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "{\"error\":\"only GET\"}\n".to_string(),
        ),
    };
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

/// The samples of a status endpoint now.
pub fn fetch_samples(status: &StatusEndpoint) -> Result<Samples> {
    let token = status.token.as_ref().map(Token::as_str);
    let response = crate::client::get_with_token(status.addr, "/samples", token)
        .with_context(|| format!("the stack's status endpoint http://{status} did not answer"))?;
    if response.status != 200 {
        anyhow::bail!(
            "http://{status}/samples answered {}: {}",
            response.status,
            response.text().trim()
        );
    }
    serde_json::from_slice(&response.body)
        .with_context(|| format!("http://{status}/samples is not a sample"))
}

/// One process's RSS (MiB) and threads in a status endpoint's samples now.
pub fn memory_of(status: &StatusEndpoint, name: &str) -> Option<procfs::Usage> {
    let sample = *fetch_samples(status).ok()?.get(name)?;
    Some(procfs::Usage {
        rss_mib: sample.rss_mib,
        pss_mib: None,
        threads: sample.threads,
        processes: 1,
    })
}
