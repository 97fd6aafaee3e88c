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
    /// role and query (`pg_stat_statements` keeps no count per session, but it keeps every
    /// client's, those that came and went included).
    pub fn statement_calls(&mut self) -> Result<StatementCalls> {
        let rows = self.client.query(
            &format!(
                "{TAG} SELECT s.userid::bigint, coalesce(r.rolname::text, s.userid::text),
                        s.queryid, left(regexp_replace(min(s.query), '\\s+', ' ', 'g'), 80),
                        sum(s.calls)::bigint
                   FROM pg_stat_statements s LEFT JOIN pg_roles r ON r.oid = s.userid
                  WHERE s.query NOT LIKE '/* bench-observer */%'
                    AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  GROUP BY 1, 2, 3"
            ),
            &[],
        )?;
        Ok(StatementCalls(
            rows.iter()
                .map(|row| QueryCalls {
                    role_id: row.get(0),
                    role: row.get(1),
                    query_id: row.get::<_, Option<i64>>(2).unwrap_or(0),
                    query: row.get(3),
                    calls: row.get(4),
                })
                .collect(),
        ))
    }

    /// Every client session of this database now but the observers': its application, its
    /// role and the query it runs or ran last (`pg_stat_activity.query_id`, PostgreSQL 14
    /// and later; 0 when unknown).
    pub fn clients(&mut self) -> Result<Vec<Client>> {
        let rows = self.client.query(
            &format!(
                "{TAG} SELECT coalesce(nullif(application_name, ''), 'no application_name'),
                        usesysid::bigint, usename::text, coalesce(query_id, 0)
                   FROM pg_stat_activity
                  WHERE datname = current_database() AND backend_type = 'client backend'
                    AND pid <> pg_backend_pid() AND application_name <> 'bench-observer'
                    AND usesysid IS NOT NULL"
            ),
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|row| Client {
                application_name: row.get(0),
                role_id: row.get(1),
                role: row.get(2),
                query_id: row.get(3),
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

/// One statement's executions by one role, from `pg_stat_statements`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryCalls {
    pub role_id: i64,
    pub role: String,
    pub query_id: i64,
    /// The normalised text, cut at 80 characters.
    pub query: String,
    pub calls: i64,
}

impl std::fmt::Display for QueryCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` ×{} as {}", self.query, self.calls, self.role)
    }
}

/// Statement executions by role and query, from `pg_stat_statements`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatementCalls(pub Vec<QueryCalls>);

impl StatementCalls {
    /// The statements that ran since `before`, each with its new calls.
    pub fn since(&self, before: &StatementCalls) -> Vec<QueryCalls> {
        self.0
            .iter()
            .filter_map(|now| {
                let was = before
                    .0
                    .iter()
                    .find(|b| b.role_id == now.role_id && b.query_id == now.query_id)
                    .map_or(0, |b| b.calls);
                (now.calls > was).then(|| QueryCalls {
                    calls: now.calls - was,
                    ..now.clone()
                })
            })
            .collect()
    }
}

/// A client session of the database, as `pg_stat_activity` shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Client {
    pub application_name: String,
    pub role_id: i64,
    pub role: String,
    pub query_id: i64,
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
