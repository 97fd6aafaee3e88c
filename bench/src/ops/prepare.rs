//! What `run`, `compare`, `sweep`, `verify` and `client` share before their work: the stack
//! started, the targets chosen among those built, and the servers the harness did not start
//! reached once (one line naming the one that does not answer).

use anyhow::{bail, Result};
use shared::Binary;

use crate::contract;
use crate::model::external::External;
use crate::model::plan::StackOptions;
use crate::stack::{built_targets, Stack};

/// Starts the stack, saying so (it takes a few seconds).
pub fn stack(options: &StackOptions) -> Result<Stack> {
    eprintln!("bench: starting the stack");
    Stack::start(options)
}

/// The targets to run: `chosen` when targets were named (each must be built), or every built
/// one when `named` is false (the rest are listed as missing, and said so).
pub fn targets(
    stack: &Stack,
    chosen: &[Binary],
    named: bool,
) -> Result<(Vec<Binary>, Vec<String>)> {
    let built = built_targets(stack.bin_dir());
    if !named {
        let missing = Binary::ALL
            .into_iter()
            .filter(|b| !built.contains(b))
            .map(|b| b.name().to_string())
            .collect::<Vec<_>>();
        if !missing.is_empty() {
            eprintln!("bench: not built, skipped: {}", missing.join(", "));
        }
        return Ok((built, missing));
    }
    for binary in chosen {
        if !built.contains(binary) {
            bail!(
                "{} is not built in {}: run `cargo build --release --workspace`",
                binary.name(),
                stack.bin_dir().display()
            );
        }
    }
    Ok((chosen.to_vec(), Vec::new()))
}

/// Each external answers over HTTP, before anything is measured.
pub fn reach(externals: &[External]) -> Result<()> {
    for e in externals {
        contract::reach(e).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}
