//! Busy polling while responses keep coming (`--busy-poll`, off by default). A worker that runs out of work sleeps in
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
//! A pass of the poll that follows a pass without events calls `sched_yield` first, so a
//! runnable thread on the same CPU (an embedded target, another worker) gets the CPU instead
//! of the poll; a worker with work does not give its CPU away.
//!
//! Polling is not work: a worker that polls is never parked, so tokio counts it busy (also
//! while `sched_yield` has given its CPU away), and its CPU time is the poll's. [`Idle`] counts
//! the time `sched_yield` gave away and the passes that found nothing to do (no request went
//! out, no response came in, and the pass took under [`IDLE_PASS`]: not a TLS handshake), and
//! the generator's CPU-bound verdict
//! (the process monitor, `process::Monitor`) leaves them out.

use std::cell::Cell;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// The window after it has shrunk to nothing grows back to this.
const GROW_START: Duration = Duration::from_micros(10);

/// A pass of the poll (from one `sched_yield`'s return to the next call) that saw no event and
/// took less than this was idle: a pass that does nothing is a reactor poll, a few
/// microseconds.
const IDLE_PASS: Duration = Duration::from_micros(30);

/// Idle polling is added to [`Idle`] in pieces of at least this much wall time.
const FLUSH_IDLE: Duration = Duration::from_millis(1);

/// What a worker's busy poll spent with nothing to do, in nanoseconds: shared with whoever
/// watches the worker.
#[derive(Debug, Default)]
pub struct Idle {
    /// Wall time of the idle passes and of `sched_yield` (tokio counts it busy).
    pub wall_ns: AtomicU64,
    /// Of which the idle passes: CPU the poll spent on nothing.
    pub cpu_ns: AtomicU64,
}

impl Idle {
    /// Wall and CPU nanoseconds so far.
    pub fn seen(&self) -> (u64, u64) {
        (
            self.wall_ns.load(Ordering::Relaxed),
            self.cpu_ns.load(Ordering::Relaxed),
        )
    }
}

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
    /// Events so far, and as many as the poll's last pass had seen.
    events: Cell<u64>,
    seen: Cell<u64>,
    /// When the poll's last `sched_yield` returned (None: not polling).
    pass: Cell<Option<Instant>>,
    /// Idle polling not yet added to `idle`: wall, CPU.
    unflushed: Cell<(Duration, Duration)>,
    idle: Arc<Idle>,
}

impl BusyPoll {
    pub(crate) fn new(max: Duration, now: Instant) -> BusyPoll {
        BusyPoll {
            max,
            window: Cell::new(max),
            last: Cell::new(now),
            parked: Cell::new(None),
            events: Cell::new(0),
            seen: Cell::new(0),
            pass: Cell::new(None),
            unflushed: Cell::new((Duration::ZERO, Duration::ZERO)),
            idle: Arc::new(Idle::default()),
        }
    }

    /// What this worker has polled with nothing to do (see the module documentation).
    pub(crate) fn idle(&self) -> Arc<Idle> {
        self.idle.clone()
    }

    /// The window now.
    #[cfg(test)]
    fn window(&self) -> Duration {
        self.window.get()
    }

    /// A request goes out or a response came in now: [`BusyPoll::mark`] with the clock read
    /// only when polling is on.
    pub(crate) fn mark_now(&self) {
        if !self.max.is_zero() {
            self.mark(Instant::now());
        }
    }

    /// A request went out or a response came in at `now` (nothing when polling is off).
    pub(crate) fn mark(&self, now: Instant) {
        if self.max.is_zero() {
            return;
        }
        self.events.set(self.events.get() + 1);
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
            let now = Instant::now();
            if now.saturating_duration_since(self.last.get()) < self.window.get() {
                if self.count_pass(now) {
                    // Nothing happened in the last pass: let a runnable thread have the CPU.
                    // SAFETY: no arguments, touches no memory of ours.
                    unsafe { libc::sched_yield() };
                    // The time given away is idle: the worker had nothing to do.
                    let after = Instant::now();
                    self.add_idle(after.saturating_duration_since(now), Duration::ZERO);
                    self.pass.set(Some(after));
                }
                // Back to the scheduler, which polls the reactor without blocking before it
                // runs this task again.
                tokio::task::yield_now().await;
            } else {
                self.pass.set(None);
                self.flush_idle();
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

    /// Ends a pass of the poll at `now`: true if no event came since the last one (the worker
    /// is idle), and then its time counts as idle if it was short. A pass with events starts
    /// the next one at `now`.
    fn count_pass(&self, now: Instant) -> bool {
        let events = self.events.get();
        let quiet = self.seen.replace(events) == events;
        if quiet {
            if let Some(at) = self.pass.get() {
                let d = now.saturating_duration_since(at);
                if d < IDLE_PASS {
                    self.add_idle(d, d);
                }
            }
        } else {
            self.pass.set(Some(now));
        }
        quiet
    }

    fn add_idle(&self, wall: Duration, cpu: Duration) {
        let (w, c) = self.unflushed.get();
        let w = w + wall;
        self.unflushed.set((w, c + cpu));
        if w >= FLUSH_IDLE {
            self.flush_idle();
        }
    }

    fn flush_idle(&self) {
        let (w, c) = self.unflushed.take();
        let ns = |d: Duration| d.as_nanos().min(u128::from(u64::MAX)) as u64;
        if !w.is_zero() {
            self.idle.wall_ns.fetch_add(ns(w), Ordering::Relaxed);
            self.idle.cpu_ns.fetch_add(ns(c), Ordering::Relaxed);
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

    /// `rounds` ping-pongs with a thread that answers each byte 200 µs later (a server's
    /// time: long enough that a worker with nothing else to do goes to sleep), on a
    /// current-thread runtime like a worker's, with a busy poll of `window`: the worker
    /// thread's voluntary context switches (each a sleep in `epoll_wait`).
    fn sleeps_during_ping_pong(window: Duration, rounds: u32) -> i64 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_nodelay(true).unwrap();
            let mut b = [0u8; 1];
            while s.read_exact(&mut b).is_ok() {
                std::thread::sleep(Duration::from_micros(200));
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
            for _ in 0..20 {
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
        let rounds = 500;
        // A window far above any loopback round trip: the worker never has to sleep.
        let polling = sleeps_during_ping_pong(Duration::from_millis(20), rounds);
        let sleeping = sleeps_during_ping_pong(Duration::ZERO, rounds);
        // The control: without the poll the worker sleeps waiting for almost every response.
        assert!(
            sleeping > i64::from(rounds) / 2,
            "without the poll the worker should sleep waiting for responses: {sleeping} sleeps \
             in {rounds} round trips"
        );
        assert!(
            polling <= i64::from(rounds) / 50,
            "polling: {polling} sleeps in {rounds} round trips, against {sleeping} without"
        );
    }
}
