//! Busy polling while responses keep coming. A worker that runs out of work sleeps in
//! `epoll_wait`, and the next response has to wake it: the wake-up's delay lands in the
//! measured latency (on a KVM guest with 2 vCPUs, a 1-VU loop against nginx on loopback
//! measured 90 µs at the median sleeping and 28 µs polling), and over loopback the server pays
//! for it too (the sender's `write` wakes the sleeping reader: 0.3–1 µs of nginx's time per
//! request at 10 HTTP/2 streams per connection). A [`BusyPoll`] keeps its worker polling the
//! reactor for a short window after the last request or response, so under steady load it
//! never sleeps.
//!
//! The window adapts, as the kernel's `haltpoll` idle governor does for a guest's idle loop:
//! when the worker did sleep and the next event came within the longest window (polling
//! longer would have caught it), the window doubles; when it came later (no window would have,
//! and the polling was wasted), it halves, down to nothing. Against a target that answers in a
//! millisecond at one request at a time, the window shrinks to zero within a few requests.
//! Each pass of the poll calls `sched_yield` first, so a runnable thread on the same CPU (an
//! embedded target, another worker) gets the CPU instead of the poll.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// The window after it has shrunk to nothing grows back to this.
const GROW_START: Duration = Duration::from_micros(10);

/// One worker's busy poll (see the module documentation). Not `Send`: it lives on the worker's
/// thread; its VUs [`mark`](BusyPoll::mark) events, [`run`](BusyPoll::run) is the task that polls.
pub(crate) struct BusyPoll {
    /// The longest window; zero: never poll.
    max: Duration,
    /// The window now.
    window: Cell<Duration>,
    /// The last event.
    last: Cell<Instant>,
    /// The poll stopped (the worker may sleep); its waker.
    parked: Cell<Option<Waker>>,
}

impl BusyPoll {
    pub(crate) fn new(max: Duration, now: Instant) -> BusyPoll {
        BusyPoll {
            max,
            window: Cell::new(max),
            last: Cell::new(now),
            parked: Cell::new(None),
        }
    }

    /// The window now.
    #[cfg(test)]
    fn window(&self) -> Duration {
        self.window.get()
    }

    /// A request went out or a response came in at `now`.
    pub(crate) fn mark(&self, now: Instant) {
        let last = self.last.replace(now);
        if let Some(w) = self.parked.take() {
            let gap = now.saturating_duration_since(last);
            self.window.set(if gap <= self.max {
                (self.window.get() * 2).clamp(GROW_START, self.max)
            } else {
                let half = self.window.get() / 2;
                if half < GROW_START {
                    Duration::ZERO
                } else {
                    half
                }
            });
            w.wake();
        }
    }

    /// Polls while the last event is less than the window ago; parks until the next one
    /// otherwise. Never returns when the window can be above zero.
    pub(crate) async fn run(&self) {
        if self.max.is_zero() {
            return;
        }
        loop {
            if self.last.get().elapsed() < self.window.get() {
                // SAFETY: no arguments, touches no memory of ours.
                unsafe { libc::sched_yield() };
                // Back to the scheduler, which polls the reactor without blocking before it
                // runs this task again.
                tokio::task::yield_now().await;
            } else {
                let mut first = true;
                poll_fn(|cx| {
                    if std::mem::take(&mut first) {
                        self.parked.set(Some(cx.waker().clone()));
                        Poll::Pending
                    } else if self.parked_now() {
                        // Woken by something else (the runtime shutting down): wait on.
                        Poll::Pending
                    } else {
                        Poll::Ready(())
                    }
                })
                .await;
            }
        }
    }

    fn parked_now(&self) -> bool {
        let w = self.parked.take();
        let parked = w.is_some();
        self.parked.set(w);
        parked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::rc::Rc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Parks `b` as its poll task would.
    fn park(b: &BusyPoll) {
        b.parked.set(Some(Waker::noop().clone()));
    }

    #[test]
    fn the_window_grows_after_a_short_sleep_and_shrinks_to_nothing_after_long_ones() {
        let t = Instant::now();
        let b = BusyPoll::new(us(100), t);
        // Events while polling: the window stays.
        b.mark(t + us(5));
        assert_eq!(b.window(), us(100));
        // Long sleeps (a 1 ms target, one request at a time): halved each time, then nothing.
        let mut now = t + us(5);
        let mut seen = Vec::new();
        for _ in 0..5 {
            park(&b);
            now += us(1000);
            b.mark(now);
            seen.push(b.window().as_micros());
        }
        assert_eq!(seen, [50, 25, 12, 0, 0]);
        // Short sleeps (the server got fast): grows back from 10 µs, doubling, up to the most.
        seen.clear();
        for _ in 0..6 {
            park(&b);
            now += us(40);
            b.mark(now);
            seen.push(b.window().as_micros());
        }
        assert_eq!(seen, [10, 20, 40, 80, 100, 100]);
        // A gap of exactly the longest window still counts as one polling would have caught.
        park(&b);
        now += us(100);
        b.mark(now);
        assert_eq!(b.window(), us(100));
    }

    /// Voluntary context switches of the calling thread so far.
    fn voluntary_switches() -> i64 {
        // SAFETY: getrusage writes into the struct we pass and nothing else.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
        assert_eq!(rc, 0, "getrusage");
        u.ru_nvcsw
    }

    /// `rounds` ping-pongs with a thread that answers each byte at once, on a current-thread
    /// runtime like a worker's, with a busy poll of `window`: the worker thread's voluntary
    /// context switches (each a sleep in `epoll_wait`).
    fn sleeps_during_ping_pong(window: Duration, rounds: u32) -> i64 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_nodelay(true).unwrap();
            let mut b = [0u8; 1];
            while s.read_exact(&mut b).is_ok() {
                if s.write_all(&b).is_err() {
                    break;
                }
            }
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let switches = local.block_on(&rt, async move {
            let poll = Rc::new(BusyPoll::new(window, Instant::now()));
            let p = poll.clone();
            let task = tokio::task::spawn_local(async move { p.run().await });
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut b = [0u8; 1];
            // Warm up (connection, first wake-ups), then count.
            for _ in 0..100 {
                s.write_all(b"x").await.unwrap();
                s.read_exact(&mut b).await.unwrap();
            }
            let before = voluntary_switches();
            for _ in 0..rounds {
                poll.mark(Instant::now());
                s.write_all(b"x").await.unwrap();
                s.read_exact(&mut b).await.unwrap();
                poll.mark(Instant::now());
            }
            let n = voluntary_switches() - before;
            task.abort();
            n
        });
        peer.join().unwrap();
        switches
    }

    #[test]
    fn a_worker_that_polls_does_not_sleep_between_a_request_and_its_response() {
        let rounds = 2000;
        // A window far above any loopback round trip: the worker never has to sleep.
        let polling = sleeps_during_ping_pong(Duration::from_millis(20), rounds);
        let sleeping = sleeps_during_ping_pong(Duration::ZERO, rounds);
        // The control: without the poll the worker sleeps for many of the responses (most,
        // on an idle machine; fewer when other threads keep the CPUs busy).
        assert!(
            sleeping > i64::from(rounds) / 40,
            "without the poll the worker should sleep waiting for responses: {sleeping} sleeps \
             in {rounds} round trips"
        );
        assert!(
            polling <= i64::from(rounds) / 200,
            "polling: {polling} sleeps in {rounds} round trips, against {sleeping} without"
        );
    }
}
