//! Extras beside the load: faults during it ([`fault`]), idle connections held through it
//! ([`idle`]), slow clients beside it ([`slow`]). Each is one file: it starts beside a round
//! when the round's settings ask for it, owns its figures (its field of
//! [`crate::model::beside::Beside`]), its section of `report.md` and its charts. The runner
//! and the report know them only through [`Extra`] and [`ALL`]: adding one is a file here,
//! its line in [`ALL`], its field in `Beside` and the setting that turns it on.

pub mod fault;
pub mod idle;
pub mod slow;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;

use crate::model::row::Round;
use crate::model::settings::Settings;
use crate::output::Section;
use crate::stack::{Pgbouncer, Stack};

/// What an extra may use in a round.
pub struct Context<'a> {
    pub stack: &'a Stack,
    pub pgbouncer: Option<&'a Pgbouncer>,
    pub interrupted: &'a AtomicBool,
    pub settings: &'a Settings,
    /// The server itself (never its nginx): where an extra's own clients connect.
    pub addr: SocketAddr,
    /// The server's process, when this host can see it.
    pub pid: Option<u32>,
}

/// A load that an extra shaping its whole round asks the runner for: with these settings,
/// and with the samplers watching the server (`true`) or not.
pub type Load<'l> = dyn Fn(&Settings, bool) -> Result<Round> + 'l;

/// An extra beside the load, started before the warm-up.
pub trait Running: Send {
    /// The measured load starts now (after the warm-up): reset counts, start probes.
    fn load_starts(&mut self, _t0: Instant) {}

    /// Runs on its own thread while the load tool runs (a fault is carried out here).
    fn during_load(&mut self, _t0: Instant) {}

    /// The measured load is over: stop, and put the figures into the round.
    fn finish(self: Box<Self>, round: &mut Round) -> Result<()>;
}

/// One kind of extra.
pub trait Extra: Section + Sync {
    /// Starts beside a round, before its warm-up, when the settings ask for it.
    fn start<'a>(&self, _ctx: &Context<'a>) -> Option<Box<dyn Running + 'a>> {
        None
    }

    /// An extra that shapes the whole round (the load alone, then beside what it holds)
    /// measures it here, with `load`; the others leave the round to the runner.
    fn round(&self, _ctx: &Context, _load: &Load) -> Option<Result<Round>> {
        None
    }
}

/// Every extra, in the order of their sections in `report.md`.
pub const ALL: &[&dyn Extra] = &[&idle::IdleConnections, &slow::Slow, &fault::Faults];

/// The extras' sections, for the report.
pub fn sections() -> Vec<&'static dyn Section> {
    ALL.iter().map(|extra| *extra as &dyn Section).collect()
}
