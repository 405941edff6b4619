//! The exporters' network side: one connector (TCP, then TLS when the URL is https) for
//! remote-write, OTLP/HTTP and OTLP/gRPC, and HTTP/1.1 exchanges on a kept-alive connection.
//! Failures come back as [`Failure`]s carrying their whole cause.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::retry::{Failure, body_excerpt, chain, parse_retry_after};

/// `d` from now, or a year from now when that would overflow (durations are user input).
pub(crate) fn after(d: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(365 * 86_400))
}

/// A byte stream to a receiver: plain TCP or TLS over it.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Where a receiver is and how to reach it.
#[derive(Clone)]
pub(crate) struct Peer {
    /// Host name or address (no brackets).
    pub(crate) host: String,
    /// Port.
    pub(crate) port: u16,
    /// TLS, for https.
    pub(crate) tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}{}",
            self.host,
            self.port,
            if self.tls.is_some() { " (tls)" } else { "" }
        )
    }
}

/// A TLS connector trusting the webpki roots plus `extra`, offering `alpn`.
pub(crate) fn tls_connector(
    insecure: bool,
    extra: Vec<rustls::pki_types::CertificateDer<'static>>,
    alpn: &[&[u8]],
) -> Result<tokio_rustls::TlsConnector, String> {
    let config =
        crate::http::tls::client_config(insecure, extra, alpn).map_err(|e| e.to_string())?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Longest a connect (resolve, TCP, TLS) may take; every caller bounds it further by its own
/// attempt timeout and the flush deadline.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Connects to `peer` (TCP, then TLS when configured) through the HTTP layer's connector — the
/// same connect, nodelay, TLS handshake and error causes as the load client's.
pub(crate) async fn connect(peer: &Peer) -> Result<Box<dyn Stream>, Failure> {
    let tls = peer
        .tls
        .as_ref()
        .map(|connector| crate::http::connect::TlsTo {
            connector,
            server_name: &peer.host,
        });
    match crate::http::connect::connect_host(&peer.host, peer.port, tls, CONNECT_TIMEOUT).await {
        Ok(stream) => Ok(Box::new(stream)),
        Err(e) => Err(Failure::Connect(format!(
            "{}:{}: {e}",
            peer.host, peer.port
        ))),
    }
}

/// [`connect`] as a tower service, for tonic's channel.
#[derive(Clone, Debug)]
pub(crate) struct Connector(pub(crate) Arc<Peer>);

impl tonic::codegen::Service<http::Uri> for Connector {
    type Response = TokioIo<Box<dyn Stream>>;
    type Error = Failure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Failure>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let peer = self.0.clone();
        Box::pin(async move { connect(&peer).await.map(TokioIo::new) })
    }
}

impl std::error::Error for Failure {}

/// A receiver's success answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The body (up to [`MAX_BODY`]).
    pub(crate) body: Bytes,
}

/// Response bodies are read up to this size.
const MAX_BODY: usize = 1 << 20;

/// An HTTP/1.1 client of one receiver, keeping its connection alive between requests.
#[derive(Debug)]
pub(crate) struct Http1 {
    peer: Arc<Peer>,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Http1 {
    /// A client; connects on the first request.
    pub(crate) fn new(peer: Peer) -> Self {
        Http1 {
            peer: Arc::new(peer),
            conn: None,
        }
    }

    /// Sends `req` and reads the answer, all before `until`. A 2xx answer is `Ok`; any other
    /// status is a [`Failure::Status`] with `Retry-After` and the start of the body.
    pub(crate) async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
        until: Instant,
    ) -> Result<Answer, Failure> {
        let started = Instant::now();
        match tokio::time::timeout_at(until, self.exchange(req)).await {
            Ok(Ok(answer)) => Ok(answer),
            // The receiver answered: the connection stays usable.
            Ok(Err(f @ Failure::Status { .. })) => Err(f),
            Ok(Err(f)) => {
                self.conn = None;
                Err(f)
            }
            Err(_) => {
                self.conn = None;
                Err(Failure::Timeout(until.saturating_duration_since(started)))
            }
        }
    }

    async fn exchange(&mut self, req: Request<Full<Bytes>>) -> Result<Answer, Failure> {
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            self.conn = None;
            let io = connect(&self.peer).await?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                .await
                .map_err(|e| Failure::Broken(chain(&e)))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.conn = Some(sender);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::Broken("no connection".into()));
        };
        conn.ready().await.map_err(|e| Failure::Broken(chain(&e)))?;
        let resp = conn
            .send_request(req)
            .await
            .map_err(|e| Failure::Broken(chain(&e)))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let ok = (200..300).contains(&status);
        let body = match Limited::new(resp.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            // A success is a success even when its body is cut short.
            Err(_) if ok => Bytes::new(),
            Err(e) => return Err(Failure::Broken(e.to_string())),
        };
        if ok {
            Ok(Answer { body })
        } else {
            Err(Failure::Status {
                code: status,
                retry_after,
                body: describe_error_body(content_type.as_deref(), &body),
            })
        }
    }
}

/// What an error body says: an OTLP `google.rpc.Status` (protobuf) gives its message, anything
/// else its start as text.
fn describe_error_body(content_type: Option<&str>, body: &[u8]) -> String {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    if content_type.is_some_and(|t| t.contains("protobuf")) {
        if let Ok(s) = <RpcStatus as prost::Message>::decode(body) {
            if !s.message.is_empty() {
                return body_excerpt(s.message.as_bytes());
            }
        }
    }
    body_excerpt(body)
}
