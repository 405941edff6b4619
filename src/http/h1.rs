//! A minimal HTTP/1.1 client connection for the hot path.
//!
//! Requests go out as pre-serialized bytes (built once per request definition, or rendered into
//! a reused buffer when they use per-VU variables), so sending is one write. Responses are
//! parsed with `httparse` into a stack array of 64 headers — no `HeaderMap`, no allocation; a
//! response with more falls back to a heap array sized to it — and bodies (content-length,
//! chunked, or until close) are counted and discarded unless the request needs them for a check
//! or an extraction (then the first [`KEPT_BODY_LIMIT`] bytes are kept). HTTP/2 goes through
//! hyper instead.
//!
//! A kept-alive connection may have been closed by the server while idle. Before a reused
//! connection carries a request, one non-blocking read looks for the server's FIN (or bytes it
//! should not have sent); every failure says how far the exchange got ([`Stage`]), so the
//! client can retry a request the server never saw on a fresh connection.

use std::pin::Pin;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::outcome::{ErrorKind, Wire};

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Initial read buffer: small, because 10,000 VUs hold 10,000 of them.
const INITIAL_BUF: usize = 2 * 1024;
/// Largest read buffer it grows to while streaming large bodies.
const MAX_BUF: usize = 64 * 1024;
/// Largest body kept for checks and extraction: checks and extraction see the first 1 MiB.
pub(crate) const KEPT_BODY_LIMIT: usize = 1024 * 1024;
/// Response headers parsed into the stack array; more fall back to the heap.
const MAX_HEADERS: usize = 64;

/// A parsed response.
#[derive(Debug)]
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// Body bytes received (after de-chunking).
    pub(crate) body_len: u64,
    /// The body (its first [`KEPT_BODY_LIMIT`] bytes), when asked for.
    pub(crate) body: Option<Bytes>,
    /// Headers, when asked for.
    pub(crate) headers: Option<http::HeaderMap>,
    /// Whether the connection can carry another request.
    pub(crate) reusable: bool,
}

/// How far a failed exchange got: decides whether its request may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Nothing of the request was written: the connection was found closed (or carrying bytes
    /// nobody asked for) before it, or the first write failed.
    Unsent,
    /// The request was written, at least in part; no byte of a response came back.
    Unanswered,
    /// Response bytes came back.
    Answered,
}

/// A failed exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The error type.
    pub(crate) kind: ErrorKind,
    /// How far it got.
    pub(crate) stage: Stage,
}

impl Failure {
    /// Whether a request that failed like this on a reused connection may go again on a fresh
    /// one, as mature clients decide (Go's net/http, hyper's pool): always when nothing was
    /// written; when the server closed or reset the connection before answering, only for
    /// idempotent methods (the server may have acted on the request).
    pub(crate) fn retryable(self, idempotent: bool) -> bool {
        match self.stage {
            Stage::Unsent => true,
            Stage::Unanswered => {
                idempotent
                    && matches!(
                        self.kind,
                        ErrorKind::ConnectionClosed | ErrorKind::ConnectionReset
                    )
            }
            Stage::Answered => false,
        }
    }
}

/// One HTTP/1.1 connection.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    io: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The last read filled the whole buffer: large bodies grow it (up to `MAX_BUF`).
    last_full: bool,
    /// Octets written and read since the last [`Conn::take_wire`].
    wire: Wire,
}

enum BodyKind {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A parsed response head (small: it is moved on every response; the headers, when kept, go
/// straight to their place).
struct Head {
    status: u16,
    len: usize,
    kind: BodyKind,
    close: bool,
}

enum Parsed {
    Complete(Head),
    Partial,
    TooManyHeaders,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Wraps a connected stream.
    pub(crate) fn new(io: S) -> Self {
        Conn {
            io,
            buf: Vec::new(),
            start: 0,
            end: 0,
            last_full: false,
            wire: Wire::default(),
        }
    }

    /// The octets written and read since the last call (a request's, when called after each
    /// exchange, however it ended).
    pub(crate) fn take_wire(&mut self) -> Wire {
        std::mem::take(&mut self.wire)
    }

    /// Sends `request` (complete wire bytes) and reads the whole response.
    pub(crate) async fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
        keep_body: bool,
        keep_headers: bool,
    ) -> Result<Response, Failure> {
        let unsent = |kind| Failure {
            kind,
            stage: Stage::Unsent,
        };
        // A connection that has carried a response before (its buffer exists) may have been
        // closed by the server since, or hold bytes that are no answer to anything.
        if self.end > self.start {
            return Err(unsent(ErrorKind::Protocol));
        }
        if !self.buf.is_empty()
            && let Some(kind) = self.idle_check().await
        {
            return Err(unsent(kind));
        }
        self.start = 0;
        self.end = 0;
        self.send(request).await?;
        let mut answered = false;
        let mut headers = None;
        loop {
            let head = match self
                .read_head(head_request, keep_headers, &mut headers)
                .await
            {
                Ok(h) => h,
                Err(kind) => {
                    // Before the first complete head the buffer is never reset: any byte read
                    // is still in it.
                    let stage = if answered || self.end > 0 {
                        Stage::Answered
                    } else {
                        Stage::Unanswered
                    };
                    return Err(Failure { kind, stage });
                }
            };
            answered = true;
            self.start += head.len;
            if (100..200).contains(&head.status) && head.status != 101 {
                continue; // 100 Continue and friends: the real response follows.
            }
            let answered = |kind| Failure {
                kind,
                stage: Stage::Answered,
            };
            // A known length is kept in one allocation (no doubling garbage for big bodies).
            let mut kept = keep_body.then(|| match head.kind {
                BodyKind::Length(n) => BytesMut::with_capacity((n as usize).min(KEPT_BODY_LIMIT)),
                _ => BytesMut::new(),
            });
            let body_len = match head.kind {
                BodyKind::None => 0,
                BodyKind::Length(n) => self.read_length(n, &mut kept).await.map_err(answered)?,
                BodyKind::Chunked => self.read_chunked(&mut kept).await.map_err(answered)?,
                BodyKind::UntilClose => self.read_to_close(&mut kept).await.map_err(answered)?,
            };
            // Bytes after the body were not asked for (stampede never pipelines): the
            // connection is out of step, so it is not used again.
            let reusable = !head.close
                && !matches!(head.kind, BodyKind::UntilClose)
                && head.status != 101
                && self.start == self.end;
            return Ok(Response {
                status: head.status,
                body_len,
                body: kept.map(BytesMut::freeze),
                headers,
                reusable,
            });
        }
    }

    /// One non-blocking read on an idle connection: `None` if nothing is there (the usual case,
    /// no system call when the reactor saw nothing), else why the connection cannot be used:
    /// the server closed it (EOF, reset) or sent bytes unasked.
    async fn idle_check(&mut self) -> Option<ErrorKind> {
        std::future::poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut self.buf);
            Poll::Ready(match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Pending => None,
                Poll::Ready(Ok(())) if rb.filled().is_empty() => Some(ErrorKind::ConnectionClosed),
                Poll::Ready(Ok(())) => Some(ErrorKind::Protocol),
                Poll::Ready(Err(e)) => Some(io_err(&e)),
            })
        })
        .await
    }

    /// Writes the whole request; a failure says whether any of it went out.
    async fn send(&mut self, request: &[u8]) -> Result<(), Failure> {
        let mut done = 0;
        let fail = |kind, done: usize| Failure {
            kind,
            stage: if done == 0 {
                Stage::Unsent
            } else {
                Stage::Unanswered
            },
        };
        while done < request.len() {
            match self.io.write(&request[done..]).await {
                Ok(0) => return Err(fail(ErrorKind::ConnectionClosed, done)),
                Ok(n) => {
                    done += n;
                    self.wire.sent += n as u64;
                }
                Err(e) => return Err(fail(io_err(&e), done)),
            }
        }
        // TLS may hold the last record back; plain TCP returns at once.
        self.io.flush().await.map_err(|e| fail(io_err(&e), done))
    }

    /// Reads more bytes into the buffer; Ok(false) on EOF.
    async fn fill(&mut self) -> Result<bool, ErrorKind> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.last_full && self.buf.len() < MAX_BUF {
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
        } else if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grow = self.buf.len().max(INITIAL_BUF);
            self.buf.resize(self.buf.len() + grow, 0);
        }
        let n = self
            .io
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|e| io_err(&e))?;
        self.last_full = self.end + n == self.buf.len();
        self.end += n;
        self.wire.received += n as u64;
        Ok(n > 0)
    }

    async fn read_head(
        &mut self,
        head_request: bool,
        keep_headers: bool,
        headers: &mut Option<http::HeaderMap>,
    ) -> Result<Head, ErrorKind> {
        loop {
            if self.end > self.start {
                let data = &self.buf[self.start..self.end];
                let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut parsed = parse_head(data, &mut hs, head_request, keep_headers, headers)?;
                if let Parsed::TooManyHeaders = parsed {
                    // Rare: more headers than the stack array holds. Each ends in a newline,
                    // so the newlines received bound their number.
                    let n = memchr::memchr_iter(b'\n', data).count();
                    let mut heap = vec![httparse::EMPTY_HEADER; n];
                    parsed = parse_head(data, &mut heap, head_request, keep_headers, headers)?;
                }
                match parsed {
                    Parsed::Complete(head) => return Ok(head),
                    Parsed::Partial => {
                        if self.end - self.start >= MAX_HEAD {
                            return Err(ErrorKind::Protocol);
                        }
                    }
                    Parsed::TooManyHeaders => return Err(ErrorKind::Protocol),
                }
            }
            if !self.fill().await? {
                return Err(if self.end > self.start {
                    ErrorKind::Protocol
                } else {
                    ErrorKind::ConnectionClosed
                });
            }
        }
    }

    fn take(&mut self, max: u64, kept: &mut Option<BytesMut>) -> u64 {
        let n = ((self.end - self.start) as u64).min(max) as usize;
        if let Some(k) = kept.as_mut() {
            let room = KEPT_BODY_LIMIT.saturating_sub(k.len()).min(n);
            k.extend_from_slice(&self.buf[self.start..self.start + room]);
        }
        self.start += n;
        n as u64
    }

    async fn read_length(
        &mut self,
        len: u64,
        kept: &mut Option<BytesMut>,
    ) -> Result<u64, ErrorKind> {
        let mut left = len;
        loop {
            left -= self.take(left, kept);
            if left == 0 {
                return Ok(len);
            }
            if !self.fill().await? {
                return Err(ErrorKind::ConnectionClosed);
            }
        }
    }

    async fn read_to_close(&mut self, kept: &mut Option<BytesMut>) -> Result<u64, ErrorKind> {
        let mut total = 0;
        loop {
            total += self.take(u64::MAX, kept);
            if !self.fill().await? {
                return Ok(total);
            }
        }
    }

    /// Reads a line ending in CRLF from the buffer; returns its content (without CRLF) range.
    async fn line(&mut self) -> Result<(usize, usize), ErrorKind> {
        loop {
            if let Some(i) = memchr::memmem::find(&self.buf[self.start..self.end], b"\r\n") {
                let r = (self.start, self.start + i);
                self.start += i + 2;
                return Ok(r);
            }
            if self.end - self.start > 4096 {
                return Err(ErrorKind::Protocol);
            }
            if !self.fill().await? {
                return Err(ErrorKind::ConnectionClosed);
            }
        }
    }

    async fn read_chunked(&mut self, kept: &mut Option<BytesMut>) -> Result<u64, ErrorKind> {
        let mut total = 0;
        loop {
            let (a, b) = self.line().await?;
            let size_txt = self.buf[a..b]
                .split(|c| *c == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            let size = std::str::from_utf8(size_txt)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or(ErrorKind::Protocol)?;
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    let (a, b) = self.line().await?;
                    if a == b {
                        return Ok(total);
                    }
                }
            }
            total += self.read_length(size, kept).await?;
            let (a, b) = self.line().await?;
            if a != b {
                return Err(ErrorKind::Protocol);
            }
        }
    }
}

/// Parses a response head from `data` into `hs`; the framing headers are read on the way, and
/// with `keep_headers` all of them go into `headers`.
fn parse_head<'b>(
    data: &'b [u8],
    hs: &mut [httparse::Header<'b>],
    head_request: bool,
    keep_headers: bool,
    headers: &mut Option<http::HeaderMap>,
) -> Result<Parsed, ErrorKind> {
    let mut resp = httparse::Response::new(hs);
    let n = match resp.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Ok(Parsed::TooManyHeaders),
        Err(_) => return Err(ErrorKind::Protocol),
    };
    let status = resp.code.ok_or(ErrorKind::Protocol)?;
    let http10 = resp.version == Some(0);
    let mut length = None;
    let mut chunked = false;
    let mut close = http10;
    for h in resp.headers.iter() {
        // Dispatch on length first: most headers are none of these three.
        let name = h.name.as_bytes();
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let v = content_length(h.value).ok_or(ErrorKind::Protocol)?;
                // Two different lengths: no way to know where the body ends (RFC 9112 §6.3).
                if length.is_some_and(|l| l != v) {
                    return Err(ErrorKind::Protocol);
                }
                length = Some(v);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                chunked = h
                    .value
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                let v = h.value.trim_ascii();
                if v.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if v.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
            _ => {}
        }
    }
    if keep_headers {
        let mut map = http::HeaderMap::with_capacity(resp.headers.len());
        for h in resp.headers.iter() {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(h.name.as_bytes()),
                http::HeaderValue::from_bytes(h.value),
            ) {
                map.append(n, v);
            }
        }
        *headers = Some(map);
    }
    let kind = if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        BodyKind::None
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(n) = length {
        BodyKind::Length(n)
    } else {
        BodyKind::UntilClose
    };
    Ok(Parsed::Complete(Head {
        status,
        len: n,
        kind,
        close,
    }))
}

/// A `Content-Length` value: digits, or a list of identical values (`5, 5`), as RFC 9110 §8.6
/// lets a recipient accept.
fn content_length(v: &[u8]) -> Option<u64> {
    // The common case, plain digits, without building a `str`.
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return content_length_list(v);
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (!v.is_empty()).then_some(n)
}

fn content_length_list(v: &[u8]) -> Option<u64> {
    let mut it = v.split(|b| *b == b',').map(|p| {
        std::str::from_utf8(p.trim_ascii())
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
    });
    let first = it.next()??;
    it.all(|v| v == Some(first)).then_some(first)
}

fn io_err(e: &std::io::Error) -> ErrorKind {
    super::io_error_kind(e)
}

/// Serializes a request head (and body) into `out`.
pub(crate) fn write_request(
    out: &mut Vec<u8>,
    method: &http::Method,
    path_and_query: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
    body: &[u8],
) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (n, v) in headers {
        out.extend_from_slice(n.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty()
        || matches!(
            *method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH
        )
    {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Runs one exchange against a canned server reply.
    async fn exchange(
        reply: impl AsRef<[u8]> + Send + 'static,
        keep_body: bool,
    ) -> Result<Response, ErrorKind> {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let srv = tokio::spawn(async move {
            let reply = reply.as_ref();
            let mut req = vec![0u8; 1024];
            let _ = server.read(&mut req).await;
            // Dribble the reply in small pieces to exercise partial reads.
            for chunk in reply.chunks(7) {
                let _ = server.write_all(chunk).await;
                tokio::task::yield_now().await;
            }
            // Keep the stream open (keep-alive) unless the reply relies on close.
            if !reply.windows(9).any(|w| w == b"no-length") {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        let mut c = Conn::new(client);
        let r = c
            .exchange(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", false, keep_body, true)
            .await;
        let _ = srv.await;
        r.map_err(|f| f.kind)
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";

    #[tokio::test]
    async fn more_than_64_headers_are_accepted() {
        for n in [64, 65, 80, 500] {
            let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n".to_vec();
            for i in 0..n {
                reply.extend_from_slice(format!("X-H{i}: v{i}\r\n").as_bytes());
            }
            reply.extend_from_slice(b"\r\nok");
            let r = exchange(reply, true).await.unwrap();
            assert_eq!((r.status, r.body_len, r.reusable), (200, 2, true), "{n}");
            let h = r.headers.unwrap();
            assert_eq!(h.len(), n + 1, "{n}");
            assert_eq!(
                h.get(format!("x-h{}", n - 1)).unwrap(),
                &format!("v{}", n - 1)
            );
        }
    }

    #[tokio::test]
    async fn conflicting_content_lengths_are_a_protocol_error_at_once() {
        let t = std::time::Instant::now();
        // The server keeps the connection open: waiting for a body would hang.
        assert_eq!(
            exchange(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 10\r\n\r\nok",
                false
            )
            .await
            .unwrap_err(),
            ErrorKind::Protocol
        );
        assert_eq!(
            exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", false)
                .await
                .unwrap_err(),
            ErrorKind::Protocol
        );
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // The same value twice (or as a list) is one length.
        let r = exchange(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok",
            false,
        )
        .await
        .unwrap();
        assert_eq!((r.body_len, r.reusable), (2, true));
    }

    /// A server that answers `replies` in turn, one per request read, then idles.
    fn scripted(
        replies: Vec<Vec<u8>>,
    ) -> (Conn<tokio::io::DuplexStream>, tokio::task::JoinHandle<()>) {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let srv = tokio::spawn(async move {
            let mut req = vec![0u8; 1024];
            for r in replies {
                if r.starts_with(b"HTTP/") {
                    let _ = server.read(&mut req).await;
                } else {
                    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                }
                let _ = server.write_all(&r).await;
            }
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        (Conn::new(client), srv)
    }

    #[tokio::test]
    async fn bytes_after_the_body_retire_the_connection() {
        // In one write: the client reads the stray bytes with the body.
        let (mut c, srv) = scripted(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA".to_vec(),
        ]);
        let r = c.exchange(GET, false, false, false).await.unwrap();
        assert_eq!((r.status, r.body_len, r.reusable), (200, 2, false));
        srv.abort();
        // Stray bytes that come later, while the connection is idle: found before writing.
        let (mut c, srv) = scripted(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            b"LATER".to_vec(),
        ]);
        assert!(c.exchange(GET, false, false, false).await.unwrap().reusable);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let f = c.exchange(GET, false, false, false).await.unwrap_err();
        assert_eq!(
            f,
            Failure {
                kind: ErrorKind::Protocol,
                stage: Stage::Unsent
            }
        );
        srv.abort();
    }

    #[tokio::test]
    async fn kept_bodies_are_bounded() {
        let big = KEPT_BODY_LIMIT + 1000;
        let mut reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {big}\r\n\r\n").into_bytes();
        reply.resize(reply.len() + big, b'x');
        let r = exchange(reply, true).await.unwrap();
        assert_eq!(r.body_len, big as u64);
        assert_eq!(r.body.unwrap().len(), KEPT_BODY_LIMIT);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_found_before_writing() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let mut c = Conn::new(client);
        let srv = tokio::spawn(async move {
            let mut req = vec![0u8; 1024];
            let _ = server.read(&mut req).await;
            let _ = server
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
            // Closes without `Connection: close`, as an idle timeout does.
        });
        let r = c.exchange(GET, false, false, false).await.unwrap();
        assert!(r.reusable);
        srv.await.unwrap();
        let f = c.exchange(GET, false, false, false).await.unwrap_err();
        assert_eq!(
            f,
            Failure {
                kind: ErrorKind::ConnectionClosed,
                stage: Stage::Unsent
            }
        );
        assert!(
            f.retryable(false),
            "nothing was sent: any method may go again"
        );
    }

    #[test]
    fn only_unanswered_idempotent_requests_or_unsent_ones_are_retried() {
        let f = |kind, stage| Failure { kind, stage };
        let closed = ErrorKind::ConnectionClosed;
        assert!(f(ErrorKind::Protocol, Stage::Unsent).retryable(false));
        assert!(f(closed, Stage::Unanswered).retryable(true));
        assert!(f(ErrorKind::ConnectionReset, Stage::Unanswered).retryable(true));
        assert!(
            !f(closed, Stage::Unanswered).retryable(false),
            "POST may have been acted on"
        );
        assert!(!f(ErrorKind::Timeout, Stage::Unanswered).retryable(true));
        assert!(!f(closed, Stage::Answered).retryable(true));
    }

    #[tokio::test]
    async fn content_length_bodies() {
        let r = exchange(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: t\r\n\r\nhello",
            true,
        )
        .await
        .unwrap();
        assert_eq!((r.status, r.body_len, r.reusable), (200, 5, true));
        assert_eq!(r.body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(r.headers.unwrap().get("server").unwrap(), "t");
    }

    #[tokio::test]
    async fn chunked_bodies_with_extensions_and_trailers() {
        let r = exchange(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n",
            true,
        )
        .await
        .unwrap();
        assert_eq!(r.body_len, 11);
        assert_eq!(r.body.as_deref(), Some(&b"hello world"[..]));
        assert!(r.reusable);
    }

    #[tokio::test]
    async fn body_until_close_and_connection_close() {
        let r = exchange(b"HTTP/1.1 200 OK\r\nX-Case: no-length\r\n\r\nabc", false)
            .await
            .unwrap();
        assert_eq!((r.body_len, r.reusable), (3, false));
        let r = exchange(
            b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .await
        .unwrap();
        assert_eq!((r.status, r.reusable), (503, false));
    }

    #[tokio::test]
    async fn informational_responses_are_skipped_and_204_has_no_body() {
        let r = exchange(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            false,
        )
        .await
        .unwrap();
        assert_eq!((r.status, r.body_len, r.reusable), (204, 0, true));
    }

    #[tokio::test]
    async fn garbage_and_truncation_are_errors_not_panics() {
        assert_eq!(
            exchange(b"SSH-2.0-OpenSSH\r\n\r\n", false)
                .await
                .unwrap_err(),
            ErrorKind::Protocol
        );
        assert_eq!(
            exchange(
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Case: no-length\r\n\r\nabc",
                false
            )
            .await
            .unwrap_err(),
            ErrorKind::ConnectionClosed
        );
        assert_eq!(
            exchange(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", false)
                .await
                .unwrap_err(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn requests_serialize_with_a_length_for_bodies() {
        let mut out = Vec::new();
        let h = [(http::header::HOST, http::HeaderValue::from_static("a:1"))];
        write_request(&mut out, &http::Method::POST, "/x?y=1", &h, b"{}");
        assert_eq!(
            out,
            b"POST /x?y=1 HTTP/1.1\r\nhost: a:1\r\ncontent-length: 2\r\n\r\n{}"
        );
        write_request(&mut out, &http::Method::GET, "/", &h, b"");
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: a:1\r\n\r\n");
    }
}
