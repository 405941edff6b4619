//! A distributed run, from one generator's point of view: which segment it runs (flags and
//! the Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`), the ready barrier and common start
//! through [`crate::distributed::coordinator`], the run itself ([`crate::run`]) and, on segment 0, the merge
//! of every segment's summary ([`crate::distributed::merge`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::{Config, DistFlags};
use crate::distributed::coordinator::{Client, ClientError, Hello, RefusalKind, Server};
use crate::distributed::merge::{Part, merge};
use crate::report::summary::Summary;
use crate::run::{Coordination, Display, RunError, execute_coordinated};
use crate::scenario::plan::Plan;
use crate::scenario::segment::{Ratio, Sequence, Stripe};

/// Where the coordinator listens by default.
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:7070";
/// How long the barrier waits by default.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Environment variables that give the segment index, in order.
pub(crate) const INDEX_ENV: [&str; 2] = ["JOB_COMPLETION_INDEX", "STAMPEDE_SEGMENT_INDEX"];

/// Why a distributed run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DistError {
    /// Bad segment flags, or segments that disagree (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The barrier failed (timeout, abort) or the coordinator is unreachable (exit 1).
    #[error("{0}")]
    Failed(String),
    /// The run itself failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl From<ClientError> for DistError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refused(r) if r.kind == RefusalKind::Mismatch => {
                DistError::Usage(r.message)
            }
            e => DistError::Failed(e.to_string()),
        }
    }
}

/// What a generator ends with.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Its own summary.
    pub local: Summary,
    /// On the coordinator: the merged summary of every segment.
    pub merged: Option<Summary>,
}

/// The segment this generator runs, from the flags (`env` reads the environment).
pub(crate) fn resolve(
    flags: &DistFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Stripe, String> {
    if let Some(n) = flags.segment_count {
        let seq = Sequence::equal(n).map_err(|e| format!("--segment-count {n}: {e}"))?;
        let (index, from) = match flags.segment_index {
            Some(i) => (i.to_string(), "--segment-index".to_string()),
            None => INDEX_ENV
                .iter()
                .find_map(|k| env(k).filter(|v| !v.trim().is_empty()).map(|v| (v, k.to_string())))
                .ok_or_else(|| {
                    format!(
                        "--segment-count {n} needs the segment index: --segment-index I, or the environment variable JOB_COMPLETION_INDEX or STAMPEDE_SEGMENT_INDEX"
                    )
                })?,
        };
        let i: u64 = index
            .trim()
            .parse()
            .map_err(|_| format!("{from}: {index:?} is not a segment index (0 to {})", n - 1))?;
        if i >= n {
            return Err(format!(
                "{from}: segment index {i} is out of range: --segment-count {n} has segments 0 to {}",
                n - 1
            ));
        }
        return Stripe::new(&seq, i as usize).map_err(|e| format!("{from}: {e}"));
    }
    let Some(seg) = &flags.segment else {
        return Ok(Stripe::whole());
    };
    let (from, to) = seg
        .split_once(':')
        .ok_or_else(|| format!("--segment {seg:?}: expected FROM:TO, e.g. 0:1/3"))?;
    let from = Ratio::parse(from).map_err(|e| format!("--segment: {e}"))?;
    let to = Ratio::parse(to).map_err(|e| format!("--segment: {e}"))?;
    let seq = match &flags.segment_sequence {
        Some(s) => Sequence::parse(s).map_err(|e| format!("--segment-sequence: {e}"))?,
        None => Sequence::around(from, to).map_err(|e| format!("--segment {seg}: {e}"))?,
    };
    let i = seq.position(from, to).ok_or_else(|| {
        format!("--segment {seg} is not a segment of --segment-sequence {seq} (FROM and TO must be neighbours in it)")
    })?;
    Stripe::new(&seq, i).map_err(|e| format!("--segment {seg}: {e}"))
}

/// What every segment must agree on: scenarios, request defaults, thresholds, the capacity
/// search's settings and whether this is a search (`search`: `find-max`, or a
/// `capacity-search` executor). The hash covers it all (FNV-1a 64 of the JSON); the settings
/// map each setting's key (`scenarios[0].duration`) to the hash of its value, so a mismatch
/// names the key. Values are hashed, never sent or printed; secret-bearing settings (headers,
/// bodies, credentials) are only in the whole hash, never hashed one by one.
pub(crate) fn scenario_hash(cfg: &Config, search: bool) -> Fingerprint {
    let value = serde_json::json!({
        "scenarios": &cfg.scenarios,
        "defaults": &cfg.defaults,
        "thresholds": &cfg.thresholds,
        "capacity": &cfg.capacity,
        "find-max": search,
    });
    let mut settings = BTreeMap::new();
    flatten(&value, String::new(), usize::MAX, &mut settings);
    if settings.len() > MAX_SETTINGS {
        settings.clear();
        flatten(&value, String::new(), 3, &mut settings);
    }
    Fingerprint {
        hash: fnv(&value.to_string()),
        settings,
    }
}

/// At most this many settings are hashed one by one; a larger configuration is compared by
/// section (`scenarios[0].requests`).
const MAX_SETTINGS: usize = 2_000;

/// A configuration as [`scenario_hash`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// The hash of everything.
    pub hash: String,
    /// Setting key → the hash of its value (secret-bearing settings left out).
    pub settings: BTreeMap<String, String>,
}

/// FNV-1a 64 of `text`, as hex.
fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Whether a key may carry a secret (its value is never hashed on its own).
fn secret_bearing(key: &str) -> bool {
    const WORDS: [&str; 11] = [
        "header",
        "body",
        "json",
        "query",
        "variables",
        "password",
        "token",
        "secret",
        "auth",
        "cookie",
        "key",
    ];
    let key = key.to_ascii_lowercase();
    WORDS.iter().any(|w| key.contains(w))
}

/// Adds `v`'s settings under `key` to `out`: leaves (or, at `depth` 0, whole sections) with
/// the hash of their value; URLs without their userinfo.
fn flatten(v: &serde_json::Value, key: String, depth: usize, out: &mut BTreeMap<String, String>) {
    use serde_json::Value;
    if secret_bearing(&key) {
        return;
    }
    match v {
        Value::Object(m) if depth > 0 => {
            for (k, v) in m {
                let sub = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                flatten(v, sub, depth - 1, out);
            }
        }
        Value::Array(a) if depth > 0 => {
            for (i, v) in a.iter().enumerate() {
                flatten(v, format!("{key}[{i}]"), depth - 1, out);
            }
            out.insert(format!("{key} (how many)"), fnv(&a.len().to_string()));
        }
        Value::String(s) if s.contains('@') => {
            out.insert(key, fnv(&crate::config::redact_url(s)));
        }
        v => {
            out.insert(key, fnv(&v.to_string()));
        }
    }
}

/// A flag set by Ctrl-C/SIGTERM while the coordinator waits for the segments (so it can tell
/// them before it exits); during the run, the run's own handling takes over.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let _ = std::thread::Builder::new()
        .name("stampede-barrier-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            // Created inside the runtime: the SIGTERM listener needs its reactor.
            rt.block_on(async { crate::run::Signals::new().next().await });
            f.store(true, Ordering::Relaxed);
        });
    flag
}

/// Runs this generator's segment of `plan` (already [`Plan::apply_segment`]ed) with the others.
pub(crate) fn run(
    mut plan: Plan,
    hash: Fingerprint,
    flags: &DistFlags,
    display: Display,
) -> Result<Outcome, DistError> {
    let hello = hello_of(plan.stripe.index as u32, plan.stripe.count as u32, hash);
    let (index, count) = (hello.index, hello.count);
    let timeout = timeout_of(flags);
    let thresholds = plan.thresholds.clone();
    let collect_limit = plan.graceful_stop + Duration::from_secs(30);
    if index != 0 {
        let client = client_of(flags, index)?;
        let go = client.ready(&hello, timeout)?;
        plan.run_id = go.run_id.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let coord = Coordination {
            start_at: Some(go.start()),
            abort: Some(client.watch(stop.clone())),
            on_interrupt: None,
            interrupted: None,
        };
        let r = execute_coordinated(plan, display, coord);
        stop.store(true, Ordering::Relaxed);
        return match r {
            Ok(local) => {
                // An abort_on_fail threshold stopped this segment: it stops the whole test.
                if let Some(a) = &local.aborted {
                    client.abort(&format!(
                        "segment {index}: threshold {} crossed at {:.1}s (abort_on_fail)",
                        a.threshold, a.at_s
                    ));
                }
                let v = serde_json::to_value(&local).unwrap_or_default();
                if let Err(e) = client.done(&v, Duration::from_secs(10)) {
                    tracing::warn!("{e}");
                }
                Ok(Outcome {
                    local,
                    merged: None,
                })
            }
            Err(e) => {
                client.abort(&e.to_string());
                Err(e.into())
            }
        };
    }
    let (server, go, early) = open_barrier(hello, plan.run_id.clone(), flags, timeout, display)?;
    plan.run_id = go.run_id.clone();
    let server = Arc::new(server);
    let local = run_own(&server, plan, display, go.start(), &early)?;
    if let Some(a) = &local.aborted {
        // The coordinator's own abort_on_fail threshold crossed: stop every segment.
        server.abort(&format!(
            "segment 0: threshold {} crossed at {:.1}s (abort_on_fail)",
            a.threshold, a.at_s
        ));
    }
    let parts = parts_of(&local, server.collect(collect_limit));
    let merged =
        merge(&parts, &thresholds, Some(count)).map_err(|e| DistError::Failed(e.to_string()))?;
    if let Ok(s) = Arc::try_unwrap(server) {
        s.shutdown(Duration::ZERO);
    }
    Ok(Outcome {
        local,
        merged: Some(merged),
    })
}

/// What segment `index` of `count` tells the coordinator.
fn hello_of(index: u32, count: u32, hash: Fingerprint) -> Hello {
    Hello {
        index,
        count,
        version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_hash: hash.hash,
        settings: hash.settings,
    }
}

/// How long to wait for the barrier (and, on a segment, for the coordinator).
fn timeout_of(flags: &DistFlags) -> Duration {
    flags
        .coordinator_timeout
        .map_or(DEFAULT_TIMEOUT, |d| d.get())
}

/// Segment `index` (≥ 1): its client of the coordinator given by `--coordinator`.
fn client_of(flags: &DistFlags, index: u32) -> Result<Client, DistError> {
    let coordinator = flags.coordinator.clone().ok_or_else(|| {
        DistError::Usage(format!(
            "segment {index} needs --coordinator HOST:PORT (or STAMPEDE_COORDINATOR): the address of segment 0"
        ))
    })?;
    Ok(Client { coordinator, index })
}

/// Segment 0: listens for the other segments and waits for all of them at the ready barrier.
fn open_barrier(
    hello: Hello,
    run_id: String,
    flags: &DistFlags,
    timeout: Duration,
    display: Display,
) -> Result<(Server, crate::distributed::coordinator::Go, Arc<AtomicBool>), DistError> {
    let count = hello.count;
    let listen = match flags.coordinator_listen {
        Some(a) => a,
        None => DEFAULT_LISTEN
            .parse::<SocketAddr>()
            .map_err(|e| DistError::Usage(e.to_string()))?,
    };
    let server = Server::start(listen, hello, run_id).map_err(|e| {
        DistError::Failed(format!(
            "the coordinator cannot listen on {listen} (--coordinator-listen): {e}"
        ))
    })?;
    if display.banner {
        eprintln!(
            "stampede coordinator listening on {} for {} segments",
            server.addr, count
        );
    }
    let interrupted = interrupt_flag();
    match server.wait_ready(timeout, || {
        interrupted
            .load(Ordering::Relaxed)
            .then(|| "the coordinator was interrupted before the start".to_string())
    }) {
        // The barrier's listener keeps listening: a signal before the run listens reaches it.
        Ok(g) => Ok((server, g, interrupted)),
        Err(r) => {
            // Late segments still learn the outcome for a moment.
            server.shutdown(Duration::from_secs(2));
            Err(match r.kind {
                RefusalKind::Mismatch => DistError::Usage(r.message),
                RefusalKind::Failed => DistError::Failed(r.message),
            })
        }
    }
}

/// Relays the coordinator's abort (any segment's, or its own) to the coordinator's run.
struct Relay {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Relay {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// The coordinator's own run (or step), starting at `start` with the others: an abort from
/// any segment stops it, its Ctrl-C stops everyone, and its failure stops everyone too.
fn run_own(
    server: &Arc<Server>,
    plan: Plan,
    display: Display,
    start: std::time::SystemTime,
    early: &Arc<AtomicBool>,
) -> Result<Summary, DistError> {
    let (coord, relay) = coordination(server, start, early);
    let r = execute_coordinated(plan, display, coord);
    relay.stop();
    r.map_err(|e| {
        server.abort(&format!("the coordinator failed: {e}"));
        // Long enough for every segment's next poll to hear it.
        std::thread::sleep(crate::distributed::coordinator::POLL * 3);
        e.into()
    })
}

/// The coordination of the coordinator's own run (or step) starting at `start`: an abort from
/// any segment stops it, and its Ctrl-C stops everyone.
fn coordination(
    server: &Arc<Server>,
    start: std::time::SystemTime,
    early: &Arc<AtomicBool>,
) -> (Coordination, Relay) {
    let (tx, rx) = tokio::sync::watch::channel(None);
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (server, stop) = (server.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = server.aborted() {
                    tx.send_replace(Some(r));
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let s2 = server.clone();
    let coord = Coordination {
        start_at: Some(start),
        abort: Some(rx),
        on_interrupt: Some(Box::new(move || {
            s2.abort("the coordinator was interrupted")
        })),
        interrupted: Some(early.clone()),
    };
    (coord, Relay { stop, thread })
}

/// The parts of one round's summaries (the coordinator's own first), each named.
fn parts_of(
    local: &Summary,
    others: std::collections::BTreeMap<u32, serde_json::Value>,
) -> Vec<Part> {
    let mut parts = Vec::new();
    let mine = serde_json::to_value(local).unwrap_or_default();
    if let Ok(p) = Part::from_value("segment 0", mine) {
        parts.push(p);
    }
    for (i, v) in others {
        match Part::from_value(&format!("segment {i}"), v) {
            Ok(p) => parts.push(p),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    parts
}

/// A multi-step distributed run (a capacity search) from the coordinator's side: the barrier
/// once, then each step run by every segment at once and merged here.
pub(crate) struct Steps {
    server: Arc<Server>,
    /// Set by a Ctrl-C/SIGTERM the barrier's listener caught (see `Coordination::interrupted`).
    early: Arc<AtomicBool>,
    count: u32,
    run_id: String,
    /// The coordinator's own summary of the last step it ran.
    last_local: std::cell::RefCell<Option<Summary>>,
}

impl Steps {
    /// Segment 0 of `count`: listens and waits for every segment to be ready.
    pub(crate) fn open(
        count: u32,
        run_id: String,
        hash: Fingerprint,
        flags: &DistFlags,
        display: Display,
    ) -> Result<Steps, DistError> {
        let hello = hello_of(0, count, hash);
        let (server, go, early) = open_barrier(hello, run_id, flags, timeout_of(flags), display)?;
        Ok(Steps {
            server: Arc::new(server),
            early,
            count,
            run_id: go.run_id,
            last_local: std::cell::RefCell::new(None),
        })
    }

    /// The run id every segment shares.
    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Runs one step at the global `rate`: publishes it, runs this generator's share (`plan`,
    /// already segmented) at the common start, and merges every segment's summary of the step
    /// (thresholds judged on the merge). A segment missing from the merge fails the step.
    pub(crate) fn step(&self, mut plan: Plan, rate: f64) -> Result<Summary, DistError> {
        plan.run_id = self.run_id.clone();
        let thresholds = plan.thresholds.clone();
        let collect_limit = plan.graceful_stop + Duration::from_secs(30);
        let round = self.server.publish(Some(rate), None);
        // Steps print nothing of their own (as on one generator): the search reports them.
        let local = run_own(
            &self.server,
            plan,
            Display::default(),
            round.start(),
            &self.early,
        )?;
        let others = self.server.collect_round(collect_limit, round.round);
        let parts = parts_of(&local, others);
        *self.last_local.borrow_mut() = Some(local);
        let merged = merge(&parts, &thresholds, Some(self.count))
            .map_err(|e| DistError::Failed(e.to_string()))?;
        if let Some(d) = merged
            .distributed
            .as_ref()
            .filter(|d| !d.missing.is_empty())
        {
            let missing: Vec<String> = d.missing.iter().map(u32::to_string).collect();
            let reason = format!(
                "segment {} sent no summary of step {} ({rate}/s): the search cannot judge the step",
                missing.join(", "),
                round.round
            );
            self.server.abort(&reason);
            return Err(DistError::Failed(reason));
        }
        Ok(merged)
    }

    /// Ends the search: segments waiting for the next step learn it is over, and exit.
    /// Returns the coordinator's own summary of the last step it ran.
    pub(crate) fn close(self, reason: &str) -> Option<Summary> {
        self.server.publish(None, Some(reason.to_string()));
        // Everyone asks for the next step within a moment of posting their summary.
        std::thread::sleep(crate::distributed::coordinator::POLL * 5);
        if let Ok(s) = Arc::try_unwrap(self.server) {
            s.shutdown(Duration::ZERO);
        }
        self.last_local.into_inner()
    }
}

/// How a segment's part in a multi-step run ended.
#[derive(Debug)]
pub(crate) struct Followed {
    /// Its summary of the last step it ran.
    pub last: Option<Summary>,
    /// Why the coordinator ended the search (`None`: the coordinator stopped the run, e.g.
    /// Ctrl-C or a failure elsewhere).
    pub stopped: Option<String>,
    /// This segment was interrupted (Ctrl-C/SIGTERM).
    pub interrupted: bool,
    /// Why the coordinator stopped the run, when it did (an abort).
    pub aborted: Option<String>,
}

/// A segment (index ≥ 1) of a multi-step run: the barrier, then every step the coordinator
/// publishes, until it says the search is over. `run_step(rate, coordination, run id)` runs
/// this segment's share of one step at the global `rate`.
pub(crate) fn follow(
    stripe: &Stripe,
    hash: Fingerprint,
    flags: &DistFlags,
    mut run_step: impl FnMut(f64, Coordination, &str) -> Result<Summary, RunError>,
) -> Result<Followed, DistError> {
    let hello = hello_of(stripe.index as u32, stripe.count as u32, hash);
    let client = client_of(flags, hello.index)?;
    let timeout = timeout_of(flags);
    let go = client.ready(&hello, timeout)?;
    let mut last: Option<Summary> = None;
    let mut round = 0;
    loop {
        let r = match client.next_round(round, timeout) {
            Ok(r) => r,
            // Stopped by the coordinator after a step: this segment's part is over.
            Err(ClientError::Refused(r)) if last.is_some() => {
                return Ok(Followed {
                    last,
                    stopped: None,
                    interrupted: false,
                    aborted: Some(r.message),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let Some(rate) = r.rate.filter(|_| r.stop.is_none()) else {
            return Ok(Followed {
                last,
                stopped: r.stop,
                interrupted: false,
                aborted: None,
            });
        };
        let stop = Arc::new(AtomicBool::new(false));
        let coord = Coordination {
            start_at: Some(r.start()),
            abort: Some(client.watch(stop.clone())),
            on_interrupt: None,
            interrupted: None,
        };
        let res = run_step(rate, coord, &go.run_id);
        stop.store(true, Ordering::Relaxed);
        let local = match res {
            Ok(s) => s,
            Err(e) => {
                client.abort(&e.to_string());
                return Err(e.into());
            }
        };
        let v = serde_json::to_value(&local).unwrap_or_default();
        if let Err(e) = client.done_round(&v, r.round, Duration::from_secs(10)) {
            tracing::warn!("{e}");
        }
        let interrupted = local.interrupted;
        last = Some(local);
        if interrupted {
            client.abort("interrupted");
            return Ok(Followed {
                last,
                stopped: None,
                interrupted: true,
                aborted: None,
            });
        }
        round = r.round + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(count: Option<u64>, index: Option<u64>) -> DistFlags {
        DistFlags {
            segment_count: count,
            segment_index: index,
            ..DistFlags::default()
        }
    }

    #[test]
    fn the_fingerprint_names_settings_and_never_hashes_a_secret_alone() {
        let print = |vus: u32, header: &str, pw: &str| {
            let text = format!(
                "[[scenarios]]\nvus = {vus}\nduration = \"1s\"\nheaders = {{ X-Key = \"{header}\" }}\nrequests = [{{ url = \"http://u:{pw}@127.0.0.1:1/\" }}]\n"
            );
            let cfg =
                crate::config::load_str("t.toml", &text, &crate::config::Overrides::default())
                    .unwrap_or_else(|e| panic!("{e}"));
            scenario_hash(&cfg, false)
        };
        let base = print(1, "a", "pw1");
        assert_eq!(base, print(1, "a", "pw1"), "deterministic");
        let vus = print(2, "a", "pw1");
        assert_ne!(vus.hash, base.hash);
        let differ: Vec<&String> = base
            .settings
            .keys()
            .filter(|k| base.settings.get(*k) != vus.settings.get(*k))
            .collect();
        assert_eq!(differ, ["scenarios[0].vus"]);
        // A header value or a URL password changes only the whole hash.
        for other in [print(1, "b", "pw1"), print(1, "a", "pw2")] {
            assert_ne!(other.hash, base.hash);
            assert_eq!(other.settings, base.settings);
        }
        assert!(
            !base.settings.keys().any(|k| k.contains("headers")),
            "{:?}",
            base.settings.keys()
        );
    }

    #[test]
    fn the_index_comes_from_the_flag_then_the_job_then_stampede() {
        let none = |_: &str| None;
        let job = |k: &str| (k == "JOB_COMPLETION_INDEX").then(|| "2".to_string());
        let own = |k: &str| (k == "STAMPEDE_SEGMENT_INDEX").then(|| "1".to_string());
        assert_eq!(resolve(&flags(Some(3), Some(1)), &job).unwrap().index, 1);
        assert_eq!(resolve(&flags(Some(3), None), &job).unwrap().index, 2);
        assert_eq!(resolve(&flags(Some(3), None), &own).unwrap().index, 1);
        let e = resolve(&flags(Some(3), None), &none).unwrap_err();
        assert!(e.contains("JOB_COMPLETION_INDEX"), "{e}");
        let e = resolve(&flags(Some(3), Some(3)), &none).unwrap_err();
        assert!(
            e.starts_with("--segment-index: segment index 3 is out of range"),
            "{e}"
        );
        let e = resolve(&flags(Some(2), None), &job).unwrap_err();
        assert!(e.starts_with("JOB_COMPLETION_INDEX:"), "{e}");
        assert!(resolve(&flags(None, None), &none).unwrap().is_whole());
        let f = DistFlags {
            segment: Some("1/4:1/2".into()),
            segment_sequence: Some("0,1/4,1/2,1".into()),
            ..DistFlags::default()
        };
        let s = resolve(&f, &none).unwrap();
        assert_eq!((s.index, s.count, s.label.as_str()), (1, 3, "1/4:1/2"));
        let f = DistFlags {
            segment: Some("0:1/3".into()),
            segment_sequence: Some("0,1/4,1/2,1".into()),
            ..DistFlags::default()
        };
        assert!(resolve(&f, &none).unwrap_err().contains("not a segment of"));
        let f = DistFlags {
            segment: Some("1/3:2/3".into()),
            ..DistFlags::default()
        };
        assert_eq!(resolve(&f, &none).unwrap().count, 3);
    }
}
