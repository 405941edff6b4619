//! The commands: the command line ([`cli`]), what every command [`shared`]s, the [`demo`] and
//! the [`capacity`] search. `lib.rs` dispatches to them.

pub(crate) mod capacity;
pub(crate) mod cli;
pub(crate) mod demo;
pub(crate) mod shared;
