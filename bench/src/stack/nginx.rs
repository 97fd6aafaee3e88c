//! The two nginx roles of the stack, from the templates in `nginx/`:
//!
//! - the upstream page: `/upstream?delay_ms=N` answered after `echo_sleep`, plus `/static`
//!   (nginx's own limit) and `/nginx_status` (stub_status, to count requests in flight);
//! - the reverse proxy: one port per target, upstream keep-alive on or off.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::process::{find_program, free_port, wait_for_port, Process};

const UPSTREAM_TEMPLATE: &str = include_str!("../../../nginx/upstream.conf.template");
const PROXY_TEMPLATE: &str = include_str!("../../../nginx/proxy.conf.template");
const PROXY_TARGET_TEMPLATE: &str = include_str!("../../../nginx/proxy-target.conf.template");

const ECHO_MODULE_PATHS: [&str; 2] = [
    "/usr/lib/nginx/modules/ngx_http_echo_module.so",
    "/usr/share/nginx/modules/ngx_http_echo_module.so",
];

/// A running nginx, which can be stopped and started again on the same ports (a fault).
pub struct Nginx {
    pub role: String,
    process: std::sync::Mutex<Option<Process>>,
    conf: PathBuf,
    run_dir: PathBuf,
    pids_file: PathBuf,
    listen: Vec<SocketAddr>,
}

impl Nginx {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Process>> {
        self.process.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The master process's pid (0 while stopped).
    pub fn pid(&self) -> u32 {
        self.lock().as_ref().map_or(0, Process::pid)
    }

    pub fn ensure_running(&self) -> Result<()> {
        match self.lock().as_mut() {
            Some(process) => process.ensure_running(),
            None => bail!("nginx ({}) is stopped", self.role),
        }
    }

    /// Stops nginx (fast shutdown: its connections are closed).
    pub fn stop(&self) {
        if let Some(mut process) = self.lock().take() {
            process.stop();
        }
    }

    /// Starts nginx again with the same configuration and ports, and waits for them.
    pub fn start_again(&self) -> Result<()> {
        let mut process = self.lock();
        if process.is_none() {
            *process = Some(spawn(
                &self.role,
                &self.conf,
                &self.run_dir,
                &self.pids_file,
                &self.listen,
            )?);
        }
        Ok(())
    }
}

fn nginx_program() -> Result<PathBuf> {
    find_program(
        "nginx",
        &["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"],
    )
    .context(
        "nginx not found: install it (Debian: apt-get install nginx-light libnginx-mod-http-echo)",
    )
}

fn echo_module() -> Result<&'static str> {
    ECHO_MODULE_PATHS
        .into_iter()
        .find(|path| Path::new(path).is_file())
        .context("nginx's echo module not found: install it (Debian: apt-get install libnginx-mod-http-echo)")
}

fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (key, value) in values {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    text
}

fn start(
    role: &str,
    conf_text: String,
    run_dir: &Path,
    pids_file: &Path,
    listen: &[SocketAddr],
) -> Result<Nginx> {
    for sub in ["body", "proxy", "fastcgi", "scgi", "uwsgi"] {
        fs::create_dir_all(run_dir.join(format!("{role}-tmp")).join(sub))?;
    }
    let conf = run_dir.join(format!("{role}.conf"));
    fs::write(&conf, conf_text)?;
    let process = spawn(role, &conf, run_dir, pids_file, listen)?;
    Ok(Nginx {
        role: role.to_string(),
        process: std::sync::Mutex::new(Some(process)),
        conf,
        run_dir: run_dir.to_path_buf(),
        pids_file: pids_file.to_path_buf(),
        listen: listen.to_vec(),
    })
}

/// Runs nginx on `conf` and waits until it listens on every address.
fn spawn(
    role: &str,
    conf: &Path,
    run_dir: &Path,
    pids_file: &Path,
    listen: &[SocketAddr],
) -> Result<Process> {
    let program = nginx_program()?;
    let log = run_dir.join(format!("{role}-nginx.log"));
    let mut command = Command::new(program);
    command
        .arg("-p")
        .arg(run_dir)
        .arg("-e")
        .arg(run_dir.join(format!("{role}-error.log")))
        .arg("-c")
        .arg(conf);
    // SIGTERM is nginx's fast shutdown.
    let mut process = Process::spawn("nginx", command, &log, pids_file, libc::SIGTERM)?;
    process.set_grace(Duration::from_secs(5));
    for addr in listen {
        wait_for_port(&mut process, *addr, Duration::from_secs(10))
            .with_context(|| format!("nginx ({role}) did not start; config {}", conf.display()))?;
    }
    Ok(process)
}

/// The upstream page server, on a free port.
pub fn start_upstream(run_dir: &Path, pids_file: &Path) -> Result<(Nginx, SocketAddr)> {
    let module = echo_module()?;
    let mut last_error = None;
    for _ in 0..3 {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let text = fill(
            UPSTREAM_TEMPLATE,
            &[
                ("ECHO_MODULE", module.to_string()),
                ("RUN_DIR", run_dir.display().to_string()),
                ("LISTEN", addr.to_string()),
            ],
        );
        match start("upstream", text, run_dir, pids_file, &[addr]) {
            Ok(nginx) => return Ok((nginx, addr)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nginx did not start")))
}

/// One proxied target: nginx listens on `listen` and forwards to `target`.
#[derive(Clone, Debug)]
pub struct ProxyRoute {
    pub name: String,
    pub listen: SocketAddr,
    pub target: SocketAddr,
}

/// The reverse proxy in front of `targets` (name, address), each on a new free port.
pub fn start_proxy(
    run_dir: &Path,
    pids_file: &Path,
    host: std::net::IpAddr,
    tag: &str,
    targets: &[(String, SocketAddr)],
    keepalive: bool,
    workers: usize,
) -> Result<(Nginx, Vec<ProxyRoute>)> {
    if targets.is_empty() {
        bail!("a proxy needs at least one target");
    }
    let mut last_error = None;
    for _ in 0..3 {
        let mut routes = Vec::new();
        for (name, target) in targets {
            routes.push(ProxyRoute {
                name: name.clone(),
                listen: SocketAddr::new(host, free_port()?),
                target: *target,
            });
        }
        let blocks: Vec<String> = routes
            .iter()
            .map(|route| {
                let block = fill(
                    PROXY_TARGET_TEMPLATE,
                    &[
                        ("NAME", upstream_name(&route.name)),
                        ("LISTEN", route.listen.to_string()),
                        ("TARGET", route.target.to_string()),
                        (
                            "KEEPALIVE",
                            if keepalive { "on" } else { "off" }.to_string(),
                        ),
                    ],
                );
                if keepalive {
                    block.replace("# keepalive-on: ", "")
                } else {
                    block
                }
            })
            .collect();
        let text = fill(
            PROXY_TEMPLATE,
            &[
                ("RUN_DIR", run_dir.display().to_string()),
                ("WORKERS", workers.to_string()),
                ("TARGETS", blocks.join("\n")),
            ],
        )
        .replace("proxy.pid", &format!("proxy-{tag}.pid"))
        .replace("proxy-error.log", &format!("proxy-{tag}-error.log"))
        .replace("proxy-tmp", &format!("proxy-{tag}-tmp"));
        let listen: Vec<SocketAddr> = routes.iter().map(|r| r.listen).collect();
        match start(&format!("proxy-{tag}"), text, run_dir, pids_file, &listen) {
            Ok(nginx) => return Ok((nginx, routes)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nginx did not start")))
}

/// An nginx upstream block name for a target name.
fn upstream_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("target_{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{{NAME}}` placeholders left in a text.
    fn unfilled(text: &str) -> Vec<&str> {
        text.match_indices("{{")
            .filter_map(|(i, _)| {
                let rest = &text[i + 2..];
                let end = rest.find("}}")?;
                let name = &rest[..end];
                (!name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                    .then_some(name)
            })
            .collect()
    }

    #[test]
    fn templates_have_no_unfilled_values_after_filling() {
        let text = fill(
            UPSTREAM_TEMPLATE,
            &[
                ("ECHO_MODULE", "m.so".into()),
                ("RUN_DIR", "/r".into()),
                ("LISTEN", "127.0.0.1:1".into()),
            ],
        );
        assert_eq!(unfilled(&text), Vec::<&str>::new());
        let mut names = unfilled(UPSTREAM_TEMPLATE);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names, ["ECHO_MODULE", "LISTEN", "RUN_DIR"]);
        let block = fill(
            PROXY_TARGET_TEMPLATE,
            &[
                ("NAME", "target_x".into()),
                ("LISTEN", "127.0.0.1:1".into()),
                ("TARGET", "127.0.0.1:2".into()),
                ("KEEPALIVE", "on".into()),
            ],
        );
        assert_eq!(unfilled(&block), Vec::<&str>::new());
        assert!(block.contains("# keepalive-on: keepalive"));
    }

    #[test]
    fn upstream_names_are_nginx_identifiers() {
        assert_eq!(upstream_name("tokio-axum"), "target_tokio_axum");
    }
}
