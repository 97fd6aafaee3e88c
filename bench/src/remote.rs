//! A stack on another host. `bench up --listen-host ADDR` describes what it started
//! (`stack.json`: each target's URLs, model and flags, the database and upstream URLs, the
//! versions) and serves that description, with samples of its own processes (RSS, threads,
//! CPU from its `/proc`), on a small status endpoint. `bench run --remote stack.json` (or the
//! endpoint's URL) measures that stack from this machine: the load, latencies and DB sessions
//! here, the host-side columns from the samples.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::harness::procfs;

/// The suite a description belongs to.
pub const SUITE: &str = "rust-web-perf";

/// This bench's version: a description from another version is refused.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `bench up` started: `stack.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Description {
    pub suite: String,
    pub bench_version: String,
    /// The address the targets listen on.
    pub host: String,
    /// The database the targets read, reachable from the load host.
    pub database_url: String,
    /// The upstream page the targets fetch.
    pub upstream_url: String,
    /// `http://HOST:PORT`: `GET /stack.json` and `GET /samples`. Absent when nothing serves
    /// samples (a compose deployment: its processes are in other containers).
    pub status_url: Option<String>,
    pub targets: Vec<DescribedTarget>,
    /// Versions of what shaped the numbers on the stack's host.
    pub versions: Vec<(String, String)>,
}

/// One target of a description.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DescribedTarget {
    /// The binary: sync-thread, tokio-axum, …
    pub name: String,
    pub model: String,
    /// `http://HOST:PORT/test`, straight to the target.
    pub direct: String,
    /// `http://HOST:PORT/test` through the stack's nginx, when there is one.
    pub via_nginx: Option<String>,
    /// The flags it was started with (beside the stack's own).
    pub flags: Vec<String>,
}

impl DescribedTarget {
    pub fn new(
        binary: shared::Binary,
        direct: String,
        via_nginx: Option<String>,
        flags: Vec<String>,
    ) -> DescribedTarget {
        DescribedTarget {
            name: binary.name().to_string(),
            model: binary.model().to_string(),
            direct,
            via_nginx,
            flags,
        }
    }
}

impl Description {
    /// A description of this suite and version, with no status endpoint and no versions.
    pub fn new(
        host: String,
        database_url: String,
        upstream_url: String,
        targets: Vec<DescribedTarget>,
    ) -> Description {
        Description {
            suite: SUITE.to_string(),
            bench_version: VERSION.to_string(),
            host,
            database_url,
            upstream_url,
            status_url: None,
            targets,
            versions: Vec::new(),
        }
    }

    /// Reads a description from a file or from a status endpoint's URL, and refuses one of
    /// another suite or version, naming both versions.
    pub fn load(source: &str) -> Result<Description> {
        let text = if source.starts_with("http://") {
            let addr = crate::harness::external::address_of_any(source)
                .map_err(|why| anyhow::anyhow!("--remote {source}: {why}"))?;
            let path = path_of(source);
            let response = crate::client::get(addr, &path)
                .with_context(|| format!("--remote {source}: cannot fetch the description"))?;
            if response.status != 200 {
                bail!("--remote {source}: answered {}", response.status);
            }
            response.text()
        } else {
            std::fs::read_to_string(source)
                .with_context(|| format!("--remote {source}: cannot read the description"))?
        };
        let description: Description = serde_json::from_str(&text)
            .with_context(|| format!("--remote {source}: not a stack description"))?;
        description.check_version(source)?;
        Ok(description)
    }

    /// The same suite and version as this bench, or an error that names both.
    pub fn check_version(&self, source: &str) -> Result<()> {
        if self.suite != SUITE || self.bench_version != VERSION {
            bail!(
                "--remote {source}: the stack is {} bench {}, this is {SUITE} bench {VERSION}: run the same version on both hosts",
                self.suite,
                self.bench_version
            );
        }
        Ok(())
    }

    /// The status endpoint's address, when there is one.
    pub fn status_addr(&self) -> Option<SocketAddr> {
        self.status_url
            .as_deref()
            .and_then(|url| crate::harness::external::address_of_any(url).ok())
    }
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/stack.json".to_string(),
    }
}

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
    /// Serves on `host` at a free port. `describe` gets the server's own URL and returns the
    /// description to serve.
    pub fn start(
        host: IpAddr,
        describe: impl FnOnce(String) -> Description,
        watched: Vec<Watched>,
    ) -> Result<(StatusServer, Description)> {
        let listener = TcpListener::bind((host, 0))
            .with_context(|| format!("cannot listen on {host} for the status endpoint"))?;
        let addr = listener.local_addr()?;
        let description = describe(format!("http://{addr}"));
        let server = StatusServer::run(listener, &description, watched)?;
        Ok((server, description))
    }

    /// Serves `description` on `listen` with no samples (`bench describe`).
    pub fn serve(listen: SocketAddr, description: Description) -> Result<StatusServer> {
        let listener = TcpListener::bind(listen)
            .with_context(|| format!("cannot listen on {listen} for the status endpoint"))?;
        StatusServer::run(listener, &description, Vec::new())
    }

    fn run(
        listener: TcpListener,
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
                        let _ = answer(stream, &json, &watched);
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

fn answer(stream: TcpStream, description: &str, watched: &[Watched]) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // The rest of the head.
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match (method, target) {
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
pub fn fetch_samples(status: SocketAddr) -> Result<Samples> {
    let response = crate::client::get(status, "/samples")
        .with_context(|| format!("the stack's status endpoint http://{status} did not answer"))?;
    serde_json::from_slice(&response.body)
        .with_context(|| format!("http://{status}/samples is not a sample"))
}

/// One process's RSS (MiB) and threads in a status endpoint's samples now.
pub fn memory_of(status: SocketAddr, name: &str) -> Option<(f64, u64)> {
    let sample = *fetch_samples(status).ok()?.get(name)?;
    Some((sample.rss_mib, sample.threads))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description() -> Description {
        Description::new(
            "127.0.0.1".into(),
            "postgres://postgres@127.0.0.1:5432/postgres".into(),
            "http://127.0.0.1:8090/upstream".into(),
            Vec::new(),
        )
    }

    #[test]
    fn another_version_is_refused_naming_both() {
        assert!(description().check_version("stack.json").is_ok());
        let old = Description {
            bench_version: "0.0.1".into(),
            ..description()
        };
        let error = old.check_version("stack.json").unwrap_err().to_string();
        assert!(
            error.contains("bench 0.0.1") && error.contains(VERSION),
            "{error}"
        );
        let other = Description {
            suite: "other-suite".into(),
            ..description()
        };
        assert!(other.check_version("x").is_err());
    }

    #[test]
    fn the_status_endpoint_serves_the_description_and_this_process() {
        let me = Watched {
            name: "me".into(),
            pid: std::process::id(),
            children: false,
        };
        let (server, served) = StatusServer::start(
            "127.0.0.1".parse().unwrap(),
            |url| Description {
                status_url: Some(url),
                ..description()
            },
            vec![me],
        )
        .unwrap();
        let got = crate::client::get(server.addr, "/stack.json").unwrap();
        let parsed: Description = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(parsed, served);
        assert_eq!(served.status_addr(), Some(server.addr));
        let samples = fetch_samples(server.addr).unwrap();
        let me = samples["me"];
        assert!(me.rss_mib > 0.0 && me.threads >= 2, "{me:?}");
        assert_eq!(
            crate::client::get(server.addr, "/nope").unwrap().status,
            404
        );
    }
}
