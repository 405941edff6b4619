//! Schedule maths: piecewise-linear profiles of VUs (closed model) or of an arrival rate (open
//! model), and the times they imply. Pure functions of the plan's stages; no I/O, no clock.
//!
//! A profile starts at `start` and moves linearly to each stage's `target` over the stage's
//! `duration`. For an arrival rate, the number of iterations scheduled before `t` is the
//! integral of the rate, N(t); iteration `i` is scheduled at N⁻¹(i).

use std::time::Duration;

/// One stage of a profile: move linearly to `target` over `duration`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// The value (VUs, or iterations per second) at the end of the stage.
    pub target: f64,
}

impl Stage {
    /// A stage of `duration` ending at `target`.
    pub fn new(duration: Duration, target: f64) -> Stage {
        Stage { duration, target }
    }
}

/// The most iterations an arrival-rate schedule counts: far beyond anything that can run, far
/// below where an iteration counter could wrap.
pub(crate) const MAX_ARRIVALS: u64 = 1 << 62;

/// Target VUs at `t`: linear within each stage; 0 after the last stage.
pub(crate) fn vu_target(start: f64, stages: &[Stage], t: Duration) -> f64 {
    let mut from = start;
    let mut at = Duration::ZERO;
    for s in stages {
        if t < at + s.duration {
            let f = (t - at).as_secs_f64() / s.duration.as_secs_f64();
            return from + (s.target - from) * f;
        }
        at += s.duration;
        from = s.target;
    }
    0.0
}

/// The first time ≥ `t` at which the target exceeds `vu`, if any.
pub(crate) fn next_active(start: f64, stages: &[Stage], vu: f64, t: Duration) -> Option<Duration> {
    let nudge = Duration::from_micros(100);
    let mut from = start;
    let mut at = Duration::ZERO;
    for s in stages {
        let (d, to) = (s.duration, s.target);
        let end = at + d;
        // Within this stage the target exceeds `vu` on one interval [lo, hi).
        let frac = |x: f64| d.mul_f64(x.clamp(0.0, 1.0));
        let window = match (from > vu, to > vu) {
            (true, true) => Some((at, end)),
            (true, false) => Some((at, at + frac((from - vu) / (from - to)))),
            (false, true) => Some((at + frac((vu - from) / (to - from)) + nudge, end)),
            (false, false) => None,
        };
        if let Some((lo, hi)) = window {
            let cand = lo.max(t);
            if cand < hi {
                return Some(cand);
            }
        }
        at = end;
        from = to;
    }
    None
}

/// Iterations one stage schedules: the area under its rate.
fn stage_arrivals(from: f64, s: &Stage) -> f64 {
    (from / 2.0 + s.target / 2.0) * s.duration.as_secs_f64()
}

/// Rounds an iteration count up into `0..=MAX_ARRIVALS` (`as` saturates and maps NaN to 0).
fn count(x: f64) -> u64 {
    (x.ceil() as u64).min(MAX_ARRIVALS)
}

/// How many iterations the whole schedule holds (at most [`MAX_ARRIVALS`]): the indexes for
/// which [`arrival_time`] is `Some`.
pub(crate) fn total_arrivals(start: f64, stages: &[Stage]) -> u64 {
    let mut from = start;
    let mut sum = 0.0;
    for s in stages {
        sum += stage_arrivals(from, s);
        from = s.target;
    }
    count(sum)
}

/// The scheduled start (since the run start) of iteration `i` under a piecewise-linear rate;
/// `None` past the schedule's last iteration.
pub(crate) fn arrival_time(start: f64, stages: &[Stage], i: u64) -> Option<Duration> {
    let mut from = start;
    let mut at = 0.0f64;
    let mut before = 0.0f64;
    let want = i as f64;
    for s in stages {
        let secs = s.duration.as_secs_f64();
        let in_stage = stage_arrivals(from, s);
        if want < before + in_stage {
            // Solve a·t² + b·t = n for t ≥ 0, with b the rate at the stage start and
            // a = (target − from) / 2·secs; this form is exact for a = 0 and does not cancel.
            let n = want - before;
            let a = (s.target - from) / (2.0 * secs);
            let b = from;
            let t = if n <= 0.0 {
                0.0
            } else {
                2.0 * n / (b + (b * b + 4.0 * a * n).max(0.0).sqrt())
            };
            if t.is_finite() {
                return Some(Duration::from_secs_f64((at + t.clamp(0.0, secs)).max(0.0)));
            }
        }
        before += in_stage;
        at += secs;
        from = s.target;
    }
    None
}

/// How many iterations are scheduled strictly before `t` (at most [`total_arrivals`]): the
/// index of the first iteration scheduled at or after `t`.
pub(crate) fn arrivals_before(start: f64, stages: &[Stage], t: Duration) -> u64 {
    let mut from = start;
    let mut at = Duration::ZERO;
    let mut before = 0.0f64;
    for s in stages {
        if t < at + s.duration {
            let tau = (t - at).as_secs_f64();
            let a = (s.target - from) / (2.0 * s.duration.as_secs_f64());
            return count(before + from * tau + a * tau * tau);
        }
        before += stage_arrivals(from, s);
        at += s.duration;
        from = s.target;
    }
    count(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn stage(s: f64, target: f64) -> Stage {
        Stage::new(secs(s), target)
    }

    #[test]
    fn constant_rate_schedule_is_evenly_spaced() {
        let stages = [stage(10.0, 100.0)];
        assert_eq!(arrival_time(100.0, &stages, 0), Some(secs(0.0)));
        let t = arrival_time(100.0, &stages, 250).unwrap();
        assert!((t.as_secs_f64() - 2.5).abs() < 1e-9);
        assert!(arrival_time(100.0, &stages, 999).is_some());
        assert_eq!(
            arrival_time(100.0, &stages, 1000),
            None,
            "R·T iterations exactly"
        );
        assert_eq!(total_arrivals(100.0, &stages), 1000);
    }

    #[test]
    fn ramping_rate_schedule_integrates_the_rate() {
        // 0 → 100/s over 10 s: 500 iterations; then 100/s for 10 s: 1000 more.
        let stages = [stage(10.0, 100.0), stage(10.0, 100.0)];
        let count = (0..)
            .take_while(|i| arrival_time(0.0, &stages, *i).is_some())
            .count();
        assert_eq!(count, 1500);
        assert_eq!(total_arrivals(0.0, &stages), 1500);
        // N(t) = 5 t² in the first stage: iteration 125 at t = 5 s.
        let t = arrival_time(0.0, &stages, 125).unwrap().as_secs_f64();
        assert!((t - 5.0).abs() < 1e-6, "{t}");
        let t = arrival_time(0.0, &stages, 1000).unwrap().as_secs_f64();
        assert!((t - 15.0).abs() < 1e-6, "{t}");
        // Ramping down to 0: the last iteration lands inside the stage.
        let down = [stage(10.0, 0.0)];
        assert_eq!(total_arrivals(100.0, &down), 500);
        let t = arrival_time(100.0, &down, 499).unwrap().as_secs_f64();
        assert!(t < 10.0 && t > 9.0, "{t}");
        assert_eq!(arrival_time(100.0, &down, 500), None);
    }

    #[test]
    fn arrivals_before_inverts_arrival_time() {
        let profiles: [(f64, Vec<Stage>); 3] = [
            (100.0, vec![stage(10.0, 100.0)]),
            (0.0, vec![stage(10.0, 100.0), stage(10.0, 100.0)]),
            (
                50.0,
                vec![stage(3.0, 400.0), stage(2.0, 0.0), stage(1.0, 7.0)],
            ),
        ];
        for (start, stages) in &profiles {
            let total = total_arrivals(*start, stages);
            for i in (0..total).step_by(7) {
                let t = arrival_time(*start, stages, i).unwrap();
                // Iteration i is the first scheduled at or after its own time (up to float
                // rounding at the boundary) and strictly before a moment later.
                let n = arrivals_before(*start, stages, t);
                assert!(n == i || n == i + 1, "{start} {stages:?} i={i} n={n}");
                assert!(arrivals_before(*start, stages, t + secs(1e-6)) > i);
            }
            assert_eq!(arrivals_before(*start, stages, secs(1e6)), total);
            assert_eq!(arrivals_before(*start, stages, Duration::ZERO), 0);
        }
    }

    #[test]
    fn absurd_rates_stay_finite_and_bounded() {
        // 10¹² per second: indexes stay exact enough to jump over, the total is R·T.
        let stages = [stage(2.0, 1e12)];
        assert_eq!(total_arrivals(1e12, &stages), 2_000_000_000_000);
        assert_eq!(arrivals_before(1e12, &stages, secs(1.0)), 1_000_000_000_000);
        let t = arrival_time(1e12, &stages, 1_500_000_000_000).unwrap();
        assert!((t.as_secs_f64() - 1.5).abs() < 1e-9, "{t:?}");
        // Beyond what u64 could count: capped, never wrapping.
        let huge = [stage(1.0, f64::MAX)];
        assert_eq!(total_arrivals(f64::MAX, &huge), MAX_ARRIVALS);
        assert_eq!(arrivals_before(f64::MAX, &huge, secs(0.5)), MAX_ARRIVALS);
        assert!(arrival_time(f64::MAX, &huge, MAX_ARRIVALS - 1).is_some());
    }

    #[test]
    fn ramping_vus_target_and_wake_times() {
        let stages = [stage(10.0, 10.0), stage(10.0, 10.0), stage(10.0, 0.0)];
        assert!((vu_target(0.0, &stages, secs(5.0)) - 5.0).abs() < 1e-9);
        assert!((vu_target(0.0, &stages, secs(15.0)) - 10.0).abs() < 1e-9);
        assert!((vu_target(0.0, &stages, secs(25.0)) - 5.0).abs() < 1e-9);
        assert_eq!(vu_target(0.0, &stages, secs(31.0)), 0.0);
        // VU 3 becomes active just after t = 3 s.
        let w = next_active(0.0, &stages, 3.0, secs(0.0))
            .unwrap()
            .as_secs_f64();
        assert!((3.0..3.01).contains(&w), "{w}");
        // After ramp-down past it, VU 3 never comes back.
        assert_eq!(next_active(0.0, &stages, 3.0, secs(28.0)), None);
        // VU 20 is never active.
        assert_eq!(next_active(0.0, &stages, 20.0, secs(0.0)), None);
    }
}
