//! What turns a plan into requests: the [`executor`] (VUs and pacers on per-core runtimes), its
//! open-model timer ([`pace`]) and the spawned work whose panics fail the run ([`task`]).

pub(crate) mod executor;
pub(crate) mod pace;
pub(crate) mod task;
