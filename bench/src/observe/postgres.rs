//! Watching PostgreSQL while targets run: sessions per `application_name`, sessions in
//! `pg_sleep`, and statement executions from `pg_stat_statements`. Concurrency is proved by
//! counting these, not by timing.
//!
//! The observer's own queries carry a leading comment, which `pg_stat_statements` keeps in the
//! query text, so that they can be left out of the counts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

const TAG: &str = "/* bench-observer */";

pub struct Observer {
    client: postgres::Client,
}

/// Sessions of one `application_name` at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sessions {
    /// All its sessions (idle pooled connections included).
    pub total: i64,
    /// Those sleeping in `pg_sleep` right now.
    pub in_sleep: i64,
}

impl Observer {
    pub fn connect(database_url: &str) -> Result<Observer> {
        let mut config: postgres::Config = database_url
            .parse()
            .with_context(|| format!("bad database URL {database_url}"))?;
        config.application_name("bench-observer");
        let client = config
            .connect(postgres::NoTls)
            .with_context(|| format!("cannot connect to {database_url}"))?;
        Ok(Observer { client })
    }

    pub fn sessions(&mut self, application_name: &str) -> Result<Sessions> {
        let row = self.client.query_one(
            &format!(
                "{TAG} SELECT count(*), count(*) FILTER (WHERE wait_event = 'PgSleep')
                   FROM pg_stat_activity WHERE application_name = $1"
            ),
            &[&application_name],
        )?;
        Ok(Sessions {
            total: row.get(0),
            in_sleep: row.get(1),
        })
    }

    /// Ends every session of `application_name` (`pg_terminate_backend`), as a failover or an
    /// administrator would; returns how many there were.
    pub fn terminate(&mut self, application_name: &str) -> Result<i64> {
        let row = self.client.query_one(
            &format!(
                "{TAG} SELECT count(pg_terminate_backend(pid))
                   FROM pg_stat_activity WHERE application_name = $1"
            ),
            &[&application_name],
        )?;
        Ok(row.get(0))
    }

    /// The `b` of row `a`, to check a body against.
    pub fn row(&mut self, a: i32) -> Result<Option<String>> {
        Ok(self
            .client
            .query_opt(&format!("{TAG} SELECT b FROM test WHERE a = $1"), &[&a])?
            .map(|row| row.get(0)))
    }

    /// Executions of every statement but the observers' own in this database, so far, by
    /// role (`pg_stat_statements` keeps no count per session).
    pub fn statement_calls(&mut self) -> Result<StatementCalls> {
        let rows = self.client.query(
            &format!(
                "{TAG} SELECT userid::bigint, coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
                   WHERE query NOT LIKE '/* bench-observer */%'
                     AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                   GROUP BY userid"
            ),
            &[],
        )?;
        Ok(StatementCalls(
            rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
        ))
    }

    /// The server's clock now, as text, to ask later what started after it.
    pub fn clock(&mut self) -> Result<String> {
        let row = self
            .client
            .query_one(&format!("{TAG} SELECT clock_timestamp()::text"), &[])?;
        Ok(row.get(0))
    }

    /// The roles (oid, name) of the sessions of `application_name`.
    pub fn roles_of(&mut self, application_name: &str) -> Result<Vec<(i64, String)>> {
        let rows = self.client.query(
            &format!(
                "{TAG} SELECT DISTINCT usesysid::bigint, usename::text FROM pg_stat_activity
                   WHERE application_name = $1 AND usesysid IS NOT NULL"
            ),
            &[&application_name],
        )?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// The other clients of this database that ran a statement since `since` (or are running
    /// one): every session but the observers' and those of `except`, by application and
    /// role.
    pub fn others_since(&mut self, since: &str, except: Option<&str>) -> Result<Vec<OtherClient>> {
        let rows = self.client.query(
            &format!(
                "{TAG} SELECT coalesce(nullif(application_name, ''), 'no application_name'),
                        usename::text, usesysid::bigint, count(*)
                   FROM pg_stat_activity
                  WHERE datname = current_database() AND backend_type = 'client backend'
                    AND pid <> pg_backend_pid() AND application_name <> 'bench-observer'
                    AND application_name IS DISTINCT FROM $2
                    AND (state = 'active' OR query_start >= $1::text::timestamptz)
                  GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1"
            ),
            &[&since, &except],
        )?;
        Ok(rows
            .iter()
            .map(|row| OtherClient {
                application_name: row.get(0),
                role: row.get(1),
                role_id: row.get(2),
                sessions: row.get(3),
            })
            .collect())
    }

    /// Whether `pg_stat_statements` is there to count statements with.
    pub fn has_statement_stats(&mut self) -> bool {
        self.client
            .query_one(
                &format!(
                    "{TAG} SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
                ),
                &[],
            )
            .map(|row| row.get::<_, i64>(0) > 0)
            .unwrap_or(false)
    }

    /// `max_connections` of the server.
    pub fn max_connections(&mut self) -> Result<i64> {
        let row = self.client.query_one(
            &format!("{TAG} SELECT current_setting('max_connections')::bigint"),
            &[],
        )?;
        Ok(row.get(0))
    }
}

/// Statement executions by role (its oid), from `pg_stat_statements`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatementCalls(pub Vec<(i64, i64)>);

impl StatementCalls {
    /// The calls since `before`: of every role, or of `roles` only.
    pub fn since(&self, before: &StatementCalls, roles: Option<&[i64]>) -> i64 {
        let sum = |calls: &StatementCalls| -> i64 {
            calls
                .0
                .iter()
                .filter(|(role, _)| roles.is_none_or(|r| r.contains(role)))
                .map(|(_, n)| n)
                .sum()
        };
        sum(self) - sum(before)
    }
}

/// Another client of the database, seen running statements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherClient {
    pub application_name: String,
    pub role: String,
    pub role_id: i64,
    pub sessions: i64,
}

impl std::fmt::Display for OtherClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.sessions == 1 { "" } else { "s" };
        write!(
            f,
            "{} ({} session{s} as {})",
            self.application_name, self.sessions, self.role
        )
    }
}

/// The peaks a [`Sampler`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peaks {
    pub sessions: i64,
    pub in_sleep: i64,
    pub samples: u64,
}

/// Samples the sessions of one `application_name` on a thread, every `interval`, until
/// finished.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Peaks>,
}

impl Sampler {
    pub fn start(
        database_url: &str,
        application_name: &str,
        interval: Duration,
    ) -> Result<Sampler> {
        let observer = Observer::connect(database_url)?;
        let stop = Arc::new(AtomicBool::new(false));
        let name = application_name.to_string();
        let url = database_url.to_string();
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut peaks = Peaks::default();
                // A fault may stop or restart the database under the sampler: it then connects
                // again at the next sample, and the peaks keep what was seen.
                let mut observer = Some(observer);
                loop {
                    let started = Instant::now();
                    if observer.is_none() {
                        observer = Observer::connect(&url).ok();
                    }
                    let now = observer.as_mut().map(|o| o.sessions(&name));
                    match now {
                        Some(Ok(now)) => {
                            peaks.sessions = peaks.sessions.max(now.total);
                            peaks.in_sleep = peaks.in_sleep.max(now.in_sleep);
                            peaks.samples += 1;
                        }
                        Some(Err(_)) => observer = None,
                        None => {}
                    }
                    if stop.load(Ordering::SeqCst) {
                        return peaks;
                    }
                    std::thread::sleep(interval.saturating_sub(started.elapsed()));
                }
            }
        });
        Ok(Sampler { stop, handle })
    }

    pub fn finish(self) -> Result<Peaks> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the session sampler panicked"))
    }
}
