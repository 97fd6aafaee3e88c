//! One statement per request (docs/contract.md, "The db backend"), counted in
//! `pg_stat_statements`, which keeps every client's statements by role and query, those of
//! clients that came and went included, but none per session. So the count judges only what
//! it can tell is the server's:
//!
//! - the statements of the roles the server's sessions use; other roles' are other clients',
//!   never counted and never blamed;
//! - under the server's roles, when another client may have run statements meanwhile, and
//!   the count is not one per request, the check says it cannot count ([`CannotCheck`]),
//!   naming what it saw, instead of failing the server. Two things say another client was
//!   there: a statement that also ran while no request was sent (half a second of quiet is
//!   counted first: the server runs nothing unasked, a client that comes and goes keeps
//!   running), and a session of another application under the server's role
//!   (`pg_stat_activity`, watched every 2 ms on a thread).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{CannotCheck, Server};
use crate::client;
use crate::observe::postgres::{Client, QueryCalls};
use crate::observe::Observer;

/// What the sessions of the database showed while the requests ran: the server's roles and
/// the queries its sessions ran, and the other clients.
#[derive(Default)]
struct Seen {
    roles: BTreeSet<(i64, String)>,
    queries: BTreeSet<i64>,
    others: BTreeSet<(String, i64, String)>,
    /// The statements (role, query id) that ran in the quiet before the requests.
    quiet: BTreeSet<(i64, i64)>,
}

impl Seen {
    fn add(&mut self, clients: Vec<Client>, app: Option<&str>) {
        for c in clients {
            if Some(c.application_name.as_str()) == app {
                self.roles.insert((c.role_id, c.role));
                self.queries.insert(c.query_id);
            } else {
                self.others.insert((c.application_name, c.role_id, c.role));
            }
        }
    }

    fn role_ids(&self) -> Vec<i64> {
        self.roles.iter().map(|(id, _)| *id).collect()
    }
}

/// `pg_stat_activity` every 2 ms on a thread of its own, until finished.
struct Watch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<Seen>>,
}

impl Watch {
    fn start(database_url: &str, app: Option<&str>) -> Result<Watch> {
        let mut observer = Observer::connect(database_url)?;
        let stop = Arc::new(AtomicBool::new(false));
        let app = app.map(str::to_string);
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut seen = Seen::default();
                // Bounded: the check's requests take seconds at most.
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    seen.add(observer.clients()?, app.as_deref());
                    std::thread::sleep(Duration::from_millis(2));
                }
                seen.add(observer.clients()?, app.as_deref());
                Ok(seen)
            }
        });
        Ok(Watch { stop, handle })
    }

    fn finish(self) -> Result<Seen> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the pg_stat_activity watch panicked"))?
    }
}

/// The quiet before the requests, long enough for a client that runs every 0.1 s to show.
const QUIET: Duration = Duration::from_millis(500);

pub fn one_statement_per_request(server: &Server) -> Result<()> {
    let mut observer = Observer::connect(&server.database_url)?;
    if !observer.has_statement_stats() {
        bail!("pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements (and preload it)");
    }
    let requests = requests(server.rows);
    let expected: i64 = requests.iter().filter(|(_, db)| *db).count() as i64;
    let app = server.app.as_deref();
    let watch = Watch::start(&server.database_url, app)?;
    // Half a second without a request: what runs then is not the server's doing.
    let quiet_start = observer.statement_calls()?;
    std::thread::sleep(QUIET);
    let before = observer.statement_calls()?;
    let quiet: BTreeSet<(i64, i64)> = before
        .since(&quiet_start)
        .iter()
        .map(|q| (q.role_id, q.query_id))
        .collect();
    for (target, _) in &requests {
        client::get(server.direct, target)?;
    }
    // The server records a call when the statement's portal closes, which can be just after
    // the client has its rows: wait for the count to settle (the server's roles are those of
    // its sessions now, the watch's are complete only at its end).
    let mut now = Seen::default();
    now.add(observer.clients()?, app);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ran = observer.statement_calls()?.since(&before);
    while own(&ran, &now).iter().map(|q| q.calls).sum::<i64>() < expected
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        ran = observer.statement_calls()?.since(&before);
    }
    std::thread::sleep(Duration::from_millis(200));
    ran = observer.statement_calls()?.since(&before);
    let mut seen = watch.finish()?;
    seen.quiet = quiet;
    judge(&server.name, expected, &ran, &seen)
}

/// The requests of the check, each with whether it reads the database.
fn requests(rows: i32) -> Vec<(String, bool)> {
    let mut requests: Vec<(String, bool)> = Vec::new();
    for i in 1..=10 {
        requests.push((format!("/test?id={i}"), true));
    }
    for i in 1..=4 {
        requests.push((format!("/test?id={i}&delay_ms=1"), true));
    }
    for _ in 0..3 {
        requests.push(("/test".to_string(), true));
    }
    let missing = rows.saturating_add(1);
    if missing > rows {
        requests.push((format!("/test?id={missing}"), true));
    }
    // No statement for these.
    for target in [
        "/test?id=0",
        "/json",
        "/health",
        "/nope",
        "/test?backend=upstream",
    ] {
        requests.push((target.to_string(), false));
    }
    requests
}

/// The statements under the server's roles (all of them when its sessions were not seen).
fn own<'a>(ran: &'a [QueryCalls], seen: &Seen) -> Vec<&'a QueryCalls> {
    let roles = seen.role_ids();
    ran.iter()
        .filter(|q| roles.is_empty() || roles.contains(&q.role_id))
        .collect()
}

/// The verdict on what ran: pass, fail (the server's own statements are not one per request),
/// or cannot count (another client under the server's role may have made up the difference).
fn judge(name: &str, expected: i64, ran: &[QueryCalls], seen: &Seen) -> Result<()> {
    let roles = seen.role_ids();
    let own = own(ran, seen);
    let counted: i64 = own.iter().map(|q| q.calls).sum();
    if counted == expected {
        return Ok(());
    }
    let elsewhere: Vec<&QueryCalls> = ran.iter().filter(|q| !own.contains(q)).collect();
    let note = match elsewhere.is_empty() {
        true => String::new(),
        false => format!(
            "; not counted, other roles' (other clients'): {}",
            list(&elsewhere)
        ),
    };
    let by_role = match roles.is_empty() {
        true => {
            "in the database (its sessions were not seen: give its application_name)".to_string()
        }
        false => format!("of its role {}", names(seen)),
    };
    let same_role: Vec<String> = seen
        .others
        .iter()
        .filter(|(_, role_id, _)| roles.is_empty() || roles.contains(role_id))
        .map(|(app, _, role)| format!("{app} as {role}"))
        .collect();
    let several_roles = ran.iter().map(|q| q.role_id).collect::<BTreeSet<_>>().len() > 1;
    // What also ran in the quiet is another client's: the server runs nothing unasked.
    let in_quiet: Vec<&QueryCalls> = own
        .iter()
        .copied()
        .filter(|q| seen.quiet.contains(&(q.role_id, q.query_id)))
        .collect();
    if !in_quiet.is_empty() || !same_role.is_empty() || roles.is_empty() && several_roles {
        // The statements that ran in the quiet, else those its sessions were never seen
        // running, are the likelier other client's.
        let unseen: Vec<&QueryCalls> = own
            .iter()
            .copied()
            .filter(|q| !seen.queries.contains(&q.query_id))
            .collect();
        let suspects = match (in_quiet.is_empty(), unseen.is_empty()) {
            (false, _) => &in_quiet,
            (true, false) => &unseen,
            (true, true) => &own,
        };
        let clients = match same_role.is_empty() {
            true => String::new(),
            false => format!(
                "; other clients under the same role meanwhile: {}",
                same_role.join(", ")
            ),
        };
        return Err(CannotCheck(format!(
            "cannot count {name}'s statements: {counted} statements {by_role} for {expected} requests, and some may be another client's ({}){clients}{note}; pg_stat_statements counts per role, not per session: give the server a role of its own, or check it when the database is quiet",
            list(suspects)
        ))
        .into());
    }
    bail!(
        "{expected} requests that read the DB ran {counted} statements {by_role} ({}); the contract allows exactly one each; no other client used its role meanwhile{note}",
        list(&own)
    )
}

fn names(seen: &Seen) -> String {
    seen.roles
        .iter()
        .map(|(_, name)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(calls: &[&QueryCalls]) -> String {
    let mut sorted = calls.to_vec();
    sorted.sort_by_key(|q| std::cmp::Reverse(q.calls));
    let shown: Vec<String> = sorted.iter().take(4).map(|q| q.to_string()).collect();
    let more = sorted.len().saturating_sub(4);
    match more {
        0 => shown.join(", "),
        _ => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(role_id: i64, query_id: i64, calls: i64) -> QueryCalls {
        QueryCalls {
            role_id,
            role: format!("role{role_id}"),
            query_id,
            query: format!("query {query_id}"),
            calls,
        }
    }

    fn seen(roles: &[i64], queries: &[i64], others: &[i64]) -> Seen {
        Seen {
            roles: roles.iter().map(|r| (*r, format!("role{r}"))).collect(),
            queries: queries.iter().copied().collect(),
            others: others
                .iter()
                .map(|r| ("psql".to_string(), *r, format!("role{r}")))
                .collect(),
            quiet: BTreeSet::new(),
        }
    }

    fn outcome(ran: &[QueryCalls], seen: &Seen) -> &'static str {
        match judge("t", 18, ran, seen) {
            Ok(()) => "pass",
            Err(e) if e.downcast_ref::<CannotCheck>().is_some() => "cannot",
            Err(_) => "fail",
        }
    }

    #[test]
    fn other_roles_are_never_counted_nor_blamed() {
        // A client under role 2, seen or not, beside the server under role 1.
        let ran = [calls(1, 7, 18), calls(2, 9, 40)];
        assert_eq!(outcome(&ran, &seen(&[1], &[7], &[2])), "pass");
        assert_eq!(outcome(&ran, &seen(&[1], &[7], &[])), "pass");
    }

    #[test]
    fn a_second_statement_of_the_server_is_a_failure() {
        // Its own role, no other client under it: whether seen or not, both are its own.
        let ran = [calls(1, 7, 18), calls(1, 8, 18)];
        assert_eq!(outcome(&ran, &seen(&[1], &[8], &[])), "fail");
        assert_eq!(outcome(&ran, &seen(&[1], &[8], &[2])), "fail");
        // One statement per request, but only 17 ran: a failure too.
        assert_eq!(outcome(&[calls(1, 7, 17)], &seen(&[1], &[7], &[])), "fail");
    }

    #[test]
    fn another_client_under_the_same_role_makes_the_count_impossible() {
        // A psql loop under the server's role: `SELECT $1`, which its sessions never ran.
        let ran = [calls(1, 7, 18), calls(1, 5, 20)];
        let both = seen(&[1], &[7], &[1]);
        assert_eq!(outcome(&ran, &both), "cannot");
        let message = format!("{:#}", judge("t", 18, &ran, &both).unwrap_err());
        assert!(
            message.contains("`query 5` ×20")
                && !message.contains("query 7")
                && message.contains("psql as role1")
                && message.contains("role of its own"),
            "{message}"
        );
        // The same role, one statement per request: nothing to doubt.
        assert_eq!(outcome(&[calls(1, 7, 18)], &both), "pass");
        // Never seen in pg_stat_activity, but running in the quiet before the requests.
        let mut quiet = seen(&[1], &[7], &[]);
        quiet.quiet.insert((1, 5));
        assert_eq!(outcome(&ran, &quiet), "cannot");
        // A statement of its own that ran only with the requests is its own.
        assert_eq!(outcome(&[calls(1, 7, 18), calls(1, 8, 18)], &quiet), "fail");
    }

    #[test]
    fn without_its_sessions_several_roles_cannot_be_counted() {
        let ran = [calls(1, 7, 18), calls(2, 5, 3)];
        assert_eq!(outcome(&ran, &seen(&[], &[], &[])), "cannot");
        // One role alone: the count is the database's.
        assert_eq!(outcome(&[calls(1, 7, 18)], &seen(&[], &[], &[])), "pass");
        assert_eq!(outcome(&[calls(1, 7, 36)], &seen(&[], &[], &[])), "fail");
    }
}
