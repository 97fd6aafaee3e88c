//! The harness library: the stack launcher, the contract checks and the load runs, shared by
//! the `bench` binary and the conformance tests.

pub mod checks;
pub mod cli;
pub mod client;
pub mod harness;
pub mod observe;
pub mod remote;
pub mod stack;
