//! The per-VU HTTP client: HTTP/1.1 through [`h1`] on one keep-alive connection per server
//! (no pool, no locks), or HTTP/2 through [`h2`](super::h2) (ALPN over TLS, prior knowledge over
//! cleartext) on a connection of its own or, with `h2_max_streams` > 1, on connections it shares
//! with the worker's other VUs; rustls for TLS. Every failure becomes an [`ErrorKind`], a
//! low-cardinality `error.type`. [`ClientOptions`] and [`Target`] are the client's own settings;
//! the plan fills them in.

use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::connect::{self, Stream, TlsTo};
use super::h2::{self as h2c, Attached, H2Request, NoRoom, Pool, Tries, Unprocessed};
use super::{Ended, bounded, h1};
use crate::outcome::{ErrorKind, Outcome, Wire};

/// Client settings shared by all VUs.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect (+TLS handshake) timeout.
    pub connect_timeout: Duration,
    /// HTTP/2.
    pub http2: bool,
    /// HTTP/2: most concurrent streams per connection (1: a connection per VU).
    pub h2_max_streams: u32,
    /// Skip certificate verification.
    pub insecure: bool,
}

/// A server the client talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `https`?
    pub tls: bool,
    /// Host name or address, as written.
    pub host: String,
    /// Port (explicit or the scheme's default).
    pub port: u16,
    /// `host[:port]` for the Host header.
    pub authority: String,
}

/// State shared by every VU's client: resolved addresses and the TLS config.
pub(crate) struct Shared {
    targets: Vec<Target>,
    addrs: Vec<Vec<SocketAddr>>,
    tls: Option<tokio_rustls::TlsConnector>,
    opts: ClientOptions,
}

impl Shared {
    /// Resolves every target once and prepares TLS. Also raises the soft open-file limit to
    /// the hard one (every VU holds a connection per server).
    pub(crate) async fn new(targets: &[Target], opts: &ClientOptions) -> Shared {
        if let Some((old, new)) = connect::raise_fd_limit() {
            tracing::debug!(old, new, "raised the soft open-file limit");
        }
        let mut addrs = Vec::with_capacity(targets.len());
        for t in targets {
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((t.host.as_str(), t.port))
                .await
            {
                Ok(it) => it.collect(),
                Err(e) => {
                    tracing::warn!(host = %t.host, error = %e, "cannot resolve host; its requests will fail with error.type=dns");
                    Vec::new()
                }
            };
            addrs.push(found);
        }
        let tls = if targets.iter().any(|t| t.tls) {
            match tls_connector(opts.insecure, opts.http2) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "cannot set up TLS; https requests will fail with error.type=tls");
                    None
                }
            }
        } else {
            None
        };
        Shared {
            targets: targets.to_vec(),
            addrs,
            tls,
            opts: opts.clone(),
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("targets", &self.targets)
            .field("addrs", &self.addrs)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

enum Conn {
    H1(h1::Conn<TcpStream>),
    H1Tls(Box<h1::Conn<TlsStream<TcpStream>>>),
    H2(Attached),
}

/// A connection just opened.
enum Opened {
    Conn(Conn),
    H2(h2c::NewConn),
}

/// One HTTP/1.1 request as the client sends it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct H1Request<'a> {
    /// The complete serialized request.
    pub(crate) wire: &'a [u8],
    /// A `HEAD` request (the response has no body).
    pub(crate) head: bool,
    /// The method is idempotent (RFC 9110 §9.2.2): it may be sent again when a reused
    /// connection was closed before the server answered.
    pub(crate) idempotent: bool,
    /// Keep the body for checks and extraction (its first [`KEPT_BODY_LIMIT`] bytes).
    pub(crate) keep_body: bool,
    /// Keep the response headers.
    pub(crate) keep_headers: bool,
}

/// Largest body kept for checks and extraction, on both protocols.
pub(crate) const KEPT_BODY_LIMIT: usize = h1::KEPT_BODY_LIMIT;

/// First and longest pause of a VU whose connects fail for lack of file descriptors.
const FD_BACKOFF_MIN: Duration = Duration::from_millis(10);
const FD_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// One VU's client.
pub(crate) struct Client {
    shared: Arc<Shared>,
    conns: Vec<Option<Conn>>,
    /// HTTP/2 connections: the worker's (shared, `h2_max_streams` > 1) or this VU's own.
    pool: Rc<Pool>,
    /// Connects in a row that failed for lack of file descriptors.
    fd_failures: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("open", &self.conns.iter().filter(|c| c.is_some()).count())
            .finish()
    }
}

impl Client {
    /// A client with no connections yet. HTTP/2 streams go over `pool` (the worker's, when VUs
    /// share connections) or over connections of the VU's own.
    pub(crate) fn new(shared: Arc<Shared>, pool: Option<Rc<Pool>>) -> Client {
        let n = shared.targets.len();
        Client {
            pool: pool.unwrap_or_else(|| Rc::new(Pool::new(n, 1))),
            shared,
            conns: (0..n).map(|_| None).collect(),
            fd_failures: 0,
        }
    }

    /// The pool a worker's VUs share when HTTP/2 carries more than one stream per connection.
    pub(crate) fn shared_pool(shared: &Shared) -> Option<Rc<Pool>> {
        let n = shared.opts.h2_max_streams as usize;
        (shared.opts.http2 && n > 1).then(|| Rc::new(Pool::new(shared.targets.len(), n)))
    }

    /// After a `too_many_open_files` failure: how long the VU should pause before its next
    /// request (exponential from 10 ms to 1 s), so it does not spin on a limit it cannot pass.
    pub(crate) fn fd_backoff(&self) -> Option<Duration> {
        let n = self.fd_failures.checked_sub(1)?;
        Some(
            FD_BACKOFF_MIN
                .saturating_mul(1 << n.min(16))
                .min(FD_BACKOFF_MAX),
        )
    }

    fn deadline(&self, hard_deadline: Option<Instant>) -> (Instant, ErrorKind) {
        let deadline = Instant::now() + self.shared.opts.timeout;
        match hard_deadline {
            Some(h) if h < deadline => (h, ErrorKind::Cancelled),
            _ => (deadline, ErrorKind::Timeout),
        }
    }

    /// HTTP/1.1: sends `req` to target `target` and reads the whole response, within the
    /// request timeout (or `hard_deadline`, whichever is first), unless `cut` completes first
    /// (the run's hard deadline moved while the request was in flight: `cancelled`).
    ///
    /// A request on a reused connection that the server had closed, and that the server
    /// therefore never answered, goes once more on a fresh connection (see
    /// [`h1::Failure::retryable`]); the outcome says so (`reconnects`), it is no failure.
    pub(crate) async fn send_h1(
        &mut self,
        target: usize,
        req: H1Request<'_>,
        hard_deadline: Option<Instant>,
        cut: impl Future<Output = ()>,
    ) -> Outcome {
        let (deadline, deadline_error) = self.deadline(hard_deadline);
        let mut reconnected = false;
        // Every attempt's octets: a request that went again went on the wire twice.
        let mut wire = Wire::default();
        let fut = async {
            loop {
                let reused = self.conns[target].is_some();
                if !reused {
                    // Boxed: the connect (and TLS handshake) state machine is large and rare;
                    // keeping it out of line keeps every VU's future small.
                    Box::pin(self.open(target)).await?;
                }
                let r = match &mut self.conns[target] {
                    Some(Conn::H1(c)) => {
                        c.exchange(req.wire, req.head, req.keep_body, req.keep_headers)
                            .await
                    }
                    Some(Conn::H1Tls(c)) => {
                        c.exchange(req.wire, req.head, req.keep_body, req.keep_headers)
                            .await
                    }
                    _ => return Err(ErrorKind::Protocol),
                };
                wire += self.take_h1_wire(target);
                match r {
                    Ok(r) => {
                        if !r.reusable {
                            self.conns[target] = None;
                        }
                        return Ok(Outcome {
                            status: Some(r.status),
                            error: (r.status >= 400).then_some(ErrorKind::Status(r.status)),
                            bytes_in: r.body_len,
                            wire: Wire::default(),
                            body: r.body,
                            headers: r.headers,
                            reconnects: 0,
                        });
                    }
                    Err(f) => {
                        self.conns[target] = None;
                        if reused && !reconnected && f.retryable(req.idempotent) {
                            reconnected = true;
                            continue;
                        }
                        return Err(f.kind);
                    }
                }
            }
        };
        let r = bounded(fut, deadline, cut).await;
        // What an exchange cut short by its deadline had written and read.
        wire += self.take_h1_wire(target);
        let mut o = self.settle(target, r, deadline_error);
        o.reconnects = u8::from(reconnected);
        o.wire = wire;
        o
    }

    /// The octets the HTTP/1.1 connection to `target` wrote and read since last asked.
    fn take_h1_wire(&mut self, target: usize) -> Wire {
        match &mut self.conns[target] {
            Some(Conn::H1(c)) => c.take_wire(),
            Some(Conn::H1Tls(c)) => c.take_wire(),
            _ => Wire::default(),
        }
    }

    /// Turns a timed exchange into an outcome; any failure closes the connection.
    fn settle(
        &mut self,
        target: usize,
        r: Result<Result<Outcome, ErrorKind>, Ended>,
        deadline_error: ErrorKind,
    ) -> Outcome {
        let kind = match r {
            Ok(Ok(o)) => return o,
            Ok(Err(kind)) => kind,
            Err(Ended::Deadline) => deadline_error,
            Err(Ended::Cut) => ErrorKind::Cancelled,
        };
        self.conns[target] = None;
        Outcome::failed(kind)
    }

    /// HTTP/2: sends `req` on a new stream and reads the whole response, within the request
    /// timeout (or `hard_deadline`, whichever comes first), unless `cut` completes first.
    ///
    /// A request the server certainly did not process goes again on another connection, at
    /// most [`H2_MAX_RETRIES`] times: one above a GOAWAY's last stream id (a graceful
    /// shutdown), one written on a reused connection that closed without a word (idempotent
    /// methods only), and, once, one refused with `RST_STREAM(REFUSED_STREAM)`. The outcome's
    /// `reconnects` counts the tries sent after the first, so requests plus reconnects are the
    /// tries the server received. One the connection would not open a stream for (it had
    /// closed, or the server had sent GOAWAY) was never sent: it looks for another connection,
    /// uncounted. One still waiting at its deadline for a server that allows no streams fails
    /// as `no_stream`.
    pub(crate) async fn send_h2(
        &mut self,
        target: usize,
        req: H2Request<'_>,
        hard_deadline: Option<Instant>,
        cut: impl Future<Output = ()>,
    ) -> Outcome {
        let (deadline, deadline_error) = self.deadline(hard_deadline);
        let mut tries = Tries::default();
        let fut = async {
            let mut refused = false;
            let mut last = ErrorKind::ConnectionClosed;
            // Looking for a connection that opens the stream is bounded too.
            for _ in 0..H2_MAX_PASSES {
                let attached = self.attach_h2(target).await?;
                match h2c::exchange(attached, &req, KEPT_BODY_LIMIT, &mut tries).await {
                    Ok(o) => return Ok(o),
                    Err(f) => {
                        let more = tries.sent <= H2_MAX_RETRIES;
                        let again = match f.unprocessed {
                            Unprocessed::No => false,
                            Unprocessed::NotSent => true,
                            Unprocessed::GoAway | Unprocessed::Unanswered => more,
                            Unprocessed::Refused => more && !std::mem::replace(&mut refused, true),
                        };
                        // A GOAWAY or a failed connection: no new streams on it. A reset stream
                        // leaves the connection to the others.
                        if !f.stream_only {
                            attached.close();
                        }
                        self.conns[target] = None;
                        if !again {
                            return Err(f.kind);
                        }
                        last = f.kind;
                    }
                }
            }
            Err(last)
        };
        let r = bounded(fut, deadline, cut).await;
        let reconnects = tries.sent.saturating_sub(1);
        let kind = match r {
            Ok(Ok(mut o)) => {
                o.reconnects = reconnects;
                return o;
            }
            Ok(Err(kind)) => kind,
            Err(Ended::Deadline) if tries.waiting && deadline_error == ErrorKind::Timeout => {
                ErrorKind::NoStream
            }
            Err(Ended::Deadline) => deadline_error,
            // The stream is reset when its futures drop; the connection stays.
            Err(Ended::Cut) => ErrorKind::Cancelled,
        };
        let mut o = Outcome::failed(kind);
        o.reconnects = reconnects;
        o
    }

    /// This VU's place on an HTTP/2 connection to `target`: the one it has while that is
    /// usable, else a pooled one with room, else a new one.
    async fn attach_h2(&mut self, target: usize) -> Result<&mut Attached, ErrorKind> {
        let max = self.pool.max_streams();
        let keep = matches!(&self.conns[target], Some(Conn::H2(a)) if a.usable(max));
        if !keep {
            self.conns[target] = None;
            let pool = self.pool.clone();
            // Each pass either attaches, waits for a connection another VU opens, or opens
            // one; waiting passes are bounded so a VU never waits without end.
            for _ in 0..64 {
                if let Some(a) = pool.attach(target) {
                    self.conns[target] = Some(Conn::H2(a));
                    break;
                }
                match pool.no_room(target) {
                    // A failed opening fails its waiters the same way (one refused connect is
                    // `connection_refused` for each of them).
                    NoRoom::Wait(opening) => opening.wait().await?,
                    NoRoom::Open(guard) => {
                        // Boxed: the connect (and TLS handshake) state machine is large and rare.
                        let opened = Box::pin(self.open_raw(target)).await;
                        let a = match opened {
                            Ok(Opened::H2(c)) => pool.add(target, c),
                            Ok(Opened::Conn(_)) => {
                                guard.fail(ErrorKind::Protocol);
                                return Err(ErrorKind::Protocol);
                            }
                            Err(kind) => {
                                guard.fail(kind);
                                return Err(kind);
                            }
                        };
                        drop(guard);
                        self.conns[target] = Some(Conn::H2(a));
                        break;
                    }
                }
            }
        }
        match &mut self.conns[target] {
            Some(Conn::H2(a)) => Ok(a),
            // Every connection opened meanwhile filled up or closed before this VU got in.
            _ => Err(ErrorKind::ConnectionClosed),
        }
    }

    /// Opens a connection to `target` (replacing any), keeping count of connects that fail
    /// for lack of file descriptors.
    async fn open(&mut self, target: usize) -> Result<(), ErrorKind> {
        self.conns[target] = None;
        match self.open_raw(target).await? {
            Opened::Conn(c) => self.conns[target] = Some(c),
            Opened::H2(c) => self.conns[target] = Some(Conn::H2(self.pool.add(target, c))),
        }
        Ok(())
    }

    /// Connects to `target`, keeping count of connects that fail for lack of file descriptors.
    async fn open_raw(&mut self, target: usize) -> Result<Opened, ErrorKind> {
        match self.connect(target).await {
            Ok(c) => {
                self.fd_failures = 0;
                Ok(c)
            }
            Err(kind) => {
                if kind == ErrorKind::TooManyOpenFiles {
                    self.fd_failures = self.fd_failures.saturating_add(1);
                }
                Err(kind)
            }
        }
    }

    async fn connect(&self, target: usize) -> Result<Opened, ErrorKind> {
        let t = &self.shared.targets[target];
        let addrs = &self.shared.addrs[target];
        if addrs.is_empty() {
            return Err(ErrorKind::Dns);
        }
        let opts = &self.shared.opts;
        let fut = async {
            let tls = match (t.tls, &self.shared.tls) {
                (false, _) => None,
                (true, Some(connector)) => Some(TlsTo {
                    connector,
                    server_name: &t.host,
                }),
                (true, None) => return Err(ErrorKind::Tls),
            };
            let stream = connect::connect(addrs, tls, opts.connect_timeout)
                .await
                .map_err(|e| e.kind)?;
            if opts.http2 {
                if matches!(stream, Stream::Tls(_)) && !stream.alpn_h2() {
                    not_h2_warning(t, stream.alpn());
                    return Err(ErrorKind::Protocol);
                }
                let settings = opts.h2_max_streams > 1;
                return h2c::handshake(stream, settings).await.map(Opened::H2);
            }
            match stream {
                Stream::Tcp(tcp) => Ok(Opened::Conn(Conn::H1(h1::Conn::new(tcp)))),
                Stream::Tls(tls) => Ok(Opened::Conn(Conn::H1Tls(Box::new(h1::Conn::new(*tls))))),
            }
        };
        match tokio::time::timeout(opts.connect_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ErrorKind::Timeout),
        }
    }
}

/// Most times an HTTP/2 request goes again after tries the server did not process.
pub(crate) const H2_MAX_RETRIES: u8 = 2;
/// Most passes of an HTTP/2 request in all: its tries, and its looks for a connection that
/// would open a stream.
const H2_MAX_PASSES: usize = 8;

/// `--http2` over TLS and the server chose something else than `h2` by ALPN: its requests
/// fail as `protocol`; said once per process.
fn not_h2_warning(t: &Target, alpn: Option<&[u8]>) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    super::warn_once(&WARNED, || {
        let chose = alpn.map_or_else(
            || "no protocol".to_string(),
            |p| String::from_utf8_lossy(p).into_owned(),
        );
        format!(
            "https://{}: the server did not negotiate h2 (ALPN chose {chose}); --http2 needs a \
             server that speaks HTTP/2 over TLS: its requests fail as protocol (without --http2 \
             they go over HTTP/1.1)",
            t.authority
        )
    });
}

fn tls_connector(insecure: bool, http2: bool) -> Result<tokio_rustls::TlsConnector, rustls::Error> {
    let alpn: &[&[u8]] = if http2 {
        &[b"h2", b"http/1.1"]
    } else {
        &[b"http/1.1"]
    };
    let cfg = super::tls::client_config(insecure, Vec::new(), alpn)?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn request(wire: &[u8], idempotent: bool) -> H1Request<'_> {
        H1Request {
            wire,
            head: false,
            idempotent,
            keep_body: false,
            keep_headers: false,
        }
    }

    fn never() -> std::future::Pending<()> {
        std::future::pending()
    }

    async fn client_for(port: u16, timeout: Duration) -> Client {
        let t = Target {
            tls: false,
            host: "127.0.0.1".into(),
            port,
            authority: format!("127.0.0.1:{port}"),
        };
        let opts = ClientOptions {
            timeout,
            connect_timeout: Duration::from_secs(1),
            http2: false,
            h2_max_streams: 1,
            insecure: false,
        };
        Client::new(Arc::new(Shared::new(&[t], &opts).await), None)
    }

    /// A server that answers one request per connection and then closes it, without saying
    /// `Connection: close` (as an idle timeout or a careless proxy does). Counts requests.
    async fn one_shot_server() -> (u16, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await;
                });
            }
        });
        (port, count)
    }

    #[tokio::test]
    async fn requests_on_connections_the_server_closed_go_again_on_fresh_ones() {
        let (port, count) = one_shot_server().await;
        let mut c = client_for(port, Duration::from_secs(5)).await;
        let get = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        let post = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n";
        let mut reconnects = 0;
        for i in 0..20 {
            // Back to back (the close may not have arrived yet: the write goes out, the read
            // finds the connection closed) and after a pause (the close is found before
            // writing, so even a POST may go again).
            let (wire, idempotent) = if i % 2 == 0 {
                (&get[..], true)
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                (&post[..], false)
            };
            let o = c.send_h1(0, request(wire, idempotent), None, never()).await;
            assert_eq!((o.status, o.error), (Some(200), None), "request {i}");
            reconnects += u32::from(o.reconnects);
        }
        assert_eq!(
            count.load(Ordering::SeqCst),
            20,
            "the server saw each request once"
        );
        assert!(reconnects >= 10, "{reconnects}");
    }

    #[tokio::test]
    async fn a_cut_ends_an_in_flight_request_as_cancelled() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        // Accepts and never answers.
        let _srv = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let mut c = client_for(port, Duration::from_secs(30)).await;
        let t = std::time::Instant::now();
        let cut = tokio::time::sleep(Duration::from_millis(100));
        let o = c
            .send_h1(
                0,
                request(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", true),
                None,
                cut,
            )
            .await;
        assert_eq!(o.error, Some(ErrorKind::Cancelled));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn fd_backoff_grows_to_a_second() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut c = rt.block_on(client_for(9, Duration::from_secs(1)));
        assert_eq!(c.fd_backoff(), None);
        let mut seen = Vec::new();
        for n in 1..=10 {
            c.fd_failures = n;
            seen.push(c.fd_backoff().unwrap().as_millis());
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        c.fd_failures = u32::MAX;
        assert_eq!(c.fd_backoff(), Some(FD_BACKOFF_MAX));
    }

    #[tokio::test]
    async fn https_works_with_insecure_and_fails_as_tls_without_trust() {
        let dir = tempfile::tempdir().unwrap();
        let (_ca, cert, key) = crate::test_support::make_test_pki(dir.path())
            .expect("the openssl CLI makes the test certificates: apt-get install -y openssl");
        let (addr, _) = crate::test_support::tls_receiver(&cert, &key, |_| true).await;
        let t = Target {
            tls: true,
            host: "127.0.0.1".into(),
            port: addr.port(),
            authority: addr.to_string(),
        };
        for (insecure, want) in [(true, None), (false, Some(ErrorKind::Tls))] {
            let opts = ClientOptions {
                timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(5),
                http2: false,
                h2_max_streams: 1,
                insecure,
            };
            let shared = Arc::new(Shared::new(std::slice::from_ref(&t), &opts).await);
            let mut c = Client::new(shared, None);
            let wire =
                format!("POST /api/v1/write HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\n\r\n");
            let o = c
                .send_h1(0, request(wire.as_bytes(), false), None, never())
                .await;
            assert_eq!(o.error, want, "insecure={insecure}");
            if insecure {
                assert_eq!(o.status, Some(200));
                // Keep-alive over TLS: a second request on the same connection.
                let o = c
                    .send_h1(0, request(wire.as_bytes(), false), None, never())
                    .await;
                assert_eq!(o.status, Some(200));
                assert_eq!(o.reconnects, 0);
            }
        }
    }

    #[tokio::test]
    async fn refused_connections_are_classified_not_panicked() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = client_for(port, Duration::from_secs(2)).await;
        let o = c
            .send_h1(
                0,
                request(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", true),
                None,
                never(),
            )
            .await;
        assert_eq!(o.error, Some(ErrorKind::ConnectionRefused));
        assert_eq!(o.status, None);
    }
}
