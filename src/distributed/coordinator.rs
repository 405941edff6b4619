//! The coordinator of a distributed run: start together, stop together, one verdict.
//!
//! Segment 0 runs the [`Server`]; every other segment is a [`Client`]. The protocol is HTTP/1.1
//! with JSON bodies (hyper, one request per connection), all on the coordinator:
//!
//! | request | body | answer |
//! |---|---|---|
//! | `POST /ready` | [`Hello`]: index, segment count, version, scenario hash | held until every segment is ready: `200` [`Go`] (run id, wall-clock start), or `409` [`Refusal`] (a mismatch, a timeout, an abort) |
//! | `GET /status?index=I` | – | `200 {"abort": null}` or `{"abort": "reason"}`; also the segment's heartbeat |
//! | `POST /abort` | `{"index": I, "reason": "…"}` | `200`; every segment stops gracefully |
//! | `POST /done` | `{"index": I, "summary": {…}, "round": R}`: the segment's local summary JSON (of step R of a multi-step run; `round` absent: 0) | `200` |
//! | `POST /step` | `{"index": I, "round": R}` | held until the coordinator publishes step R: `200` [`Round`] (the step's global rate and wall-clock start, or `stop`), or `409` [`Refusal`] (an abort) |
//!
//! **Ready barrier.** The coordinator compares each [`Hello`] with its own: the same segment
//! count, stampede version and scenario hash, an index in `1..count` not seen before. The first
//! difference fails the barrier for everyone (each exits 2, naming it); nothing is sent to the
//! target. Segments that are not ready within the timeout are named, and everyone gives up.
//! **Start.** Once all are ready, the coordinator hands out one wall-clock start time
//! ([`START_MARGIN`] ahead) and the run id; every segment sleeps until it and starts.
//! **During the run** each client polls `/status` every [`POLL`]: that carries aborts (the
//! coordinator's Ctrl-C/SIGTERM, a fatal error in any segment) and tells the coordinator the
//! segment is alive. **Done**: each segment posts its local summary; the coordinator waits for
//! every segment that is still alive (polled within [`LIVENESS`]) and merges what it has.
//!
//! **Steps** (a distributed capacity search, `stampede find-max` with segments): after the
//! barrier, every segment asks for step 0, 1, 2, … in turn (`/step`); the coordinator publishes
//! each step once it has merged and judged the one before (its global rate and a common start,
//! or the end of the search), and collects the step's summaries by round.
//!
//! This module moves JSON only; merging is `crate::distributed::merge`'s. It imports no other stampede
//! module.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// How far ahead of "everyone is ready" the common start time is.
pub(crate) const START_MARGIN: Duration = Duration::from_millis(500);
/// How often a segment polls the coordinator during the run.
pub(crate) const POLL: Duration = Duration::from_millis(200);
/// A segment that has not polled for this long is presumed dead (a client that cannot reach
/// the coordinator for this long stops its run).
pub(crate) const LIVENESS: Duration = Duration::from_secs(3);

/// What a segment tells the coordinator when it is ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// Segment index.
    pub index: u32,
    /// Segments in all.
    pub count: u32,
    /// stampede version.
    pub version: String,
    /// Hash of the resolved scenario (scenarios, defaults, thresholds).
    pub scenario_hash: String,
    /// Setting key → hash of its value, so that a mismatch can name the setting (secret-bearing
    /// settings are only in `scenario_hash`).
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
}

/// The coordinator's go: everyone starts at `start_unix_ns` under one run id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Go {
    /// The run id all segments share.
    pub run_id: String,
    /// The wall-clock start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
}

impl Go {
    /// The start as a [`SystemTime`].
    pub(crate) fn start(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.start_unix_ns)
    }
}

/// One step of a multi-step run (a distributed capacity search): what every segment runs next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Round {
    /// The step's number, from 0.
    pub round: u32,
    /// The global arrival rate of the step (each segment runs its share of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// The step's common wall-clock start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Set when there is no step `round`: the search is over, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
}

impl Round {
    /// The start as a [`SystemTime`].
    pub(crate) fn start(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.start_unix_ns)
    }
}

/// Why the barrier failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RefusalKind {
    /// The segments disagree (scenario, version, count, index): a usage error.
    Mismatch,
    /// Not every segment was ready in time, or the run was aborted.
    Failed,
}

/// The coordinator's no.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Refusal {
    /// Which kind.
    pub kind: RefusalKind,
    /// What is wrong, e.g. `segment 2: scenario hash 1a2b… differs from the coordinator's 3c4d…`.
    pub message: String,
}

impl Refusal {
    fn failed(m: impl Into<String>) -> Refusal {
        Refusal {
            kind: RefusalKind::Failed,
            message: m.into(),
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Debug)]
enum Barrier {
    Waiting,
    Go(Go),
    Refused(Refusal),
}

#[derive(Debug)]
struct State {
    me: Hello,
    run_id: String,
    barrier: Barrier,
    ready: BTreeMap<u32, Instant>,
    last_seen: BTreeMap<u32, Instant>,
    abort: Option<String>,
    /// By index: the round and the summary it posted last.
    done: BTreeMap<u32, (u32, serde_json::Value)>,
    /// The step published last (multi-step runs).
    step: Option<Round>,
}

struct Inner {
    state: Mutex<State>,
    /// Bumped on every change (handlers holding a `/ready` wait on it).
    changed: watch::Sender<u64>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn refuse(&self, r: Refusal) {
        {
            let mut s = self.lock();
            if matches!(s.barrier, Barrier::Waiting) {
                s.barrier = Barrier::Refused(r);
            }
        }
        self.bump();
    }
}

/// The coordinator (segment 0): serves the protocol on its own thread and runtime.
pub(crate) struct Server {
    inner: Arc<Inner>,
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Listens on `listen`; `me` is the coordinator's own hello, `run_id` the run's id.
    pub(crate) fn start(listen: SocketAddr, me: Hello, run_id: String) -> std::io::Result<Server> {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                barrier: if me.count <= 1 {
                    Barrier::Go(Go {
                        run_id: run_id.clone(),
                        start_unix_ns: now_ns(),
                    })
                } else {
                    Barrier::Waiting
                },
                me,
                run_id,
                ready: BTreeMap::new(),
                last_seen: BTreeMap::new(),
                abort: None,
                done: BTreeMap::new(),
                step: None,
            }),
            changed: watch::channel(0).0,
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let inner2 = inner.clone();
        let thread = std::thread::Builder::new()
            .name("stampede-coordinator".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let accept = async {
                        loop {
                            let Ok((stream, _)) = listener.accept().await else {
                                continue;
                            };
                            let inner = inner2.clone();
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| handle(inner.clone(), req));
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stop_rx => {}
                    }
                });
            })?;
        Ok(Server {
            inner,
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Waits until every segment is ready (then returns the go everyone got) or the barrier
    /// fails: a mismatch, `timeout`, or `give_up()` (e.g. Ctrl-C) returning a reason.
    pub(crate) fn wait_ready(
        &self,
        timeout: Duration,
        mut give_up: impl FnMut() -> Option<String>,
    ) -> Result<Go, Refusal> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let s = self.inner.lock();
                match &s.barrier {
                    Barrier::Go(g) => return Ok(g.clone()),
                    Barrier::Refused(r) => return Err(r.clone()),
                    Barrier::Waiting => {}
                }
            }
            if let Some(reason) = give_up() {
                self.inner.refuse(Refusal::failed(reason));
                continue;
            }
            if Instant::now() >= deadline {
                let missing = {
                    let s = self.inner.lock();
                    (1..s.me.count)
                        .filter(|i| !s.ready.contains_key(i))
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                };
                self.inner.refuse(Refusal::failed(format!(
                    "the coordinator waited {} for every segment to be ready; missing segment{} {}",
                    humantime::format_duration(timeout),
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                )));
                continue;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops every segment (first reason wins).
    pub(crate) fn abort(&self, reason: &str) {
        let first = {
            let mut s = self.inner.lock();
            if s.abort.is_none() {
                s.abort = Some(reason.to_string());
                true
            } else {
                false
            }
        };
        if first {
            tracing::warn!("stopping every segment: {reason}");
        }
        self.inner.bump();
    }

    /// Why the run was aborted, if it was (by the coordinator or by any segment).
    pub(crate) fn aborted(&self) -> Option<String> {
        self.inner.lock().abort.clone()
    }

    /// Waits for the summaries of the other segments: until each has posted one or has been
    /// silent for [`LIVENESS`], at most `limit`. Returns them by index.
    pub(crate) fn collect(&self, limit: Duration) -> BTreeMap<u32, serde_json::Value> {
        self.collect_round(limit, 0)
    }

    /// [`Server::collect`] for step `round` of a multi-step run: only summaries of that round.
    pub(crate) fn collect_round(
        &self,
        limit: Duration,
        round: u32,
    ) -> BTreeMap<u32, serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            {
                let s = self.inner.lock();
                let now = Instant::now();
                let posted = |i: &u32| s.done.get(i).is_some_and(|(r, _)| *r == round);
                let waiting = (1..s.me.count).any(|i| {
                    !posted(&i)
                        && s.last_seen
                            .get(&i)
                            .is_some_and(|t| now.duration_since(*t) < LIVENESS)
                });
                if !waiting || now >= deadline {
                    return s
                        .done
                        .iter()
                        .filter(|(_, (r, _))| *r == round)
                        .map(|(i, (_, v))| (*i, v.clone()))
                        .collect();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Publishes the next step of a multi-step run: its global `rate`, starting
    /// [`START_MARGIN`] from now; or, with `stop`, the end (segments asking for it exit).
    pub(crate) fn publish(&self, rate: Option<f64>, stop: Option<String>) -> Round {
        let r = {
            let mut s = self.inner.lock();
            let round = s.step.as_ref().map_or(0, |r| r.round + 1);
            let r = Round {
                round,
                rate,
                start_unix_ns: now_ns() + START_MARGIN.as_nanos() as u64,
                stop,
            };
            s.step = Some(r.clone());
            r
        };
        self.inner.bump();
        r
    }

    /// Keeps answering (refusals, aborts) for `linger` so late segments learn the outcome,
    /// then stops.
    pub(crate) fn shutdown(mut self, linger: Duration) {
        std::thread::sleep(linger);
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

type Reply = Response<Full<Bytes>>;

fn json_reply(status: StatusCode, v: &impl Serialize) -> Reply {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn bad(m: &str) -> Reply {
    json_reply(
        StatusCode::BAD_REQUEST,
        &Refusal {
            kind: RefusalKind::Failed,
            message: m.to_string(),
        },
    )
}

/// The most a request body may hold (a summary with its histograms).
const MAX_BODY: usize = 64 << 20;

async fn handle(
    inner: Arc<Inner>,
    req: Request<Incoming>,
) -> Result<Reply, std::convert::Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(bad("cannot read the request body")),
    };
    Ok(match (method, path.as_str()) {
        (Method::POST, "/ready") => match serde_json::from_slice::<Hello>(&body) {
            Ok(h) => ready(&inner, h).await,
            Err(e) => bad(&format!("not a hello: {e}")),
        },
        (Method::GET, "/status") => {
            let index = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("index="))
                .and_then(|v| v.parse::<u32>().ok());
            let mut s = inner.lock();
            if let Some(i) = index {
                s.last_seen.insert(i, Instant::now());
            }
            json_reply(StatusCode::OK, &serde_json::json!({ "abort": s.abort }))
        }
        (Method::POST, "/abort") => {
            #[derive(Deserialize)]
            struct Abort {
                index: u32,
                reason: String,
            }
            match serde_json::from_slice::<Abort>(&body) {
                Ok(a) => {
                    let reason = format!("segment {}: {}", a.index, a.reason);
                    let first = {
                        let mut s = inner.lock();
                        s.abort.get_or_insert_with(|| reason.clone()) == &reason
                    };
                    if first {
                        tracing::warn!("stopping every segment: {reason}");
                    }
                    inner.refuse(Refusal::failed(reason));
                    json_reply(StatusCode::OK, &serde_json::json!({}))
                }
                Err(e) => bad(&format!("not an abort: {e}")),
            }
        }
        (Method::POST, "/done") => {
            #[derive(Deserialize)]
            struct Done {
                index: u32,
                summary: serde_json::Value,
                #[serde(default)]
                round: u32,
            }
            match serde_json::from_slice::<Done>(&body) {
                Ok(d) => {
                    {
                        let mut s = inner.lock();
                        s.last_seen.insert(d.index, Instant::now());
                        s.done.insert(d.index, (d.round, d.summary));
                    }
                    inner.bump();
                    json_reply(StatusCode::OK, &serde_json::json!({}))
                }
                Err(e) => bad(&format!("not a summary: {e}")),
            }
        }
        (Method::POST, "/step") => {
            #[derive(Deserialize)]
            struct Ask {
                index: u32,
                round: u32,
            }
            match serde_json::from_slice::<Ask>(&body) {
                Ok(a) => step(&inner, a.index, a.round).await,
                Err(e) => bad(&format!("not a step request: {e}")),
            }
        }
        _ => json_reply(
            StatusCode::NOT_FOUND,
            &Refusal::failed(
                "unknown request: the coordinator serves /ready, /status, /abort, /done, /step",
            ),
        ),
    })
}

/// The difference between a segment's hello and the coordinator's, if any.
fn mismatch(me: &Hello, h: &Hello, seen: bool) -> Option<String> {
    let who = format!("segment {}", h.index);
    if h.version != me.version {
        return Some(format!(
            "{who} runs stampede {} but the coordinator runs {}",
            h.version, me.version
        ));
    }
    if h.count != me.count {
        return Some(format!(
            "{who} was given --segment-count {} but the coordinator {}",
            h.count, me.count
        ));
    }
    if h.index == 0 || h.index >= me.count {
        return Some(format!(
            "{who} is not a valid index for a non-coordinator (1 to {})",
            me.count - 1
        ));
    }
    if seen {
        return Some(format!(
            "{who} is ready twice: two generators have the same segment index"
        ));
    }
    if h.scenario_hash != me.scenario_hash {
        return Some(format!(
            "{who} has a different scenario: {}; every segment must run the same file and flags",
            differing(me, h)
        ));
    }
    None
}

/// Which settings differ between two hellos whose scenario hashes differ, in words.
fn differing(me: &Hello, h: &Hello) -> String {
    let keys: Vec<&str> = me
        .settings
        .keys()
        .chain(h.settings.keys())
        .filter(|k| me.settings.get(*k) != h.settings.get(*k))
        .map(String::as_str)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    match keys.as_slice() {
        [] => "a header, body, query, variable or credential differs (their values are never compared one by one)"
            .into(),
        [one] => format!("{one} differs from the coordinator's"),
        many => {
            let shown: Vec<&str> = many.iter().copied().take(5).collect();
            let more = if many.len() > 5 {
                format!(" and {} more", many.len() - 5)
            } else {
                String::new()
            };
            format!("{}{more} differ from the coordinator's", shown.join(", "))
        }
    }
}

async fn ready(inner: &Arc<Inner>, h: Hello) -> Reply {
    let mut rx = inner.changed.subscribe();
    {
        let mut s = inner.lock();
        if matches!(s.barrier, Barrier::Waiting) {
            let seen = s.ready.contains_key(&h.index);
            if let Some(m) = mismatch(&s.me, &h, seen) {
                s.barrier = Barrier::Refused(Refusal {
                    kind: RefusalKind::Mismatch,
                    message: m,
                });
            } else {
                s.ready.insert(h.index, Instant::now());
                s.last_seen.insert(h.index, Instant::now());
                if s.ready.len() + 1 == s.me.count as usize {
                    s.barrier = Barrier::Go(Go {
                        run_id: s.run_id.clone(),
                        start_unix_ns: now_ns() + START_MARGIN.as_nanos() as u64,
                    });
                }
            }
        }
    }
    inner.bump();
    loop {
        {
            let mut s = inner.lock();
            s.last_seen.insert(h.index, Instant::now());
            match &s.barrier {
                Barrier::Go(g) => return json_reply(StatusCode::OK, g),
                Barrier::Refused(r) => return json_reply(StatusCode::CONFLICT, r),
                Barrier::Waiting => {}
            }
        }
        if rx.changed().await.is_err() {
            return json_reply(
                StatusCode::CONFLICT,
                &Refusal::failed("the coordinator stopped"),
            );
        }
    }
}

/// Holds a `/step` request until step `round` is published (or the run is aborted).
async fn step(inner: &Arc<Inner>, index: u32, round: u32) -> Reply {
    let mut rx = inner.changed.subscribe();
    loop {
        {
            let mut s = inner.lock();
            s.last_seen.insert(index, Instant::now());
            if let Some(reason) = &s.abort {
                return json_reply(StatusCode::CONFLICT, &Refusal::failed(reason.clone()));
            }
            if let Some(r) = s.step.as_ref().filter(|r| r.round >= round) {
                return json_reply(StatusCode::OK, r);
            }
        }
        // Wake at least every second: the wait is the segment's heartbeat.
        if let Ok(Err(_)) = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await {
            return json_reply(
                StatusCode::CONFLICT,
                &Refusal::failed("the coordinator stopped"),
            );
        }
    }
}

/// Why a client's exchange with the coordinator failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The coordinator refused (a mismatch: exit 2; otherwise the run failed).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// It could not be reached, or answered nonsense.
    #[error("{0}")]
    Unreachable(String),
}

/// A segment's side of the protocol.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    /// `host:port` of the coordinator.
    pub coordinator: String,
    /// This segment's index.
    pub index: u32,
}

/// One request on a fresh connection; the reply's status and body.
async fn exchange(
    addr: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to the coordinator at {addr}: {e}"))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("coordinator at {addr}: {e}"))?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| format!("coordinator at {addr}: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("coordinator at {addr}: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// A held request's answer: `200` and a `T`, or a [`Refusal`].
fn reply<T: serde::de::DeserializeOwned>(
    status: StatusCode,
    body: &[u8],
    what: &str,
    addr: &str,
) -> Result<T, ClientError> {
    if status == StatusCode::OK {
        return serde_json::from_slice::<T>(body).map_err(|e| {
            ClientError::Unreachable(format!("the coordinator's {what} is not valid: {e}"))
        });
    }
    Err(match serde_json::from_slice::<Refusal>(body) {
        Ok(r) => ClientError::Refused(r),
        Err(_) => ClientError::Unreachable(format!(
            "the coordinator at {addr} answered: {}",
            String::from_utf8_lossy(body)
        )),
    })
}

fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(f))
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

impl Client {
    /// Reports ready and waits for the go, retrying the connection until `timeout` (the
    /// coordinator may start later than this segment).
    pub(crate) fn ready(&self, hello: &Hello, timeout: Duration) -> Result<Go, ClientError> {
        let body = serde_json::to_vec(hello).unwrap_or_default();
        let addr = self.coordinator.clone();
        block_on(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut last = String::new();
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(ClientError::Unreachable(format!(
                        "no go from the coordinator within {} (--coordinator-timeout): {last}",
                        humantime::format_duration(timeout)
                    )));
                }
                match tokio::time::timeout(
                    left,
                    exchange(&addr, Method::POST, "/ready", body.clone()),
                )
                .await
                {
                    Ok(Ok((status, b))) => return reply::<Go>(status, &b, "go", &addr),
                    Ok(Err(e)) => last = e,
                    Err(_) => last = "timed out".into(),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .map_err(ClientError::Unreachable)?
    }

    /// Waits for step `round` of a multi-step run (the coordinator publishes it once the step
    /// before is merged and judged); gives up after `timeout` without a word from it.
    pub(crate) fn next_round(&self, round: u32, timeout: Duration) -> Result<Round, ClientError> {
        let body = serde_json::to_vec(&serde_json::json!({ "index": self.index, "round": round }))
            .unwrap_or_default();
        let addr = self.coordinator.clone();
        block_on(async move {
            let mut heard = tokio::time::Instant::now();
            let mut last = String::new();
            loop {
                if heard.elapsed() >= timeout {
                    return Err(ClientError::Unreachable(format!(
                        "no step {round} from the coordinator at {addr} within {}: {last}",
                        humantime::format_duration(timeout)
                    )));
                }
                // The coordinator holds the request until the step exists; ask again now and
                // then so a lost connection is noticed.
                match tokio::time::timeout(
                    Duration::from_secs(30),
                    exchange(&addr, Method::POST, "/step", body.clone()),
                )
                .await
                {
                    Ok(Ok((status, b))) => return reply::<Round>(status, &b, "step", &addr),
                    Ok(Err(e)) => {
                        last = e;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    // Held for 30 s: the coordinator is there, still judging.
                    Err(_) => heard = tokio::time::Instant::now(),
                }
            }
        })
        .map_err(ClientError::Unreachable)?
    }

    /// Polls `/status` on a background thread until `stop` is set; the returned channel gets
    /// the abort reason (also when the coordinator is unreachable for [`LIVENESS`]).
    pub(crate) fn watch(
        &self,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> watch::Receiver<Option<String>> {
        let (tx, rx) = watch::channel(None);
        let addr = self.coordinator.clone();
        let path = format!("/status?index={}", self.index);
        let _ = std::thread::Builder::new()
            .name("stampede-coordinator-poll".into())
            .spawn(move || {
                let _ = block_on(async move {
                    let mut ok_at = tokio::time::Instant::now();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r = tokio::time::timeout(
                            LIVENESS,
                            exchange(&addr, Method::GET, &path, Vec::new()),
                        )
                        .await;
                        match r {
                            Ok(Ok((StatusCode::OK, b))) => {
                                ok_at = tokio::time::Instant::now();
                                let v: serde_json::Value =
                                    serde_json::from_slice(&b).unwrap_or_default();
                                if let Some(reason) = v["abort"].as_str() {
                                    tx.send_replace(Some(reason.to_string()));
                                    return;
                                }
                            }
                            _ if ok_at.elapsed() >= LIVENESS => {
                                tx.send_replace(Some(format!(
                                    "lost contact with the coordinator at {addr}"
                                )));
                                return;
                            }
                            _ => {}
                        }
                        tokio::time::sleep(POLL).await;
                    }
                });
            });
        rx
    }

    /// Asks the coordinator to stop every segment.
    pub(crate) fn abort(&self, reason: &str) {
        let body =
            serde_json::to_vec(&serde_json::json!({ "index": self.index, "reason": reason }))
                .unwrap_or_default();
        let addr = self.coordinator.clone();
        let _ = block_on(async move {
            tokio::time::timeout(
                Duration::from_secs(5),
                exchange(&addr, Method::POST, "/abort", body),
            )
            .await
        });
    }

    /// Sends this segment's local summary (retrying for up to `limit`).
    pub(crate) fn done(&self, summary: &serde_json::Value, limit: Duration) -> Result<(), String> {
        self.done_round(summary, 0, limit)
    }

    /// [`Client::done`] for step `round` of a multi-step run.
    pub(crate) fn done_round(
        &self,
        summary: &serde_json::Value,
        round: u32,
        limit: Duration,
    ) -> Result<(), String> {
        let body = serde_json::to_vec(
            &serde_json::json!({ "index": self.index, "summary": summary, "round": round }),
        )
        .map_err(|e| e.to_string())?;
        let addr = self.coordinator.clone();
        block_on(async move {
            let deadline = tokio::time::Instant::now() + limit;
            loop {
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    exchange(&addr, Method::POST, "/done", body.clone()),
                )
                .await;
                let e = match r {
                    Ok(Ok((StatusCode::OK, _))) => return Ok(()),
                    Ok(Ok((s, b))) => format!("{s}: {}", String::from_utf8_lossy(&b)),
                    Ok(Err(e)) => e,
                    Err(_) => "timed out".into(),
                };
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!("cannot send the summary to the coordinator: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(index: u32, hash: &str) -> Hello {
        Hello {
            index,
            count: 3,
            version: "1".into(),
            scenario_hash: hash.into(),
            settings: Default::default(),
        }
    }

    #[test]
    fn a_scenario_mismatch_names_the_settings_that_differ() {
        let with = |pairs: &[(&str, &str)]| {
            let mut h = hello(1, "a");
            h.settings = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            h
        };
        let me = Hello {
            index: 0,
            scenario_hash: "b".into(),
            ..with(&[("scenarios[0].vus", "1"), ("defaults.timeout", "2")])
        };
        let one = with(&[("scenarios[0].vus", "9"), ("defaults.timeout", "2")]);
        assert_eq!(
            mismatch(&me, &one, false).as_deref(),
            Some(
                "segment 1 has a different scenario: scenarios[0].vus differs from the coordinator's; every segment must run the same file and flags"
            )
        );
        let two = with(&[("scenarios[0].vus", "9"), ("thresholds[0]", "3")]);
        let m = mismatch(&me, &two, false).unwrap_or_default();
        assert!(
            m.contains("defaults.timeout, scenarios[0].vus, thresholds[0] differ"),
            "{m}"
        );
        // Only the whole hash differs: a secret-bearing setting, never named by value.
        let same = with(&[("scenarios[0].vus", "1"), ("defaults.timeout", "2")]);
        let m = mismatch(&me, &same, false).unwrap_or_default();
        assert!(
            m.contains("a header, body, query, variable or credential differs"),
            "{m}"
        );
    }

    fn client(s: &Server, index: u32) -> Client {
        Client {
            coordinator: s.addr.to_string(),
            index,
        }
    }

    #[test]
    fn barrier_hands_one_start_to_everyone() {
        let s = Server::start(([127, 0, 0, 1], 0).into(), hello(0, "h"), "rid".into()).unwrap();
        let c1 = client(&s, 1);
        let c2 = client(&s, 2);
        let t1 = std::thread::spawn(move || c1.ready(&hello(1, "h"), Duration::from_secs(5)));
        let t2 = std::thread::spawn(move || c2.ready(&hello(2, "h"), Duration::from_secs(5)));
        let go = s.wait_ready(Duration::from_secs(5), || None).unwrap();
        assert_eq!(t1.join().unwrap().unwrap(), go);
        assert_eq!(t2.join().unwrap().unwrap(), go);
        assert_eq!(go.run_id, "rid");
        // Abort reaches the pollers; done summaries come back.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut rx = client(&s, 1).watch(stop.clone());
        client(&s, 2).abort("boom");
        let r = block_on(async { rx.wait_for(|v| v.is_some()).await.map(|v| v.clone()) }).unwrap();
        assert_eq!(r.unwrap(), Some("segment 2: boom".into()));
        client(&s, 1)
            .done(&serde_json::json!({"requests": 1}), Duration::from_secs(2))
            .unwrap();
        client(&s, 2)
            .done(&serde_json::json!({"requests": 2}), Duration::from_secs(2))
            .unwrap();
        let got = s.collect(Duration::from_secs(5));
        assert_eq!(got.len(), 2);
        assert_eq!(got[&2]["requests"], 2);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn steps_are_published_in_turn_and_collected_by_round() {
        let s = Server::start(([127, 0, 0, 1], 0).into(), hello(0, "h"), "rid".into()).unwrap();
        let (c1, c2) = (client(&s, 1), client(&s, 2));
        let t1 = std::thread::spawn(move || c1.ready(&hello(1, "h"), Duration::from_secs(5)));
        let t2 = std::thread::spawn(move || c2.ready(&hello(2, "h"), Duration::from_secs(5)));
        s.wait_ready(Duration::from_secs(5), || None).unwrap();
        t1.join().unwrap().unwrap();
        t2.join().unwrap().unwrap();
        // A segment asking for step 0 waits until it is published.
        let c1 = client(&s, 1);
        let asked = std::thread::spawn(move || c1.next_round(0, Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(200));
        assert!(!asked.is_finished(), "step 0 is not published yet");
        let r0 = s.publish(Some(100.0), None);
        assert_eq!((r0.round, r0.rate), (0, Some(100.0)));
        assert_eq!(asked.join().unwrap().unwrap(), r0);
        for (i, n) in [(1, 10), (2, 20)] {
            client(&s, i)
                .done_round(
                    &serde_json::json!({ "requests": n }),
                    0,
                    Duration::from_secs(2),
                )
                .unwrap();
        }
        assert_eq!(s.collect_round(Duration::from_secs(5), 0).len(), 2);
        // Step 1: segment 2's summary of step 0 does not count for it.
        let r1 = s.publish(Some(150.0), None);
        assert_eq!(
            client(&s, 2).next_round(1, Duration::from_secs(5)).unwrap(),
            r1
        );
        client(&s, 1)
            .done_round(
                &serde_json::json!({ "requests": 15 }),
                1,
                Duration::from_secs(2),
            )
            .unwrap();
        let got = s.collect_round(Duration::from_millis(300), 1);
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(got[&1]["requests"], 15);
        // The end.
        let end = s.publish(None, Some("the search is over (precision)".into()));
        let r2 = client(&s, 1).next_round(2, Duration::from_secs(5)).unwrap();
        assert_eq!(r2, end);
        assert_eq!(r2.stop.as_deref(), Some("the search is over (precision)"));
        // An abort refuses whoever waits for a step.
        s.abort("stop");
        let e = client(&s, 2)
            .next_round(3, Duration::from_secs(5))
            .unwrap_err();
        assert!(matches!(e, ClientError::Refused(_)), "{e}");
    }

    #[test]
    fn a_mismatch_refuses_everyone_and_names_it() {
        let s = Server::start(([127, 0, 0, 1], 0).into(), hello(0, "h"), "rid".into()).unwrap();
        let c1 = client(&s, 1);
        let t1 = std::thread::spawn(move || c1.ready(&hello(1, "h"), Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(200));
        let e = client(&s, 2)
            .ready(&hello(2, "other"), Duration::from_secs(5))
            .unwrap_err();
        let ClientError::Refused(r) = e else {
            panic!("{e}")
        };
        assert_eq!(r.kind, RefusalKind::Mismatch);
        assert!(
            r.message.contains("segment 2 has a different scenario"),
            "{r}"
        );
        let e1 = t1.join().unwrap().unwrap_err();
        assert!(
            e1.to_string()
                .contains("segment 2 has a different scenario"),
            "{e1}"
        );
        let e0 = s.wait_ready(Duration::from_secs(5), || None).unwrap_err();
        assert_eq!(e0.kind, RefusalKind::Mismatch);
        // A duplicate index is named too.
        let s = Server::start(([127, 0, 0, 1], 0).into(), hello(0, "h"), "rid".into()).unwrap();
        let c = client(&s, 1);
        let t = std::thread::spawn(move || c.ready(&hello(1, "h"), Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(200));
        let e = client(&s, 1)
            .ready(&hello(1, "h"), Duration::from_secs(5))
            .unwrap_err();
        assert!(e.to_string().contains("same segment index"), "{e}");
        assert!(t.join().unwrap().is_err());
    }

    #[test]
    fn timeouts_name_the_missing_segments() {
        let s = Server::start(([127, 0, 0, 1], 0).into(), hello(0, "h"), "rid".into()).unwrap();
        let c1 = client(&s, 1);
        let t1 = std::thread::spawn(move || c1.ready(&hello(1, "h"), Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(100));
        let e = s
            .wait_ready(Duration::from_millis(300), || None)
            .unwrap_err();
        assert!(e.message.ends_with("missing segment 2"), "{e}");
        assert!(
            t1.join()
                .unwrap()
                .unwrap_err()
                .to_string()
                .contains("missing segment 2")
        );
        // Unreachable: a clear error within the timeout.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let c = Client {
            coordinator: free.to_string(),
            index: 1,
        };
        let began = Instant::now();
        let e = c
            .ready(&hello(1, "h"), Duration::from_millis(600))
            .unwrap_err();
        assert!(began.elapsed() < Duration::from_secs(3));
        assert!(
            e.to_string().contains("cannot connect to the coordinator"),
            "{e}"
        );
    }
}
