//! One statement per request (docs/contract.md, "The db backend"), counted in
//! `pg_stat_statements`, which keeps no count per session: on a database other clients use, only
//! the roles of the server's own sessions are counted, when no other client used them
//! meanwhile; otherwise the check says it cannot count, and names the other clients.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};

use super::Server;
use crate::client;
use crate::observe::postgres::{OtherClient, StatementCalls};
use crate::observe::Observer;

pub fn one_statement_per_request(server: &Server) -> Result<()> {
    let mut observer = Observer::connect(&server.database_url)?;
    if !observer.has_statement_stats() {
        bail!("pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements (and preload it)");
    }
    let missing = server.rows.saturating_add(1);
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
    if missing > server.rows {
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
    let expected: i64 = requests.iter().filter(|(_, db)| *db).count() as i64;
    let since = observer.clock()?;
    let before = observer.statement_calls()?;
    for (target, _) in &requests {
        client::get(server.direct, target)?;
    }
    let app = server.app.as_deref();
    // The server records a call when the statement's portal closes, which can be just after
    // the client has its rows: wait for the count to settle.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let after = observer.statement_calls()?;
        let others = observer.others_since(&since, app)?;
        let counted = own_statements(&mut observer, app, &others, &before, &after)?;
        if counted.is_none_or(|(delta, _)| delta >= expected) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = observer.statement_calls()?;
    let others = observer.others_since(&since, app)?;
    let Some((delta, counted)) = own_statements(&mut observer, app, &others, &before, &after)?
    else {
        bail!(
            "cannot count {}'s statements: other clients of the database ran statements meanwhile as the same role ({}), and pg_stat_statements counts per role, not per session ({} statements in all for {expected} requests); check it when the database is quiet, or give the other clients a role of their own",
            server.name,
            list(&others),
            after.since(&before, None)
        );
    };
    ensure!(
        delta == expected,
        "{expected} requests that read the DB ran {delta} statements ({}); the contract allows exactly one each; {}",
        counted.what(),
        match others.is_empty() {
            true => "no other client ran statements meanwhile".to_string(),
            false => format!("other clients meanwhile: {}", list(&others)),
        }
    );
    Ok(())
}

/// Whose statements a count covers.
enum Counted {
    /// Every client's in the database: no other client ran any meanwhile, or the server's
    /// sessions cannot be told apart (no application_name known).
    All,
    /// Only the roles of the server's sessions, which no other client used meanwhile.
    Roles(Vec<String>),
}

impl Counted {
    fn what(&self) -> String {
        match self {
            Counted::All => "pg_stat_statements calls in the database".to_string(),
            Counted::Roles(roles) => format!(
                "pg_stat_statements calls of its role {}, which no other client used",
                roles.join(", ")
            ),
        }
    }
}

/// The statements the server (its sessions' application_name `app`) ran between `before`
/// and `after`, and whose they are: all of the database's when no other client ran any
/// (`others`), or when the server's sessions cannot be told apart; else those of its roles,
/// if no other client used them. `None` when one did: the count cannot be the server's.
fn own_statements(
    observer: &mut Observer,
    app: Option<&str>,
    others: &[OtherClient],
    before: &StatementCalls,
    after: &StatementCalls,
) -> Result<Option<(i64, Counted)>> {
    let Some(app) = app.filter(|_| !others.is_empty()) else {
        return Ok(Some((after.since(before, None), Counted::All)));
    };
    let roles = observer.roles_of(app)?;
    let ids: Vec<i64> = roles.iter().map(|(id, _)| *id).collect();
    if ids.is_empty() || others.iter().any(|o| ids.contains(&o.role_id)) {
        return Ok(None);
    }
    let names = roles.into_iter().map(|(_, name)| name).collect();
    Ok(Some((
        after.since(before, Some(&ids)),
        Counted::Roles(names),
    )))
}

fn list(others: &[OtherClient]) -> String {
    others
        .iter()
        .map(|o| o.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
