//! A test run by several generators: the [`coordinator`] protocol (start together, stop
//! together), the [`merge`] of the segments' summaries, and one [`generator`]'s part in it.

pub(crate) mod coordinator;
pub(crate) mod generator;
pub(crate) mod merge;
