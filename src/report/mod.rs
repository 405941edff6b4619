//! What a run shows: its [`timeline`], the live [`progress`] view, the end-of-run [`summary`]
//! (text and JSON), the CI outputs of a summary ([`ci`]: JUnit, Markdown, compare) and the
//! [`html`] report.

pub(crate) mod ci;
pub(crate) mod html;
pub(crate) mod progress;
pub mod summary;
pub(crate) mod timeline;

pub use summary::*;
