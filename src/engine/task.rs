//! Spawned work whose failure must not go unnoticed: a panic in a VU task, a worker thread or an
//! export loop becomes a [`Panicked`] error that fails the run (exit 1) with its message, instead
//! of a run that "succeeds" with the panicked part silently missing.

use std::any::Any;

/// A task or thread panicked.
#[derive(Debug, thiserror::Error)]
#[error("{task} panicked: {message}")]
pub struct Panicked {
    /// What panicked, e.g. `VU 3 of scenario "default"`.
    pub task: String,
    /// The panic message (or a placeholder when the payload is not text).
    pub message: String,
}

impl Panicked {
    /// From a panic payload (`std::thread::JoinHandle::join`, `catch_unwind`).
    pub fn from_payload(task: impl Into<String>, payload: &(dyn Any + Send)) -> Panicked {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "(no message)".to_string()
        };
        Panicked {
            task: task.into(),
            message,
        }
    }

    /// From a tokio join error: `Some` if the task panicked, `None` if it was cancelled.
    pub fn from_join(task: impl Into<String>, e: tokio::task::JoinError) -> Option<Panicked> {
        e.try_into_panic()
            .ok()
            .map(|p| Panicked::from_payload(task, &*p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawned_tasks_panic_is_reported_with_its_message() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (str_panic, string_panic, cancelled) = rt.block_on(async {
            let a = tokio::spawn(async { panic!("static text") }).await;
            let n = 7;
            let b = tokio::spawn(async move { panic!("formatted {n}") }).await;
            let c = tokio::spawn(std::future::pending::<()>());
            c.abort();
            (a, b, c.await)
        });
        let a = Panicked::from_join("task a", str_panic.expect_err("panicked")).expect("panic");
        assert_eq!(a.to_string(), "task a panicked: static text");
        let b = Panicked::from_join("task b", string_panic.expect_err("panicked")).expect("panic");
        assert_eq!(b.message, "formatted 7");
        assert!(Panicked::from_join("c", cancelled.expect_err("cancelled")).is_none());
        let t = std::thread::spawn(|| std::panic::panic_any(42u8)).join();
        let p = Panicked::from_payload("thread", &*t.expect_err("panicked"));
        assert_eq!(p.message, "(no message)");
    }
}
