//! Executors: VUs paced by a [`Pacer`] (closed model: as fast as responses come back; open
//! model: at scheduled arrival times), run on per-core current-thread runtimes.
//!
//! Each worker thread owns its statistics and metric recorder; nothing on the request path takes
//! a lock. A run composes a stop condition (deadline, iteration budget, Ctrl-C) with a pacer
//! rather than having one loop per executor.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Uri};
use http_body_util::Full;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{ExtractSource, ThinkTime};
use crate::http::client::{Client, H1Request, KEPT_BODY_LIMIT, Shared as ClientShared};
use crate::metrics::{Instruments, Recorder};
use crate::outcome::{ErrorKind, Outcome, Sample};
use crate::plan::{
    BodyPlan, CheckKind, HeaderPlan, Plan, RequestPlan, ScenarioPlan, Schedule, UrlPlan,
};
use crate::stats::{Live, VuCounts, WorkerStats};
use crate::template::Vars;

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Iterations start.
    Running = 0,
    /// No new iterations; in-flight ones finish within the grace period.
    Stopping = 1,
}

/// State shared by every worker of a run.
#[derive(Debug)]
pub struct RunShared {
    /// The plan.
    pub plan: Arc<Plan>,
    /// Resolved targets and TLS.
    pub client: Arc<ClientShared>,
    /// OTel instruments (None when metrics are off).
    pub instruments: Option<Arc<Instruments>>,
    /// When the run started.
    pub start: Instant,
    /// Phase changes.
    pub phase: watch::Sender<Phase>,
    phase_fast: AtomicU8,
    /// Microseconds after `start` at which in-flight requests are cut (u64::MAX: not yet).
    hard_deadline_us: AtomicU64,
    /// Claim counters by scenario (iteration budgets and arrival indexes).
    claims: Vec<AtomicU64>,
    /// Live counters by worker.
    pub live: Vec<Live>,
    /// VU counts.
    pub vus: Arc<VuCounts>,
}

impl RunShared {
    /// Shared state for a run that starts now.
    pub fn new(
        plan: Arc<Plan>,
        client: Arc<ClientShared>,
        instruments: Option<Arc<Instruments>>,
        vus: Arc<VuCounts>,
        start: Instant,
    ) -> Arc<RunShared> {
        let workers = plan.workers;
        let scenarios = plan.scenarios.len();
        Arc::new(RunShared {
            client,
            instruments,
            start,
            phase: watch::channel(Phase::Running).0,
            phase_fast: AtomicU8::new(Phase::Running as u8),
            hard_deadline_us: AtomicU64::new(u64::MAX),
            claims: (0..scenarios).map(|_| AtomicU64::new(0)).collect(),
            live: (0..workers).map(|_| Live::default()).collect(),
            vus,
            plan,
        })
    }

    /// Stops starting iterations; in-flight requests get `grace`, then are cut. Every call
    /// notifies `phase` (even when already stopping): that is how in-flight requests learn of
    /// the earlier deadline (see `Cuts`).
    pub fn stop(&self, grace: Duration) {
        let now_us = self.start.elapsed().as_micros() as u64;
        let hard = now_us.saturating_add(grace.as_micros() as u64);
        self.hard_deadline_us.fetch_min(hard, Ordering::Relaxed);
        self.phase_fast
            .store(Phase::Stopping as u8, Ordering::Relaxed);
        self.phase.send_replace(Phase::Stopping);
    }

    /// Whether the run is stopping.
    pub fn stopping(&self) -> bool {
        self.phase_fast.load(Ordering::Relaxed) != Phase::Running as u8
    }

    /// Iterations claimed so far by a scenario (for iteration budgets: started ones; may run
    /// past the budget by the VUs that found it spent). Read by the progress view.
    pub fn claimed(&self, scenario: usize) -> u64 {
        self.claims[scenario].load(Ordering::Relaxed)
    }

    fn hard_deadline(&self) -> Option<Instant> {
        match self.hard_deadline_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(self.start + Duration::from_micros(us)),
        }
    }
}

/// Runs one worker's share of the VUs on the current thread until they are done.
pub fn run_worker(worker: usize, shared: Arc<RunShared>) -> std::io::Result<WorkerStats> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let plan = shared.plan.clone();
    let ctx = Rc::new(WorkerCtx {
        worker,
        stats: RefCell::new(
            WorkerStats::new(plan.requests.len(), plan.scenarios.len(), plan.checks.len())
                .with_timeline(crate::stats::interval::Timeline::new(
                    shared.start,
                    plan.timeline_interval,
                    plan.requests.len(),
                    plan.scenarios.len(),
                    plan.checks.len(),
                )),
        ),
        recorder: RefCell::new(shared.instruments.as_ref().map(|i| i.recorder())),
        shared: shared.clone(),
        cuts: Cuts::default(),
    });
    local.block_on(&rt, async {
        tokio::task::spawn_local(relay_cuts(ctx.clone()));
        let mut set = tokio::task::JoinSet::new();
        for sc in 0..plan.scenarios.len() {
            let max = plan.scenarios[sc].schedule.max_vus();
            let mine = (0..max).filter(|v| (*v as usize) % plan.workers == worker);
            for vu in mine {
                ctx.shared.vus.add_allocated(worker, sc, 1);
                set.spawn_local(vu_loop(ctx.clone(), sc, vu));
            }
        }
        while set.join_next().await.is_some() {}
    });
    let stats = ctx.stats.borrow().clone();
    Ok(stats)
}

struct WorkerCtx {
    worker: usize,
    stats: RefCell<WorkerStats>,
    recorder: RefCell<Option<Recorder>>,
    shared: Arc<RunShared>,
    /// Wakes in-flight requests when the run's hard deadline moves.
    cuts: Cuts,
}

/// Permission to start one iteration.
struct Ticket {
    /// Open model: the scheduled start (latency is measured from here).
    scheduled: Option<Instant>,
}

async fn vu_loop(ctx: Rc<WorkerCtx>, sc_idx: usize, vu: u64) {
    let shared = ctx.shared.clone();
    let plan = shared.plan.clone();
    let sc = &plan.scenarios[sc_idx];
    let mut vu_state = Vu {
        client: Client::new(shared.client.clone()),
        cut_slot: ctx.cuts.slot(),
        scratch: Vec::new(),
        vars: Vars {
            values: sc.initial_vars.clone(),
            vu,
            iteration: 0,
        },
        wrr: vec![0; sc.weights.len()],
        rng: fastrand::Rng::with_seed(vu.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ sc_idx as u64),
        started: false,
    };
    // Stagger the weighted round-robin so VUs don't all pick the same task at once.
    for _ in 0..(vu as usize % sc.weights.len().max(1)) {
        next_task(&mut vu_state.wrr, &sc.weights);
    }
    let mut phase = shared.phase.subscribe();
    let scenario_end = sc.schedule.duration().map(|d| shared.start + d);
    let mut active = false;
    loop {
        let ticket = match pace(&ctx, sc, vu, &mut phase, scenario_end, &mut active).await {
            Some(t) => t,
            None => break,
        };
        let t0 = ticket.scheduled.unwrap_or_else(Instant::now);
        if let Some(s) = ticket.scheduled {
            let lag = Instant::now().saturating_duration_since(s);
            ctx.stats.borrow_mut().lag(sc_idx, lag);
        }
        // Open model: the first request of the iteration is measured from the scheduled start
        // (on a VU's first iteration that is its on_start request).
        let mut first = ticket.scheduled;
        if !vu_state.started {
            vu_state.started = true;
            for r in &sc.on_start {
                do_request(&ctx, r, &mut vu_state, first.take(), scenario_end).await;
            }
        }
        let task = next_task(&mut vu_state.wrr, &sc.weights);
        for r in &sc.tasks[task] {
            do_request(&ctx, r, &mut vu_state, first.take(), scenario_end).await;
            if let Some(tt) = &r.think_time {
                think(tt, &mut vu_state.rng, &mut phase).await;
            }
            if shared.hard_deadline().is_some_and(|h| Instant::now() >= h) {
                break;
            }
        }
        let took = Instant::now().saturating_duration_since(t0);
        ctx.stats.borrow_mut().iteration(sc_idx, took);
        if let Some(rec) = ctx.recorder.borrow().as_ref() {
            rec.iteration(sc_idx, took);
        }
        vu_state.vars.iteration += 1;
        if sc.schedule.is_open() {
            shared.vus.add_active(ctx.worker, sc_idx, -1);
            active = false;
        }
        if let Some(tt) = &sc.think_time {
            think(tt, &mut vu_state.rng, &mut phase).await;
        }
    }
    if active {
        shared.vus.add_active(ctx.worker, sc_idx, -1);
    }
}

struct Vu {
    client: Client,
    /// This VU's slot in the worker's [`Cuts`].
    cut_slot: usize,
    /// Reused buffer for requests rendered per VU.
    scratch: Vec<u8>,
    vars: Vars,
    wrr: Vec<i64>,
    rng: fastrand::Rng,
    started: bool,
}

/// Smooth weighted round-robin: exact proportions over every window of sum(weights) picks.
fn next_task(current: &mut [i64], weights: &[u32]) -> usize {
    if weights.len() <= 1 {
        return 0;
    }
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut best = 0;
    for i in 0..weights.len() {
        current[i] += i64::from(weights[i]);
        if current[i] > current[best] {
            best = i;
        }
    }
    current[best] -= total;
    best
}

async fn think(tt: &ThinkTime, rng: &mut fastrand::Rng, phase: &mut watch::Receiver<Phase>) {
    let d = match tt {
        ThinkTime::Constant(d) => d.get(),
        ThinkTime::Uniform { min, max } => {
            let (a, b) = (min.get().as_nanos() as u64, max.get().as_nanos() as u64);
            Duration::from_nanos(if b > a { rng.u64(a..=b) } else { a })
        }
    };
    if d.is_zero() {
        return;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = phase.wait_for(|p| *p != Phase::Running) => {}
    }
}

/// Sleeps until `t` unless the run stops first; returns false if it stopped.
async fn sleep_until_or_stop(t: Instant, phase: &mut watch::Receiver<Phase>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(t) => true,
        _ = phase.wait_for(|p| *p != Phase::Running) => false,
    }
}

/// How late an open-model iteration may start before it counts as dropped. A VU claims the next
/// scheduled iteration the moment it is free, so a claim later than this means every VU was
/// busy at the scheduled time; below it, the lag is timer, scheduler or VM jitter (a few ms,
/// with rare tens of ms on a shared machine). A late start is never hidden: its latency is
/// measured from the scheduled time and the lag itself is reported (summary `start_lag_s`).
const DROP_TOLERANCE: Duration = Duration::from_millis(50);

async fn pace(
    ctx: &WorkerCtx,
    sc: &ScenarioPlan,
    vu: u64,
    phase: &mut watch::Receiver<Phase>,
    end: Option<Instant>,
    active: &mut bool,
) -> Option<Ticket> {
    let shared = &ctx.shared;
    let idx = sc.index;
    let past_end = || end.is_some_and(|e| Instant::now() >= e);
    let set_active = |a: &mut bool, on: bool| {
        if *a != on {
            shared
                .vus
                .add_active(ctx.worker, idx, if on { 1 } else { -1 });
            *a = on;
        }
    };
    // Open model: past the end, the claim loop below still runs, so iterations that were
    // scheduled while every VU was busy are counted as dropped rather than forgotten.
    if shared.stopping() || (past_end() && !sc.schedule.is_open()) {
        return None;
    }
    match &sc.schedule {
        Schedule::ConstantVus { iterations, .. } => {
            if let Some(cap) = iterations
                && shared.claims[idx].fetch_add(1, Ordering::Relaxed) >= *cap
            {
                return None;
            }
            set_active(active, true);
            Some(Ticket { scheduled: None })
        }
        Schedule::SharedIterations { iterations, .. } => {
            if shared.claims[idx].fetch_add(1, Ordering::Relaxed) >= *iterations {
                return None;
            }
            set_active(active, true);
            Some(Ticket { scheduled: None })
        }
        Schedule::RampingVus { start, stages } => loop {
            let elapsed = shared.start.elapsed();
            if vu_target(*start, stages, elapsed) > vu as f64 {
                set_active(active, true);
                return Some(Ticket { scheduled: None });
            }
            set_active(active, false);
            let wake = next_active(*start, stages, vu as f64, elapsed)?;
            if !sleep_until_or_stop(shared.start + wake, phase).await {
                return None;
            }
        },
        Schedule::ArrivalRate { start, stages, .. } => loop {
            let i = shared.claims[idx].fetch_add(1, Ordering::Relaxed);
            let at = arrival_time(*start, stages, i)?;
            let t = shared.start + at;
            let now = Instant::now();
            if now > t + DROP_TOLERANCE {
                ctx.stats.borrow_mut().dropped(idx);
                if let Some(rec) = ctx.recorder.borrow().as_ref() {
                    rec.dropped(idx);
                }
                continue;
            }
            if t > now && !sleep_until_or_stop(t, phase).await {
                return None;
            }
            set_active(active, true);
            return Some(Ticket { scheduled: Some(t) });
        },
    }
}

/// Target VUs at `t`: linear within each stage.
pub fn vu_target(start: f64, stages: &[(Duration, f64)], t: Duration) -> f64 {
    let mut from = start;
    let mut at = Duration::ZERO;
    for (d, to) in stages {
        if t < at + *d {
            let f = (t - at).as_secs_f64() / d.as_secs_f64();
            return from + (to - from) * f;
        }
        at += *d;
        from = *to;
    }
    0.0
}

/// The first time ≥ `t` at which the target exceeds `vu`, if any.
pub fn next_active(
    start: f64,
    stages: &[(Duration, f64)],
    vu: f64,
    t: Duration,
) -> Option<Duration> {
    let nudge = Duration::from_micros(100);
    let mut from = start;
    let mut at = Duration::ZERO;
    for (d, to) in stages {
        let end = at + *d;
        // Within this stage the target exceeds `vu` on one interval [lo, hi).
        let frac = |x: f64| d.mul_f64(x.clamp(0.0, 1.0));
        let window = match (from > vu, *to > vu) {
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
        from = *to;
    }
    None
}

/// The scheduled start (since the run start) of iteration `i` under a piecewise-linear rate.
pub fn arrival_time(start: f64, stages: &[(Duration, f64)], i: u64) -> Option<Duration> {
    let mut from = start;
    let mut at = 0.0f64;
    let mut before = 0.0f64;
    let want = i as f64;
    for (d, to) in stages {
        let secs = d.as_secs_f64();
        let in_stage = (from + to) / 2.0 * secs;
        if want < before + in_stage {
            let n = want - before;
            let a = (to - from) / (2.0 * secs);
            let b = from;
            let t = if a.abs() < 1e-12 {
                n / b
            } else {
                (-b + (b * b + 4.0 * a * n).max(0.0).sqrt()) / (2.0 * a)
            };
            if t.is_finite() {
                return Some(Duration::from_secs_f64((at + t).max(0.0)));
            }
        }
        before += in_stage;
        at += secs;
        from = *to;
    }
    None
}

/// A header's value for this VU (None if the rendered text is not a valid header value).
fn header_value(v: &HeaderPlan, vars: &Vars) -> Option<HeaderValue> {
    match v {
        HeaderPlan::Static(v) => Some(v.clone()),
        HeaderPlan::Dynamic(t) => HeaderValue::from_str(&t.render(vars)).ok(),
    }
}

/// Renders a request that uses per-VU variables into `out` (HTTP/1.1 wire bytes); returns the
/// body length.
fn render_wire(r: &RequestPlan, vars: &Vars, out: &mut Vec<u8>) -> Option<u64> {
    let body_owned;
    let body: &[u8] = match &r.body {
        Some(BodyPlan::Static(b)) => b,
        Some(BodyPlan::Dynamic(t)) => {
            body_owned = t.render(vars);
            body_owned.as_bytes()
        }
        None => &[],
    };
    let rendered;
    let pq: &str = match &r.url {
        UrlPlan::Static(u) => u.path_and_query().map_or("/", |p| p.as_str()),
        UrlPlan::Dynamic { template, .. } => {
            let full: Uri = template.render(vars).parse().ok()?;
            rendered = full.path_and_query()?.as_str().to_string();
            &rendered
        }
    };
    let mut headers = Vec::with_capacity(r.headers.len());
    for (name, v) in &r.headers {
        headers.push((name.clone(), header_value(v, vars)?));
    }
    crate::http::h1::write_request(out, &r.method, pq, &headers, body);
    Some(body.len() as u64)
}

fn build_request(r: &RequestPlan, vars: &Vars) -> Option<(Request<Full<Bytes>>, u64)> {
    let body = match &r.body {
        Some(BodyPlan::Static(b)) => b.clone(),
        Some(BodyPlan::Dynamic(t)) => Bytes::from(t.render(vars)),
        None => Bytes::new(),
    };
    let len = body.len() as u64;
    let uri = match &r.url {
        UrlPlan::Static(u) => u.clone(),
        UrlPlan::Dynamic {
            template,
            origin_form,
        } => {
            let full: Uri = template.render(vars).parse().ok()?;
            if *origin_form {
                full.path_and_query()?.as_str().parse().ok()?
            } else {
                full
            }
        }
    };
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = r.method.clone();
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    h.reserve(r.headers.len());
    for (name, v) in &r.headers {
        h.insert(name.clone(), header_value(v, vars)?);
    }
    Some((req, len))
}

/// This worker's in-flight requests, to wake when the run's hard deadline moves (a stop with a
/// grace period, a second Ctrl-C): a request's deadline is fixed when it starts, and this is how
/// it learns of an earlier one and ends as `cancelled` then. One task per worker
/// ([`relay_cuts`]) listens to the run's phase channel — every `RunShared::stop` notifies it —
/// and wakes the registered requests. Each VU has a slot for its task's waker in a per-worker
/// table: no lock, no allocation per request, and no waker clone while the VU's task stays the
/// same.
#[derive(Default)]
struct Cuts {
    /// Bumped on every notification.
    epoch: Cell<u64>,
    /// By VU slot.
    wakers: RefCell<Vec<Option<Waker>>>,
}

impl Cuts {
    /// A new slot for a VU.
    fn slot(&self) -> usize {
        let mut w = self.wakers.borrow_mut();
        w.push(None);
        w.len() - 1
    }

    fn fire(&self) {
        self.epoch.set(self.epoch.get() + 1);
        let woken: Vec<Waker> = self
            .wakers
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in woken {
            w.wake();
        }
    }

    fn register(&self, slot: usize, cx: &std::task::Context<'_>) {
        if let Some(s) = self.wakers.borrow_mut().get_mut(slot) {
            match s {
                Some(old) if old.will_wake(cx.waker()) => {}
                s => *s = Some(cx.waker().clone()),
            }
        }
    }
}

/// Relays the run's stop notifications to this worker's in-flight requests.
async fn relay_cuts(ctx: Rc<WorkerCtx>) {
    let mut phase = ctx.shared.phase.subscribe();
    while phase.changed().await.is_ok() {
        ctx.cuts.fire();
    }
}

/// Completes when the run's hard deadline, moved earlier than `fixed` (the one the request
/// started with) while the request is in flight, has passed.
struct Cut<'a> {
    ctx: &'a WorkerCtx,
    slot: usize,
    fixed: Option<Instant>,
    seen: u64,
    /// Only after a stop moved the deadline (rare): boxed to keep the request future small.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<'a> Cut<'a> {
    fn new(ctx: &'a WorkerCtx, slot: usize, fixed: Option<Instant>) -> Cut<'a> {
        Cut {
            ctx,
            slot,
            fixed,
            seen: ctx.cuts.epoch.get(),
            sleep: None,
        }
    }
}

impl Future for Cut<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let epoch = self.ctx.cuts.epoch.get();
        if epoch != self.seen {
            self.seen = epoch;
            if let Some(h) = self.ctx.shared.hard_deadline()
                && self.fixed.is_none_or(|f| h < f)
            {
                if Instant::now() >= h {
                    return Poll::Ready(());
                }
                self.sleep = Some(Box::pin(tokio::time::sleep_until(h)));
            }
        }
        if let Some(s) = self.sleep.as_mut()
            && s.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(());
        }
        self.ctx.cuts.register(self.slot, cx);
        Poll::Pending
    }
}

/// A kept body cut at [`KEPT_BODY_LIMIT`] has been reported (once per process).
static TRUNCATION_WARNED: AtomicBool = AtomicBool::new(false);

async fn do_request(
    ctx: &WorkerCtx,
    r: &RequestPlan,
    vu: &mut Vu,
    scheduled: Option<Instant>,
    scenario_end: Option<Instant>,
) {
    let shared = &ctx.shared;
    let hard = match (shared.hard_deadline(), scenario_end) {
        (Some(h), Some(e)) => Some(h.min(e + shared.plan.graceful_stop)),
        (Some(h), None) => Some(h),
        (None, Some(e)) => Some(e + shared.plan.graceful_stop),
        (None, None) => None,
    };
    let start = scheduled.unwrap_or_else(Instant::now);
    if let Some(rec) = ctx.recorder.borrow().as_ref() {
        rec.start(r.id);
    }
    let prepared = if shared.plan.client.http2 {
        build_request(r, &vu.vars).map(|(req, len)| (Some(req), len))
    } else if let Some(w) = &r.wire {
        Some((None, static_body_len(r).unwrap_or(w.len() as u64)))
    } else {
        render_wire(r, &vu.vars, &mut vu.scratch).map(|len| (None, len))
    };
    let (outcome, bytes_out) = match prepared {
        Some((Some(req), len)) => (
            // HTTP/2 through hyper: boxed to keep the common VU future small.
            Box::pin(vu.client.send(
                r.target,
                req,
                r.keep_body,
                r.keep_headers,
                hard,
                Cut::new(ctx, vu.cut_slot, hard),
            ))
            .await,
            len,
        ),
        Some((None, len)) => {
            let req = H1Request {
                wire: r.wire.as_deref().unwrap_or(&vu.scratch),
                head: r.head,
                idempotent: r.method.is_idempotent(),
                keep_body: r.keep_body,
                keep_headers: r.keep_headers,
            };
            (
                vu.client
                    .send_h1(r.target, req, hard, Cut::new(ctx, vu.cut_slot, hard))
                    .await,
                len,
            )
        }
        None => (Outcome::failed(ErrorKind::Protocol), 0),
    };
    let sample = Sample {
        req: r.id,
        latency: Instant::now().saturating_duration_since(start),
        status: outcome.status,
        error: outcome.error,
        bytes_in: outcome.bytes_in,
        bytes_out,
        reconnected: outcome.reconnected,
    };
    ctx.stats.borrow_mut().record(&sample);
    shared.live[ctx.worker].record(&sample);
    if let Some(rec) = ctx.recorder.borrow_mut().as_mut() {
        rec.finish(&sample);
    }
    if outcome.error == Some(ErrorKind::TooManyOpenFiles)
        && let Some(pause) = vu.client.fd_backoff()
    {
        // Out of file descriptors (logged once by the connector): pause this VU rather than
        // let it spin on failures that never reach the server; a stop ends the pause.
        sleep_until_or_stop(Instant::now() + pause, &mut shared.phase.subscribe()).await;
    }
    if r.checks.is_empty() {
        return;
    }
    let body = outcome.body.as_deref().unwrap_or_default();
    let truncated = outcome
        .body
        .as_ref()
        .is_some_and(|b| (b.len() as u64) < outcome.bytes_in);
    if truncated && !TRUNCATION_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            request = %shared.plan.requests[r.id].name,
            bytes = outcome.bytes_in,
            "a response body is larger than {} MiB: checks and extraction see only its first {} MiB",
            KEPT_BODY_LIMIT >> 20,
            KEPT_BODY_LIMIT >> 20,
        );
    }
    let mut json: Option<Option<serde_json::Value>> = None;
    for c in &r.checks {
        let pass = match &c.kind {
            CheckKind::Status(list) => outcome.status.is_some_and(|s| list.contains(&s)),
            CheckKind::BodyContains(text) => memchr::memmem::find(body, text.as_bytes()).is_some(),
            CheckKind::Extract(_) => continue,
        };
        record_check(ctx, c.id, pass);
    }
    for e in &r.extract {
        let value = if outcome.error.is_some() {
            None
        } else {
            match &e.source {
                ExtractSource::Header(name) => outcome
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name.as_str()))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                ExtractSource::Json(ptr) => json
                    .get_or_insert_with(|| serde_json::from_slice(body).ok())
                    .as_ref()
                    .and_then(|v| v.pointer(ptr))
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }),
            }
        };
        record_check(ctx, e.check, value.is_some());
        if let Some(v) = value
            && let Some(slot) = vu.vars.values.get_mut(e.var)
        {
            *slot = v;
        }
    }
}

/// Body length of a request whose body does not vary.
fn static_body_len(r: &RequestPlan) -> Option<u64> {
    match &r.body {
        Some(BodyPlan::Static(b)) => Some(b.len() as u64),
        None => Some(0),
        Some(BodyPlan::Dynamic(_)) => None,
    }
}

fn record_check(ctx: &WorkerCtx, id: usize, pass: bool) {
    ctx.stats.borrow_mut().check(id, pass);
    if let Some(rec) = ctx.recorder.borrow().as_ref() {
        rec.check(id, pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn constant_rate_schedule_is_evenly_spaced() {
        let stages = [(secs(10.0), 100.0)];
        assert_eq!(arrival_time(100.0, &stages, 0), Some(secs(0.0)));
        let t = arrival_time(100.0, &stages, 250).unwrap();
        assert!((t.as_secs_f64() - 2.5).abs() < 1e-9);
        assert!(arrival_time(100.0, &stages, 999).is_some());
        assert_eq!(
            arrival_time(100.0, &stages, 1000),
            None,
            "R·T iterations exactly"
        );
    }

    #[test]
    fn ramping_rate_schedule_integrates_the_rate() {
        // 0 → 100/s over 10 s: 500 iterations; then 100/s for 10 s: 1000 more.
        let stages = [(secs(10.0), 100.0), (secs(10.0), 100.0)];
        let count = (0..)
            .take_while(|i| arrival_time(0.0, &stages, *i).is_some())
            .count();
        assert_eq!(count, 1500);
        // N(t) = 5 t² in the first stage: iteration 125 at t = 5 s.
        let t = arrival_time(0.0, &stages, 125).unwrap().as_secs_f64();
        assert!((t - 5.0).abs() < 1e-6, "{t}");
        let t = arrival_time(0.0, &stages, 1000).unwrap().as_secs_f64();
        assert!((t - 15.0).abs() < 1e-6, "{t}");
    }

    #[test]
    fn ramping_vus_target_and_wake_times() {
        let stages = [(secs(10.0), 10.0), (secs(10.0), 10.0), (secs(10.0), 0.0)];
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

    #[test]
    fn weighted_round_robin_is_exact() {
        let weights = [50, 50];
        let mut cur = vec![0; 2];
        let mut counts = [0; 2];
        for _ in 0..1000 {
            counts[next_task(&mut cur, &weights)] += 1;
        }
        assert_eq!(counts, [500, 500]);
        let weights = [3, 1];
        let mut cur = vec![0; 2];
        let picks: Vec<usize> = (0..8).map(|_| next_task(&mut cur, &weights)).collect();
        assert_eq!(picks.iter().filter(|p| **p == 0).count(), 6);
    }
}
