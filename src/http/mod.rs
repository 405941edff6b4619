//! Everything that speaks HTTP, below the executor and above only [`crate::outcome`]:
//!
//! - [`client`]: the per-VU client (HTTP/1.1 through [`h1`] on one keep-alive connection per
//!   server, HTTP/2 through [`h2`] on its own or shared connections) and its option types ([`client::ClientOptions`],
//!   [`client::Target`]), which the plan fills in.
//! - [`h1`]: the small HTTP/1.1 connection of the hot path.
//! - [`h2`]: the HTTP/2 client: per-worker connection pools, one exchange per stream, no
//!   connection task.
//!   - [`h2::frame`]: HTTP/2 frames (RFC 9113): the codec the client writes and reads with.
//!   - [`h2::hpack`]: HPACK (RFC 7541): request heads encoded with the static table only,
//!     response header blocks decoded lazily.
//! - [`connect`]: the one connector (TCP, nodelay, TLS, ALPN) for the client and the
//!   remote-write sender, and the open-file limit.
//! - [`tls`]: the rustls client configuration shared with the remote-write exporter.
//! - [`url`]: credentials in URLs (`http://user:pass@host/`), base64 and percent-decoding.
//!
//! Failures become an [`ErrorKind`] here ([`io_error_kind`], [`h2::frame::classify`]).

pub(crate) mod client;
pub(crate) mod connect;
pub(crate) mod h1;
pub(crate) mod h2;
pub(crate) mod tls;
pub(crate) mod url;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::{Unconstrained, unconstrained};

use crate::outcome::ErrorKind;

/// Logs `message` once per process: the first time `flag` is set (the message is made only
/// then).
pub(crate) fn warn_once<M: std::fmt::Display>(
    flag: &std::sync::atomic::AtomicBool,
    message: impl FnOnce() -> M,
) {
    if !flag.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!("{}", message());
    }
}

/// Classifies an I/O error.
pub(crate) fn io_error_kind(e: &io::Error) -> ErrorKind {
    #[cfg(unix)]
    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
        return ErrorKind::TooManyOpenFiles;
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            ErrorKind::ConnectionReset
        }
        io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof => ErrorKind::ConnectionClosed,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => {
            if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                ErrorKind::Tls
            } else {
                ErrorKind::Io
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// `fut` bounded by a deadline and by `cut` (the run's hard deadline moved while it was in
    /// flight): one future in place of `tokio::time::timeout_at` plus a race, so the large
    /// exchange future is not moved again on the hot path.
    pub(crate) struct Bounded<F, C> {
        #[pin]
        fut: F,
        #[pin]
        sleep: Unconstrained<tokio::time::Sleep>,
        #[pin]
        cut: Unconstrained<C>,
    }
}

/// Why a [`Bounded`] future ended before its inner future did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The deadline passed.
    Deadline,
    /// `cut` completed.
    Cut,
}

/// Runs `fut` until `deadline`, unless `cut` completes first.
pub(crate) fn bounded<F: Future, C: Future<Output = ()>>(
    fut: F,
    deadline: tokio::time::Instant,
    cut: C,
) -> Bounded<F, C> {
    Bounded {
        fut,
        sleep: unconstrained(tokio::time::sleep_until(deadline)),
        cut: unconstrained(cut),
    }
}

impl<F: Future, C: Future<Output = ()>> Future for Bounded<F, C> {
    type Output = Result<F::Output, Ended>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The exchange first: one that is done is never reported as timed out or cut. The
        // deadline and the cut are looked at outside tokio's cooperative budget: a server that
        // floods frames uses up the budget in the exchange every time, and a budgeted timer
        // would then never fire (the request would outlive its timeout without end).
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if this.sleep.poll(cx).is_ready() {
            return Poll::Ready(Err(Ended::Deadline));
        }
        if this.cut.poll(cx).is_ready() {
            return Poll::Ready(Err(Ended::Cut));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_future_that_uses_up_the_budget_every_poll_still_meets_its_deadline() {
        // An exchange with a server that floods frames: every poll reads until tokio's
        // cooperative budget is gone. The deadline must fire all the same (and the cut too).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let busy = || async {
                loop {
                    tokio::task::consume_budget().await;
                }
            };
            let r = rt.block_on(async {
                let soon = tokio::time::Instant::now() + Duration::from_millis(50);
                let later = soon + Duration::from_secs(3600);
                let deadline = bounded(busy(), soon, std::future::pending()).await;
                let cut = bounded(busy(), later, tokio::time::sleep(Duration::from_millis(50)));
                (deadline.err(), cut.await.err())
            });
            let _ = tx.send(r);
        });
        let r = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(r, Ok((Some(Ended::Deadline), Some(Ended::Cut))));
    }

    #[test]
    fn io_errors_are_classified() {
        let k = |kind| io_error_kind(&io::Error::from(kind));
        assert_eq!(
            k(io::ErrorKind::ConnectionRefused),
            ErrorKind::ConnectionRefused
        );
        assert_eq!(
            k(io::ErrorKind::ConnectionReset),
            ErrorKind::ConnectionReset
        );
        assert_eq!(k(io::ErrorKind::TimedOut), ErrorKind::Timeout);
        assert_eq!(k(io::ErrorKind::UnexpectedEof), ErrorKind::ConnectionClosed);
        assert_eq!(k(io::ErrorKind::Other), ErrorKind::Io);
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        assert_eq!(io_error_kind(&tls), ErrorKind::Tls);
        #[cfg(unix)]
        for code in [libc::EMFILE, libc::ENFILE] {
            assert_eq!(
                io_error_kind(&io::Error::from_raw_os_error(code)),
                ErrorKind::TooManyOpenFiles
            );
        }
    }
}
