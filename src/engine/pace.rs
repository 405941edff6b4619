//! Wake-ups on time for the open model. An arrival-rate iteration's latency is measured from
//! its scheduled start, so a start that is late by the generator's own timer is latency that
//! never happened at the server. tokio's timer wheel has a resolution of one millisecond and
//! rounds a deadline up to the next tick: a VU waiting for its iteration woke 0–1 ms late (a
//! 30 µs server measured 1.3 ms at the median at 500 iterations/s), and at high rates the
//! iterations of a millisecond went out together, in a burst.
//!
//! A [`Pacer`] is one worker's precise clock: a `timerfd` (nanosecond resolution, on the
//! worker's own reactor) armed for the earliest deadline any VU waits for, and a heap of the
//! waiting VUs' deadlines. [`Pacer::drive`] is the task that wakes them. The timer fires at most
//! once per [`MIN_GAP`] (every wake-up of an idle thread costs system time): deadlines further
//! apart are met as they are, closer ones together, at most that late. A VU is never woken
//! early: [`Pacer::sleep_until`] is ready only once its deadline has passed.
//!
//! Where a `timerfd` cannot be made, [`Pacer::new`] says why and the caller keeps tokio's timer.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

/// The timer fires at most once per this span: deadlines closer together than this are met
/// together, up to this late.
pub(crate) const MIN_GAP: Duration = Duration::from_micros(50);

/// One worker's precise clock (see the module documentation). Not `Send`: it lives on the
/// worker's thread, shared by its VUs through `Rc`.
pub(crate) struct Pacer {
    fd: AsyncFd<OwnedFd>,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// Earliest first: (deadline, registration number, the VU's waker).
    waiting: BinaryHeap<Reverse<Waiting>>,
    next: u64,
    /// The deadline the timer is armed for.
    armed: Option<Instant>,
    /// When the timer last fired.
    fired: Option<Instant>,
}

struct Waiting {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Pacer {
    /// A pacer on the current runtime's reactor.
    pub(crate) fn new() -> io::Result<Rc<Pacer>> {
        // SAFETY: timerfd_create has no memory arguments; the result is checked.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a file descriptor we just opened and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `fd` is open, owned by the AsyncFd from here on, and always the same.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Rc::new(Pacer {
            fd,
            state: RefCell::new(State::default()),
        }))
    }

    /// Sets the timer to fire after `after` (0: disarm).
    fn set(&self, after: Duration) {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                tv_nsec: after.subsec_nanos().into(),
            },
        };
        // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
        let r =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if r < 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "timerfd_settime");
        }
    }

    /// Arms the timer for the earliest waiting deadline (no sooner than [`MIN_GAP`] after the
    /// last time it fired), if it is not armed for that already.
    fn arm(&self, st: &mut State) {
        let first = st
            .waiting
            .peek()
            .map(|w| st.fired.map_or(w.0.at, |f| w.0.at.max(f + MIN_GAP)));
        if first == st.armed {
            return;
        }
        st.armed = first;
        match first {
            // A deadline already past still needs the timer to fire: 1 ns from now.
            Some(at) => self.set(
                at.saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1)),
            ),
            None => self.set(Duration::ZERO),
        }
    }

    /// Ready once `t` has passed (never before), woken by [`Pacer::drive`].
    pub(crate) async fn sleep_until(&self, t: Instant) {
        let mut registered = false;
        poll_fn(|cx| {
            if Instant::now() >= t {
                return Poll::Ready(());
            }
            // Registered once: polled again before its time (the task woken for something
            // else), the entry still waits in the heap with this task's waker. It leaves the
            // heap only once `t` has passed, when this is ready.
            if !registered {
                registered = true;
                let mut st = self.state.borrow_mut();
                let seq = st.next;
                st.next += 1;
                st.waiting.push(Reverse(Waiting {
                    at: t,
                    seq,
                    waker: cx.waker().clone(),
                }));
                self.arm(&mut st);
            }
            Poll::Pending
        })
        .await
    }

    /// Wakes the VUs whose deadlines have passed, whenever the timer fires. Runs for as long as
    /// the worker does.
    pub(crate) async fn drive(self: Rc<Pacer>) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return;
            };
            let mut buf = [0u8; 8];
            // SAFETY: reads at most 8 bytes into `buf`.
            let n = unsafe {
                libc::read(
                    guard.get_inner().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    guard.clear_ready();
                    continue;
                }
                tracing::warn!(error = %e, "the open model's timer failed");
                return;
            }
            let now = Instant::now();
            let mut st = self.state.borrow_mut();
            st.armed = None;
            st.fired = Some(now);
            while st.waiting.peek().is_some_and(|w| w.0.at <= now) {
                if let Some(Reverse(w)) = st.waiting.pop() {
                    w.waker.wake();
                }
            }
            self.arm(&mut st);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_kept_to_the_tens_of_microseconds_and_never_early() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        let (pacer_late, tokio_late) = local.block_on(&rt, async {
            let pacer = Pacer::new().expect("timerfd");
            let driver = tokio::task::spawn_local(pacer.clone().drive());
            // Ten VUs, each waiting for deadlines 370 µs apart, interleaved.
            let start = Instant::now() + Duration::from_millis(2);
            let mut vus = Vec::new();
            for v in 0..10u32 {
                let p = pacer.clone();
                vus.push(tokio::task::spawn_local(async move {
                    let mut late = Vec::new();
                    for k in 0..20u32 {
                        let t = start + Duration::from_micros(u64::from(k * 10 + v) * 370);
                        p.sleep_until(t).await;
                        let now = Instant::now();
                        assert!(now >= t, "woken {:?} early", t - now);
                        late.push(now - t);
                    }
                    late
                }));
            }
            let mut late = Vec::new();
            for v in vus {
                late.extend(v.await.expect("VU"));
            }
            driver.abort();
            // tokio's own timer, for comparison, on the same deadlines.
            let mut tokio_late = Vec::new();
            let start = Instant::now() + Duration::from_millis(2);
            for k in 0..50u32 {
                let t = start + Duration::from_micros(u64::from(k) * 370);
                tokio::time::sleep_until(t.into()).await;
                tokio_late.push(Instant::now() - t);
            }
            late.sort();
            tokio_late.sort();
            (late[late.len() / 2], tokio_late[tokio_late.len() / 2])
        });
        // The median lateness: tokio's rounds up to its next millisecond tick (about half a
        // millisecond late at the median); the pacer's is the wake-up alone.
        assert!(
            pacer_late < Duration::from_micros(250),
            "pacer median {pacer_late:?}, tokio's {tokio_late:?}"
        );
        assert!(
            pacer_late * 2 < tokio_late,
            "pacer median {pacer_late:?}, tokio's {tokio_late:?}"
        );
    }
}
