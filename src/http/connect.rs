//! The one connector for every outgoing connection (the load client and the remote-write
//! sender): TCP connect to the first address that answers, `TCP_NODELAY`, then optionally TLS
//! with a shared rustls config (ALPN as that config says), all within one timeout.
//!
//! Failures carry both the low-cardinality [`ErrorKind`] the load client records and the cause,
//! for exporters that log it. Running out of file descriptors (EMFILE/ENFILE) is logged once,
//! with the fix; see also [`raise_fd_limit`].

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::io_error_kind;
use crate::outcome::ErrorKind;

/// A connected stream: plain TCP or TLS over TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Cleartext.
    Tcp(TcpStream),
    /// TLS (boxed: the rustls state is large).
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether ALPN chose HTTP/2.
    pub(crate) fn alpn_h2(&self) -> bool {
        self.alpn() == Some(b"h2")
    }

    /// The protocol ALPN chose (None: cleartext, or the server chose none).
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match self {
            Stream::Tcp(_) => None,
            Stream::Tls(t) => t.get_ref().1.alpn_protocol(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// TLS for [`connect`]: the connector (from [`super::tls::client_config`]) and the server name
/// to verify.
#[derive(Clone, Copy)]
pub(crate) struct TlsTo<'a> {
    /// The shared rustls connector (its config sets ALPN).
    pub(crate) connector: &'a tokio_rustls::TlsConnector,
    /// Host name (or IP address) the certificate must match.
    pub(crate) server_name: &'a str,
}

/// Why a connection could not be made: the `error.type` and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}")]
pub(crate) struct ConnectError {
    /// The low-cardinality class.
    pub(crate) kind: ErrorKind,
    what: &'static str,
    cause: Cause,
}

#[derive(Debug, thiserror::Error)]
enum Cause {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Text(&'static str),
}

impl ConnectError {
    fn io(what: &'static str, e: io::Error) -> ConnectError {
        ConnectError {
            kind: io_error_kind(&e),
            what,
            cause: Cause::Io(e),
        }
    }

    fn text(kind: ErrorKind, what: &'static str, cause: &'static str) -> ConnectError {
        ConnectError {
            kind,
            what,
            cause: Cause::Text(cause),
        }
    }
}

/// Connects to the first of `addrs` that accepts (TCP, nodelay), then does the TLS handshake
/// when `tls` is given; the whole within `timeout`.
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    tls: Option<TlsTo<'_>>,
    timeout: Duration,
) -> Result<Stream, ConnectError> {
    let fut = async {
        let tcp = tcp_connect(addrs).await?;
        let Some(t) = tls else {
            return Ok(Stream::Tcp(tcp));
        };
        let name = rustls::pki_types::ServerName::try_from(t.server_name.to_string())
            .map_err(|_| ConnectError::text(ErrorKind::Tls, "tls", "invalid server name"))?;
        match t.connector.connect(name, tcp).await {
            Ok(s) => Ok(Stream::Tls(Box::new(s))),
            Err(e) => {
                let mut err = ConnectError::io("tls handshake", e);
                if err.kind == ErrorKind::Io {
                    err.kind = ErrorKind::Tls;
                }
                Err(err)
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::text(
            ErrorKind::Timeout,
            "connect",
            "timed out",
        )),
    }
}

/// Resolves `host:port` and [`connect`]s; for senders that resolve on every connect (the
/// exporters, through `export::transport`).
pub(crate) async fn connect_host(
    host: &str,
    port: u16,
    tls: Option<TlsTo<'_>>,
    timeout: Duration,
) -> Result<Stream, ConnectError> {
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(it)) => it.collect(),
            Ok(Err(e)) => {
                let mut err = ConnectError::io("resolve", e);
                err.kind = ErrorKind::Dns;
                return Err(err);
            }
            Err(_) => {
                return Err(ConnectError::text(
                    ErrorKind::Timeout,
                    "resolve",
                    "timed out",
                ));
            }
        };
    connect(&addrs, tls, timeout).await
}

async fn tcp_connect(addrs: &[SocketAddr]) -> Result<TcpStream, ConnectError> {
    let mut last = ConnectError::text(ErrorKind::Dns, "resolve", "no address");
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => {
                let err = ConnectError::io("connect", e);
                if err.kind == ErrorKind::TooManyOpenFiles {
                    warn_fd_exhausted();
                    return Err(err);
                }
                last = err;
            }
        }
    }
    Err(last)
}

static FD_WARNED: AtomicBool = AtomicBool::new(false);

/// Logs, once per process, that connections fail for lack of file descriptors.
fn warn_fd_exhausted() {
    if FD_WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    let limit = fd_limit().map_or_else(String::new, |(soft, hard)| {
        format!(" (open-file limit: soft {soft}, hard {hard})")
    });
    tracing::warn!(
        "too many open files{limit}: new connections fail with error.type=too_many_open_files; \
         raise `ulimit -n` or use fewer VUs (failing VUs back off up to 1s)"
    );
}

/// The open-file limit (soft, hard).
#[cfg(unix)]
#[allow(clippy::unnecessary_cast, reason = "rlim_t is not u64 on every Unix")]
fn fd_limit() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; no other memory is touched.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    ok.then_some((r.rlim_cur as u64, r.rlim_max as u64))
}

#[cfg(not(unix))]
fn fd_limit() -> Option<(u64, u64)> {
    None
}

/// Raises the soft open-file limit to the hard limit (as wrk and k6 do): every VU holds a
/// connection per server, and the common default soft limit (1024) is below what a load test
/// needs. Returns the (old, new) soft limit when it changed.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast, reason = "rlim_t is not u64 on every Unix")]
pub(crate) fn raise_fd_limit() -> Option<(u64, u64)> {
    let (soft, hard) = fd_limit()?;
    if soft >= hard {
        return None;
    }
    let mut want = hard;
    // macOS refuses RLIM_INFINITY for open files; OPEN_MAX (10240) is its real ceiling.
    if cfg!(target_os = "macos") {
        want = want.min(10_240);
    }
    let r = libc::rlimit {
        rlim_cur: want as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } == 0;
    ok.then_some((soft, want))
}

/// Raising the open-file limit is a Unix notion.
#[cfg(not(unix))]
pub(crate) fn raise_fd_limit() -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn connects_plain_and_tls_and_names_failures() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let s = connect_host("127.0.0.1", port, None, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(matches!(s, Stream::Tcp(_)) && !s.alpn_h2());
        drop(l);
        let e = connect_host("127.0.0.1", port, None, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ConnectionRefused);
        assert!(e.to_string().starts_with("connect: "), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let (_ca, cert, key) = crate::test_support::make_test_pki(dir.path())
            .expect("the openssl CLI makes the test certificates: apt-get install -y openssl");
        let (addr, _) = crate::test_support::tls_receiver(&cert, &key, |_| true).await;
        for (insecure, want) in [(true, None), (false, Some(ErrorKind::Tls))] {
            let cfg =
                crate::http::tls::client_config(insecure, Vec::new(), &[b"http/1.1"]).unwrap();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
            let tls = TlsTo {
                connector: &connector,
                server_name: "127.0.0.1",
            };
            let r = connect(&[addr], Some(tls), Duration::from_secs(5)).await;
            assert_eq!(
                r.as_ref().err().map(|e| e.kind),
                want,
                "insecure={insecure}"
            );
            if let Ok(s) = r {
                assert!(matches!(s, Stream::Tls(_)) && !s.alpn_h2());
            }
        }
    }
}
