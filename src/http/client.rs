//! The per-VU HTTP client: one keep-alive connection per server (no pool, no locks), HTTP/1.1
//! through [`h1`] or HTTP/2 through hyper's low-level connection API (ALPN over TLS, prior
//! knowledge over cleartext), rustls for TLS. Every failure becomes an [`ErrorKind`], a
//! low-cardinality `error.type`. [`ClientOptions`] and [`Target`] are the client's own settings;
//! the plan fills them in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{h1, hyper_error_kind, io_error_kind};
use crate::outcome::{ErrorKind, Outcome};

/// Client settings shared by all VUs.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect (+TLS handshake) timeout.
    pub connect_timeout: Duration,
    /// HTTP/2.
    pub http2: bool,
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
pub struct Shared {
    targets: Vec<Target>,
    addrs: Vec<Vec<SocketAddr>>,
    tls: Option<tokio_rustls::TlsConnector>,
    opts: ClientOptions,
}

impl Shared {
    /// Resolves every target once and prepares TLS.
    pub async fn new(targets: &[Target], opts: &ClientOptions) -> Shared {
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
    H1Tls(Box<h1::Conn<tokio_rustls::client::TlsStream<TcpStream>>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One VU's client.
pub(crate) struct Client {
    shared: Arc<Shared>,
    conns: Vec<Option<Conn>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("open", &self.conns.iter().filter(|c| c.is_some()).count())
            .finish()
    }
}

impl Client {
    /// A client with no connections yet.
    pub(crate) fn new(shared: Arc<Shared>) -> Client {
        let n = shared.targets.len();
        Client {
            shared,
            conns: (0..n).map(|_| None).collect(),
        }
    }

    fn deadline(&self, hard_deadline: Option<Instant>) -> (Instant, ErrorKind) {
        let deadline = Instant::now() + self.shared.opts.timeout;
        match hard_deadline {
            Some(h) if h < deadline => (h, ErrorKind::Cancelled),
            _ => (deadline, ErrorKind::Timeout),
        }
    }

    /// HTTP/1.1: sends `wire` (a complete serialized request) to target `target` and reads the
    /// whole response, within the request timeout (or `hard_deadline`, whichever is first).
    pub(crate) async fn send_h1(
        &mut self,
        target: usize,
        wire: &[u8],
        head_request: bool,
        keep_body: bool,
        keep_headers: bool,
        hard_deadline: Option<Instant>,
    ) -> Outcome {
        let (deadline, deadline_error) = self.deadline(hard_deadline);
        let fut = async {
            if self.conns[target].is_none() {
                // Boxed: the connect (and TLS handshake) state machine is large and rare; keeping
                // it out of line keeps every VU's future small (10,000 VUs = 10,000 futures).
                self.conns[target] = Some(Box::pin(self.connect(target)).await?);
            }
            let r = match &mut self.conns[target] {
                Some(Conn::H1(c)) => {
                    c.exchange(wire, head_request, keep_body, keep_headers)
                        .await
                }
                Some(Conn::H1Tls(c)) => {
                    c.exchange(wire, head_request, keep_body, keep_headers)
                        .await
                }
                _ => Err(ErrorKind::Protocol),
            }?;
            if !r.reusable {
                self.conns[target] = None;
            }
            Ok(Outcome {
                status: Some(r.status),
                error: (r.status >= 400).then_some(ErrorKind::Status(r.status)),
                bytes_in: r.body_len,
                body: r.body,
                headers: r.headers,
            })
        };
        let r = tokio::time::timeout_at(deadline, fut).await;
        self.settle(target, r, deadline_error)
    }

    /// Turns a timed exchange into an outcome; any failure closes the connection.
    fn settle(
        &mut self,
        target: usize,
        r: Result<Result<Outcome, ErrorKind>, tokio::time::error::Elapsed>,
        deadline_error: ErrorKind,
    ) -> Outcome {
        let kind = match r {
            Ok(Ok(o)) => return o,
            Ok(Err(kind)) => kind,
            Err(_) => deadline_error,
        };
        self.conns[target] = None;
        Outcome::failed(kind)
    }

    /// HTTP/2: sends `req` over hyper, reads the whole response, within the request timeout
    /// (or `hard_deadline`, whichever comes first).
    pub(crate) async fn send(
        &mut self,
        target: usize,
        req: Request<Full<Bytes>>,
        keep_body: bool,
        keep_headers: bool,
        hard_deadline: Option<Instant>,
    ) -> Outcome {
        let (deadline, deadline_error) = self.deadline(hard_deadline);
        let r = tokio::time::timeout_at(
            deadline,
            self.exchange(target, req, keep_body, keep_headers),
        )
        .await;
        self.settle(target, r, deadline_error)
    }

    async fn exchange(
        &mut self,
        target: usize,
        req: Request<Full<Bytes>>,
        keep_body: bool,
        keep_headers: bool,
    ) -> Result<Outcome, ErrorKind> {
        let usable = match &mut self.conns[target] {
            Some(Conn::H2(s)) => !s.is_closed() && s.ready().await.is_ok(),
            _ => false,
        };
        if !usable {
            self.conns[target] = Some(Box::pin(self.connect(target)).await?);
        }
        let resp: Response<Incoming> = match &mut self.conns[target] {
            Some(Conn::H2(s)) => s.send_request(req).await,
            _ => return Err(ErrorKind::Protocol),
        }
        .map_err(|e| hyper_error_kind(&e))?;
        let status = resp.status().as_u16();
        let (parts, mut body) = resp.into_parts();
        let mut bytes_in = 0u64;
        let mut kept = keep_body.then(BytesMut::new);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| hyper_error_kind(&e))?;
            if let Some(data) = frame.data_ref() {
                bytes_in += data.len() as u64;
                if let Some(k) = kept.as_mut()
                    && k.len() < MAX_KEPT_BODY
                {
                    k.extend_from_slice(data);
                }
            }
        }
        Ok(Outcome {
            status: Some(status),
            error: (status >= 400).then_some(ErrorKind::Status(status)),
            bytes_in,
            body: kept.map(BytesMut::freeze),
            headers: keep_headers.then_some(parts.headers),
        })
    }

    async fn connect(&self, target: usize) -> Result<Conn, ErrorKind> {
        let t = &self.shared.targets[target];
        let addrs = &self.shared.addrs[target];
        if addrs.is_empty() {
            return Err(ErrorKind::Dns);
        }
        let connect = async {
            let mut last = ErrorKind::ConnectionRefused;
            for a in addrs {
                match TcpStream::connect(a).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok(s);
                    }
                    Err(e) => last = io_error_kind(&e),
                }
            }
            Err(last)
        };
        let opts = &self.shared.opts;
        let fut = async {
            let tcp = connect.await?;
            if t.tls {
                let connector = self.shared.tls.as_ref().ok_or(ErrorKind::Tls)?;
                let name = rustls::pki_types::ServerName::try_from(t.host.clone())
                    .map_err(|_| ErrorKind::Tls)?;
                let tls =
                    connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| match io_error_kind(&e) {
                            ErrorKind::Io => ErrorKind::Tls,
                            k => k,
                        })?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                if h2 || opts.http2 {
                    h2_handshake(TokioIo::new(tls)).await
                } else {
                    Ok(Conn::H1Tls(Box::new(h1::Conn::new(tls))))
                }
            } else if opts.http2 {
                h2_handshake(TokioIo::new(tcp)).await
            } else {
                Ok(Conn::H1(h1::Conn::new(tcp)))
            }
        };
        match tokio::time::timeout(opts.connect_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ErrorKind::Timeout),
        }
    }
}

const MAX_KEPT_BODY: usize = 16 * 1024 * 1024;

async fn h2_handshake<T>(io: TokioIo<T>) -> Result<Conn, ErrorKind>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = http2::handshake(TokioExecutor::new(), io)
        .await
        .map_err(|e| hyper_error_kind(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn::H2(send))
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
                insecure,
            };
            let shared = Arc::new(Shared::new(std::slice::from_ref(&t), &opts).await);
            let mut c = Client::new(shared);
            let wire =
                format!("POST /api/v1/write HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\n\r\n");
            let o = c
                .send_h1(0, wire.as_bytes(), false, false, false, None)
                .await;
            assert_eq!(o.error, want, "insecure={insecure}");
            if insecure {
                assert_eq!(o.status, Some(200));
                // Keep-alive over TLS: a second request on the same connection.
                let o = c
                    .send_h1(0, wire.as_bytes(), false, false, false, None)
                    .await;
                assert_eq!(o.status, Some(200));
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
        let t = Target {
            tls: false,
            host: "127.0.0.1".into(),
            port,
            authority: format!("127.0.0.1:{port}"),
        };
        let opts = ClientOptions {
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            http2: false,
            insecure: false,
        };
        let shared = Arc::new(Shared::new(&[t], &opts).await);
        let mut c = Client::new(shared);
        let o = c
            .send_h1(
                0,
                b"GET / HTTP/1.1\r\nhost: x\r\n\r\n",
                false,
                false,
                false,
                None,
            )
            .await;
        assert_eq!(o.error, Some(ErrorKind::ConnectionRefused));
        assert_eq!(o.status, None);
    }
}
