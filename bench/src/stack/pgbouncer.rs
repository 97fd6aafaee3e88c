//! pgbouncer in session mode between the targets and PostgreSQL, as in Grinberg's setup: the
//! one place where the total number of server sessions is capped.
//!
//! Session mode keeps each client connection on one server session, so the targets' prepared
//! statements stay valid. `application_name` is passed through, so sessions are still counted
//! per target in `pg_stat_activity`.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::process::{find_program, free_port, tail, wait_for_port, Process, RunAs};

pub struct Pgbouncer {
    pub url: String,
    process: Process,
}

impl Pgbouncer {
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Starts pgbouncer in front of `database_url` with at most `server_sessions` sessions.
    pub fn start(
        run_dir: &Path,
        pids_file: &Path,
        database_url: &str,
        server_sessions: u32,
    ) -> Result<Pgbouncer> {
        let program = find_program("pgbouncer", &["/usr/sbin"])
            .context("pgbouncer not found: install it with `apt-get install -y pgbouncer`")?;
        let db = shared::DatabaseUrl::parse(database_url)
            .map_err(|e| anyhow::anyhow!("bad database URL for pgbouncer: {e}"))?;
        let dir = run_dir.join("pgbouncer");
        fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let users = dir.join("users.txt");
        fs::write(&users, format!("\"{}\" \"\"\n", db.user))?;
        // The targets connect with trust; pgbouncer logs in to the server with the password.
        let password = match &db.password {
            Some(password) => format!(" password='{}'", password.replace('\'', "\\'")),
            None => String::new(),
        };
        let config = format!(
            "[databases]\n\
             * = host={host} port={db_port} user={user}{password}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {users}\n\
             pool_mode = session\n\
             max_client_conn = 10000\n\
             default_pool_size = {server_sessions}\n\
             max_db_connections = {server_sessions}\n\
             ignore_startup_parameters = extra_float_digits\n\
             server_reset_query =\n",
            host = db.host,
            db_port = db.port,
            user = db.user,
            users = users.display(),
        );
        let ini = dir.join("pgbouncer.ini");
        fs::write(&ini, config)?;
        let log = run_dir.join("pgbouncer.log");
        let mut command = Command::new(program);
        command.arg(&ini);
        if let Some(user) = RunAs::unprivileged()? {
            // pgbouncer, like PostgreSQL, refuses to run as root.
            for path in [&dir, &users, &ini] {
                user.chown(path)?;
            }
            user.apply(&mut command);
        }
        let mut process = Process::spawn("pgbouncer", command, &log, pids_file, libc::SIGINT)?;
        process.set_grace(Duration::from_secs(3));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        wait_for_port(&mut process, addr, Duration::from_secs(10))
            .with_context(|| format!("pgbouncer did not start:\n{}", tail(&log, 10)))?;
        Ok(Pgbouncer {
            url: format!("postgres://{}@127.0.0.1:{port}/{}", db.user, db.dbname),
            process,
        })
    }
}
