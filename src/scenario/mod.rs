//! What a run executes, before anything runs: `${...}` [`template`]s, the VU and arrival-rate
//! [`schedule`] maths, the execution [`segment`] of a distributed test this generator runs, and
//! the [`plan`] built from them and a validated configuration.

pub(crate) mod plan;
pub(crate) mod schedule;
pub(crate) mod segment;
pub(crate) mod template;
