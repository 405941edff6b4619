//! The embedded target server (`stampede target`, `stampede demo`, tests, benchmarks).
//!
//! Routes: [`ROUTES`] (also shown by `stampede target --help`).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// What the target serves, one route a line (`stampede target --help` prints it).
pub const ROUTES: &str = concat!(
    "  GET  /                      ok, as fast as possible\n",
    "  POST /user/login            JSON {\"username\":\"admin\",\"password\":\"admin\"}\n",
    "                              -> {\"token\":\"...\"}; anything else -> 401\n",
    "  GET  /user/api/getApps      JSON list; needs Authorization: Bearer <token>\n",
    "  GET  /newsql/api/getTablesByAppId?appId=N   JSON list; needs the token too\n",
    "  ANY  /status/<code>         answers with that status, e.g. /status/503\n",
    "  ANY  /delay/<ms>            answers after that many ms (at most 60 s)\n",
    "  ANY  /bytes/<n>             an n-byte body (at most 64 MiB)\n",
    "  ANY  /reset                 resets the connection (TCP RST), no answer\n",
    "  ANY  /echo                  echoes the request body (at most 1 MiB, else 413)\n",
    "  GET  /__stats               JSON counters (not counted themselves)\n",
    "  GET  /__traces              JSON [[traceparent, path], ...] of the requests that\n",
    "                              carried a traceparent header (not counted themselves;\n",
    "                              the first 100,000, cut at 64 and 256 bytes)\n",
    "  POST /__stall/<ms>          hold every response until ms from now\n",
    "                              (coordinated-omission tests; not counted)\n",
    "  A request head over 64 KiB is answered 431, a body over 1 MiB 413.",
);

/// How the target behaves beyond its routes: a capacity, and a degradation at a known time
/// (`stampede target --capacity 200 --queue 1s --degrade-after 30s --degrade-latency 200ms`).
/// Deterministic enough for tests of SLOs and capacity searches.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Options {
    /// At most this many requests per second are served (counted routes), evenly spaced: a
    /// request waits for its turn, up to `queue`; one that would wait longer gets 503 at once.
    pub capacity: Option<f64>,
    /// The longest wait for a turn under `capacity` (`0`: no queue, beyond capacity is 503).
    pub queue: Duration,
    /// From this long after the target started, every counted response is delayed by
    /// `degrade_latency` ...
    pub degrade_after: Option<Duration>,
    /// ... for this long (`None`: for good).
    pub degrade_for: Option<Duration>,
    /// The added delay.
    pub degrade_latency: Duration,
}

/// The capacity gate: the next free turn, µs after the target started.
#[derive(Debug)]
struct Gate {
    start: tokio::time::Instant,
    opts: Options,
    next_us: AtomicU64,
}

impl Gate {
    /// How long this request waits before it is served, or `None` to refuse it (503).
    fn admit(&self) -> Option<Duration> {
        let Some(cap) = self.opts.capacity else {
            return Some(Duration::ZERO);
        };
        let spacing = (1e6 / cap.max(1e-3)) as u64;
        let queue = self.opts.queue.as_micros() as u64;
        let now = self.start.elapsed().as_micros() as u64;
        let mut next = self.next_us.load(Ordering::Relaxed);
        loop {
            let turn = next.max(now);
            if turn - now > queue {
                return None;
            }
            match self.next_us.compare_exchange_weak(
                next,
                turn + spacing,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Duration::from_micros(turn - now)),
                Err(n) => next = n,
            }
        }
    }

    /// The added delay of a degraded period, if now is in it.
    fn degraded(&self) -> Duration {
        let Some(after) = self.opts.degrade_after else {
            return Duration::ZERO;
        };
        let t = self.start.elapsed();
        let until = self.opts.degrade_for.map(|d| after + d);
        if t >= after && until.is_none_or(|u| t < u) {
            self.opts.degrade_latency
        } else {
            Duration::ZERO
        }
    }
}

/// The token `/user/login` hands out.
pub const TOKEN: &str = "stampede-demo-token";

/// Counters of what the target served.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests answered or reset (all routes but `/__stats`).
    pub requests: AtomicU64,
    /// Logins that succeeded.
    pub logins: AtomicU64,
    /// `/user/api/getApps` calls.
    pub get_apps: AtomicU64,
    /// `/newsql/api/getTablesByAppId` calls.
    pub get_tables: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Responses are held until this many ms after the Unix epoch (0: no stall).
    pub stalled_until_ms: AtomicU64,
    /// (traceparent, path and query) of requests with a `traceparent` header, the first
    /// [`MAX_TRACES`] of them, each cut at [`MAX_TRACE_VALUE`] and [`MAX_TRACE_PATH`] bytes.
    pub traces: std::sync::Mutex<Vec<(String, String)>>,
    /// Requests with a `traceparent` header beyond [`MAX_TRACES`] (not kept).
    pub traces_dropped: AtomicU64,
    /// Requests refused (503) for want of capacity.
    pub refused: AtomicU64,
}

/// How many `traceparent` headers the target keeps: with the cuts below, at most about 40 MB
/// (the first 1,200 requests with 60 KB headers once kept 150 MB).
pub const MAX_TRACES: usize = 100_000;
/// Bytes of a kept `traceparent` value (a version-00 one has 55).
pub const MAX_TRACE_VALUE: usize = 64;
/// Bytes of a kept path and query.
pub const MAX_TRACE_PATH: usize = 256;
/// The largest request head (request line and headers) served; a larger one is answered 431
/// (HTTP/1.1: hyper's read buffer; HTTP/2: the header list size).
pub const MAX_HEAD: usize = 64 << 10;
/// The largest request body read (`/echo`, `/user/login`); a larger one is answered 413.
pub const MAX_BODY: usize = 1 << 20;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Counters {
    fn json(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            r#"{{"requests":{},"logins":{},"get_apps":{},"get_tables":{},"connections":{},"refused":{},"traces_dropped":{}}}"#,
            g(&self.requests),
            g(&self.logins),
            g(&self.get_apps),
            g(&self.get_tables),
            g(&self.connections),
            g(&self.refused),
            g(&self.traces_dropped)
        )
    }

    /// Keeps a request's trace header and path (cut to their bounds), or counts it dropped.
    fn keep_trace(&self, tp: &[u8], pq: &str) {
        let mut t = self.traces.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() >= MAX_TRACES {
            self.traces_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let tp = String::from_utf8_lossy(&tp[..tp.len().min(MAX_TRACE_VALUE)]).into_owned();
        t.push((tp, cut(pq, MAX_TRACE_PATH).to_string()));
    }
}

/// A running target.
#[derive(Debug)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it served.
    pub counters: Arc<Counters>,
}

/// Binds and serves on the current tokio runtime until the process exits.
pub async fn serve(listen: SocketAddr) -> std::io::Result<Target> {
    serve_with(listen, Options::default()).await
}

/// [`serve`] with a capacity or a degradation.
pub async fn serve_with(listen: SocketAddr, opts: Options) -> std::io::Result<Target> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let gate = Arc::new(Gate {
        start: tokio::time::Instant::now(),
        opts,
        next_us: AtomicU64::new(0),
    });
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            c.connections.fetch_add(1, Ordering::Relaxed);
            let fd = stream.as_raw_fd();
            let c = c.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(req, c.clone(), gate.clone(), fd));
                let mut b = auto::Builder::new(TokioExecutor::new());
                // Heads beyond MAX_HEAD: 431 (hyper answers it for HTTP/1.1, h2 for HTTP/2).
                b.http1().max_buf_size(MAX_HEAD);
                b.http2().max_header_list_size(MAX_HEAD as u32);
                let _ = b.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(Target { addr, counters })
}

/// Starts a target on its own thread and runtime; returns once it listens.
pub fn spawn_background(listen: SocketAddr) -> std::io::Result<Target> {
    spawn_background_with(listen, Options::default())
}

/// [`spawn_background`] with a capacity or a degradation.
pub fn spawn_background_with(listen: SocketAddr, opts: Options) -> std::io::Result<Target> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("stampede-target".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                match serve_with(listen, opts).await {
                    Ok(t) => {
                        let _ = tx.send(Ok(t));
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("target thread exited"))?
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn json(body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::OK, body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The request body, at most [`MAX_BODY`] bytes; a larger one (declared or sent) is answered
/// 413 without reading the rest.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {MAX_BODY} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        // A body cut short by the client: what arrived is no request to answer.
        Err(_) => Ok(Bytes::new()),
    }
}

fn authorized(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(TOKEN)
}

/// Sets SO_LINGER to 0 so the close that follows sends a RST.
fn arm_reset(fd: i32) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is the connection's socket, alive while its service runs; setsockopt only
    // reads the struct we pass, with its exact size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset on request")
    }
}

impl std::error::Error for ResetConnection {}

async fn handle(
    req: Request<Incoming>,
    c: Arc<Counters>,
    gate: Arc<Gate>,
    fd: i32,
) -> Result<Response<Full<Bytes>>, ResetConnection> {
    let path = req.uri().path().to_string();
    if path == "/__stats" {
        return Ok(json(c.json()));
    }
    if path == "/__traces" {
        let t = c.traces.lock().unwrap_or_else(|p| p.into_inner());
        return Ok(json(serde_json::to_string(&*t).unwrap_or_default()));
    }
    if let Some(tp) = req.headers().get("traceparent") {
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        c.keep_trace(tp.as_bytes(), pq);
    }
    if let Some(ms) = path.strip_prefix("/__stall/") {
        let ms: u64 = ms.parse().unwrap_or(0).min(60_000);
        c.stalled_until_ms.store(now_ms() + ms, Ordering::Relaxed);
        return Ok(text(StatusCode::OK, "stalling"));
    }
    c.requests.fetch_add(1, Ordering::Relaxed);
    match gate.admit() {
        None => {
            c.refused.fetch_add(1, Ordering::Relaxed);
            return Ok(text(StatusCode::SERVICE_UNAVAILABLE, "over capacity"));
        }
        Some(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
        Some(_) => {}
    }
    let slow = gate.degraded();
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    let until = c.stalled_until_ms.load(Ordering::Relaxed);
    if until != 0 {
        let now = now_ms();
        if until > now {
            tokio::time::sleep(Duration::from_millis(until - now)).await;
        }
    }
    let resp = match (req.method(), path.as_str()) {
        (_, "/") => text(StatusCode::OK, Bytes::from_static(b"ok")),
        (&Method::POST, "/user/login") => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(too_large) => return Ok(too_large),
            };
            let ok = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .is_some_and(|v| v["username"] == "admin" && v["password"] == "admin");
            if ok {
                c.logins.fetch_add(1, Ordering::Relaxed);
                json(format!(r#"{{"code":200,"token":"{TOKEN}"}}"#))
            } else {
                text(StatusCode::UNAUTHORIZED, "bad credentials")
            }
        }
        (&Method::GET, "/user/api/getApps") => {
            if !authorized(&req) {
                return Ok(text(StatusCode::UNAUTHORIZED, "missing token"));
            }
            c.get_apps.fetch_add(1, Ordering::Relaxed);
            json(
                r#"{"code":200,"data":[{"appId":1,"name":"orders"},{"appId":2,"name":"billing"}]}"#,
            )
        }
        (&Method::GET, "/newsql/api/getTablesByAppId") => {
            if !authorized(&req) {
                return Ok(text(StatusCode::UNAUTHORIZED, "missing token"));
            }
            c.get_tables.fetch_add(1, Ordering::Relaxed);
            let app = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("appId=")))
                .unwrap_or("0")
                .to_string();
            json(format!(
                r#"{{"code":200,"appId":"{app}","data":[{{"table":"t_user"}},{{"table":"t_order"}}]}}"#
            ))
        }
        (_, "/echo") => match read_body(req).await {
            Ok(body) => text(StatusCode::OK, body),
            Err(too_large) => too_large,
        },
        (_, "/reset") => {
            arm_reset(fd);
            return Err(ResetConnection);
        }
        (_, p) => {
            if let Some(code) = p.strip_prefix("/status/") {
                match code
                    .parse::<u16>()
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                {
                    Some(s) => text(s, format!("status {}", s.as_u16())),
                    None => text(StatusCode::BAD_REQUEST, "bad status code"),
                }
            } else if let Some(ms) = p.strip_prefix("/delay/") {
                match ms.parse::<u64>() {
                    Ok(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
                        text(StatusCode::OK, "ok")
                    }
                    Err(_) => text(StatusCode::BAD_REQUEST, "bad delay"),
                }
            } else if let Some(n) = p.strip_prefix("/bytes/") {
                match n.parse::<usize>() {
                    Ok(n) => text(StatusCode::OK, vec![b'x'; n.min(64 << 20)]),
                    Err(_) => text(StatusCode::BAD_REQUEST, "bad size"),
                }
            } else {
                text(StatusCode::NOT_FOUND, "not found")
            }
        }
    };
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(capacity: f64, queue_ms: u64) -> Gate {
        Gate {
            start: tokio::time::Instant::now(),
            opts: Options {
                capacity: Some(capacity),
                queue: Duration::from_millis(queue_ms),
                ..Default::default()
            },
            next_us: AtomicU64::new(0),
        }
    }

    #[test]
    fn capacity_spaces_turns_and_refuses_beyond_the_queue() {
        // 100/s: one turn every 10 ms; a burst of four at once, with 25 ms of queue.
        let g = gate(100.0, 25);
        let waits: Vec<Option<u64>> = (0..4)
            .map(|_| g.admit().map(|d| d.as_millis() as u64))
            .collect();
        assert_eq!(waits[0], Some(0));
        assert!(waits[1].is_some_and(|w| (8..=10).contains(&w)), "{waits:?}");
        assert!(
            waits[2].is_some_and(|w| (18..=20).contains(&w)),
            "{waits:?}"
        );
        assert_eq!(waits[3], None, "a 30 ms wait is beyond the queue");
        // No queue: beyond the rate is refused at once.
        let g = gate(10.0, 0);
        assert_eq!(g.admit(), Some(Duration::ZERO));
        assert_eq!(g.admit(), None);
        // No capacity: never waits.
        let g = Gate {
            start: tokio::time::Instant::now(),
            opts: Options::default(),
            next_us: AtomicU64::new(0),
        };
        assert!((0..1000).all(|_| g.admit() == Some(Duration::ZERO)));
    }

    #[test]
    fn degradation_has_a_start_and_an_end() {
        let g = Gate {
            start: tokio::time::Instant::now() - Duration::from_secs(5),
            opts: Options {
                degrade_after: Some(Duration::from_secs(3)),
                degrade_for: Some(Duration::from_secs(1)),
                degrade_latency: Duration::from_millis(200),
                ..Default::default()
            },
            next_us: AtomicU64::new(0),
        };
        assert_eq!(g.degraded(), Duration::ZERO, "over at 4 s");
        let mut o = g.opts;
        o.degrade_for = None;
        let g = Gate { opts: o, ..g };
        assert_eq!(g.degraded(), Duration::from_millis(200), "for good");
    }
}
