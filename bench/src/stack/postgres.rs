//! The database of the stack: a private PostgreSQL cluster, or the one the user names.
//!
//! The private cluster is made once per `target/` folder as a template (initdb, settings,
//! `sql/` loaded, about 15 s) and copied for each run, so that runs never share state and a
//! test run does not pay the load again. It listens on a free port on 127.0.0.1 only, with
//! `max_connections` 1100 and `pg_stat_statements` preloaded, and runs as an unprivileged user
//! when we are root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::process::{find_program, free_port, tail, Process, RunAs};

pub const SCHEMA_SQL: &str = include_str!("../../../sql/schema.sql");
pub const DATA_SQL: &str = include_str!("../../../sql/data.sql");
pub const STATS_SQL: &str = include_str!("../../../sql/stats.sql");

/// Roles with passwords, for testing clients' authentication. pg_hba asks them for MD5 and
/// SCRAM-SHA-256 respectively; every other role is trusted on loopback.
pub const MD5_ROLE: &str = "bench_md5";
pub const SCRAM_ROLE: &str = "bench_scram";

/// The role `bench up` hands a load host: it reads the test table, and every session and
/// statement through `pg_monitor` (pg_stat_activity, pg_stat_statements), and nothing more:
/// no superuser, no table of its own (not even a temporary one), no program run through
/// `COPY … PROGRAM`, no other database (pg_hba).
pub const LOAD_ROLE: &str = "bench_load";

/// Creates the load role, or resets it, with `password` and only its grants.
fn load_role_sql(database: &str, password: &str) -> String {
    format!(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{LOAD_ROLE}') THEN
             CREATE ROLE {LOAD_ROLE};
           END IF;
         END $$;
         ALTER ROLE {LOAD_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
           PASSWORD '{password}';
         GRANT pg_monitor TO {LOAD_ROLE};
         GRANT SELECT ON test TO {LOAD_ROLE};
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         REVOKE TEMPORARY ON DATABASE \"{database}\" FROM PUBLIC;"
    )
}

/// Settings of the private cluster. `fsync` is off: the data is regenerated at will, and the
/// benchmark reads only.
const SETTINGS: &str = "
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 1100
shared_buffers = 256MB
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
pg_stat_statements.max = 1000
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 256MB
min_wal_size = 32MB
log_min_messages = warning
log_connections = off
password_encryption = 'scram-sha-256'
";

const HBA: &str = "
# rust-web-perf private cluster: loopback only.
host all bench_md5 127.0.0.1/32 md5
host all bench_scram 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
";

/// Where the database is, and the server process when it is ours.
pub struct Postgres {
    pub url: String,
    pub port: u16,
    server: std::sync::Mutex<Option<Process>>,
    data_dir: Option<PathBuf>,
    /// How to start the server again: its binaries, user, log and pid files.
    restart: Option<Restart>,
}

struct Restart {
    bin: PathBuf,
    run_as: Option<RunAs>,
    log: PathBuf,
    pids_file: PathBuf,
}

impl Postgres {
    /// Uses the database at `url`: loads `sql/` into it (a no-op when loaded). Without
    /// pg_stat_statements, only the statement-count check cannot run.
    pub fn external(url: &str) -> Result<Postgres> {
        let parsed = shared::DatabaseUrl::parse(url)
            .map_err(|e| anyhow::anyhow!("bad --database-url: {e}"))?;
        load_sql(url).with_context(|| format!("cannot prepare the database at {parsed}"))?;
        // Created only when missing: a load host's role may not create it, nor need to.
        if !crate::observe::postgres::Observer::connect(url)?.has_statement_stats() {
            let mut client = postgres::Client::connect(url, postgres::NoTls)?;
            if let Err(e) = client.batch_execute(STATS_SQL) {
                eprintln!("bench: warning: sql/stats.sql failed on {parsed} ({e}); statements cannot be counted");
            }
        }
        Ok(Postgres {
            url: url.to_string(),
            port: parsed.port,
            server: std::sync::Mutex::new(None),
            data_dir: None,
            restart: None,
        })
    }

    /// Starts a private cluster in `run_dir`, copied from the template under `root`.
    pub fn embedded(root: &Path, run_dir: &Path, pids_file: &Path) -> Result<Postgres> {
        let bin = postgres_bin_dir()?;
        let run_as = RunAs::unprivileged()?;
        let template = ensure_template(root, &bin, run_as)?;
        let data_dir = run_dir.join("pgdata");
        copy_dir(&template, &data_dir)?;
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let log = run_dir.join("postgres.log");
            match start_server(&bin, &data_dir, port, run_as, &log, pids_file) {
                Ok(server) => {
                    return Ok(Postgres {
                        url: url_for(port),
                        port,
                        server: std::sync::Mutex::new(Some(server)),
                        data_dir: Some(data_dir),
                        restart: Some(Restart {
                            bin,
                            run_as,
                            log,
                            pids_file: pids_file.to_path_buf(),
                        }),
                    })
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
    }

    /// The postmaster's pid, for CPU accounting (private cluster only).
    pub fn server_pid(&self) -> Option<u32> {
        let server = self.server.lock().unwrap_or_else(|e| e.into_inner());
        server.as_ref().map(Process::pid)
    }

    pub fn is_embedded(&self) -> bool {
        self.restart.is_some()
    }

    /// Stops the private cluster (fast shutdown: every session is ended) and starts it again on
    /// the same port and data, as a database restart in production would.
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// Stops the private cluster (fast shutdown: every session is ended).
    pub fn stop(&self) -> Result<()> {
        if !self.is_embedded() {
            bail!("only the private cluster can be stopped");
        }
        let mut server = self.server.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut old) = server.take() {
            old.stop();
        }
        Ok(())
    }

    /// Starts the stopped private cluster again on the same port and data; returns once it
    /// accepts connections.
    pub fn start_again(&self) -> Result<()> {
        let (Some(restart), Some(data_dir)) = (self.restart.as_ref(), self.data_dir.as_ref())
        else {
            bail!("only the private cluster can be started again");
        };
        let mut server = self.server.lock().unwrap_or_else(|e| e.into_inner());
        if server.is_none() {
            *server = Some(start_server(
                &restart.bin,
                data_dir,
                self.port,
                restart.run_as,
                &restart.log,
                &restart.pids_file,
            )?);
        }
        Ok(())
    }

    /// What a load host gets of the private cluster (`bench up`): the URL of [`LOAD_ROLE`]
    /// with a new password, and, when `host` is not loopback, the cluster listening there too
    /// (a restart). Only that role may log in from anywhere but loopback's trusted clients,
    /// with its password (SCRAM), and only to this database.
    pub fn expose(&self, host: std::net::IpAddr) -> Result<String> {
        let data_dir = self
            .data_dir
            .as_ref()
            .context("only the private cluster can be exposed")?;
        let password = crate::token::Token::generate()?.as_str().to_string();
        let database = self
            .url
            .rsplit('/')
            .next()
            .unwrap_or("postgres")
            .to_string();
        let mut client = self.connect()?;
        client.batch_execute(&load_role_sql(&database, &password))?;
        if !host.is_loopback() {
            // Apart: ALTER SYSTEM cannot run in the transaction of a multi-statement batch.
            client.batch_execute(&format!(
                "ALTER SYSTEM SET listen_addresses = '127.0.0.1,{host}'"
            ))?;
        }
        // The load role's rules come first: pg_hba takes the first line that matches.
        let hba = data_dir.join("pg_hba.conf");
        let rules = format!(
            "host {database} {LOAD_ROLE} 0.0.0.0/0 scram-sha-256\n\
             host {database} {LOAD_ROLE} ::/0 scram-sha-256\n\
             host all {LOAD_ROLE} all reject\n\
             local all {LOAD_ROLE} reject\n{}",
            fs::read_to_string(&hba)?
        );
        fs::write(&hba, rules)?;
        if host.is_loopback() {
            client.batch_execute("SELECT pg_reload_conf()")?;
            drop(client);
        } else {
            drop(client);
            self.restart()
                .context("PostgreSQL did not come back listening on the network")?;
        }
        Ok(format!(
            "postgres://{LOAD_ROLE}:{password}@{}/{database}",
            std::net::SocketAddr::new(host, self.port)
        ))
    }

    pub fn connect(&self) -> Result<postgres::Client> {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .with_context(|| format!("cannot connect to {}", self.url))
    }

    /// Creates (or resets) a role with a password, hashed as `encryption` (`md5` or
    /// `scram-sha-256`): what a client's authentication test needs.
    pub fn create_password_role(&self, role: &str, password: &str, encryption: &str) -> Result<()> {
        let mut client = self.connect()?;
        let quoted_password = password.replace('\'', "''");
        client.batch_execute(&format!(
            "SET password_encryption = '{encryption}';
             DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                 CREATE ROLE {role} LOGIN;
               END IF;
             END $$;
             ALTER ROLE {role} PASSWORD '{quoted_password}';
             GRANT SELECT ON test TO {role};"
        ))?;
        Ok(())
    }
}

impl Postgres {
    /// The private cluster's data folder.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }
}

impl Postgres {
    /// Stops the server of the data folder, whatever its PID (it may have been restarted by
    /// someone else), and only then removes the folder: a server left running on a removed
    /// folder would hold its port and memory until the machine restarts. False when a server
    /// could not be stopped (its folder is kept).
    pub fn shut_down(&mut self) -> bool {
        let server = self.server.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut server) = server.take() {
            server.stop();
        }
        if let (Some(dir), Some(restart)) = (self.data_dir.as_deref(), self.restart.as_ref()) {
            if let Err(e) = stop_cluster(dir, &restart.bin, restart.run_as) {
                // Keep the folder: it names the server that could not be stopped.
                eprintln!("bench: {e:#}; {} is kept", dir.display());
                return false;
            }
        }
        if let Some(dir) = self.data_dir.take() {
            let _ = fs::remove_dir_all(dir);
        }
        true
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The PID in a data folder's `postmaster.pid`, when a server of that folder is alive.
pub fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    super::process::alive(pid).then_some(pid)
}

/// Stops whatever server runs on `data_dir`: `pg_ctl stop -m fast`, then SIGKILL to the
/// postmaster of `postmaster.pid` if it is still there. Fails only when it is alive after all.
fn stop_cluster(data_dir: &Path, bin: &Path, run_as: Option<RunAs>) -> Result<()> {
    let Some(pid) = postmaster_pid(data_dir) else {
        return Ok(());
    };
    let mut pg_ctl = Command::new(bin.join("pg_ctl"));
    pg_ctl
        .arg("stop")
        .args(["-m", "fast", "-w", "-t", "10", "-D"])
        .arg(data_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(user) = run_as {
        user.apply(&mut pg_ctl);
    }
    let _ = pg_ctl.status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while super::process::alive(pid) {
        if Instant::now() > deadline {
            bail!(
                "PostgreSQL (pid {pid}) on {} did not stop",
                data_dir.display()
            );
        }
        if postmaster_pid(data_dir).is_some() {
            super::process::signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn url_for(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// The folder with initdb and postgres: PATH first, then Debian's versioned folders.
pub fn postgres_bin_dir() -> Result<PathBuf> {
    let mut extra: Vec<String> = Vec::new();
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        versions.reverse();
        extra.extend(versions.iter().map(|p| p.display().to_string()));
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let initdb = find_program("initdb", &extra).context(
        "initdb not found: install the PostgreSQL server (Debian: apt-get install postgresql), or pass --database-url",
    )?;
    let dir = initdb
        .canonicalize()
        .unwrap_or(initdb)
        .parent()
        .map(Path::to_path_buf)
        .context("initdb has no folder")?;
    if !dir.join("postgres").is_file() {
        bail!("found initdb in {} but no postgres beside it: install the PostgreSQL server (Debian: apt-get install postgresql)", dir.display());
    }
    Ok(dir)
}

/// A fingerprint of what the template holds: rebuilt when sql/ or the settings change.
fn template_fingerprint(bin: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        SCHEMA_SQL,
        DATA_SQL,
        STATS_SQL,
        SETTINGS,
        HBA,
        &bin.display().to_string(),
    ] {
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Builds the template cluster under `root` unless a current one exists. A file lock keeps
/// two processes from building it at once.
fn ensure_template(root: &Path, bin: &Path, run_as: Option<RunAs>) -> Result<PathBuf> {
    fs::create_dir_all(root)?;
    let lock = fs::File::create(root.join("pg-template.lock"))?;
    lock.lock().context("cannot lock the template")?;
    let template = root.join("pg-template");
    let ready = template.join("READY");
    let fingerprint = template_fingerprint(bin);
    if fs::read_to_string(&ready).ok().as_deref() == Some(fingerprint.as_str()) {
        return Ok(template);
    }
    eprintln!(
        "bench: building the PostgreSQL template in {} (once; about 15 s)",
        template.display()
    );
    let _ = fs::remove_dir_all(&template);
    fs::create_dir_all(&template)?;
    if let Some(user) = run_as {
        user.chown(&template)?;
    }
    let log = root.join("pg-template.log");
    let mut initdb = Command::new(bin.join("initdb"));
    initdb.arg("-D").arg(&template).args([
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    if let Some(user) = run_as {
        user.apply(&mut initdb);
    }
    let output = initdb.output().context("cannot run initdb")?;
    if !output.status.success() {
        bail!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let conf = template.join("postgresql.conf");
    let mut settings = fs::read_to_string(&conf)?;
    settings.push_str("\n# rust-web-perf\n");
    settings.push_str(SETTINGS);
    fs::write(&conf, settings)?;
    fs::write(template.join("pg_hba.conf"), HBA)?;

    let pids = root.join("pg-template.pids");
    let port = free_port()?;
    let mut server = start_server(bin, &template, port, run_as, &log, &pids)?;
    let url = url_for(port);
    let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
    client
        .batch_execute(STATS_SQL)
        .context("sql/stats.sql failed")?;
    drop(client);
    load_sql(&url)?;
    let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
    // One statement per call: VACUUM cannot run in the implicit transaction of a batch.
    client.batch_execute("VACUUM (FREEZE, ANALYZE) test")?;
    client.batch_execute("CHECKPOINT")?;
    drop(client);
    server.set_grace(Duration::from_secs(30));
    server.stop();
    fs::write(&ready, &fingerprint)?;
    Ok(template)
}

/// Loads `sql/schema.sql` and `sql/data.sql`; both are no-ops when already loaded.
pub fn load_sql(url: &str) -> Result<()> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .with_context(|| format!("cannot connect to {url}"))?;
    // Loaded already: nothing to do, and a role that may only read (a load host's) is not
    // asked to create anything.
    let loaded: bool = client
        .query_one(
            "SELECT to_regclass('test') IS NOT NULL AND EXISTS (SELECT 1 FROM test)",
            &[],
        )
        .map(|row| row.get(0))
        .unwrap_or(false);
    if loaded {
        return Ok(());
    }
    client
        .batch_execute(SCHEMA_SQL)
        .context("sql/schema.sql failed")?;
    client
        .batch_execute(DATA_SQL)
        .context("sql/data.sql failed")?;
    Ok(())
}

fn start_server(
    bin: &Path,
    data_dir: &Path,
    port: u16,
    run_as: Option<RunAs>,
    log: &Path,
    pids_file: &Path,
) -> Result<Process> {
    if let Some(user) = run_as {
        // The server appends to its log as the unprivileged user.
        fs::OpenOptions::new().create(true).append(true).open(log)?;
        user.chown(log)?;
    }
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(data_dir)
        .args(["-p", &port.to_string()]);
    if let Some(user) = run_as {
        user.apply(&mut command);
    }
    // SIGINT is PostgreSQL's fast shutdown: sessions are ended, nothing waits.
    let mut server = Process::spawn("postgres", command, log, pids_file, libc::SIGINT)?;
    let url = url_for(port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        server.ensure_running()?;
        match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(_) => return Ok(server),
            Err(e) if Instant::now() > deadline => bail!(
                "PostgreSQL did not accept connections on port {port} within 30 s: {e}\n{}",
                tail(log, 20)
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Copies a cluster folder, keeping ownership and modes.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(from)
        .arg(to)
        .status()
        .context("cannot run cp")?;
    if !status.success() {
        bail!("cannot copy {} to {}", from.display(), to.display());
    }
    let _ = fs::remove_file(to.join("READY"));
    let _ = fs::remove_file(to.join("postmaster.pid"));
    Ok(())
}
