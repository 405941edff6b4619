//! HTTP/2 on the hot path: a focused client written for load generation (RFC 9113), the
//! connections a worker's VUs send their streams on, and one exchange on one stream.
//!
//! - [`Pool`]: connections by target. With `h2_max_streams = 1` every VU has a pool of its own
//!   (one connection, as over HTTP/1.1); with N > 1 the worker's VUs share one pool and a
//!   connection carries at most `min(N, SETTINGS_MAX_CONCURRENT_STREAMS)` VUs, each with at
//!   most one stream in flight. A pool lives on one worker thread: `Rc`/`Cell`, no lock.
//! - [`handshake`]: the preface and our SETTINGS over a connected stream (TLS with ALPN `h2`, or
//!   cleartext with prior knowledge).
//! - [`exchange`]: one request and its whole response, the body sent within the peer's flow
//!   control windows and the response's window released as it is read.
//!
//! There is no connection task. The VUs sharing a connection share its state through
//! `Rc<RefCell<..>>` (a worker is a single-threaded runtime): whichever VU polls writes what is
//! queued, reads, and hands each frame to its stream's slot, waking that stream's VU. The socket
//! remembers only the last waker that polled it, so a stream that leaves while it was that
//! waker wakes another waiting stream to take over the reading. On a shared connection writes
//! go out per round: the first write of a round waits for the scheduler's next pass, and a
//! write waits while streams woken by the last read have not queued their next request yet, so
//! the requests a round of responses releases leave in one write. Request heads arrive HPACK-
//! encoded (once, at plan time, for requests that never vary: see [`hpack`]); response
//! header blocks are decoded only as far as the HPACK dynamic table and `:status` require.
//!
//! A hostile server finds everything bounded: acknowledgements it leaves unread
//! ([`MAX_QUEUED_CONTROL`]), header blocks ([`MAX_HEADER_BLOCK`], CONTINUATION frame headers
//! counted) and decoded header lists (SETTINGS_MAX_HEADER_LIST_SIZE, [`MAX_HEADER_LIST`]),
//! informational responses ([`MAX_INFORMATIONAL`]); past a bound the connection (or the stream)
//! ends with ENHANCE_YOUR_CALM and its requests fail as `protocol`. A response whose DATA
//! disagree with its `content-length`, or with two `:status`, is malformed (`protocol`). A server
//! that allows no streams gets none: the request waits on its connection ([`wait_for_room`]).
//!
//! Failures come back as a [`Failure`]: an [`ErrorKind`] plus whether the server certainly did
//! not process the request (`REFUSED_STREAM`, a stream above a `GOAWAY`'s last stream id, or a
//! request the connection refused before sending), which the client may send again on another
//! connection.

pub(crate) mod frame;
pub(crate) mod hpack;

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use self::frame::{HEAD_LEN, Head, code, flag, kind, setting};
use self::hpack::{Decoder, Encoder, MAX_HEADER_LIST};
use super::connect::Stream;
use super::io_error_kind;
use crate::outcome::{ErrorKind, Outcome, Wire};

/// Receive window of each stream, as h2load's default (2^30 − 1): a response body is never held
/// up by window updates on a fast link.
const STREAM_WINDOW: u32 = (1 << 30) - 1;
/// Receive window of the connection (shared by its streams).
const CONN_WINDOW: u32 = (1 << 30) - 1;
/// Read buffer: room for two frames of the largest size we accept.
const READ_BUF: usize = 2 * (frame::DEFAULT_MAX_FRAME + HEAD_LEN);
/// Request body bytes queued for writing at most (the rest waits until they are written).
const WRITE_HIGH: usize = 64 << 10;
/// Largest stream id (client streams are odd).
const MAX_STREAM_ID: u32 = (1 << 31) - 1;
/// Largest header block we assemble, its HEADERS and CONTINUATION frames' 9-octet headers
/// counted (so a flood of empty CONTINUATION frames ends too): four times the header list we
/// accept, room for any sane encoding of a list within that bound. Past it the connection ends
/// with GOAWAY(ENHANCE_YOUR_CALM): the block cannot be decoded, and the HPACK table with it.
const MAX_HEADER_BLOCK: usize = 4 * MAX_HEADER_LIST;
/// Acknowledgements (PING, SETTINGS) queued and not yet written at most (x/net/http2 bounds its
/// queued control frames the same way): a server that keeps sending them and never reads the
/// answers ends its connection with GOAWAY(ENHANCE_YOUR_CALM) instead of growing the write
/// buffer without end. A server that reads never comes near: a full read buffer holds fewer.
const MAX_QUEUED_CONTROL: u32 = 10_000;
/// Informational (1xx) responses a request takes before its final one; one more fails it.
const MAX_INFORMATIONAL: u8 = 5;

/// One HTTP/2 connection in a [`Pool`].
pub(crate) struct Slot {
    conn: Rc<RefCell<Conn>>,
    /// VUs attached to this connection.
    users: Cell<usize>,
    /// A stream failed in a way that ends the connection: no new streams.
    closed: Cell<bool>,
}

impl Slot {
    fn closed(&self) -> bool {
        self.closed.get() || self.conn.try_borrow().is_ok_and(|c| c.st.closed())
    }

    /// Streams this connection may carry at once: the configured most, fewer if the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` says so.
    fn capacity(&self, max_streams: usize) -> usize {
        if max_streams == 1 {
            return 1;
        }
        let peer = self
            .conn
            .try_borrow()
            .map_or(usize::MAX, |c| c.st.peer_max_streams);
        if peer == 0 {
            // The server allows no stream for now: the VUs wait on this connection for it to
            // allow some, rather than open one connection each.
            return max_streams;
        }
        max_streams.min(peer).max(1)
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
    /// Why the opening failed: the VUs that waited for it fail the same way.
    failed: Cell<Option<ErrorKind>>,
}

impl Opening {
    /// Waits until the connection is open; `Err`: its opening failed, and why.
    pub(crate) async fn wait(&self) -> Result<(), ErrorKind> {
        let notified = self.done.notified();
        notified.await;
        self.waiting.set(self.waiting.get().saturating_sub(1));
        self.failed.get().map_or(Ok(()), Err)
    }
}

/// Held by the VU that opens a connection; when dropped (opened, failed or cancelled) the VUs
/// waiting for the connection try again.
pub(crate) struct OpenGuard<'a> {
    pool: &'a Pool,
    target: usize,
    opening: Rc<Opening>,
}

impl OpenGuard<'_> {
    /// The connection could not be opened: the VUs waiting for it fail with `kind` (a
    /// refused connect is `connection_refused` for all of them).
    pub(crate) fn fail(self, kind: ErrorKind) {
        self.opening.failed.set(Some(kind));
    }
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
            failed: Cell::new(None),
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
            conn: Rc::new(RefCell::new(*conn.conn)),
            users: Cell::new(0),
            closed: Cell::new(false),
        });
        if let Some(list) = self.slots.borrow_mut().get_mut(target) {
            list.push(slot.clone());
        }
        Attached::new(slot)
    }
}

/// A VU's place on a pooled connection.
pub(crate) struct Attached {
    slot: Rc<Slot>,
}

impl Attached {
    fn new(slot: Rc<Slot>) -> Attached {
        slot.users.set(slot.users.get() + 1);
        Attached { slot }
    }

    /// The connection can take this VU's next stream: open, and not carrying more VUs than
    /// the server now allows streams (its settings may have arrived after the VU attached).
    pub(crate) fn usable(&self, max_streams: usize) -> bool {
        !self.slot.closed() && self.slot.users.get() <= self.slot.capacity(max_streams)
    }

    /// No new streams on this connection (the server sent GOAWAY, or it failed).
    pub(crate) fn close(&self) {
        self.slot.closed.set(true);
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.slot.users.set(self.slot.users.get().saturating_sub(1));
    }
}

/// A connection just opened, not yet in a pool.
pub(crate) struct NewConn {
    /// Boxed: the connection's state is large, and the enum it travels in stays small.
    conn: Box<Conn>,
}

/// Starts HTTP/2 over a connected stream: queues the preface, our SETTINGS and the connection
/// window's increase (written with the first request). With `settings`, returns only once the
/// server's SETTINGS are in (the first frame a server sends), so a shared connection takes no
/// more VUs than the server allows streams.
pub(crate) async fn handshake(io: Stream, settings: bool) -> Result<NewConn, ErrorKind> {
    handshake_with(io, settings, STREAM_WINDOW, CONN_WINDOW).await
}

/// [`handshake`] with the receive windows to advertise.
async fn handshake_with(
    io: Stream,
    settings: bool,
    stream_window: u32,
    conn_window: u32,
) -> Result<NewConn, ErrorKind> {
    let mut conn = Box::new(Conn::new(io, stream_window, conn_window));
    conn.st.shared = settings;
    if settings {
        poll_fn(|cx| conn.poll_settings(cx)).await?;
    }
    Ok(NewConn { conn })
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
    /// The connection would not open the stream (it had closed or was going away, or had no
    /// room): nothing of the request was written.
    NotSent,
    /// Written on a reused connection that closed without a word before the server answered:
    /// an idempotent request may go again.
    Unanswered,
    /// Above the last stream id of the server's `GOAWAY`.
    GoAway,
    /// `RST_STREAM` with `REFUSED_STREAM`.
    Refused,
}

impl Failure {
    /// The server reset the stream with `code`.
    fn reset(code: u32) -> Failure {
        Failure {
            kind: frame::classify(code, true),
            unprocessed: if code == code::REFUSED_STREAM {
                Unprocessed::Refused
            } else {
                Unprocessed::No
            },
            stream_only: true,
        }
    }

    /// The server broke the protocol on this stream only.
    fn stream_protocol() -> Failure {
        Failure {
            kind: ErrorKind::Protocol,
            unprocessed: Unprocessed::No,
            stream_only: true,
        }
    }

    fn not_sent(kind: ErrorKind, stream_only: bool) -> Failure {
        Failure {
            kind,
            unprocessed: Unprocessed::NotSent,
            stream_only,
        }
    }
}

/// A request as the HTTP/2 client sends it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct H2Request<'a> {
    /// The header block: HPACK, static table only (see [`hpack::encode_request`]); each
    /// connection re-encodes it against its dynamic table ([`Encoder`]).
    pub(crate) head: &'a [u8],
    /// The request's id when `head` is its fixed head (encoded at plan time): the
    /// connection keeps its indexed form.
    pub(crate) fixed: Option<usize>,
    /// More fields for this request only (e.g. a sampled request's `traceparent`), encoded the
    /// same way; usually empty.
    pub(crate) extra: &'a [u8],
    /// The body (empty: none).
    pub(crate) body: &'a [u8],
    /// The method is idempotent: it may go again when a reused connection closes before the
    /// server answers.
    pub(crate) idempotent: bool,
    /// A `HEAD` request: the response has no content, whatever its `content-length` says.
    pub(crate) head_request: bool,
    /// Keep the body for checks and extraction (its first `kept_limit` bytes).
    pub(crate) keep_body: bool,
    /// Keep the response headers.
    pub(crate) keep_headers: bool,
}

/// Encodes a request head (absolute `uri`: scheme and authority become pseudo-headers) as a
/// header block valid on any connection; appends to `out`.
pub(crate) fn encode_head<'h>(
    out: &mut Vec<u8>,
    method: &http::Method,
    uri: &http::Uri,
    headers: impl IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
) {
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().map_or("", |a| a.as_str());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    hpack::encode_request(
        out,
        method.as_str().as_bytes(),
        scheme.as_bytes(),
        authority.as_bytes(),
        path.as_bytes(),
        headers
            .into_iter()
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())),
    );
}

/// What became of a request's tries, kept outside its exchanges (which a timeout may drop).
#[derive(Debug, Default)]
pub(crate) struct Tries {
    /// Streams opened for it (its HEADERS queued): the tries the server may have seen.
    pub(crate) sent: u8,
    /// It waits for the server to allow a stream.
    pub(crate) waiting: bool,
}

/// One exchange on a new stream of `conn`: the request, its body within the flow-control
/// windows, the whole response. Dropped before it ends, the stream is reset (`CANCEL`).
pub(crate) async fn exchange(
    conn: &mut Attached,
    req: &H2Request<'_>,
    kept_limit: usize,
    tries: &mut Tries,
) -> Result<Outcome, Failure> {
    let c = &conn.slot.conn;
    if c.borrow().idle() {
        // The server may have closed the connection, or sent GOAWAY, while nothing was in
        // flight: find out before opening a stream (no system call when the reactor saw
        // nothing).
        poll_fn(|cx| {
            c.borrow_mut().idle_check(cx);
            Poll::Ready(())
        })
        .await;
    }
    if c.borrow().st.no_streams() {
        tries.waiting = true;
        wait_for_room(c).await;
        tries.waiting = false;
    }
    let id = c.borrow_mut().st.open(req, kept_limit)?;
    tries.sent = tries.sent.saturating_add(1);
    let mut guard = Cancel {
        conn: c,
        id,
        armed: true,
    };
    let mut sent = 0;
    let r = poll_fn(|cx| c.borrow_mut().poll_stream(cx, id, req.body, &mut sent)).await;
    guard.armed = false;
    r
}

/// The server allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0): waits, reading the
/// connection meanwhile (PINGs are answered), until its SETTINGS allow one or it closes. The
/// request's timeout bounds the wait; nothing is sent, nothing is retried.
async fn wait_for_room(c: &RefCell<Conn>) {
    /// Leaving (done or timed out), wakes the others: one of them takes over the socket.
    struct Leave<'a>(&'a RefCell<Conn>);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            if let Ok(mut c) = self.0.try_borrow_mut() {
                c.st.wake_room();
            }
        }
    }
    let _leave = Leave(c);
    poll_fn(|cx| c.borrow_mut().poll_room(cx)).await;
}

/// Resets a stream whose exchange was dropped before it ended.
struct Cancel<'a> {
    conn: &'a RefCell<Conn>,
    id: u32,
    armed: bool,
}

impl Drop for Cancel<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Ok(mut c) = self.conn.try_borrow_mut()
        {
            c.st.cancel(self.id);
        }
    }
}

/// One connection: the socket, its buffers and the state every stream shares.
struct Conn {
    io: Stream,
    /// Written to `io` and not yet flushed (TLS may hold a record back).
    unflushed: bool,
    rbuf: Box<[u8]>,
    rend: usize,
    st: State,
}

/// A connection's protocol state.
struct State {
    /// Frames to write, from `wpos`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// The streams in flight (a handful: linear search).
    streams: Vec<Active>,
    next_id: u32,
    decoder: Decoder,
    encoder: Encoder,
    /// The server's SETTINGS_MAX_FRAME_SIZE.
    max_frame: usize,
    /// The server's SETTINGS_INITIAL_WINDOW_SIZE.
    initial_window: i64,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says).
    peer_max_streams: usize,
    /// What the server lets us send on the connection.
    send_window: i64,
    /// Our receive windows (advertised), and what was received and not yet given back on the
    /// connection.
    stream_window: u32,
    conn_window: u32,
    recv_unacked: u32,
    /// The server's GOAWAY: last stream id and error code.
    goaway: Option<(u32, u32)>,
    /// The connection failed: every stream ends with this.
    dead: Option<ErrorKind>,
    settings_seen: bool,
    /// A header block in progress (HEADERS without END_HEADERS): stream, END_STREAM.
    continuation: Option<(u32, bool)>,
    hblock: Vec<u8>,
    /// What the block in progress has cost: its payloads and frame headers.
    hblock_cost: usize,
    /// Acknowledgements queued since the write buffer was last empty.
    ctl_queued: u32,
    /// VUs waiting for the server to allow a stream.
    room: Vec<Waker>,
    /// The stream whose waker the socket holds (the last one that polled it).
    io_waiter: Option<u32>,
    /// The stream being polled now (never woken by its own poll).
    polling: Option<u32>,
    /// Streams finished on this connection.
    finished: u64,
    /// VUs share this connection (`h2_max_streams` > 1).
    shared: bool,
    /// How long the queued write of a shared connection has been held.
    hold: Holding,
    /// The connection's own frames (and those of streams gone) since a stream last ended.
    spare: Wire,
}

/// A shared connection's write waits for the scheduler's next pass (after the reactor has run),
/// so the streams that start or are released in the same pass go out in the same write. Back
/// from a pass, it first takes in what the reactor found meanwhile: responses it completes
/// release their VUs' next requests into the same write. The write goes after
/// [`QUIET_PASSES`] passes in a row that brought nothing, or after [`MAX_HOLD_PASSES`] in all.
/// A server that answers request by request (nginx writes every response on its own) would
/// otherwise split the rounds down to a request or two per write, and every write costs a
/// system call and a TCP segment here, a TLS record and a read there.
#[derive(Debug, Default)]
struct Holding {
    /// Passes waited in all.
    passes: u8,
    /// Passes in a row that brought nothing.
    quiet: u8,
    /// Back from a pass, the socket not looked at yet.
    back: bool,
}

/// What the held write does next.
enum Hold {
    /// Wait for the scheduler's next pass.
    Pass,
    /// Read what came during the pass.
    Look,
    /// Write now.
    Write,
}

/// See [`Holding`].
const QUIET_PASSES: u8 = 2;
const MAX_HOLD_PASSES: u8 = 8;

impl Holding {
    fn next(&mut self) -> Hold {
        if std::mem::take(&mut self.back) {
            Hold::Look
        } else if self.quiet >= QUIET_PASSES || self.passes >= MAX_HOLD_PASSES {
            Hold::Write
        } else {
            self.passes += 1;
            self.back = true;
            Hold::Pass
        }
    }
}

/// One stream in flight.
struct Active {
    id: u32,
    waker: Option<Waker>,
    status: Option<u16>,
    keep_headers: bool,
    headers: Option<HeaderMap>,
    keep_limit: Option<usize>,
    body: Option<BytesMut>,
    bytes_in: u64,
    /// Its frames' octets, both ways.
    wire: Wire,
    /// What the server lets us send on this stream.
    send_window: i64,
    /// Received and not yet given back.
    recv_unacked: u32,
    /// END_STREAM received: the response is complete.
    done: bool,
    error: Option<Failure>,
    /// Any frame arrived for it.
    heard: bool,
    /// Opened on a connection that had finished streams before.
    reused: bool,
    idempotent: bool,
    /// The request body is not all sent (END_STREAM not yet written).
    sending: bool,
    /// Woken, and not polled since.
    woken: bool,
    /// The final response's `content-length`, which its DATA must match.
    expect_len: Option<u64>,
    /// Informational responses so far.
    informational: u8,
    /// A `HEAD` request (no content comes, whatever `content-length` says).
    head_request: bool,
}

impl Active {
    /// The response is malformed or past a bound: the stream fails as `protocol`, reset with
    /// `code` unless both sides have ended it (`ended`: the server's END_STREAM came).
    fn reject(&mut self, wbuf: &mut Vec<u8>, code: u32, ended: bool, polling: Option<u32>) {
        if !ended || self.sending {
            frame::put_rst(wbuf, self.id, code);
        }
        self.error = Some(Failure::stream_protocol());
        State::wake(polling, self);
    }

    /// The server's END_STREAM: the response is complete, unless its DATA disagree with its
    /// `content-length` (malformed, RFC 9113 §8.1.1).
    fn end(&mut self, wbuf: &mut Vec<u8>, polling: Option<u32>) {
        if self.expect_len.is_some_and(|n| n != self.bytes_in) {
            self.reject(wbuf, code::PROTOCOL_ERROR, true, polling);
            return;
        }
        self.done = true;
        State::wake(polling, self);
    }

    /// Waits with `waker` (kept as it is when it would wake the same task).
    fn park(&mut self, waker: &Waker) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }
}

impl Conn {
    fn new(io: Stream, stream_window: u32, conn_window: u32) -> Conn {
        let mut wbuf = Vec::with_capacity(4096);
        wbuf.extend_from_slice(frame::PREFACE);
        frame::put_settings(
            &mut wbuf,
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::INITIAL_WINDOW_SIZE, stream_window),
                (setting::MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST as u32),
            ],
        );
        let default = frame::DEFAULT_WINDOW as u32;
        if conn_window > default {
            frame::put_window_update(&mut wbuf, 0, conn_window - default);
        }
        Conn {
            io,
            unflushed: false,
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            rend: 0,
            st: State {
                wbuf,
                wpos: 0,
                streams: Vec::new(),
                next_id: 1,
                decoder: Decoder::default(),
                encoder: Encoder::default(),
                max_frame: frame::DEFAULT_MAX_FRAME,
                initial_window: frame::DEFAULT_WINDOW,
                peer_max_streams: usize::MAX,
                send_window: frame::DEFAULT_WINDOW,
                stream_window,
                conn_window: conn_window.max(default),
                recv_unacked: 0,
                goaway: None,
                dead: None,
                settings_seen: false,
                continuation: None,
                hblock: Vec::new(),
                hblock_cost: 0,
                ctl_queued: 0,
                room: Vec::new(),
                io_waiter: None,
                polling: None,
                finished: 0,
                shared: false,
                hold: Holding::default(),
                spare: Wire::default(),
            },
        }
    }

    /// No stream in flight on a connection that has carried some.
    fn idle(&self) -> bool {
        self.st.streams.is_empty() && self.st.finished > 0 && !self.st.closed()
    }

    /// Reads whatever an idle connection has received (GOAWAY, PING, SETTINGS, the end of the
    /// stream) without waiting.
    fn idle_check(&mut self, cx: &mut Context<'_>) {
        while self.st.dead.is_none() && self.poll_io(cx).is_ready() {}
    }

    /// Writes what is queued.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let st = &mut self.st;
        if st.wpos == st.wbuf.len() && !self.unflushed {
            return Poll::Ready(Ok(()));
        }
        while st.wpos < st.wbuf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &st.wbuf[st.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            st.wpos += n;
            self.unflushed = true;
        }
        st.count_out();
        st.wbuf.clear();
        st.wpos = 0;
        st.ctl_queued = 0;
        st.hold = Holding::default();
        // TLS may hold the last record back until flushed; plain TCP returns at once.
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        self.unflushed = false;
        Poll::Ready(Ok(()))
    }

    /// Reads more into the read buffer: the number of bytes (0: end of stream).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(&mut self.rbuf[self.rend..]);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        self.rend += n;
        Poll::Ready(Ok(n))
    }

    /// Handles every complete frame in the read buffer and keeps the partial one.
    fn process(&mut self) {
        let mut pos = 0;
        while let Some(h) = Head::parse(&self.rbuf[pos..self.rend]) {
            if h.len > frame::DEFAULT_MAX_FRAME {
                self.st.conn_error(code::FRAME_SIZE_ERROR);
                return;
            }
            let end = pos + HEAD_LEN + h.len;
            if end > self.rend {
                break;
            }
            let payload = &self.rbuf[pos + HEAD_LEN..end];
            pos = end;
            self.st.count_in(&h);
            if let Err(c) = self.st.on_frame(h, payload) {
                self.st.conn_error(c);
                return;
            }
        }
        if pos == self.rend {
            self.rend = 0;
        } else if pos > 0 {
            self.rbuf.copy_within(pos..self.rend, 0);
            self.rend -= pos;
        }
    }

    /// One step of I/O on behalf of whoever polls: write what is queued, read and dispatch.
    /// Ready when something happened (the caller looks at its state again), Pending when the
    /// socket has nothing (the caller's waker is registered with it).
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Poll::Ready(Err(e)) = self.poll_flush(cx) {
            self.st.fail(io_error_kind(&e));
            return Poll::Ready(());
        }
        match self.poll_fill(cx) {
            Poll::Ready(Ok(0)) => {
                self.st.end_of_stream();
                Poll::Ready(())
            }
            Poll::Ready(Ok(_)) => {
                self.process();
                Poll::Ready(())
            }
            Poll::Ready(Err(e)) => {
                self.st.fail(io_error_kind(&e));
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Until the server's SETTINGS are in (or the connection fails).
    fn poll_settings(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ErrorKind>> {
        loop {
            if let Some(k) = self.st.dead {
                return Poll::Ready(Err(k));
            }
            if self.st.settings_seen {
                // Our SETTINGS ACK goes now if it can, else with the first request.
                let _ = self.poll_flush(cx);
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_io(cx));
        }
    }

    /// Until the server allows a stream, or the connection closes (see [`wait_for_room`]).
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if !self.st.no_streams() {
                return Poll::Ready(());
            }
            if !self.st.room.iter().any(|w| w.will_wake(cx.waker())) {
                self.st.room.push(cx.waker().clone());
            }
            ready!(self.poll_io(cx));
        }
    }

    /// Drives stream `id`: sends what the windows allow of `body` (from `*sent`), writes,
    /// reads, until its response is complete or it fails.
    fn poll_stream(
        &mut self,
        cx: &mut Context<'_>,
        id: u32,
        body: &[u8],
        sent: &mut usize,
    ) -> Poll<Result<Outcome, Failure>> {
        self.st.polling = Some(id);
        let r = self.poll_stream_inner(cx, id, body, sent);
        self.st.polling = None;
        r
    }

    fn poll_stream_inner(
        &mut self,
        cx: &mut Context<'_>,
        id: u32,
        body: &[u8],
        sent: &mut usize,
    ) -> Poll<Result<Outcome, Failure>> {
        loop {
            let Some(i) = self.st.find(id) else {
                return Poll::Ready(Err(Failure::stream_protocol()));
            };
            let a = &mut self.st.streams[i];
            a.woken = false;
            if a.done || a.error.is_some() || self.st.dead.is_some() {
                let r = self.st.finish(i);
                // The last of a round of woken streams leaves what the round queued to a
                // stream that waits: woken now, it runs after this VU has queued its next
                // request too, and writes them all at once. With no stream waiting, the
                // queue goes now (after a protocol error: the GOAWAY that says so, if the
                // socket still takes it).
                if self.st.wpos < self.st.wbuf.len()
                    && !self.st.defer_flush()
                    && !self.st.wake_waiting()
                {
                    let _ = self.poll_flush(cx);
                }
                return Poll::Ready(r);
            }
            if *sent < body.len() {
                self.st.send_body(i, body, sent);
            }
            let flush = if self.st.defer_flush() {
                Poll::Pending
            } else if self.st.shared && self.st.wpos < self.st.wbuf.len() {
                match self.st.hold.next() {
                    Hold::Pass => {
                        // Wait for the scheduler's next pass (after the reactor has run).
                        self.st.streams[i].park(cx.waker());
                        let mut later = std::pin::pin!(tokio::task::yield_now());
                        if later.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        continue;
                    }
                    Hold::Look => match self.poll_fill(cx) {
                        // Back from a pass: take in what the reactor found meanwhile.
                        Poll::Ready(Ok(0)) => {
                            self.st.end_of_stream();
                            continue;
                        }
                        Poll::Ready(Ok(_)) => {
                            self.st.hold.quiet = 0;
                            self.process();
                            continue;
                        }
                        Poll::Ready(Err(e)) => {
                            self.st.fail(io_error_kind(&e));
                            continue;
                        }
                        Poll::Pending => {
                            // The socket holds this stream's waker now.
                            self.st.streams[i].park(cx.waker());
                            self.st.io_waiter = Some(id);
                            self.st.hold.quiet += 1;
                            continue;
                        }
                    },
                    Hold::Write => self.poll_flush(cx),
                }
            } else {
                self.poll_flush(cx)
            };
            match flush {
                Poll::Ready(Err(e)) => {
                    self.st.fail(io_error_kind(&e));
                    continue;
                }
                Poll::Ready(Ok(())) if *sent < body.len() && self.st.can_send(i) => continue,
                _ => {}
            }
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) => self.st.end_of_stream(),
                Poll::Ready(Ok(_)) => self.process(),
                Poll::Ready(Err(e)) => self.st.fail(io_error_kind(&e)),
                Poll::Pending => {
                    self.st.streams[i].park(cx.waker());
                    self.st.io_waiter = Some(id);
                    return Poll::Pending;
                }
            }
        }
    }
}

impl State {
    /// No new streams: the server is going away, or the connection failed.
    fn closed(&self) -> bool {
        self.dead.is_some() || self.goaway.is_some() || self.next_id > MAX_STREAM_ID
    }

    /// The server allows no streams at all (SETTINGS_MAX_CONCURRENT_STREAMS 0) on a
    /// connection that is open.
    fn no_streams(&self) -> bool {
        self.peer_max_streams == 0 && !self.closed()
    }

    /// Wakes the VUs waiting for the server to allow a stream.
    fn wake_room(&mut self) {
        for w in self.room.drain(..) {
            w.wake();
        }
    }

    fn find(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|a| a.id == id)
    }

    /// Wakes stream `a`'s VU (unless it is the one polling): it will look at its state, and
    /// writes wait until every woken stream has had its turn (see [`State::defer_flush`]).
    fn wake(polling: Option<u32>, a: &mut Active) {
        if polling != Some(a.id)
            && let Some(w) = &a.waker
        {
            a.woken = true;
            w.wake_by_ref();
        }
    }

    fn wake_all(&mut self) {
        for a in &mut self.streams {
            State::wake(self.polling, a);
        }
        self.wake_room();
    }

    /// Streams were woken and have not run yet: what they queue (typically their VU's next
    /// request) goes out in the same write as what is queued now, when the last of them has run.
    fn defer_flush(&self) -> bool {
        self.streams.iter().any(|a| a.woken)
    }

    /// Wakes a stream that waits (not one whose result is in), so it takes over the socket.
    /// False if there is none.
    fn wake_waiting(&mut self) -> bool {
        let polling = self.polling;
        match self
            .streams
            .iter_mut()
            .find(|a| !a.done && a.error.is_none() && a.waker.is_some() && polling != Some(a.id))
        {
            Some(a) => {
                State::wake(polling, a);
                true
            }
            None => false,
        }
    }

    /// Opens a stream for `req`: its HEADERS (and CONTINUATION) frames are queued.
    fn open(&mut self, req: &H2Request<'_>, kept_limit: usize) -> Result<u32, Failure> {
        if let Some(k) = self.dead {
            return Err(Failure::not_sent(k, false));
        }
        if self.closed() {
            return Err(Failure::not_sent(ErrorKind::ConnectionClosed, false));
        }
        if self.streams.len() >= self.peer_max_streams {
            // The server lowered its limit after this VU attached: another connection.
            return Err(Failure::not_sent(ErrorKind::ConnectionClosed, true));
        }
        let id = self.next_id;
        self.next_id += 2;
        let end_stream = req.body.is_empty();
        let head = self.encoder.encode(req.head, req.fixed);
        frame::put_headers(
            &mut self.wbuf,
            id,
            [head, req.extra],
            end_stream,
            self.max_frame,
        );
        self.streams.push(Active {
            id,
            waker: None,
            status: None,
            keep_headers: req.keep_headers,
            headers: None,
            keep_limit: req.keep_body.then_some(kept_limit),
            body: None,
            bytes_in: 0,
            wire: Wire::default(),
            send_window: self.initial_window,
            recv_unacked: 0,
            done: false,
            error: None,
            heard: false,
            reused: self.finished > 0,
            idempotent: req.idempotent,
            sending: !end_stream,
            woken: false,
            expect_len: None,
            informational: 0,
            head_request: req.head_request,
        });
        Ok(id)
    }

    /// Whether stream `i` may send body bytes now.
    fn can_send(&self, i: usize) -> bool {
        self.send_window > 0
            && self.streams[i].send_window > 0
            && self.wbuf.len() - self.wpos < WRITE_HIGH
    }

    /// Queues as much of `body` as the windows and the write buffer allow.
    fn send_body(&mut self, i: usize, body: &[u8], sent: &mut usize) {
        while *sent < body.len() && self.can_send(i) {
            let a = &mut self.streams[i];
            let n = (body.len() - *sent)
                .min(self.max_frame)
                .min(self.send_window as usize)
                .min(a.send_window as usize);
            let end = *sent + n == body.len();
            frame::put_data(&mut self.wbuf, a.id, &body[*sent..*sent + n], end);
            *sent += n;
            self.send_window -= n as i64;
            a.send_window -= n as i64;
            if end {
                a.sending = false;
            }
        }
    }

    /// Takes stream `i` out: its outcome.
    fn finish(&mut self, i: usize) -> Result<Outcome, Failure> {
        let a = self.streams.swap_remove(i);
        self.finished += 1;
        self.hand_off(a.id);
        // A failed stream's octets go with the next outcome on this connection.
        self.spare += a.wire;
        let wire = std::mem::take(&mut self.spare);
        if let Some(f) = a.error {
            self.spare = wire;
            return Err(f);
        }
        if a.done
            && let Some(status) = a.status
        {
            if a.sending && self.dead.is_none() {
                // The server answered before the whole body went: stop sending it.
                frame::put_rst(&mut self.wbuf, a.id, code::NO_ERROR);
            }
            return Ok(Outcome {
                status: Some(status),
                error: (status >= 400).then_some(ErrorKind::Status(status)),
                bytes_in: a.bytes_in,
                wire,
                body: a
                    .body
                    .map(BytesMut::freeze)
                    .or_else(|| a.keep_limit.map(|_| Bytes::new())),
                headers: a.headers,
                reconnects: 0,
            });
        }
        let kind = self.dead.unwrap_or(ErrorKind::ConnectionClosed);
        let unprocessed = if self.goaway.is_some_and(|(last, _)| a.id > last) {
            Unprocessed::GoAway
        } else if !a.heard && a.reused && a.idempotent {
            Unprocessed::Unanswered
        } else {
            Unprocessed::No
        };
        Err(Failure {
            kind,
            unprocessed,
            stream_only: false,
        })
    }

    /// Stream `id`'s exchange was dropped before it ended: reset it.
    fn cancel(&mut self, id: u32) {
        if let Some(i) = self.find(id) {
            let a = self.streams.swap_remove(i);
            self.spare += a.wire;
            if !a.done && a.error.is_none() && self.dead.is_none() {
                frame::put_rst(&mut self.wbuf, id, code::CANCEL);
            }
            self.hand_off(id);
            // Writes it deferred must not wait for it.
            if self.wpos < self.wbuf.len() && !self.defer_flush() {
                self.wake_waiting();
            }
        }
    }

    /// Stream `id` leaves: if the socket held its waker, another waiting stream takes over.
    fn hand_off(&mut self, id: u32) {
        if self.io_waiter == Some(id) {
            self.io_waiter = None;
            self.wake_waiting();
        }
    }

    /// The server closed the connection: every stream ends, classified by the GOAWAY that
    /// came before, if one did.
    fn end_of_stream(&mut self) {
        let kind = match self.goaway {
            Some((_, c)) => frame::classify(c, false),
            None => ErrorKind::ConnectionClosed,
        };
        self.fail(kind);
    }

    /// An I/O failure (or the end of the stream): every stream ends.
    fn fail(&mut self, kind: ErrorKind) {
        if self.dead.is_none() {
            self.dead = Some(kind);
        }
        self.wake_all();
    }

    /// The server broke the protocol, or went past a bound (`ENHANCE_YOUR_CALM`): GOAWAY with
    /// `code`, nothing more is read, every stream ends as `protocol`.
    fn conn_error(&mut self, code: u32) {
        if self.dead.is_none() {
            tracing::debug!(code, "HTTP/2 connection error");
            if code == code::ENHANCE_YOUR_CALM {
                super::warn_once(&CALM_WARNED, || {
                    "HTTP/2: a server went past stampede's bounds (unread PING/SETTINGS \
                     acknowledgements, or a header block too large): its connection ends with \
                     GOAWAY(ENHANCE_YOUR_CALM) and its requests fail as protocol"
                });
            }
            frame::put_goaway(&mut self.wbuf, 0, code);
        }
        self.fail(ErrorKind::Protocol);
    }

    /// An acknowledgement is queued: past [`MAX_QUEUED_CONTROL`] unwritten, the connection ends.
    fn acked(&mut self) -> Result<(), u32> {
        self.ctl_queued += 1;
        if self.ctl_queued > MAX_QUEUED_CONTROL {
            return Err(code::ENHANCE_YOUR_CALM);
        }
        Ok(())
    }

    fn on_frame(&mut self, h: Head, payload: &[u8]) -> Result<(), u32> {
        if let Some((sid, _)) = self.continuation
            && (h.kind != kind::CONTINUATION || h.stream != sid)
        {
            return Err(code::PROTOCOL_ERROR);
        }
        match h.kind {
            kind::DATA => self.on_data(&h, payload),
            kind::HEADERS => self.on_headers(&h, payload),
            kind::CONTINUATION => self.on_continuation(&h, payload),
            kind::RST_STREAM => {
                if h.stream == 0 {
                    return Err(code::PROTOCOL_ERROR);
                }
                let c = u32_at(payload).filter(|_| payload.len() == 4);
                let c = c.ok_or(code::FRAME_SIZE_ERROR)?;
                let polling = self.polling;
                if let Some(a) = self.streams.iter_mut().find(|a| a.id == h.stream)
                    && !a.done
                {
                    a.heard = true;
                    a.error = Some(Failure::reset(c));
                    State::wake(polling, a);
                }
                Ok(())
            }
            kind::SETTINGS => self.on_settings(&h, payload),
            // We said SETTINGS_ENABLE_PUSH = 0.
            kind::PUSH_PROMISE => Err(code::PROTOCOL_ERROR),
            kind::PING => {
                if h.stream != 0 {
                    return Err(code::PROTOCOL_ERROR);
                }
                let data: [u8; 8] = payload.try_into().map_err(|_| code::FRAME_SIZE_ERROR)?;
                if h.flags & flag::ACK == 0 {
                    self.acked()?;
                    frame::put_ping(&mut self.wbuf, true, data);
                }
                Ok(())
            }
            kind::GOAWAY => {
                if h.stream != 0 {
                    return Err(code::PROTOCOL_ERROR);
                }
                let last = u32_at(payload).ok_or(code::FRAME_SIZE_ERROR)? & 0x7fff_ffff;
                let c = payload
                    .get(4..)
                    .and_then(u32_at)
                    .ok_or(code::FRAME_SIZE_ERROR)?;
                self.on_goaway(last, c);
                Ok(())
            }
            kind::WINDOW_UPDATE => {
                let inc = u32_at(payload).filter(|_| payload.len() == 4);
                let inc = i64::from(inc.ok_or(code::FRAME_SIZE_ERROR)? & 0x7fff_ffff);
                if h.stream == 0 {
                    if inc == 0 {
                        return Err(code::PROTOCOL_ERROR);
                    }
                    self.send_window += inc;
                    if self.send_window > frame::MAX_WINDOW {
                        return Err(code::FLOW_CONTROL_ERROR);
                    }
                    let polling = self.polling;
                    for a in self.streams.iter_mut().filter(|a| a.sending) {
                        State::wake(polling, a);
                    }
                    return Ok(());
                }
                let polling = self.polling;
                if let Some(a) = self.streams.iter_mut().find(|a| a.id == h.stream) {
                    a.send_window += inc;
                    if inc == 0 || a.send_window > frame::MAX_WINDOW {
                        let c = if inc == 0 {
                            code::PROTOCOL_ERROR
                        } else {
                            code::FLOW_CONTROL_ERROR
                        };
                        frame::put_rst(&mut self.wbuf, a.id, c);
                        a.error = Some(Failure::stream_protocol());
                    }
                    State::wake(polling, a);
                }
                Ok(())
            }
            // Priority signals and unknown frame types are ignored.
            kind::PRIORITY => Ok(()),
            _ => Ok(()),
        }
    }

    /// HEADERS: a whole header block, or the start of one that CONTINUATION frames complete.
    fn on_headers(&mut self, h: &Head, payload: &[u8]) -> Result<(), u32> {
        if h.stream == 0 {
            return Err(code::PROTOCOL_ERROR);
        }
        let frag = frame::unpad(h, payload).ok_or(code::PROTOCOL_ERROR)?;
        let end_stream = h.flags & flag::END_STREAM != 0;
        if h.flags & flag::END_HEADERS != 0 {
            return self.on_block(h.stream, frag, end_stream);
        }
        self.hblock.clear();
        self.hblock.extend_from_slice(frag);
        self.hblock_cost = HEAD_LEN + payload.len();
        self.continuation = Some((h.stream, end_stream));
        Ok(())
    }

    /// CONTINUATION: more of the block in progress, up to [`MAX_HEADER_BLOCK`].
    fn on_continuation(&mut self, h: &Head, payload: &[u8]) -> Result<(), u32> {
        let Some((sid, end_stream)) = self.continuation else {
            return Err(code::PROTOCOL_ERROR);
        };
        self.hblock_cost += HEAD_LEN + payload.len();
        if self.hblock_cost > MAX_HEADER_BLOCK {
            return Err(code::ENHANCE_YOUR_CALM);
        }
        self.hblock.extend_from_slice(payload);
        if h.flags & flag::END_HEADERS == 0 {
            return Ok(());
        }
        self.continuation = None;
        let mut block = std::mem::take(&mut self.hblock);
        let r = self.on_block(sid, &block, end_stream);
        // A large block's buffer is not kept for the connection's life.
        if block.capacity() > 4 * frame::DEFAULT_MAX_FRAME {
            block = Vec::new();
        }
        self.hblock = block;
        r
    }

    fn on_data(&mut self, h: &Head, payload: &[u8]) -> Result<(), u32> {
        if h.stream == 0 {
            return Err(code::PROTOCOL_ERROR);
        }
        // The whole payload, padding included, counts against the windows.
        let n = payload.len() as u32;
        self.recv_unacked += n;
        if self.recv_unacked >= self.conn_window / 2 {
            frame::put_window_update(&mut self.wbuf, 0, self.recv_unacked);
            self.recv_unacked = 0;
        }
        let data = frame::unpad(h, payload).ok_or(code::PROTOCOL_ERROR)?;
        let polling = self.polling;
        // A stream we reset or finished: nothing more to do.
        let Some(a) = self.streams.iter_mut().find(|a| a.id == h.stream) else {
            return Ok(());
        };
        if a.done || a.error.is_some() {
            return Ok(());
        }
        a.heard = true;
        if a.status.is_none() {
            // DATA before the response's HEADERS.
            frame::put_rst(&mut self.wbuf, a.id, code::PROTOCOL_ERROR);
            a.error = Some(Failure::stream_protocol());
            State::wake(polling, a);
            return Ok(());
        }
        a.bytes_in += data.len() as u64;
        let end_stream = h.flags & flag::END_STREAM != 0;
        if a.expect_len.is_some_and(|n| a.bytes_in > n) {
            // More than its content-length said: malformed (RFC 9113 §8.1.1).
            a.reject(&mut self.wbuf, code::PROTOCOL_ERROR, end_stream, polling);
            return Ok(());
        }
        if let Some(limit) = a.keep_limit {
            let kept = a.body.get_or_insert_with(BytesMut::new);
            let room = limit.saturating_sub(kept.len()).min(data.len());
            kept.extend_from_slice(&data[..room]);
        }
        if end_stream {
            a.end(&mut self.wbuf, polling);
        } else {
            a.recv_unacked += n;
            if a.recv_unacked >= self.stream_window / 2 {
                frame::put_window_update(&mut self.wbuf, a.id, a.recv_unacked);
                a.recv_unacked = 0;
            }
        }
        Ok(())
    }

    /// A complete header block for `stream`: always decoded (the HPACK table is the
    /// connection's), materialized only as far as the stream needs.
    fn on_block(&mut self, stream: u32, block: &[u8], end_stream: bool) -> Result<(), u32> {
        let State {
            decoder,
            streams,
            wbuf,
            polling,
            ..
        } = self;
        let a = streams.iter_mut().find(|a| a.id == stream);
        let want = a
            .as_ref()
            .is_some_and(|a| a.keep_headers && a.status.is_none());
        let mut map = HeaderMap::new();
        let b = if want {
            let mut sink = |n: &[u8], v: &[u8]| {
                if !n.starts_with(b":")
                    && let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n), HeaderValue::from_bytes(v))
                {
                    map.append(n, v);
                }
            };
            decoder.decode(block, Some(&mut sink))
        } else {
            decoder.decode(block, None)
        };
        let b = b.map_err(|e| {
            tracing::debug!(error = %e, "HPACK");
            code::COMPRESSION_ERROR
        })?;
        let Some(a) = a else {
            return Ok(());
        };
        if a.done || a.error.is_some() {
            return Ok(());
        }
        a.heard = true;
        let polling = *polling;
        if b.too_large {
            // Past the SETTINGS_MAX_HEADER_LIST_SIZE we advertised.
            super::warn_once(&STREAM_CALM_WARNED, || STREAM_CALM);
            a.reject(wbuf, code::ENHANCE_YOUR_CALM, end_stream, polling);
            return Ok(());
        }
        // Malformed (RFC 9113 §8.1): two `:status` or a bad `content-length`, a pseudo-header
        // in trailers, trailers that do not end the stream.
        if b.malformed || (a.status.is_some() && (b.has_status || !end_stream)) {
            a.reject(wbuf, code::PROTOCOL_ERROR, end_stream, polling);
            return Ok(());
        }
        if a.status.is_none() {
            match b.status {
                // Informational (1xx): the final response follows, after a few at most.
                Some(s) if s < 200 && !end_stream => {
                    a.informational += 1;
                    if a.informational > MAX_INFORMATIONAL {
                        super::warn_once(&STREAM_CALM_WARNED, || STREAM_CALM);
                        a.reject(wbuf, code::ENHANCE_YOUR_CALM, false, polling);
                    }
                    return Ok(());
                }
                Some(s) if s >= 200 => {
                    a.status = Some(s);
                    // Responses without content may say how long it would have been.
                    if !(a.head_request || s == 204 || s == 304) {
                        a.expect_len = b.content_length;
                    }
                    if want {
                        a.headers = Some(map);
                    }
                }
                _ => {
                    a.reject(wbuf, code::PROTOCOL_ERROR, end_stream, polling);
                    return Ok(());
                }
            }
        }
        // Otherwise trailers: decoded for the table's sake, not kept.
        if end_stream {
            a.end(wbuf, polling);
        }
        Ok(())
    }

    fn on_settings(&mut self, h: &Head, payload: &[u8]) -> Result<(), u32> {
        if h.stream != 0 {
            return Err(code::PROTOCOL_ERROR);
        }
        if h.flags & flag::ACK != 0 {
            return if payload.is_empty() {
                Ok(())
            } else {
                Err(code::FRAME_SIZE_ERROR)
            };
        }
        if payload.len() % 6 != 0 {
            return Err(code::FRAME_SIZE_ERROR);
        }
        for p in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([p[0], p[1]]);
            let v = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
            match id {
                setting::MAX_CONCURRENT_STREAMS => {
                    self.peer_max_streams = v as usize;
                    if v == 0 {
                        super::warn_once(&NO_STREAMS_WARNED, || {
                            "HTTP/2: a server allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS \
                             0): requests wait for it to allow one, each up to --timeout (then \
                             it fails as no_stream, never having been sent)"
                        });
                    }
                }
                setting::INITIAL_WINDOW_SIZE => {
                    let v = i64::from(v);
                    if v > frame::MAX_WINDOW {
                        return Err(code::FLOW_CONTROL_ERROR);
                    }
                    let delta = v - self.initial_window;
                    self.initial_window = v;
                    for a in &mut self.streams {
                        a.send_window += delta;
                        if a.send_window > frame::MAX_WINDOW {
                            return Err(code::FLOW_CONTROL_ERROR);
                        }
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME as u32..=0xff_ffff).contains(&v) {
                        return Err(code::PROTOCOL_ERROR);
                    }
                    self.max_frame = v as usize;
                }
                setting::ENABLE_PUSH if v > 1 => return Err(code::PROTOCOL_ERROR),
                // It bounds the table our encoder may use: it uses none.
                setting::HEADER_TABLE_SIZE => self.encoder.set_limit(v as usize),
                _ => {}
            }
        }
        self.acked()?;
        frame::put_settings_ack(&mut self.wbuf);
        self.settings_seen = true;
        self.wake_all();
        Ok(())
    }

    /// The server goes away: streams above `last` were not processed (they go again
    /// elsewhere); the others finish, or fail when the connection closes.
    fn on_goaway(&mut self, last: u32, c: u32) {
        let last = self.goaway.map_or(last, |(l, _)| l.min(last));
        self.goaway = Some((last, c));
        self.wake_room();
        let polling = self.polling;
        for a in &mut self.streams {
            if a.id > last && !a.done && a.error.is_none() {
                a.error = Some(Failure {
                    kind: frame::classify(c, false),
                    unprocessed: Unprocessed::GoAway,
                    stream_only: false,
                });
                State::wake(polling, a);
            }
        }
    }
}

/// Octets on the wire, per stream (see [`Wire`]): a frame read or written counts for its
/// stream while that is in flight, else (stream 0, the preface, a stream gone) for the next
/// stream to end on the connection, so the streams' figures add up to every octet of HTTP/2
/// but the ones after the last stream ended.
impl State {
    fn wire_of(&mut self, stream: u32) -> &mut Wire {
        match self
            .streams
            .iter_mut()
            .find(|a| a.id == stream && stream != 0)
        {
            Some(a) => &mut a.wire,
            None => &mut self.spare,
        }
    }

    /// A frame read.
    fn count_in(&mut self, h: &Head) {
        self.wire_of(h.stream).received += (HEAD_LEN + h.len) as u64;
    }

    /// The write buffer, all written: its frames (and the preface) counted.
    fn count_out(&mut self) {
        let mut pos = 0;
        if self.wbuf.starts_with(frame::PREFACE) {
            pos = frame::PREFACE.len();
            self.spare.sent += pos as u64;
        }
        while let Some(h) = Head::parse(&self.wbuf[pos.min(self.wbuf.len())..]) {
            pos += HEAD_LEN + h.len;
            self.wire_of(h.stream).sent += (HEAD_LEN + h.len) as u64;
        }
    }
}

/// Warnings given once per process.
static CALM_WARNED: AtomicBool = AtomicBool::new(false);
static NO_STREAMS_WARNED: AtomicBool = AtomicBool::new(false);
static STREAM_CALM_WARNED: AtomicBool = AtomicBool::new(false);
const STREAM_CALM: &str = "HTTP/2: a response went past stampede's bounds (a header list above \
     64 KiB, or more than 5 informational responses): its stream is reset with \
     ENHANCE_YOUR_CALM and the request fails as protocol";

fn u32_at(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::h2::hpack::put_field;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// The server end of a loopback connection, scripted frame by frame.
    struct Peer {
        tcp: TcpStream,
        buf: Vec<u8>,
    }

    impl Peer {
        /// Accepts, reads the client's preface, sends `settings`.
        async fn accept(l: &TcpListener, settings: &[(u16, u32)]) -> Peer {
            let (tcp, _) = l.accept().await.expect("accept");
            let mut p = Peer {
                tcp,
                buf: Vec::new(),
            };
            let mut preface = [0u8; 24];
            p.tcp.read_exact(&mut preface).await.expect("preface");
            assert_eq!(&preface[..], frame::PREFACE);
            let mut out = Vec::new();
            frame::put_settings(&mut out, settings);
            p.send(&out).await;
            p
        }

        async fn send(&mut self, b: &[u8]) {
            self.tcp.write_all(b).await.expect("write");
        }

        /// The next frame from the client (None: it closed).
        async fn frame(&mut self) -> Option<(Head, Vec<u8>)> {
            loop {
                if let Some(h) = Head::parse(&self.buf)
                    && self.buf.len() >= HEAD_LEN + h.len
                {
                    let payload = self.buf[HEAD_LEN..HEAD_LEN + h.len].to_vec();
                    self.buf.drain(..HEAD_LEN + h.len);
                    return Some((h, payload));
                }
                let mut chunk = [0u8; 4096];
                let n = self.tcp.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }

        /// The next frame of type `k`, skipping the others.
        async fn next(&mut self, k: u8) -> (Head, Vec<u8>) {
            loop {
                let (h, p) = self.frame().await.expect("a frame");
                if h.kind == k {
                    return (h, p);
                }
            }
        }
    }

    fn status_block(status: &[u8], extra: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        put_field(&mut b, b":status", status);
        for (n, v) in extra {
            put_field(&mut b, n, v);
        }
        b
    }

    async fn client(
        l: &TcpListener,
        settings: bool,
        windows: (u32, u32),
        max: usize,
    ) -> (Pool, Attached) {
        let tcp = TcpStream::connect(l.local_addr().expect("addr"))
            .await
            .expect("connect");
        let c = handshake_with(Stream::Tcp(tcp), settings, windows.0, windows.1)
            .await
            .expect("handshake");
        let pool = Pool::new(1, max);
        let a = pool.add(0, c);
        (pool, a)
    }

    fn head_block() -> Vec<u8> {
        let mut b = Vec::new();
        let uri: http::Uri = "http://127.0.0.1/x".parse().expect("uri");
        encode_head(&mut b, &http::Method::GET, &uri, []);
        b
    }

    fn get(head: &[u8]) -> H2Request<'_> {
        H2Request {
            head,
            fixed: None,
            extra: &[],
            body: &[],
            idempotent: true,
            head_request: false,
            keep_body: false,
            keep_headers: false,
        }
    }

    #[test]
    fn a_held_write_goes_after_two_quiet_passes_or_eight_in_all() {
        let mut h = Holding::default();
        let mut seq = String::new();
        // Responses come back after the first two passes, then nothing.
        for news in [true, true, false, false] {
            match (h.next(), h.next()) {
                (Hold::Pass, Hold::Look) => seq.push_str("PL"),
                _ => seq.push('?'),
            }
            if news {
                h.quiet = 0;
            } else {
                h.quiet += 1;
            }
        }
        assert!(matches!(h.next(), Hold::Write), "{seq}");
        assert_eq!(seq, "PLPLPLPL");
        // A server that keeps answering holds the write eight passes at most.
        let mut h = Holding::default();
        let mut passes = 0;
        loop {
            match h.next() {
                Hold::Pass => passes += 1,
                Hold::Look => h.quiet = 0,
                Hold::Write => break,
            }
        }
        assert_eq!(passes, MAX_HOLD_PASSES);
    }

    #[tokio::test]
    async fn continuation_ping_and_a_response_larger_than_the_receive_window() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = async {
            let mut p = Peer::accept(&l, &[]).await;
            let (h, _) = p.next(kind::HEADERS).await;
            assert_eq!(h.flags, flag::END_HEADERS | flag::END_STREAM);
            let mut out = Vec::new();
            frame::put_ping(&mut out, false, *b"pingpong");
            // The response head in three pieces: HEADERS and two CONTINUATION frames.
            let block = status_block(b"200", &[(b"x-a", b"b"), (b"server", b"loop")]);
            let (a, rest) = block.split_at(3);
            let (b, c) = rest.split_at(4);
            frame::put_head(&mut out, a.len(), kind::HEADERS, 0, 1);
            out.extend_from_slice(a);
            frame::put_head(&mut out, b.len(), kind::CONTINUATION, 0, 1);
            out.extend_from_slice(b);
            frame::put_head(&mut out, c.len(), kind::CONTINUATION, flag::END_HEADERS, 1);
            out.extend_from_slice(c);
            p.send(&out).await;
            // 3,000 bytes against a 1,000-byte stream window: more only after WINDOW_UPDATE.
            let (mut window, mut left) = (1000i64, 3000usize);
            let mut ping_acked = false;
            while left > 0 {
                while window >= 500 && left > 0 {
                    left -= 500;
                    window -= 500;
                    let mut out = Vec::new();
                    frame::put_data(&mut out, 1, &[b'x'; 500], left == 0);
                    p.send(&out).await;
                }
                while left > 0 && window < 500 {
                    let (h, payload) = p.frame().await.expect("frame");
                    match h.kind {
                        kind::WINDOW_UPDATE if h.stream == 1 => {
                            window += i64::from(u32_at(&payload).expect("increment"));
                        }
                        kind::PING => {
                            assert_eq!(h.flags, flag::ACK);
                            assert_eq!(payload, b"pingpong");
                            ping_acked = true;
                        }
                        _ => {}
                    }
                }
            }
            assert!(ping_acked, "the PING was answered");
        };
        let run = async {
            let (_pool, mut a) = client(&l, false, (1000, 65_535), 1).await;
            let head = head_block();
            let mut req = get(&head);
            req.keep_headers = true;
            req.keep_body = true;
            exchange(&mut a, &req, 10, &mut Tries::default()).await
        };
        let ((), r) = tokio::join!(server, run);
        let o = r.expect("a response");
        assert_eq!((o.status, o.bytes_in), (Some(200), 3000));
        assert_eq!(o.body.as_deref(), Some(&b"xxxxxxxxxx"[..]));
        let h = o.headers.expect("headers kept");
        assert_eq!(h.get("x-a").map(|v| v.as_bytes()), Some(&b"b"[..]));
        assert_eq!(h.get("server").map(|v| v.as_bytes()), Some(&b"loop"[..]));
    }

    #[tokio::test]
    async fn a_body_larger_than_the_initial_window_waits_for_window_updates() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let body = vec![b'b'; 1000];
        let server = async {
            let mut p = Peer::accept(&l, &[(setting::INITIAL_WINDOW_SIZE, 100)]).await;
            let (h, _) = p.next(kind::HEADERS).await;
            assert_eq!(h.flags & flag::END_STREAM, 0);
            let (mut granted, mut got) = (100usize, 0usize);
            loop {
                let (h, payload) = p.next(kind::DATA).await;
                got += payload.len();
                assert!(got <= granted, "{got} bytes sent with {granted} granted");
                if h.flags & flag::END_STREAM != 0 {
                    break;
                }
                if got == granted {
                    let mut out = Vec::new();
                    frame::put_window_update(&mut out, 1, 300);
                    p.send(&out).await;
                    granted += 300;
                }
            }
            assert_eq!(got, 1000);
            let mut out = Vec::new();
            let block = status_block(b"201", &[]);
            frame::put_headers(&mut out, 1, [&block, &[]], true, 16_384);
            p.send(&out).await;
        };
        let run = async {
            let (_pool, mut a) = client(&l, true, (STREAM_WINDOW, CONN_WINDOW), 1).await;
            let head = head_block();
            let mut req = get(&head);
            req.body = &body;
            exchange(&mut a, &req, 0, &mut Tries::default()).await
        };
        let ((), r) = tokio::join!(server, run);
        let o = r.expect("a response");
        assert_eq!((o.status, o.bytes_in), (Some(201), 0));
    }

    #[tokio::test]
    async fn rst_stream_and_goaway_with_a_last_stream_id() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = async {
            let mut p = Peer::accept(&l, &[(setting::MAX_CONCURRENT_STREAMS, 3)]).await;
            let mut ids = Vec::new();
            while ids.len() < 3 {
                ids.push(p.next(kind::HEADERS).await.0.stream);
            }
            ids.sort_unstable();
            assert_eq!(ids, [1, 3, 5]);
            let mut out = Vec::new();
            frame::put_rst(&mut out, 1, code::CANCEL);
            // Stream 3 is the last the server takes: 5 was not processed.
            frame::put_goaway(&mut out, 3, code::NO_ERROR);
            let block = status_block(b"200", &[]);
            frame::put_headers(&mut out, 3, [&block, &[]], false, 16_384);
            frame::put_data(&mut out, 3, b"ok", true);
            p.send(&out).await;
            p
        };
        let run = async {
            let (pool, mut a) = client(&l, true, (STREAM_WINDOW, CONN_WINDOW), 3).await;
            let mut b = pool.attach(0).expect("room for a second stream");
            let mut c = pool.attach(0).expect("room for a third stream");
            assert!(pool.attach(0).is_none(), "the server allows 3 streams");
            let head = head_block();
            let req = get(&head);
            let (ra, rb, rc) = futures_util::future::join3(
                exchange(&mut a, &req, 0, &mut Tries::default()),
                exchange(&mut b, &req, 0, &mut Tries::default()),
                exchange(&mut c, &req, 0, &mut Tries::default()),
            )
            .await;
            let again = exchange(&mut a, &req, 0, &mut Tries::default()).await;
            (ra, rb, rc, again, a.usable(3))
        };
        let (_peer, (ra, rb, rc, again, usable)) = tokio::join!(server, run);
        let ra = ra.expect_err("reset");
        assert_eq!(ra.kind, ErrorKind::ConnectionReset);
        assert_eq!((ra.unprocessed, ra.stream_only), (Unprocessed::No, true));
        let rb = rb.expect("stream 3 is answered");
        assert_eq!((rb.status, rb.bytes_in), (Some(200), 2));
        assert_eq!(rc.expect_err("above last").unprocessed, Unprocessed::GoAway);
        assert_eq!(
            again.expect_err("no new streams").unprocessed,
            Unprocessed::NotSent
        );
        assert!(!usable, "a connection going away takes no more streams");
    }

    #[tokio::test]
    async fn a_protocol_violation_ends_the_connection_with_goaway() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = async {
            let mut p = Peer::accept(&l, &[]).await;
            p.next(kind::HEADERS).await;
            // HEADERS on stream 0.
            let mut out = Vec::new();
            frame::put_headers(&mut out, 0, [&[0x88], &[]], true, 16_384);
            p.send(&out).await;
            let (_, payload) = p.next(kind::GOAWAY).await;
            u32_at(&payload[4..])
        };
        let run = async {
            let (_pool, mut a) = client(&l, false, (STREAM_WINDOW, CONN_WINDOW), 1).await;
            let head = head_block();
            exchange(&mut a, &get(&head), 0, &mut Tries::default()).await
        };
        let (code, r) = tokio::join!(server, run);
        assert_eq!(code, Some(code::PROTOCOL_ERROR));
        let f = r.expect_err("a connection error");
        assert_eq!(
            (f.kind, f.unprocessed),
            (ErrorKind::Protocol, Unprocessed::No)
        );
    }

    #[tokio::test]
    async fn a_dropped_exchange_resets_its_stream() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = async {
            let mut p = Peer::accept(&l, &[]).await;
            let (h, _) = p.next(kind::HEADERS).await;
            let (r, payload) = p.next(kind::RST_STREAM).await;
            (h.stream, r.stream, u32_at(&payload))
        };
        let run = async {
            let (_pool, mut a) = client(&l, false, (STREAM_WINDOW, CONN_WINDOW), 1).await;
            let head = head_block();
            let req = get(&head);
            let mut tries = Tries::default();
            let cut = tokio::time::timeout(
                Duration::from_millis(50),
                exchange(&mut a, &req, 0, &mut tries),
            );
            assert!(cut.await.is_err(), "no answer comes");
            // The reset goes out with the next stream's HEADERS.
            let next = tokio::time::timeout(
                Duration::from_millis(50),
                exchange(&mut a, &req, 0, &mut tries),
            );
            let _ = next.await;
        };
        let ((opened, reset, code), ()) = tokio::join!(server, run);
        assert_eq!((opened, reset, code), (1, 1, Some(code::CANCEL)));
    }

    #[tokio::test]
    async fn a_goaway_that_came_while_idle_is_seen_before_the_next_stream() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = async {
            let mut p = Peer::accept(&l, &[]).await;
            p.next(kind::HEADERS).await;
            let mut out = Vec::new();
            let block = status_block(b"204", &[]);
            frame::put_headers(&mut out, 1, [&block, &[]], true, 16_384);
            p.send(&out).await;
            // GOAWAY, then the end of the stream, while the client has nothing in flight.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut out = Vec::new();
            frame::put_goaway(&mut out, 1, code::NO_ERROR);
            p.send(&out).await;
            let _ = rx.await;
            // Nothing but the SETTINGS ACK came after the first stream.
            let mut kinds = Vec::new();
            drop(p.tcp.shutdown().await);
            while let Some((h, _)) = p.frame().await {
                kinds.push(h.kind);
            }
            kinds
        };
        let run = async {
            let (_pool, mut a) = client(&l, false, (STREAM_WINDOW, CONN_WINDOW), 1).await;
            let head = head_block();
            let first = exchange(&mut a, &get(&head), 0, &mut Tries::default()).await;
            tokio::time::sleep(Duration::from_millis(60)).await;
            let second = exchange(&mut a, &get(&head), 0, &mut Tries::default()).await;
            drop(a);
            drop(_pool);
            let _ = tx.send(());
            (first, second)
        };
        let (kinds, (first, second)) = tokio::join!(server, run);
        assert_eq!(first.expect("answered").status, Some(204));
        let f = second.expect_err("not sent");
        assert_eq!(f.unprocessed, Unprocessed::NotSent);
        assert!(!kinds.contains(&kind::HEADERS), "{kinds:?}");
    }

    #[tokio::test]
    async fn a_flood_of_empty_continuation_frames_ends_in_enhance_your_calm() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = async {
            let mut p = Peer::accept(&l, &[]).await;
            p.next(kind::HEADERS).await;
            let mut out = Vec::new();
            frame::put_head(&mut out, 1, kind::HEADERS, 0, 1);
            out.push(0x88);
            // Empty CONTINUATION frames grow no buffer; their frame headers count.
            for _ in 0..MAX_HEADER_BLOCK / HEAD_LEN + 10 {
                frame::put_head(&mut out, 0, kind::CONTINUATION, 0, 1);
            }
            p.send(&out).await;
            let (_, payload) = p.next(kind::GOAWAY).await;
            u32_at(&payload[4..])
        };
        let run = async {
            let (_pool, mut a) = client(&l, false, (STREAM_WINDOW, CONN_WINDOW), 1).await;
            let head = head_block();
            exchange(&mut a, &get(&head), 0, &mut Tries::default()).await
        };
        let (code, r) = tokio::join!(server, run);
        assert_eq!(code, Some(code::ENHANCE_YOUR_CALM));
        assert_eq!(r.expect_err("a connection error").kind, ErrorKind::Protocol);
    }

    #[tokio::test]
    async fn a_request_waits_while_the_server_allows_no_streams_and_goes_when_it_does() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = async {
            let mut p = Peer::accept(&l, &[(setting::MAX_CONCURRENT_STREAMS, 0)]).await;
            // Nothing but SETTINGS (its ACK) and PINGs come while no stream is allowed.
            let mut out = Vec::new();
            frame::put_ping(&mut out, false, *b"stillup!");
            p.send(&out).await;
            let mut before = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
            while let Ok(Some((h, _))) = tokio::time::timeout_at(deadline, p.frame()).await {
                before.push(h.kind);
            }
            let mut out = Vec::new();
            frame::put_settings(&mut out, &[(setting::MAX_CONCURRENT_STREAMS, 10)]);
            p.send(&out).await;
            let (h, _) = p.next(kind::HEADERS).await;
            let mut out = Vec::new();
            let block = status_block(b"200", &[]);
            frame::put_headers(&mut out, h.stream, [&block, &[]], true, 16_384);
            p.send(&out).await;
            before
        };
        let run = async {
            let (_pool, mut a) = client(&l, true, (STREAM_WINDOW, CONN_WINDOW), 2).await;
            let head = head_block();
            let mut tries = Tries::default();
            let r = exchange(&mut a, &get(&head), 0, &mut tries).await;
            (r, tries.sent)
        };
        let (before, (r, sent)) = tokio::join!(server, run);
        assert!(!before.contains(&kind::HEADERS), "{before:?}");
        assert!(
            before.contains(&kind::PING),
            "the PING was answered: {before:?}"
        );
        assert_eq!(r.expect("answered once allowed").status, Some(200));
        assert_eq!(sent, 1);
    }

    #[test]
    fn refused_streams_are_unprocessed_other_resets_are_failures() {
        let refused = Failure::reset(code::REFUSED_STREAM);
        assert_eq!(refused.unprocessed, Unprocessed::Refused);
        assert_eq!(refused.kind, ErrorKind::ConnectionReset);
        assert!(refused.stream_only);
        let other = Failure::reset(code::PROTOCOL_ERROR);
        assert_eq!(
            (other.kind, other.unprocessed),
            (ErrorKind::Protocol, Unprocessed::No)
        );
    }
}
