//! HTTP/2 on the hot path, over the `h2` crate directly (no hyper dispatch layer): the
//! connections a worker's VUs send their streams on, and one exchange on one stream.
//!
//! - [`Pool`]: connections by target. With `h2_max_streams = 1` every VU has a pool of its own
//!   (one connection, as over HTTP/1.1); with N > 1 the worker's VUs share one pool and a
//!   connection carries at most `min(N, SETTINGS_MAX_CONCURRENT_STREAMS)` VUs, each with at
//!   most one stream in flight. A pool lives on one worker thread: `Rc`/`Cell`, no lock.
//! - [`handshake`]: the HTTP/2 preface and settings over a connected stream; the connection's
//!   I/O runs as a task on the worker's runtime.
//! - [`exchange`]: one request and its whole response, the body sent within the peer's flow
//!   control windows and the response's window released as it is read.
//!
//! Failures come back as a [`Failure`]: an [`ErrorKind`] plus whether the server certainly did
//! not process the request (`REFUSED_STREAM`, a stream above a `GOAWAY`'s last stream id, or a
//! request the connection refused before sending), which the client may send again on another
//! connection.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ::h2::client::SendRequest;
use ::h2::{Reason, RecvStream};
use bytes::{Bytes, BytesMut};
use http::Request;
use tokio::io::{AsyncRead, AsyncWrite};

use super::io_error_kind;
use crate::outcome::{ErrorKind, Outcome};

/// Receive window of each stream: large enough that a response body is never held up by
/// window updates on a fast link (h2load's default is 1 GiB − 1).
const STREAM_WINDOW: u32 = 8 << 20;
/// Receive window of the connection (shared by its streams).
const CONN_WINDOW: u32 = 64 << 20;

/// One HTTP/2 connection in a [`Pool`].
pub(crate) struct Slot {
    send: SendRequest<Bytes>,
    /// VUs attached to this connection.
    users: Cell<usize>,
    /// The connection task ended, or the server sent GOAWAY: no new streams.
    closed: Arc<AtomicBool>,
}

impl Opening {
    /// Waits until the connection is open (or its opening failed).
    pub(crate) async fn wait(&self) {
        let notified = self.done.notified();
        notified.await;
        self.waiting.set(self.waiting.get().saturating_sub(1));
    }
}

impl Slot {
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Streams this connection may carry at once: the configured most, fewer if the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` says so.
    fn capacity(&self, max_streams: usize) -> usize {
        if max_streams == 1 {
            return 1;
        }
        max_streams.min(self.send.current_max_send_streams()).max(1)
    }
}

/// The HTTP/2 connections of one worker (or, with one stream per connection, of one VU), by
/// target.
pub(crate) struct Pool {
    max_streams: usize,
    slots: RefCell<Vec<Vec<Rc<Slot>>>>,
    /// By target: a connection being opened that VUs wait for rather than open their own.
    opening: RefCell<Vec<Option<Rc<Opening>>>>,
}

/// A connection being opened: VUs that find no room elsewhere wait for it (up to the most
/// streams a connection may carry) instead of each opening one.
pub(crate) struct Opening {
    waiting: Cell<usize>,
    done: tokio::sync::Notify,
}

/// Held by the VU that opens a connection; when dropped (opened, failed or cancelled) the VUs
/// waiting for the connection try again.
pub(crate) struct OpenGuard<'a> {
    pool: &'a Pool,
    target: usize,
    opening: Rc<Opening>,
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.pool.opening.borrow_mut().get_mut(self.target)
            && slot.as_ref().is_some_and(|o| Rc::ptr_eq(o, &self.opening))
        {
            *slot = None;
        }
        self.opening.done.notify_waiters();
    }
}

/// What a VU without a connection does next.
pub(crate) enum NoRoom<'a> {
    /// Another VU is opening a connection with room: wait for it, then look again.
    Wait(Rc<Opening>),
    /// Open one (the guard lets others wait for it).
    Open(OpenGuard<'a>),
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.slots.borrow();
        f.debug_struct("Pool")
            .field("max_streams", &self.max_streams)
            .field("connections", &slots.iter().map(Vec::len).sum::<usize>())
            .finish()
    }
}

impl Pool {
    /// An empty pool for `targets` servers, at most `max_streams` streams per connection.
    pub(crate) fn new(targets: usize, max_streams: usize) -> Pool {
        Pool {
            max_streams: max_streams.max(1),
            slots: RefCell::new((0..targets).map(|_| Vec::new()).collect()),
            opening: RefCell::new((0..targets).map(|_| None).collect()),
        }
    }

    /// No connection to `target` has room: wait for one being opened, or open one.
    pub(crate) fn no_room(&self, target: usize) -> NoRoom<'_> {
        let mut opening = self.opening.borrow_mut();
        if let Some(Some(o)) = opening.get(target)
            && o.waiting.get() + 1 < self.max_streams
        {
            o.waiting.set(o.waiting.get() + 1);
            return NoRoom::Wait(o.clone());
        }
        let o = Rc::new(Opening {
            waiting: Cell::new(0),
            done: tokio::sync::Notify::new(),
        });
        if self.max_streams > 1
            && let Some(slot) = opening.get_mut(target)
        {
            *slot = Some(o.clone());
        }
        NoRoom::Open(OpenGuard {
            pool: self,
            target,
            opening: o,
        })
    }

    /// Most streams per connection.
    pub(crate) fn max_streams(&self) -> usize {
        self.max_streams
    }

    /// Attaches to an open connection to `target` with room for one more VU, if there is one.
    /// Closed connections nobody uses any more are dropped on the way.
    pub(crate) fn attach(&self, target: usize) -> Option<Attached> {
        let mut slots = self.slots.borrow_mut();
        let list = slots.get_mut(target)?;
        list.retain(|s| !(s.closed() && s.users.get() == 0));
        let s = list
            .iter()
            .find(|s| !s.closed() && s.users.get() < s.capacity(self.max_streams))?;
        Some(Attached::new(s.clone()))
    }

    /// Adds a new connection to `target` and attaches to it.
    pub(crate) fn add(&self, target: usize, conn: NewConn) -> Attached {
        let slot = Rc::new(Slot {
            send: conn.send,
            users: Cell::new(0),
            closed: conn.closed,
        });
        if let Some(list) = self.slots.borrow_mut().get_mut(target) {
            list.push(slot.clone());
        }
        Attached::new(slot)
    }
}

/// A VU's place on a pooled connection: its own handle to open streams with.
pub(crate) struct Attached {
    slot: Rc<Slot>,
    send: SendRequest<Bytes>,
}

impl Attached {
    fn new(slot: Rc<Slot>) -> Attached {
        slot.users.set(slot.users.get() + 1);
        Attached {
            send: slot.send.clone(),
            slot,
        }
    }

    /// The connection can take this VU's next stream: open, and not carrying more VUs than
    /// the server now allows streams (its settings may have arrived after the VU attached).
    pub(crate) fn usable(&self, max_streams: usize) -> bool {
        !self.slot.closed() && self.slot.users.get() <= self.slot.capacity(max_streams)
    }

    /// No new streams on this connection (the server sent GOAWAY, or it failed).
    pub(crate) fn close(&self) {
        self.slot.closed.store(true, Ordering::Relaxed);
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.slot.users.set(self.slot.users.get().saturating_sub(1));
    }
}

/// A connection just opened, not yet in a pool.
pub(crate) struct NewConn {
    send: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

/// The HTTP/2 handshake over a connected stream; the connection runs as a task on the current
/// runtime until it ends (then it is marked closed). With `settings`, returns only once the
/// server's SETTINGS are in (a PING's round trip: the server sends its SETTINGS first), so a
/// shared connection takes no more VUs than the server allows streams.
pub(crate) async fn handshake<T>(io: T, settings: bool) -> Result<NewConn, ErrorKind>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, mut conn) = ::h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .enable_push(false)
        .handshake::<T, Bytes>(io)
        .await
        .map_err(|e| classify(&e))?;
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let ping = if settings { conn.ping_pong() } else { None };
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "HTTP/2 connection ended");
        }
        flag.store(true, Ordering::Relaxed);
    });
    if let Some(mut ping) = ping {
        ping.ping(::h2::Ping::opaque())
            .await
            .map_err(|e| classify(&e))?;
    }
    Ok(NewConn { send, closed })
}

/// Why an exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) kind: ErrorKind,
    /// The server did not process the request (it may go again on another connection).
    pub(crate) unprocessed: Unprocessed,
    /// Only this stream failed (`RST_STREAM`): the connection goes on carrying others.
    pub(crate) stream_only: bool,
}

/// How certain it is that the server never processed a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unprocessed {
    /// It may have been processed: a failure.
    No,
    /// The connection would not open the stream (it had closed or was going away).
    NotSent,
    /// Above the last stream id of the server's `GOAWAY`.
    GoAway,
    /// `RST_STREAM` with `REFUSED_STREAM`.
    Refused,
}

impl Failure {
    fn of(e: &::h2::Error) -> Failure {
        let unprocessed =
            if e.is_remote() && e.is_reset() && e.reason() == Some(Reason::REFUSED_STREAM) {
                Unprocessed::Refused
            } else if e.is_remote() && e.is_go_away() {
                // A stream gets the GOAWAY as its error only when its id is above the frame's last
                // stream id (the streams at or below it go on, or end with the connection).
                Unprocessed::GoAway
            } else {
                Unprocessed::No
            };
        Failure {
            kind: classify(e),
            unprocessed,
            stream_only: e.is_reset(),
        }
    }

    fn not_sent(e: &::h2::Error) -> Failure {
        Failure {
            kind: classify(e),
            unprocessed: Unprocessed::NotSent,
            stream_only: false,
        }
    }

    fn plain(kind: ErrorKind) -> Failure {
        Failure {
            kind,
            unprocessed: Unprocessed::No,
            stream_only: false,
        }
    }
}

/// Classifies an `h2` error as an `error.type`.
pub(crate) fn classify(e: &::h2::Error) -> ErrorKind {
    if let Some(io) = e.get_io() {
        return io_error_kind(io);
    }
    match e.reason() {
        Some(
            Reason::PROTOCOL_ERROR
            | Reason::COMPRESSION_ERROR
            | Reason::FRAME_SIZE_ERROR
            | Reason::FLOW_CONTROL_ERROR
            | Reason::SETTINGS_TIMEOUT
            | Reason::STREAM_CLOSED
            | Reason::HTTP_1_1_REQUIRED,
        ) => ErrorKind::Protocol,
        // The server closed the connection (GOAWAY) before answering.
        _ if e.is_go_away() => ErrorKind::ConnectionClosed,
        // RST_STREAM: the stream (HTTP/2's unit of a connection) was reset.
        Some(_) if e.is_reset() => ErrorKind::ConnectionReset,
        _ => ErrorKind::Protocol,
    }
}

/// A request as the HTTP/2 client sends it.
#[derive(Debug)]
pub(crate) struct H2Request<'a> {
    /// Method, absolute URI (scheme and authority become pseudo-headers) and headers.
    pub(crate) head: &'a Request<()>,
    /// One more header for this request only (e.g. a sampled request's `traceparent`).
    pub(crate) extra_header: Option<(http::HeaderName, http::HeaderValue)>,
    /// The body (empty: none).
    pub(crate) body: &'a Bytes,
    /// Keep the body for checks and extraction (its first [`super::client::KEPT_BODY_LIMIT`]
    /// bytes).
    pub(crate) keep_body: bool,
    /// Keep the response headers.
    pub(crate) keep_headers: bool,
}

/// One exchange on a new stream of `conn`: the request, its body within the flow-control
/// windows, the whole response.
pub(crate) async fn exchange(
    conn: &mut Attached,
    req: &H2Request<'_>,
    kept_limit: usize,
) -> Result<Outcome, Failure> {
    let send = &mut conn.send;
    if let Err(e) = poll_fn(|cx| send.poll_ready(cx)).await {
        conn.close();
        return Err(Failure::not_sent(&e));
    }
    let mut head = req.head.clone();
    if let Some((name, value)) = &req.extra_header {
        head.headers_mut().insert(name.clone(), value.clone());
    }
    let (response, mut stream) = match conn.send.send_request(head, req.body.is_empty()) {
        Ok(r) => r,
        Err(e) => {
            conn.close();
            return Err(Failure::not_sent(&e));
        }
    };
    if !req.body.is_empty() {
        let mut rest = req.body.clone();
        while !rest.is_empty() {
            stream.reserve_capacity(rest.len());
            let granted = match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(Failure::of(&e)),
                None => return Err(Failure::plain(ErrorKind::ConnectionClosed)),
            };
            if granted == 0 {
                continue;
            }
            let chunk = rest.split_to(granted.min(rest.len()));
            stream
                .send_data(chunk, rest.is_empty())
                .map_err(|e| Failure::of(&e))?;
        }
    }
    let response = response.await.map_err(|e| Failure::of(&e))?;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let (bytes_in, kept) = read_body(body, req.keep_body.then_some(kept_limit)).await?;
    Ok(Outcome {
        status: Some(status),
        error: (status >= 400).then_some(ErrorKind::Status(status)),
        bytes_in,
        body: kept,
        headers: req.keep_headers.then_some(parts.headers),
        reconnected: false,
    })
}

/// Reads a response body to its end, releasing its flow-control window as it goes; keeps up to
/// `keep` bytes.
async fn read_body(
    mut body: RecvStream,
    keep: Option<usize>,
) -> Result<(u64, Option<Bytes>), Failure> {
    let mut bytes_in = 0u64;
    let mut kept = keep.map(|_| BytesMut::new());
    let limit = keep.unwrap_or(0);
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| Failure::of(&e))?;
        let n = chunk.len();
        bytes_in += n as u64;
        if let Some(k) = kept.as_mut() {
            let room = limit.saturating_sub(k.len()).min(n);
            k.extend_from_slice(&chunk[..room]);
        }
        // Errors here mean the stream is already gone; the next read says how.
        let _ = body.flow_control().release_capacity(n);
    }
    Ok((bytes_in, kept.map(BytesMut::freeze)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_streams_and_go_aways_are_unprocessed_other_errors_are_failures() {
        let refused = ::h2::Error::from(Reason::REFUSED_STREAM);
        // A bare reason (not a received frame) says nothing about processing.
        assert_eq!(Failure::of(&refused).unprocessed, Unprocessed::No);
        assert_eq!(classify(&refused), ErrorKind::Protocol);
        assert_eq!(
            Failure::not_sent(&refused).unprocessed,
            Unprocessed::NotSent
        );
        assert_eq!(
            classify(&::h2::Error::from(Reason::PROTOCOL_ERROR)),
            ErrorKind::Protocol
        );
    }
}
