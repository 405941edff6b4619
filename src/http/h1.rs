//! A minimal HTTP/1.1 client connection for the hot path.
//!
//! Requests go out as pre-serialized bytes (built once per request definition, or rendered into
//! a reused buffer when they use per-VU variables), so sending is one write. Responses are
//! parsed with `httparse` into a stack array of headers — no `HeaderMap`, no allocation — and
//! bodies (content-length, chunked, or until close) are counted and discarded unless the
//! request needs them for a check or an extraction. HTTP/2 goes through hyper instead.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::outcome::ErrorKind;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Initial read buffer: small, because 10,000 VUs hold 10,000 of them.
const INITIAL_BUF: usize = 2 * 1024;
/// Largest read buffer it grows to while streaming large bodies.
const MAX_BUF: usize = 64 * 1024;
/// Largest body kept for checks and extraction.
const MAX_KEPT_BODY: usize = 16 * 1024 * 1024;
/// Response headers parsed at most.
const MAX_HEADERS: usize = 64;

/// A parsed response.
#[derive(Debug)]
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// Body bytes received (after de-chunking).
    pub(crate) body_len: u64,
    /// The body, when asked for.
    pub(crate) body: Option<Bytes>,
    /// Headers, when asked for.
    pub(crate) headers: Option<http::HeaderMap>,
    /// Whether the connection can carry another request.
    pub(crate) reusable: bool,
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
}

enum BodyKind {
    None,
    Length(u64),
    Chunked,
    UntilClose,
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
        }
    }

    /// Sends `request` (complete wire bytes) and reads the whole response.
    pub(crate) async fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
        keep_body: bool,
        keep_headers: bool,
    ) -> Result<Response, ErrorKind> {
        if self.end > self.start {
            // Bytes the server sent after the previous response: not valid HTTP/1.1.
            return Err(ErrorKind::Protocol);
        }
        self.start = 0;
        self.end = 0;
        self.io.write_all(request).await.map_err(|e| io_err(&e))?;
        loop {
            let (status, head_len, kind, close, headers) =
                self.read_head(head_request, keep_headers).await?;
            self.start += head_len;
            if (100..200).contains(&status) && status != 101 {
                continue; // 100 Continue and friends: the real response follows.
            }
            let mut kept = keep_body.then(BytesMut::new);
            let body_len = match kind {
                BodyKind::None => 0,
                BodyKind::Length(n) => self.read_length(n, &mut kept).await?,
                BodyKind::Chunked => self.read_chunked(&mut kept).await?,
                BodyKind::UntilClose => self.read_to_close(&mut kept).await?,
            };
            let reusable = !close && !matches!(kind, BodyKind::UntilClose) && status != 101;
            return Ok(Response {
                status,
                body_len,
                body: kept.map(BytesMut::freeze),
                headers,
                reusable,
            });
        }
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
        Ok(n > 0)
    }

    #[allow(clippy::type_complexity)]
    async fn read_head(
        &mut self,
        head_request: bool,
        keep_headers: bool,
    ) -> Result<(u16, usize, BodyKind, bool, Option<http::HeaderMap>), ErrorKind> {
        loop {
            if self.end > self.start {
                let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut hs);
                match resp.parse(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete(n)) => {
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
                                    let v = std::str::from_utf8(h.value)
                                        .ok()
                                        .and_then(|s| s.trim().parse::<u64>().ok())
                                        .ok_or(ErrorKind::Protocol)?;
                                    length = Some(v);
                                }
                                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                                    chunked =
                                        h.value.rsplit(|b| *b == b',').next().is_some_and(|last| {
                                            last.trim_ascii().eq_ignore_ascii_case(b"chunked")
                                        });
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
                        let headers = keep_headers.then(|| {
                            let mut map = http::HeaderMap::with_capacity(resp.headers.len());
                            for h in resp.headers.iter() {
                                if let (Ok(n), Ok(v)) = (
                                    http::HeaderName::from_bytes(h.name.as_bytes()),
                                    http::HeaderValue::from_bytes(h.value),
                                ) {
                                    map.append(n, v);
                                }
                            }
                            map
                        });
                        let kind = if head_request
                            || status == 204
                            || status == 304
                            || (100..200).contains(&status)
                        {
                            BodyKind::None
                        } else if chunked {
                            BodyKind::Chunked
                        } else if let Some(n) = length {
                            BodyKind::Length(n)
                        } else {
                            BodyKind::UntilClose
                        };
                        return Ok((status, n, kind, close, headers));
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.end - self.start >= MAX_HEAD {
                            return Err(ErrorKind::Protocol);
                        }
                    }
                    Err(_) => return Err(ErrorKind::Protocol),
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
        if let Some(k) = kept.as_mut()
            && k.len() < MAX_KEPT_BODY
        {
            k.extend_from_slice(&self.buf[self.start..self.start + n]);
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
            if let Some(i) = self.buf[self.start..self.end]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
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
    async fn exchange(reply: &'static [u8], keep_body: bool) -> Result<Response, ErrorKind> {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let srv = tokio::spawn(async move {
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
        r
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
