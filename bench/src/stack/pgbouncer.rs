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
    /// The admin console (database `pgbouncer`), for the pool-drain fault.
    admin_url: String,
    dbname: String,
    process: Process,
}

impl Pgbouncer {
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    fn admin(&self, command: &str) -> Result<()> {
        let mut client = postgres::Client::connect(&self.admin_url, postgres::NoTls)
            .context("cannot reach pgbouncer's admin console")?;
        client
            .simple_query(command)
            .with_context(|| format!("pgbouncer refused {command}"))?;
        Ok(())
    }

    /// Drains the pool: new clients of the database are refused (`DISABLE db`) and every
    /// client and server connection is dropped (`KILL db`), until [`Pgbouncer::resume`].
    /// (pgbouncer 1.18 holds new clients after a `KILL` alone, and a `RESUME` does not
    /// release them; refusing them is what its `DISABLE` is for.)
    pub fn drain(&self) -> Result<()> {
        self.admin(&format!("DISABLE {}", self.dbname))?;
        self.admin(&format!("KILL {}", self.dbname))
    }

    /// Lets clients connect again: `RESUME db`, then `ENABLE db` (in that order: a client
    /// let in while the database is still paused after a `KILL` waits forever in 1.18).
    pub fn resume(&self) -> Result<()> {
        self.admin(&format!("RESUME {}", self.dbname))?;
        self.admin(&format!("ENABLE {}", self.dbname))
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
             admin_users = {user}\n\
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
            admin_url: format!("postgres://{}@127.0.0.1:{port}/pgbouncer", db.user),
            dbname: db.dbname.clone(),
            process,
        })
    }
}
