//! Servers the harness did not start (`--external NAME=URL`): a team's own service, in any
//! language, measured beside the references under the same load. The harness knows only its
//! address; what it can observe of the process comes from `--external-pid` (memory, threads,
//! CPU, on this machine) and `--external-app` (its DB sessions, by `application_name`).

use std::net::SocketAddr;

use shared::{Backend, Binary};

use super::settings::{Endpoint, Settings};

/// What bounds an external server's concurrency, as its user states it
/// (`--external-model NAME=pool:19`): the harness cannot see inside a server it did not
/// build, so without it an external row has no bound and no efficiency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalModel {
    /// At most N requests at a time: N workers or N pooled DB connections (gunicorn's sync
    /// workers, a fixed thread pool).
    Pool(u32),
    /// A thread (or process) per connection, at most N at once.
    Threads(u32),
    /// Nothing inside it limits how many requests it serves at once (an event loop with a
    /// pool as large as the clients): only the clients bound it.
    Unbounded,
}

impl ExternalModel {
    /// Parses `pool:N`, `threads:N` or `unbounded`.
    pub fn parse(text: &str) -> Result<ExternalModel, String> {
        let count = |n: &str| match n.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{n:?} is not a count of 1 or more")),
        };
        match text.split_once(':') {
            Some(("pool", n)) => count(n).map(ExternalModel::Pool),
            Some(("threads", n)) => count(n).map(ExternalModel::Threads),
            None if text == "unbounded" => Ok(ExternalModel::Unbounded),
            _ => Err(format!(
                "{text:?} is not a model: write pool:N, threads:N or unbounded"
            )),
        }
    }

    /// As given: `pool:19`.
    pub fn name(self) -> String {
        match self {
            ExternalModel::Pool(n) => format!("pool:{n}"),
            ExternalModel::Threads(n) => format!("threads:{n}"),
            ExternalModel::Unbounded => "unbounded".to_string(),
        }
    }

    /// What it means, for the row's model column.
    pub fn describe(self) -> String {
        match self {
            ExternalModel::Pool(n) => format!("at most {n} requests at a time"),
            ExternalModel::Threads(n) => format!("a thread per connection, at most {n}"),
            ExternalModel::Unbounded => "no limit of its own".to_string(),
        }
    }

    /// The requests it can have in flight at once (`None`: as many as the clients), which
    /// the Little's-law bound divides by the delay.
    pub fn concurrency(self) -> Option<u32> {
        match self {
            ExternalModel::Pool(n) | ExternalModel::Threads(n) => Some(n),
            ExternalModel::Unbounded => None,
        }
    }
}

/// A server named on the command line, with what is known of its process.
#[derive(Clone, Debug, PartialEq)]
pub struct External {
    pub name: String,
    /// As given: `http://HOST:PORT/test`.
    pub url: String,
    /// HOST:PORT, resolved.
    pub addr: SocketAddr,
    /// `--external-pid`: the process on this machine, for RSS, threads and CPU.
    pub pid: Option<u32>,
    /// `--external-app`: its `application_name` in `pg_stat_activity`, for DB sessions.
    pub app: Option<String>,
    /// `--external-model`: what bounds it (absent: no bound, no efficiency).
    pub model: Option<ExternalModel>,
    /// What it is, when the harness knows (a peer's stack and shape).
    pub about: Option<String>,
    /// Whether it passed the checks the measurement rests on (false with `--no-verify`).
    pub verified: bool,
    /// The conformance rules it breaks (headers, limits, error codes), each as
    /// `check: what came back`; it is measured all the same.
    pub breaks: Vec<String>,
    /// How the harness started it (a peer: its command line); empty for a server the user
    /// started.
    pub flags: Vec<String>,
    /// One of the articles' stacks, started by the harness (`--peers`).
    pub peer: bool,
    /// The reference binary it runs, when known (a target of a remote stack).
    pub binary: Option<Binary>,
    /// On a stack another `bench up` started (`--remote`): where, and how it is observed.
    pub remote: Option<RemoteSide>,
    /// What its rows rest on beside the targets': the upstream page it fetched, in words
    /// (the run's page, or one of its own and its length).
    pub upstream_page: Option<String>,
    /// The database it was checked and measured on (its password left out).
    pub database: Option<String>,
}

/// A target of a remote stack, as its description has it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteSide {
    /// The host the stack runs on.
    pub host: String,
    /// Its status endpoint, for RSS, threads and CPU (absent: those columns stay empty).
    pub status: Option<crate::token::StatusEndpoint>,
    /// The target through the stack's own nginx.
    pub via_nginx: Option<SocketAddr>,
    /// The flags it was started with: name and value.
    pub flags: Vec<(String, String)>,
}

/// `NAME=URL` as given on the command line (checked for shape; resolved by [`assemble`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Named<T> {
    pub name: String,
    pub value: T,
}

pub(crate) fn split_named(
    flag: &str,
    text: &str,
    example: &str,
) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{flag} {text:?}: write NAME=VALUE, e.g. {example}"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(format!(
            "{flag} {text:?}: the name {name:?} must be letters, digits, '-', '_' or '.'"
        ));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// Parses `--external-pid NAME=PID`.
/// One pid per name: a multi-process server is watched from its parent, whose descendants are
/// counted with it, so several pids (as `$(pgrep my-server)` gives) are refused saying so.
pub fn parse_pid(text: &str) -> Result<Named<u32>, String> {
    const ONE: &str = "give one: the parent's (the master of a multi-process server, e.g. `pgrep -o my-server`); its descendants are counted with it";
    if !text.contains('=') && text.trim().parse::<u32>().is_ok() {
        return Err(format!(
            "--external-pid {text:?}: a second process id; {ONE}"
        ));
    }
    let (name, pid) = split_named("--external-pid", text, "mine=12345")?;
    let several: Vec<&str> = pid.split_whitespace().collect();
    if several.len() > 1 && several.iter().all(|p| p.parse::<u32>().is_ok()) {
        return Err(format!(
            "--external-pid {name}=…: several process ids ({}); {ONE}",
            several.join(" ")
        ));
    }
    let pid = pid
        .parse::<u32>()
        .map_err(|_| format!("--external-pid {text:?}: {pid:?} is not a process id"))?;
    Ok(Named { name, value: pid })
}

/// Parses `--external-model NAME=MODEL`.
pub fn parse_model(text: &str) -> Result<Named<ExternalModel>, String> {
    let (name, model) = split_named("--external-model", text, "mine=pool:19")?;
    let model =
        ExternalModel::parse(&model).map_err(|why| format!("--external-model {text:?}: {why}"))?;
    Ok(Named { name, value: model })
}

/// Parses `--external-app NAME=APPLICATION_NAME`.
pub fn parse_app(text: &str) -> Result<Named<String>, String> {
    let (name, app) = split_named("--external-app", text, "mine=my-service")?;
    if app.is_empty() {
        return Err(format!(
            "--external-app {text:?}: the application_name is empty"
        ));
    }
    Ok(Named { name, value: app })
}

impl External {
    /// The URL the load tool gets: the endpoint and backend of the settings, with the delay
    /// asked per request (the references get theirs as flags).
    pub fn load_url(&self, addr: SocketAddr, s: &Settings) -> String {
        match s.path {
            Endpoint::Json | Endpoint::Health | Endpoint::Static => {
                format!("http://{addr}{}", s.path.path())
            }
            Endpoint::Test => {
                let backend = match s.backend {
                    Backend::Db => "",
                    Backend::Upstream => "&backend=upstream",
                };
                let mut work = if s.work > 0 {
                    format!("&work={}", s.work)
                } else {
                    String::new()
                };
                if s.fanout > 1 {
                    work += &format!("&fanout={}", s.fanout);
                }
                format!("http://{addr}/test?delay_ms={}{backend}{work}", s.delay_ms)
            }
        }
    }

    /// Why the columns the harness cannot observe are empty, or `None` when all are filled.
    pub fn unobserved(&self, queries_the_database: bool) -> Option<String> {
        let mut missing = Vec::new();
        if let Some(remote) = &self.remote {
            if remote.status.is_none() {
                missing.push(format!(
                    "RSS, threads and CPU: the stack on {} serves no samples (its description has no status_url)",
                    remote.host
                ));
            }
        } else if self.pid.is_none() {
            missing.push(format!(
                "RSS, threads and CPU need its process: --external-pid {}=PID",
                self.name
            ));
        }
        if self.app.is_none() && queries_the_database {
            missing.push(format!(
                "DB sessions need its application_name: --external-app {}=NAME",
                self.name
            ));
        }
        (!missing.is_empty()).then(|| missing.join("; "))
    }

    /// Which host measured what, for a target of a remote stack.
    pub fn measured_by(&self) -> Option<String> {
        let remote = self.remote.as_ref()?;
        let here = "this host: the load, latencies and DB sessions";
        Some(match &remote.status {
            Some(status) => format!(
                "{here}; {} (bench up, http://{status}/samples): RSS, threads and CPU of the target, PostgreSQL and nginx",
                remote.host
            ),
            None => format!("{here}; nothing from {}", remote.host),
        })
    }

    /// The row label: the name, marked external (and unverified when it was not checked), or
    /// remote with its host.
    pub fn label(&self) -> String {
        if let Some(remote) = &self.remote {
            return if self.verified {
                format!("{} [remote {}]", self.name, remote.host)
            } else {
                format!("{} [remote {}, unverified]", self.name, remote.host)
            };
        }
        let mark = if self.peer { "peer" } else { "external" };
        if self.verified {
            format!("{} [{mark}]", self.name)
        } else {
            format!("{} [{mark}, unverified]", self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pid_per_name_and_several_say_give_the_parents() {
        assert_eq!(parse_pid("mine=42").unwrap().value, 42);
        // `--external-pid "mine=$(pgrep my-server)"`: the pids on lines.
        let several = parse_pid("mine=13332\n13341\n13342").unwrap_err();
        assert!(
            several.contains("several process ids (13332 13341 13342)")
                && several.contains("the parent's"),
            "{several}"
        );
        // `--external-pid mine=$(pgrep my-server)` unquoted: the next pid is a value of its own.
        let second = parse_pid("13341").unwrap_err();
        assert!(
            second.contains("a second process id") && second.contains("pgrep -o"),
            "{second}"
        );
        assert!(parse_pid("mine=x")
            .unwrap_err()
            .contains("is not a process id"));
    }
}
