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
    "  ANY  /echo                  echoes the request body\n",
    "  GET  /__stats               JSON counters (not counted themselves)\n",
    "  GET  /__traces              JSON [[traceparent, path], ...] of the requests that\n",
    "                              carried a traceparent header (not counted themselves)\n",
    "  POST /__stall/<ms>          hold every response until ms from now\n",
    "                              (coordinated-omission tests; not counted)",
);

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
    /// [`MAX_TRACES`] of them.
    pub traces: std::sync::Mutex<Vec<(String, String)>>,
}

/// How many `traceparent` headers the target keeps.
pub const MAX_TRACES: usize = 1_000_000;

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
            r#"{{"requests":{},"logins":{},"get_apps":{},"get_tables":{},"connections":{}}}"#,
            g(&self.requests),
            g(&self.logins),
            g(&self.get_apps),
            g(&self.get_tables),
            g(&self.connections)
        )
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
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
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
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(req, c.clone(), fd));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(Target { addr, counters })
}

/// Starts a target on its own thread and runtime; returns once it listens.
pub fn spawn_background(listen: SocketAddr) -> std::io::Result<Target> {
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
                match serve(listen).await {
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
        let mut t = c.traces.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() < MAX_TRACES {
            let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
            t.push((
                String::from_utf8_lossy(tp.as_bytes()).into_owned(),
                pq.to_string(),
            ));
        }
    }
    if let Some(ms) = path.strip_prefix("/__stall/") {
        let ms: u64 = ms.parse().unwrap_or(0).min(60_000);
        c.stalled_until_ms.store(now_ms() + ms, Ordering::Relaxed);
        return Ok(text(StatusCode::OK, "stalling"));
    }
    c.requests.fetch_add(1, Ordering::Relaxed);
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
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let ok = body
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
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
        (_, "/echo") => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            text(StatusCode::OK, body)
        }
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
