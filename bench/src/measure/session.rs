//! The one measuring loop: `run`, `compare` and `sweep` each open a [`Session`] over their
//! [`Plan`] and hand it their cases in their own order. The session verifies what will be
//! measured (a target or external that fails the contract is refused: its row says why),
//! measures the rest with one [`Runner`], shows the progress, prints each failure as it
//! happens, and stops at Ctrl-C (the rows measured so far are kept).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use shared::Binary;

use super::tools::Tool;
use super::Runner;
use crate::contract;
use crate::model::case::Case;
use crate::model::external::External;
use crate::model::plan::Plan;
use crate::model::row::{Row, Status};
use crate::stack::Stack;

/// One measuring session over a stack.
pub struct Session<'a> {
    runner: Runner<'a>,
    bar: ProgressBar,
    /// Subjects refused by the contract checks, by name, with why.
    refused: Vec<(String, String)>,
    /// The checks that could not be made of the subjects measured anyway, by name.
    unchecked: Vec<(String, Vec<String>)>,
    interrupted: bool,
}

impl<'a> Session<'a> {
    /// Verifies `targets` and `externals` (when the plan verifies; an external that keeps
    /// the rules the measurement rests on is marked verified, with the others it breaks),
    /// then starts the runner (with pgbouncer in front when the plan asks)
    /// and the progress of `rounds` rounds.
    pub fn open<'e>(
        stack: &'a Stack,
        plan: &Plan,
        targets: &[Binary],
        externals: impl IntoIterator<Item = &'e mut External>,
        tool: Tool,
        interrupted: &'a AtomicBool,
        rounds: u64,
    ) -> Result<Session<'a>> {
        let us = crate::observe::machine::calibrate_work();
        eprintln!(
            "bench: one unit of work (SHA-256 of 1 KiB; work=N asks for N) costs {us:.3} µs on one thread here"
        );
        let (mut refused, mut unchecked) = (Vec::new(), Vec::new());
        if plan.verify {
            for (binary, verdict) in contract::check_targets(stack, targets, plan.accept_unchecked)?
            {
                match verdict {
                    Err(why) => refused.push((binary.name().to_string(), why)),
                    Ok(checked) => unchecked.push((binary.name().to_string(), checked.unchecked)),
                }
            }
        }
        let mut externals: Vec<&mut External> = externals.into_iter().collect();
        for external in externals.iter_mut() {
            rests_on(stack, external);
        }
        if plan.verify {
            for external in externals {
                match contract::check_external(stack, external, plan.accept_unchecked) {
                    Err(why) => refused.push((external.name.clone(), why)),
                    Ok(checked) => {
                        external.verified = true;
                        external.breaks = checked.breaks;
                        unchecked.push((external.name.clone(), checked.unchecked));
                    }
                }
            }
        }
        let bar = progress_bar(rounds, plan.progress);
        let mut runner = Runner::new(
            stack,
            tool,
            &plan.out.join("work"),
            interrupted,
            plan.settings.pgbouncer.then_some(plan.settings.sessions),
        )?;
        let ticks = bar.clone();
        runner.on_round = Box::new(move |_| ticks.inc(1));
        Ok(Session {
            runner,
            bar,
            refused,
            unchecked,
            interrupted: false,
        })
    }

    /// Why `name` was refused, if it was.
    pub fn refusal(&self, name: &str) -> Option<&str> {
        self.refused
            .iter()
            .find(|(refused, _)| refused == name)
            .map(|(_, why)| why.as_str())
    }

    /// Measures `case` (`at` says where, for the progress and a failure's line, e.g. a
    /// sweep's point), or gives its refused row; `None` once interrupted.
    pub fn measure(&mut self, case: &Case, at: &str) -> Option<Row> {
        if self.interrupted {
            return None;
        }
        let rounds = u64::from(case.settings.rounds.max(1));
        self.bar.set_message(format!("{}{at}", case.label));
        let name = case.subject.name().unwrap_or_default();
        if let Some(why) = self.refusal(name) {
            self.bar.inc(rounds);
            return Some(Row::refused(case, why));
        }
        match self.runner.measure(case) {
            Ok(mut row) => {
                if let Some((_, checks)) = self.unchecked.iter().find(|(n, _)| n == name) {
                    row.unchecked = checks.clone();
                }
                if row.status == Status::Failed {
                    self.println(&format!(
                        "bench: {}{at} failed: {}",
                        row.target,
                        row.failure.as_deref().unwrap_or("")
                    ));
                }
                Some(row)
            }
            Err(_) => {
                self.interrupted = true;
                None
            }
        }
    }

    /// Counts a case that is already measured (a resumed sweep's).
    pub fn skip(&self, case: &Case) {
        self.bar.inc(u64::from(case.settings.rounds.max(1)));
    }

    /// Prints a line above the progress bar.
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    /// Runs `f` with the progress bar out of the way (for a command's own output).
    pub fn suspend(&self, f: impl FnOnce()) {
        self.bar.suspend(f);
    }

    /// Clears the progress bar; the load tool (for the run's versions), and whether Ctrl-C
    /// cut the session short.
    pub fn finish(self) -> Ended {
        self.bar.finish_and_clear();
        Ended {
            tool: self.runner.tool,
            interrupted: self.interrupted,
        }
    }
}

/// What a session leaves when it ends.
pub struct Ended {
    pub tool: Tool,
    pub interrupted: bool,
}

/// The progress of `total` rounds, with the time left.
fn progress_bar(total: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}, about {eta} left  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// What an external's rows rest on beside the targets': the database it is checked and
/// measured on, and the upstream page it fetches (the run's, or one of its own).
fn rests_on(stack: &Stack, external: &mut External) {
    external.database = shared::DatabaseUrl::parse(stack.database_url())
        .ok()
        .map(|url| url.to_string());
    external.upstream_page = match contract::upstream_lengths(external.addr, stack.upstream_addr) {
        Ok((reported, run)) if reported == run as u64 => Some(format!(
            "the run's page ({run} bytes, {})",
            stack.upstream_url()
        )),
        Ok((reported, run)) => Some(format!(
            "a page of its own ({reported} bytes; the targets fetch {run} bytes from {})",
            stack.upstream_url()
        )),
        Err(e) => Some(format!(
            "unknown: its upstream backend did not answer ({e:#})"
        )),
    };
}
