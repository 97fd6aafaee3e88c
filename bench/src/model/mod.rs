//! Plain values, no I/O: what a run asks for ([`settings`], the [`preset`] table, the
//! [`knob`]s a sweep varies, [`fault`] specs), what it measures ([`case`]s, with [`external`]
//! servers among their subjects), and what it found ([`row`]s, with what is [`described`] of
//! their subject, the [`tool`]'s
//! measurement and the extras' figures [`beside`] the load, whether the client was the
//! limit ([`client_limit`]), the [`capacity`] of a rate sweep,
//! the [`meta`] of a run, every command's [`plan`], `bench client`'s [`client`] rows, `bench compare`'s
//! [`comparison`], and what `bench diff` finds between two runs ([`diff`])).

pub mod beside;
pub mod capacity;
pub mod case;
pub mod client;
pub mod client_limit;
pub mod comparison;
pub mod described;
pub mod diff;
pub mod external;
pub mod fault;
pub mod knob;
pub mod meta;
pub mod mix;
pub mod plan;
pub mod preset;
pub mod row;
pub mod settings;
pub mod soak;
pub mod tool;
