//! Executors: VUs paced by `pace` (closed model: as fast as responses come back; open
//! model: at scheduled arrival times), run on per-core current-thread runtimes.
//!
//! Each worker thread owns its statistics and metric recorder; nothing on the request path takes
//! a lock. A run composes a stop condition (deadline, iteration budget, Ctrl-C) with a pacer
//! rather than having one loop per executor. The schedule maths lives in [`crate::scenario::schedule`].
//!
//! Every loop here either awaits or checks for stop and yields to the worker's other tasks
//! (tokio's cooperative budget), so no input makes a worker spin without end.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Uri};
use tokio::sync::watch;
use tokio::task::coop::consume_budget;
use tokio::time::Instant;

use crate::busy::BusyPoll;
use crate::config::{ExtractSource, ThinkTime};
use crate::engine::pace::Pacer;
use crate::engine::task::Panicked;
use crate::http::client::{Client, H1Request, KEPT_BODY_LIMIT, Shared as ClientShared};
use crate::http::h2::hpack::put_field;
use crate::http::h2::{H2Request, Pool as H2Pool, encode_head};
use crate::metrics::{Instruments, Recorder};
use crate::outcome::{ErrorKind, Outcome, Sample};
use crate::scenario::plan::{
    BodyPlan, CheckKind, HeaderPlan, Plan, RequestPlan, ScenarioPlan, Schedule, UrlPlan,
};
use crate::scenario::schedule::{
    Stage, arrival_time, arrivals_before, next_active, total_arrivals, vu_target,
};
use crate::scenario::template::Vars;
use crate::stats::{Drops, Live, VuCounts, WorkerStats};
use crate::trace::{
    IdGen, Sampler, SpanContext, SpanId, SpanRecord, SpanSink, TRACEPARENT, TraceId, splice_header,
};

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Iterations start.
    Running = 0,
    /// No new iterations; in-flight ones finish within the grace period.
    Stopping = 1,
}

/// State shared by every worker of a run.
#[derive(Debug)]
pub(crate) struct RunShared {
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
    /// Iterations each open-model scenario schedules in all (0 for closed ones).
    arrivals: Vec<u64>,
    /// Live counters by worker.
    pub live: Vec<Live>,
    /// VU counts.
    pub vus: Arc<VuCounts>,
    /// The generator process's own CPU (each worker adds its runtime).
    pub generator: Arc<crate::process::Monitor>,
    /// Where sampled requests' spans go, when client spans are exported (set once, before
    /// the workers start).
    pub spans: std::sync::OnceLock<SpanSink>,
    /// Where workers send their closed timeline intervals, when the run judges thresholds live
    /// (windowed or `abort_on_fail`); set before the workers start.
    pub feed: std::sync::OnceLock<crate::stats::interval::Feed>,
}

impl RunShared {
    /// Shared state for a run that starts now.
    pub(crate) fn new(
        plan: Arc<Plan>,
        client: Arc<ClientShared>,
        instruments: Option<Arc<Instruments>>,
        vus: Arc<VuCounts>,
        start: Instant,
        generator: Arc<crate::process::Monitor>,
    ) -> Arc<RunShared> {
        let workers = plan.workers;
        let scenarios = plan.scenarios.len();
        let arrivals = plan
            .scenarios
            .iter()
            .map(|s| match &s.schedule {
                // This segment's share of the global schedule (all of it outside a
                // distributed run).
                Schedule::ArrivalRate { start, stages, .. } => {
                    plan.stripe.scale(total_arrivals(*start, stages))
                }
                _ => 0,
            })
            .collect();
        Arc::new(RunShared {
            client,
            instruments,
            start,
            phase: watch::channel(Phase::Running).0,
            phase_fast: AtomicU8::new(Phase::Running as u8),
            hard_deadline_us: AtomicU64::new(u64::MAX),
            claims: (0..scenarios).map(|_| AtomicU64::new(0)).collect(),
            arrivals,
            live: (0..workers).map(|_| Live::default()).collect(),
            vus,
            spans: std::sync::OnceLock::new(),
            plan,
            generator,
            feed: std::sync::OnceLock::new(),
        })
    }

    /// Stops starting iterations; in-flight requests get `grace`, then are cut. Every call
    /// notifies `phase` (even when already stopping): that is how in-flight requests learn of
    /// the earlier deadline (see `Cuts`).
    pub(crate) fn stop(&self, grace: Duration) {
        let now_us = self.start.elapsed().as_micros() as u64;
        let hard = now_us.saturating_add(grace.as_micros() as u64);
        self.hard_deadline_us.fetch_min(hard, Ordering::Relaxed);
        self.phase_fast
            .store(Phase::Stopping as u8, Ordering::Relaxed);
        self.phase.send_replace(Phase::Stopping);
    }

    /// Whether the run is stopping.
    pub(crate) fn stopping(&self) -> bool {
        self.phase_fast.load(Ordering::Relaxed) != Phase::Running as u8
    }

    /// Iterations claimed so far by a scenario (for iteration budgets: started ones; may run
    /// past the budget by the VUs that found it spent). Read by the progress view.
    pub(crate) fn claimed(&self, scenario: usize) -> u64 {
        self.claims[scenario].load(Ordering::Relaxed)
    }

    fn hard_deadline(&self) -> Option<Instant> {
        match self.hard_deadline_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => self.at(Duration::from_micros(us)),
        }
    }

    /// The instant `d` after the start (None if the clock cannot represent it: never).
    fn at(&self, d: Duration) -> Option<Instant> {
        self.start.checked_add(d)
    }

    /// Dropped iterations so far, over all workers.
    pub(crate) fn drops(&self) -> Drops {
        self.live.iter().fold(Drops::default(), |mut a, l| {
            let d = l.drops();
            a.no_vu += d.no_vu;
            a.generator += d.generator;
            a
        })
    }
}

/// Why a worker could not complete its share of the run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    /// Its runtime could not start.
    #[error("cannot start a worker runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// One of its tasks, or the thread itself, panicked.
    #[error(transparent)]
    Panicked(#[from] Panicked),
}

/// Runs one worker's share of the VUs on the current thread until they are done. A panicking
/// VU task stops the run (as Ctrl-C would) and fails the worker once the others are done.
pub(crate) fn run_worker(
    worker: usize,
    shared: Arc<RunShared>,
) -> Result<WorkerStats, WorkerError> {
    run_worker_with(worker, shared, vu_loop)
}

/// [`run_worker`] with the body every VU runs (tests inject one that panics).
fn run_worker_with<F, Fut>(
    worker: usize,
    shared: Arc<RunShared>,
    vu_body: F,
) -> Result<WorkerStats, WorkerError>
where
    F: Fn(Rc<WorkerCtx>, usize, u64) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let plan = shared.plan.clone();
    let mut timeline = crate::stats::interval::Timeline::new(
        shared.start,
        plan.timeline_interval,
        plan.requests.len(),
        plan.scenarios.len(),
        plan.checks.len(),
    )
    .with_windows(plan.scenarios.iter().map(|s| s.schedule.duration()));
    if let Some(f) = shared.feed.get() {
        timeline = timeline.with_feed(f.clone());
    }
    let ctx = Rc::new(WorkerCtx {
        worker,
        stats: RefCell::new(
            WorkerStats::new(plan.requests.len(), plan.scenarios.len(), plan.checks.len())
                .with_timeline(timeline),
        ),
        recorder: RefCell::new(shared.instruments.as_ref().map(|i| i.recorder())),
        pulse: Pulse::new(shared.start),
        h2_pool: Client::shared_pool(&shared.client),
        shared: shared.clone(),
        cuts: Cuts::default(),
        pacer: plan
            .scenarios
            .iter()
            .any(|s| s.schedule.is_open())
            .then(|| {
                let _rt = rt.enter();
                Pacer::new()
                    .inspect_err(|e| {
                        tracing::warn!(
                            "no precise timer for the open model ({e}): iterations start on \
                             tokio's 1 ms timer, up to 1 ms late, and their latency includes it"
                        )
                    })
                    .ok()
            })
            .flatten(),
        busy: BusyPoll::new(plan.busy_poll, std::time::Instant::now()),
    });
    shared.generator.add_runtime(rt.metrics(), ctx.busy.idle());
    let panicked = local.block_on(&rt, async {
        let open = plan.scenarios.iter().any(|s| s.schedule.is_open());
        let heartbeat = open.then(|| tokio::task::spawn_local(heartbeat(ctx.clone())));
        let relay = tokio::task::spawn_local(relay_cuts(ctx.clone()));
        let busy = {
            let c = ctx.clone();
            tokio::task::spawn_local(async move { c.busy.run().await })
        };
        let pacer = ctx
            .pacer
            .clone()
            .map(|p| tokio::task::spawn_local(p.drive()));
        let closer = shared
            .feed
            .get()
            .is_some()
            .then(|| tokio::task::spawn_local(close_intervals(ctx.clone())));
        let mut set = tokio::task::JoinSet::new();
        let mut who = Vec::new();
        for sc in 0..plan.scenarios.len() {
            let max = plan.scenarios[sc].local_vus;
            let mine = (0..max).filter(|v| (*v as usize) % plan.workers == worker);
            for k in mine {
                // VU numbers are global: unique across every segment of a distributed run.
                let vu = plan.scenarios[sc].vu_id(&plan.stripe, k);
                ctx.shared.vus.add_allocated(worker, sc, 1);
                let h = set.spawn_local(vu_body(ctx.clone(), sc, vu));
                who.push((h.id(), sc, vu));
            }
        }
        let mut first: Option<Panicked> = None;
        while let Some(r) = set.join_next().await {
            let Err(e) = r else { continue };
            let id = e.id();
            let task = match who.iter().find(|w| w.0 == id) {
                Some((_, sc, vu)) => {
                    format!("VU {vu} of scenario {:?}", &*plan.scenarios[*sc].name)
                }
                None => "a VU task".to_string(),
            };
            if let Some(p) = Panicked::from_join(task, e) {
                // The run's result is wrong from here on: stop it as Ctrl-C would.
                shared.stop(plan.graceful_stop);
                first.get_or_insert(p);
            }
        }
        if let Some(h) = heartbeat {
            h.abort();
        }
        relay.abort();
        busy.abort();
        if let Some(h) = pacer {
            h.abort();
        }
        if let Some(h) = closer {
            h.abort();
        }
        first
    });
    if let Some(p) = panicked {
        return Err(p.into());
    }
    if let Some(t) = ctx.stats.borrow_mut().timeline.as_mut() {
        t.close_feed();
    }
    let stats = ctx.stats.borrow().clone();
    Ok(stats)
}

struct WorkerCtx {
    worker: usize,
    stats: RefCell<WorkerStats>,
    recorder: RefCell<Option<Recorder>>,
    pulse: Pulse,
    shared: Arc<RunShared>,
    /// Wakes in-flight requests when the run's hard deadline moves.
    cuts: Cuts,
    /// HTTP/2 with more than one stream per connection: the connections this worker's VUs share.
    h2_pool: Option<Rc<H2Pool>>,
    /// Open model: the precise clock VUs wait on for their iterations (None: tokio's timer).
    pacer: Option<Rc<Pacer>>,
    /// Keeps the worker polling for a moment after each request and response.
    busy: BusyPoll,
}

/// Permission to start one iteration.
struct Ticket {
    /// Open model: the scheduled start (latency is measured from here).
    scheduled: Option<Instant>,
    /// Open model: how late the iteration starts.
    lag: Duration,
}

async fn vu_loop(ctx: Rc<WorkerCtx>, sc_idx: usize, vu: u64) {
    let shared = ctx.shared.clone();
    let plan = shared.plan.clone();
    let sc = &plan.scenarios[sc_idx];
    let mut vu_state = Vu {
        client: Client::new(shared.client.clone(), ctx.h2_pool.clone()),
        cut_slot: ctx.cuts.slot(),
        scratch: Vec::new(),
        h2_head: Vec::new(),
        h2_extra: Vec::new(),
        vars: Vars {
            values: sc.initial_vars.clone(),
            vu,
            iteration: 0,
        },
        wrr: vec![0; sc.weights.len()],
        rng: fastrand::Rng::with_seed(vu.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ sc_idx as u64),
        started: false,
        tracing: plan
            .tracing
            .sample_ratio
            .and_then(Sampler::new)
            .map(|sampler| VuTracing {
                sampler,
                ids: IdGen::new(),
                per_iteration: plan.tracing.per_iteration,
                iteration: None,
                buf: Vec::new(),
            }),
    };
    // Stagger the weighted round-robin so VUs don't all pick the same task at once.
    for _ in 0..(vu as usize % sc.weights.len().max(1)) {
        next_task(&mut vu_state.wrr, &sc.weights);
    }
    let mut phase = shared.phase.subscribe();
    // A duration beyond what the clock can represent means no end.
    let scenario_end = sc.schedule.duration().and_then(|d| shared.at(d));
    let mut active = false;
    loop {
        let ticket = match pace(&ctx, sc, vu, &mut phase, scenario_end, &mut active).await {
            Some(t) => t,
            None => break,
        };
        let t0 = ticket.scheduled.unwrap_or_else(Instant::now);
        if ticket.scheduled.is_some() {
            ctx.stats.borrow_mut().lag(sc_idx, ticket.lag);
        }
        // Open model: the first request of the iteration is measured from the scheduled start
        // (on a VU's first iteration that is its on_start request).
        let mut first = ticket.scheduled;
        if let Some(t) = vu_state.tracing.as_mut().filter(|t| t.per_iteration) {
            t.iteration = t
                .sampler
                .sample(&mut t.ids)
                .then(|| (t.ids.trace_id(), t.ids.span_id()));
        }
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
        if let Some((trace_id, span_id)) =
            vu_state.tracing.as_mut().and_then(|t| t.iteration.take())
            && let Some(sink) = shared.spans.get()
        {
            // The iteration's root span: every request of the iteration is its child.
            let end = std::time::SystemTime::now();
            sink.push(SpanRecord {
                ctx: SpanContext {
                    trace_id,
                    span_id,
                    parent: None,
                },
                req: None,
                scenario: sc_idx,
                start: end.checked_sub(took).unwrap_or(end),
                end,
                status: None,
                error: None,
                url: None,
            });
        }
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
        // An iteration whose requests all finish without waiting (e.g. one that cannot be
        // rendered) must still let the worker's other VUs and timers run.
        consume_budget().await;
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
    /// HTTP/2: the head of a request that varies, encoded per request.
    h2_head: Vec<u8>,
    /// HTTP/2: this request's extra fields (a sampled request's `traceparent`), encoded.
    h2_extra: Vec<u8>,
    vars: Vars,
    wrr: Vec<i64>,
    rng: fastrand::Rng,
    started: bool,
    /// Trace context (None: tracing off).
    tracing: Option<VuTracing>,
}

/// A VU's trace context state.
struct VuTracing {
    sampler: Sampler,
    ids: IdGen,
    per_iteration: bool,
    /// Per-iteration mode: the current iteration's trace and root span, when sampled.
    iteration: Option<(TraceId, SpanId)>,
    /// The sampled request's HTTP/1.1 bytes, with the header spliced in.
    buf: Vec<u8>,
}

impl VuTracing {
    /// The trace context of the next request, when it is sampled.
    fn next(&mut self) -> Option<SpanContext> {
        if self.per_iteration {
            let (trace_id, root) = self.iteration?;
            return Some(SpanContext {
                trace_id,
                span_id: self.ids.span_id(),
                parent: Some(root),
            });
        }
        if !self.sampler.sample(&mut self.ids) {
            return None;
        }
        Some(SpanContext {
            trace_id: self.ids.trace_id(),
            span_id: self.ids.span_id(),
            parent: None,
        })
    }
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

/// Sleeps until `t` (forever if `None`) unless the run stops first; returns false if it
/// stopped.
async fn sleep_until_or_stop(t: Option<Instant>, phase: &mut watch::Receiver<Phase>) -> bool {
    let Some(t) = t else {
        let _ = phase.wait_for(|p| *p != Phase::Running).await;
        return false;
    };
    tokio::select! {
        _ = tokio::time::sleep_until(t) => true,
        _ = phase.wait_for(|p| *p != Phase::Running) => false,
    }
}

/// How late an open-model iteration may start before it is dropped. Below it, the lag is
/// timer, scheduler or VM jitter (a few ms, with rare tens of ms on a shared machine) and the
/// iteration runs: its latency is measured from the scheduled time and the lag itself is
/// reported (summary `start_lag_s`). A late start is never hidden.
const DROP_TOLERANCE: Duration = Duration::from_millis(50);

/// When a VU finds an iteration more than [`DROP_TOLERANCE`] late, it drops, in one step, every
/// iteration scheduled more than this long ago: a few ms short of the tolerance, so that at any
/// rate the next claim is on time again rather than late by a hair.
const CATCH_UP: Duration = Duration::from_millis(45);

/// How often a worker's heartbeat checks that the worker itself keeps time.
const BEAT: Duration = Duration::from_millis(10);

/// How many of a worker's recent stalls it remembers to explain late iterations.
const STALLS_KEPT: usize = 32;

/// A span during which a worker could not run (its thread was paused or starved of CPU).
#[derive(Clone, Copy, Debug)]
struct Stall {
    from: Instant,
    to: Instant,
}

/// A worker's record of when it could not keep its schedule. A heartbeat task wakes every
/// [`BEAT`]; a gap of more than [`DROP_TOLERANCE`] between two beats is a stall of the
/// generator itself. An iteration scheduled inside a stall was missed by the generator, not
/// for want of a free VU — whatever the number of VUs.
struct Pulse {
    last: Cell<Instant>,
    stalls: RefCell<VecDeque<Stall>>,
}

impl Pulse {
    fn new(start: Instant) -> Pulse {
        Pulse {
            last: Cell::new(start),
            stalls: RefCell::new(VecDeque::with_capacity(STALLS_KEPT)),
        }
    }

    /// The heartbeat ran at `now`.
    fn beat(&self, now: Instant) {
        let last = self.last.replace(now);
        if now.saturating_duration_since(last) > DROP_TOLERANCE {
            let mut s = self.stalls.borrow_mut();
            if s.len() == STALLS_KEPT {
                s.pop_front();
            }
            s.push_back(Stall {
                from: last,
                to: now,
            });
        }
    }

    /// How many of the dropped iteration indexes `range` were scheduled while this worker was
    /// stalled, counting a stall still in progress at `now` (after a pause, VUs may run before
    /// the heartbeat does). `index_at` maps an instant to the first index scheduled at or
    /// after it.
    fn stalled_share(
        &self,
        range: Range<u64>,
        now: Instant,
        index_at: impl Fn(Instant) -> u64,
    ) -> u64 {
        let last = self.last.get();
        let current = (now.saturating_duration_since(last) > DROP_TOLERANCE).then_some(Stall {
            from: last,
            to: now,
        });
        let stalls = self.stalls.borrow();
        stalls
            .iter()
            .chain(current.iter())
            .map(|s| {
                let lo = index_at(s.from).max(range.start);
                let hi = index_at(s.to).min(range.end);
                hi.saturating_sub(lo)
            })
            .sum()
    }
}

/// Live thresholds: closes each timeline interval on time even when this worker records
/// nothing in the next one (a quarter interval late at most).
async fn close_intervals(ctx: Rc<WorkerCtx>) {
    let every = (ctx.shared.plan.timeline_interval / 4)
        .clamp(Duration::from_millis(10), Duration::from_millis(250));
    loop {
        tokio::time::sleep(every).await;
        if let Some(t) = ctx.stats.borrow_mut().timeline.as_mut() {
            t.tick(Instant::now());
        }
    }
}

async fn heartbeat(ctx: Rc<WorkerCtx>) {
    loop {
        tokio::time::sleep(BEAT).await;
        ctx.pulse.beat(Instant::now());
    }
}

fn record_drops(ctx: &WorkerCtx, sc: usize, d: &Drops) {
    ctx.stats.borrow_mut().dropped(sc, d);
    if let Some(rec) = ctx.recorder.borrow().as_ref() {
        rec.dropped(sc, d);
    }
    ctx.shared.live[ctx.worker].dropped(d);
}

/// Iteration `i` of an open-model scenario was claimed at `now`, too late. Drops it and, in one
/// step, every unclaimed iteration scheduled up to [`CATCH_UP`] ago, each counted by cause:
/// scheduled while this worker was stalled (the generator), otherwise no free VU.
fn drop_late(ctx: &WorkerCtx, sc: usize, start: f64, stages: &[Stage], i: u64, now: Instant) {
    let shared = &ctx.shared;
    // Indexes here are this segment's (claims); the schedule's are global.
    let stripe = &shared.plan.stripe;
    let index_at = |t: Instant| {
        stripe.scale(arrivals_before(
            start,
            stages,
            t.saturating_duration_since(shared.start),
        ))
    };
    let since_start = now.saturating_duration_since(shared.start);
    let upto = stripe
        .scale(arrivals_before(
            start,
            stages,
            since_start.saturating_sub(CATCH_UP),
        ))
        .clamp(i + 1, shared.arrivals[sc].max(i + 1));
    // Iterations other VUs claimed meanwhile are theirs to judge; the ones this jump skips over
    // are this VU's to count.
    let prev = shared.claims[sc].fetch_max(upto, Ordering::Relaxed);
    let mut total = 1;
    let mut generator = ctx.pulse.stalled_share(i..i + 1, now, index_at);
    if prev < upto {
        total += upto - prev;
        generator += ctx.pulse.stalled_share(prev..upto, now, index_at);
    }
    record_drops(
        ctx,
        sc,
        &Drops {
            no_vu: total - generator,
            generator,
        },
    );
}

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
    let closed = Ticket {
        scheduled: None,
        lag: Duration::ZERO,
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
            Some(closed)
        }
        Schedule::SharedIterations { iterations, .. } => {
            if shared.claims[idx].fetch_add(1, Ordering::Relaxed) >= *iterations {
                return None;
            }
            set_active(active, true);
            Some(closed)
        }
        Schedule::RampingVus { start, stages } => loop {
            let elapsed = shared.start.elapsed();
            if vu_target(*start, stages, elapsed) > vu as f64 {
                set_active(active, true);
                return Some(closed);
            }
            set_active(active, false);
            let wake = next_active(*start, stages, vu as f64, elapsed)?;
            if !sleep_until_or_stop(shared.at(wake), phase).await {
                return None;
            }
            consume_budget().await;
        },
        Schedule::ArrivalRate { start, stages, .. } => loop {
            if shared.stopping() {
                return None;
            }
            let i = shared.claims[idx].fetch_add(1, Ordering::Relaxed);
            if i >= shared.arrivals[idx] {
                return None;
            }
            // The segment's i-th iteration is the schedule's global iteration nth(i): its
            // intended time (and so its latency) is the single-machine one.
            let at = arrival_time(*start, stages, shared.plan.stripe.nth(i))?;
            let Some(t) = shared.at(at) else {
                // Scheduled beyond what the clock can represent: never due.
                sleep_until_or_stop(None, phase).await;
                return None;
            };
            let mut now = Instant::now();
            if now.saturating_duration_since(t) > DROP_TOLERANCE {
                drop_late(ctx, idx, *start, stages, i, now);
                consume_budget().await;
                continue;
            }
            if t > now {
                let on_time = match &ctx.pacer {
                    Some(p) => tokio::select! {
                        _ = p.sleep_until(t.into_std()) => true,
                        _ = phase.wait_for(|p| *p != Phase::Running) => false,
                    },
                    None => sleep_until_or_stop(Some(t), phase).await,
                };
                if !on_time {
                    return None;
                }
                now = Instant::now();
                if now.saturating_duration_since(t) > DROP_TOLERANCE {
                    // This VU was free and waiting for the iteration: only the generator
                    // itself can have woken it this late.
                    let d = Drops {
                        no_vu: 0,
                        generator: 1,
                    };
                    record_drops(ctx, idx, &d);
                    continue;
                }
            }
            set_active(active, true);
            return Some(Ticket {
                scheduled: Some(t),
                lag: now.saturating_duration_since(t),
            });
        },
    }
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

/// The HTTP/2 request head and body (the URI is absolute: scheme and authority become
/// pseudo-headers).
fn build_request(r: &RequestPlan, vars: &Vars) -> Option<(Request<()>, Bytes)> {
    let body = match &r.body {
        Some(BodyPlan::Static(b)) => b.clone(),
        Some(BodyPlan::Dynamic(t)) => Bytes::from(t.render(vars)),
        None => Bytes::new(),
    };
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
    let mut req = Request::new(());
    *req.method_mut() = r.method.clone();
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    h.reserve(r.headers.len());
    for (name, v) in &r.headers {
        h.insert(name.clone(), header_value(v, vars)?);
    }
    Some((req, body))
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
    // A scenario end too far away for the clock (checked, never an overflow) means no cut.
    let end_cut = scenario_end.and_then(|e| e.checked_add(shared.plan.graceful_stop));
    let hard = match (shared.hard_deadline(), end_cut) {
        (Some(h), Some(e)) => Some(h.min(e)),
        (h, e) => h.or(e),
    };
    let start = scheduled.unwrap_or_else(Instant::now);
    match scheduled {
        // The scheduled start may be past: the request goes out now.
        Some(_) => ctx.busy.mark_now(),
        None => ctx.busy.mark(start.into_std()),
    }
    shared.live[ctx.worker].start();
    if let Some(rec) = ctx.recorder.borrow().as_ref() {
        rec.start(r.id);
    }
    // Sampled requests only: unsampled ones (all of them with tracing off) skip this. A request
    // with its own traceparent is never sampled: the user's header goes alone.
    let span = vu
        .tracing
        .as_mut()
        .filter(|_| !r.own_traceparent)
        .and_then(VuTracing::next);
    let started_wall = span.map(|_| std::time::SystemTime::now());
    let (outcome, bytes_out) = if shared.plan.client.http2 {
        // A sampled request's traceparent rides as this request's one extra field.
        vu.h2_extra.clear();
        if let Some(sc) = &span {
            put_field(&mut vu.h2_extra, TRACEPARENT.as_bytes(), &sc.traceparent());
        }
        // A request that never varies was encoded at plan time; others are encoded now.
        let built = match (&r.h2_head, &r.body) {
            (Some(head), Some(BodyPlan::Static(b))) => Some((&head[..], Some(r.id), b.clone())),
            (Some(head), _) => Some((&head[..], Some(r.id), Bytes::new())),
            (None, _) => build_request(r, &vu.vars).map(|(req, body)| {
                vu.h2_head.clear();
                encode_head(&mut vu.h2_head, req.method(), req.uri(), req.headers());
                (&vu.h2_head[..], None, body)
            }),
        };
        match built {
            Some((head, fixed, body)) => {
                let req = H2Request {
                    head,
                    fixed,
                    extra: &vu.h2_extra,
                    body: &body,
                    idempotent: r.method.is_idempotent(),
                    head_request: r.head,
                    keep_body: r.keep_body,
                    keep_headers: r.keep_headers,
                };
                (
                    vu.client
                        .send_h2(r.target, req, hard, Cut::new(ctx, vu.cut_slot, hard))
                        .await,
                    body.len() as u64,
                )
            }
            None => (Outcome::failed(ErrorKind::Protocol), 0),
        }
    } else {
        let prepared = if let Some(w) = &r.wire {
            Some(static_body_len(r).unwrap_or(w.len() as u64))
        } else {
            render_wire(r, &vu.vars, &mut vu.scratch)
        };
        match prepared {
            Some(len) => {
                // A sampled request's traceparent is spliced into a copy of the bytes (the
                // pre-rendered ones stay as they are).
                let mut spliced = false;
                if let (Some(sc), Some(t)) = (&span, vu.tracing.as_mut()) {
                    let wire = r.wire.as_deref().unwrap_or(&vu.scratch);
                    spliced = splice_header(wire, TRACEPARENT, &sc.traceparent(), &mut t.buf);
                }
                let wire = match &vu.tracing {
                    Some(t) if spliced => &t.buf[..],
                    _ => r.wire.as_deref().unwrap_or(&vu.scratch),
                };
                let req = H1Request {
                    wire,
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
        }
    };
    let done = Instant::now();
    ctx.busy.mark(done.into_std());
    let sample = Sample {
        req: r.id,
        latency: done.saturating_duration_since(start),
        status: outcome.status,
        error: outcome.error,
        bytes_in: outcome.bytes_in,
        bytes_out,
        wire: outcome.wire,
        reconnects: outcome.reconnects,
    };
    ctx.stats.borrow_mut().record(&sample);
    shared.live[ctx.worker].record(&sample);
    if let Some(rec) = ctx.recorder.borrow_mut().as_mut() {
        rec.finish(&sample);
    }
    if let Some(sc) = span {
        sampled(ctx, r, vu, &sample, sc, started_wall);
    }
    if outcome.error == Some(ErrorKind::TooManyOpenFiles)
        && let Some(pause) = vu.client.fd_backoff()
    {
        // Out of file descriptors (logged once by the connector): pause this VU rather than
        // let it spin on failures that never reach the server; a stop ends the pause.
        sleep_until_or_stop(
            Instant::now().checked_add(pause),
            &mut shared.phase.subscribe(),
        )
        .await;
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

/// What a sampled request leaves behind: an exemplar candidate and, when spans are exported,
/// its span record. Off the unsampled path.
#[inline(never)]
fn sampled(
    ctx: &WorkerCtx,
    r: &RequestPlan,
    vu: &Vu,
    sample: &Sample,
    sc: SpanContext,
    started: Option<std::time::SystemTime>,
) {
    let end = std::time::SystemTime::now();
    if let Some(rec) = ctx.recorder.borrow().as_ref() {
        rec.exemplar(sample, sc.trace_id, sc.span_id, end);
    }
    if let Some(sink) = ctx.shared.spans.get() {
        let url = match &r.url {
            UrlPlan::Static(_) => None,
            UrlPlan::Dynamic { template, .. } => Some(template.render(&vu.vars)),
        };
        sink.push(SpanRecord {
            ctx: sc,
            req: Some(r.id),
            scenario: ctx.shared.plan.requests[r.id].scenario,
            start: started.unwrap_or(end),
            end,
            status: sample.status,
            error: sample.error,
            url,
        });
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

    /// Shared state for a one-worker run of `toml` (a scenario file), started now.
    fn shared_for(toml: &str) -> Arc<RunShared> {
        shared_with(toml, |_| {})
    }

    /// [`shared_for`], with the plan edited first (to reach what validation refuses).
    fn shared_with(toml: &str, edit: impl FnOnce(&mut Plan)) -> Arc<RunShared> {
        let mut plan = crate::test_support::plan_of(&format!("[run]\nworkers = 1\n{toml}"));
        edit(&mut plan);
        let plan = Arc::new(plan);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let client = Arc::new(rt.block_on(ClientShared::new(&plan.targets, &plan.client)));
        let vus = Arc::new(VuCounts::new(plan.workers, plan.scenarios.len()));
        RunShared::new(plan, client, None, vus, Instant::now(), Arc::default())
    }

    /// An open-model scenario at `rate`/s for `secs` with `vus` VUs against `addr`; the rate is
    /// set past validation (which refuses absurd rates) to show the engine copes anyway.
    fn absurd_rate(addr: std::net::SocketAddr, rate: f64, secs: f64, vus: u64) -> Arc<RunShared> {
        shared_with(
            &format!(
                r#"
                [[scenarios]]
                executor = "constant-arrival-rate"
                rate = 100
                duration = "1s"
                vus = {vus}
                requests = [{{ url = "http://{addr}/" }}]
                "#
            ),
            |p| {
                p.scenarios[0].schedule = Schedule::ArrivalRate {
                    start: rate,
                    stages: vec![Stage::new(Duration::from_secs_f64(secs), rate)],
                    vus,
                }
            },
        )
    }

    #[test]
    fn a_huge_rate_ends_on_time_and_accounts_for_every_iteration() {
        let t = crate::target::spawn_background(([127, 0, 0, 1], 0).into()).expect("target");
        // 10¹² iterations per second for 400 ms: 4·10¹¹ scheduled, a few thousand can run.
        let shared = absurd_rate(t.addr, 1e12, 0.4, 20);
        let began = std::time::Instant::now();
        let mut stats = run_worker(0, shared.clone()).expect("worker");
        let took = began.elapsed();
        assert!(took < Duration::from_secs(3), "took {took:?}");
        // Requests and iterations are recorded per interval; the whole-run counts are their sum.
        stats.take_timeline();
        let sc = &stats.scenarios[0];
        assert!(sc.iterations > 0, "some iterations ran");
        assert_eq!(sc.iterations + sc.dropped.total(), 400_000_000_000);
        let served = t.counters.requests.load(Ordering::Relaxed);
        assert_eq!(stats.requests[0].requests, served);
        assert_eq!(shared.drops(), sc.dropped, "live counters agree");
    }

    #[test]
    fn a_huge_rate_stops_when_asked() {
        let t = crate::target::spawn_background(([127, 0, 0, 1], 0).into()).expect("target");
        let shared = absurd_rate(t.addr, 1e15, 3600.0, 5);
        let s2 = shared.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            s2.stop(Duration::from_secs(1));
        });
        let began = std::time::Instant::now();
        let stats = run_worker(0, shared).expect("worker");
        stopper.join().expect("stopper");
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "{:?}",
            began.elapsed()
        );
        assert!(stats.scenarios[0].dropped.total() > 1_000_000_000);
    }

    #[test]
    fn a_panicking_vu_fails_the_worker_and_stops_the_run() {
        let shared = shared_for(
            r#"
            [[scenarios]]
            name = "boom"
            executor = "constant-vus"
            vus = 4
            duration = "1h"
            requests = [{ url = "http://127.0.0.1:9/" }]
            "#,
        );
        let began = std::time::Instant::now();
        let r = run_worker_with(
            0,
            shared.clone(),
            |ctx: Rc<WorkerCtx>, _sc, vu| async move {
                if vu == 2 {
                    panic!("injected failure in VU {vu}");
                }
                // The others run until the run stops.
                let mut phase = ctx.shared.phase.subscribe();
                let _ = phase.wait_for(|p| *p != Phase::Running).await;
            },
        );
        assert!(began.elapsed() < Duration::from_secs(5));
        match r {
            Err(WorkerError::Panicked(p)) => {
                assert_eq!(p.task, "VU 2 of scenario \"boom\"");
                assert_eq!(p.message, "injected failure in VU 2");
                assert_eq!(
                    WorkerError::Panicked(p).to_string(),
                    "VU 2 of scenario \"boom\" panicked: injected failure in VU 2"
                );
            }
            other => panic!("expected a panic error, got {other:?}"),
        }
        assert!(shared.stopping(), "the panic stopped the run");
    }

    #[test]
    fn drops_inside_a_stall_are_the_generators() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let p = Pulse::new(t0);
        // Beats every 10 ms, then nothing from 100 ms to 400 ms (paused), then on time again.
        for n in (10..=100).step_by(10) {
            p.beat(ms(n));
        }
        p.beat(ms(400));
        p.beat(ms(410));
        // One iteration per ms: index n is scheduled at n ms.
        let index_at = |t: Instant| t.saturating_duration_since(t0).as_millis() as u64;
        assert_eq!(p.stalled_share(0..100, ms(420), index_at), 0);
        assert_eq!(p.stalled_share(100..400, ms(420), index_at), 300);
        assert_eq!(p.stalled_share(50..150, ms(420), index_at), 50);
        assert_eq!(p.stalled_share(400..410, ms(420), index_at), 0);
        // A stall in progress (no beat since 410 ms) counts before the heartbeat sees it.
        assert_eq!(p.stalled_share(420..600, ms(700), index_at), 180);
        assert_eq!(p.stalled_share(420..600, ms(450), index_at), 0);
        // Gaps within the tolerance are jitter, not stalls.
        let q = Pulse::new(t0);
        q.beat(ms(45));
        q.beat(ms(90));
        assert_eq!(q.stalled_share(0..90, ms(95), index_at), 0);
    }
}
