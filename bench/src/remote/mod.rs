//! A stack on another host. `bench up --listen-host ADDR` describes what it started
//! (`stack.json`: each target's URLs, model and flags, the database and upstream URLs, the
//! versions) and serves that description, with samples of its own processes (RSS, threads,
//! CPU from its `/proc`), on a small status endpoint. `bench run --remote stack.json` (or the
//! endpoint's URL) measures that stack from this machine: the load, latencies and DB sessions
//! here, the host-side columns from the samples.
//!
//! - this file: the description (`stack.json`), and the targets it offers a run;
//! - `status`: the status endpoint and its samples (its token: `crate::token`).

mod status;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use shared::Binary;

use crate::externals::{address_of, address_of_any};
use crate::model::external::{External, RemoteSide};
use crate::model::meta::SUITE;

pub use crate::token::{split_url, StatusEndpoint, Token};
pub use status::{fetch_samples, memory_of, ProcessSample, Samples, StatusServer, Watched};

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
    /// `http://TOKEN@HOST:PORT`: `GET /stack.json` and `GET /samples`, with the endpoint's
    /// token. Absent when nothing serves samples (a compose deployment: its processes are in
    /// other containers).
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
            model: binary.describe().to_string(),
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
            let (token, url) = split_url(source);
            let addr =
                address_of_any(&url).map_err(|why| anyhow::anyhow!("--remote {url}: {why}"))?;
            let response = crate::client::get_with_token(
                addr,
                &path_of(&url),
                token.as_ref().map(Token::as_str),
            )
            .with_context(|| format!("--remote {url}: cannot fetch the description"))?;
            match response.status {
                200 => response.text(),
                401 if token.is_none() => bail!(
                    "--remote {url}: the endpoint needs its token: give the URL it printed, http://TOKEN@HOST:PORT/stack.json"
                ),
                401 => bail!("--remote {url}: the endpoint refused this token (401): give the URL it printed"),
                status => bail!("--remote {url}: answered {status}"),
            }
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

    /// The status endpoint, with its token, when there is one.
    pub fn status_endpoint(&self) -> Option<StatusEndpoint> {
        let (token, url) = split_url(self.status_url.as_deref()?);
        Some(StatusEndpoint {
            addr: address_of_any(&url).ok()?,
            token,
        })
    }
}

impl Description {
    /// The targets of this description among `names`, as servers this run did not start
    /// (each with the host it runs on and the flags it was started with); an unknown target
    /// or an unreadable URL is an error, and so is a description with none of `names`.
    pub fn externals(&self, source: &str, names: &[Binary]) -> Result<Vec<External>> {
        let status = self.status_endpoint();
        let mut remotes = Vec::new();
        for target in &self.targets {
            let binary = Binary::from_name(&target.name)
                .with_context(|| format!("--remote {source}: unknown target {:?}", target.name))?;
            if !names.contains(&binary) {
                continue;
            }
            let via_nginx = match &target.via_nginx {
                Some(url) => Some(address_of(url).map_err(anyhow::Error::msg)?),
                None => None,
            };
            remotes.push(External {
                name: target.name.clone(),
                url: target.direct.clone(),
                addr: address_of(&target.direct).map_err(anyhow::Error::msg)?,
                pid: None,
                app: Some(shared::sql::application_name(binary).to_string()),
                // A reference's model is known from its binary and flags.
                model: None,
                about: None,
                verified: false,
                breaks: Vec::new(),
                flags: Vec::new(),
                peer: false,
                binary: Some(binary),
                remote: Some(RemoteSide {
                    host: self.host.clone(),
                    status: status.clone(),
                    via_nginx,
                    // As `bench up` wrote them: `--name value`.
                    flags: target
                        .flags
                        .iter()
                        .map(|flag| match flag.split_once(' ') {
                            Some((name, value)) => (name.to_string(), value.to_string()),
                            None => (flag.clone(), String::new()),
                        })
                        .collect(),
                }),
                upstream_page: None,
                database: None,
            });
        }
        if remotes.is_empty() {
            let offered: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
            bail!(
                "--remote {source}: none of the chosen targets runs there (it has {})",
                offered.join(", ")
            );
        }
        Ok(remotes)
    }
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/stack.json".to_string(),
    }
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
        let token = Token::generate().unwrap();
        let (server, served) = StatusServer::start(
            "127.0.0.1".parse().unwrap(),
            token.clone(),
            |url| Description {
                status_url: Some(url),
                ..description()
            },
            vec![me],
        )
        .unwrap();
        let bearer = Some(token.as_str());
        let got = crate::client::get_with_token(server.addr, "/stack.json", bearer).unwrap();
        let parsed: Description = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(parsed, served);
        let endpoint = served.status_endpoint().unwrap();
        assert_eq!(endpoint.addr, server.addr);
        assert_eq!(endpoint.token.as_ref(), Some(&token));
        let samples = fetch_samples(&endpoint).unwrap();
        let me = samples["me"];
        assert!(me.rss_mib > 0.0 && me.threads >= 2, "{me:?}");
        assert_eq!(
            crate::client::get_with_token(server.addr, "/nope", bearer)
                .unwrap()
                .status,
            404
        );
        // Without the token, or with another, nothing but 401, whatever the request.
        let other = Token::generate().unwrap();
        for (path, token) in [
            ("/stack.json", None),
            ("/samples", None),
            ("/nope", None),
            ("/stack.json", Some(other.as_str())),
        ] {
            let refused = crate::client::get_with_token(server.addr, path, token).unwrap();
            assert_eq!(refused.status, 401, "{path}");
            assert!(!refused.text().contains("postgres"), "{}", refused.text());
        }
        let without = StatusEndpoint {
            token: None,
            ..endpoint
        };
        let error = fetch_samples(&without).unwrap_err().to_string();
        assert!(error.contains("401"), "{error}");
    }
}
