//! The shared vocabulary of a request's result, at the bottom of the layers: every other module
//! (the HTTP client, the executor, statistics, metrics, the report) imports it, and it imports
//! no other stampede module.
//!
//! - [`ErrorKind`]: why a request failed — a low-cardinality `error.type`.
//! - [`Outcome`]: what the HTTP client hands back for one exchange.
//! - [`Sample`]: what one finished request produced, the record every sink takes.
//! - [`Wire`]: the octets a request put on and took off the connection.

use std::time::Duration;

use bytes::Bytes;

/// Why a request failed before a status came back (or the status itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Connect or request exceeded its timeout.
    Timeout,
    /// The server refused the connection.
    ConnectionRefused,
    /// The connection was reset.
    ConnectionReset,
    /// The server closed the connection before the response was complete.
    ConnectionClosed,
    /// TLS handshake or certificate failure.
    Tls,
    /// Name resolution failed.
    Dns,
    /// The server spoke something that is not HTTP.
    Protocol,
    /// Another I/O error.
    Io,
    /// The run ended while the request was in flight.
    Cancelled,
    /// No file descriptor for a new connection (EMFILE/ENFILE): the client's limit, not the
    /// server's fault.
    TooManyOpenFiles,
    /// HTTP/2: the server allowed no stream (SETTINGS_MAX_CONCURRENT_STREAMS 0) within the
    /// request's timeout: the request was never sent.
    NoStream,
    /// A 4xx/5xx status (the code is the error type).
    Status(u16),
}

impl ErrorKind {
    /// The `error.type` attribute value.
    pub fn as_str(self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow::Borrowed;
        match self {
            ErrorKind::Timeout => Borrowed("timeout"),
            ErrorKind::ConnectionRefused => Borrowed("connection_refused"),
            ErrorKind::ConnectionReset => Borrowed("connection_reset"),
            ErrorKind::ConnectionClosed => Borrowed("connection_closed"),
            ErrorKind::Tls => Borrowed("tls"),
            ErrorKind::Dns => Borrowed("dns"),
            ErrorKind::Protocol => Borrowed("protocol"),
            ErrorKind::Io => Borrowed("io"),
            ErrorKind::Cancelled => Borrowed("cancelled"),
            ErrorKind::TooManyOpenFiles => Borrowed("too_many_open_files"),
            ErrorKind::NoStream => Borrowed("no_stream"),
            ErrorKind::Status(c) => std::borrow::Cow::Owned(c.to_string()),
        }
    }

    /// A small integer key (for caches keyed by outcome).
    pub fn key(self) -> u32 {
        match self {
            ErrorKind::Status(c) => u32::from(c),
            ErrorKind::Timeout => 1_000,
            ErrorKind::ConnectionRefused => 1_001,
            ErrorKind::ConnectionReset => 1_002,
            ErrorKind::ConnectionClosed => 1_003,
            ErrorKind::Tls => 1_004,
            ErrorKind::Dns => 1_005,
            ErrorKind::Protocol => 1_006,
            ErrorKind::Io => 1_007,
            ErrorKind::Cancelled => 1_008,
            ErrorKind::TooManyOpenFiles => 1_009,
            ErrorKind::NoStream => 1_010,
        }
    }

    /// The inverse of [`ErrorKind::key`] (`None` for a key no kind has).
    pub fn from_key(key: u32) -> Option<ErrorKind> {
        use ErrorKind::*;
        if key < 1_000 {
            return u16::try_from(key).ok().map(Status);
        }
        [
            Timeout,
            ConnectionRefused,
            ConnectionReset,
            ConnectionClosed,
            Tls,
            Dns,
            Protocol,
            Io,
            Cancelled,
            TooManyOpenFiles,
            NoStream,
        ]
        .into_iter()
        .find(|k| k.key() == key)
    }
}

/// Octets a request wrote to and read from its connection: HTTP/1.1 the request as written
/// (head and body) and the response as read (head, body, chunk framing); HTTP/2 its stream's
/// frames (9-octet frame headers included) plus the connection's own frames (preface,
/// SETTINGS, PING, connection WINDOW_UPDATE, GOAWAY) since the last stream on that connection
/// ended. TLS records and handshakes and TCP/IP headers are not counted: these are the octets
/// of HTTP, as a server's access log counts them (nginx's `$request_length`, `$bytes_sent`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wire {
    /// Octets written (the request).
    pub sent: u64,
    /// Octets read (the response).
    pub received: u64,
}

impl std::ops::AddAssign for Wire {
    fn add_assign(&mut self, o: Wire) {
        self.sent += o.sent;
        self.received += o.received;
    }
}

/// A finished exchange, as the HTTP client reports it.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Status, if a response head arrived.
    pub status: Option<u16>,
    /// Failure class, if any (4xx/5xx included).
    pub error: Option<ErrorKind>,
    /// Response body bytes received.
    pub bytes_in: u64,
    /// Octets on the wire, both ways (see [`Wire`]).
    pub wire: Wire,
    /// The body, when asked for.
    pub body: Option<Bytes>,
    /// Response headers, when asked for.
    pub headers: Option<http::HeaderMap>,
    /// How many times the request went again on another connection before this outcome:
    /// the kept-alive connection turned out closed, or the server did not process it
    /// (HTTP/2 `REFUSED_STREAM`, above a `GOAWAY`'s last stream id). Counted in `reconnects`,
    /// not as failures.
    pub reconnects: u8,
}

impl Outcome {
    /// An exchange that failed before a response came back.
    pub(crate) fn failed(kind: ErrorKind) -> Outcome {
        Outcome {
            status: None,
            error: Some(kind),
            bytes_in: 0,
            wire: Wire::default(),
            body: None,
            headers: None,
            reconnects: 0,
        }
    }
}

/// What one finished request produced: the record every sink (exact stats, live counters,
/// OpenTelemetry instruments) takes. Plain data, no strings.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Request id (index in the plan).
    pub req: usize,
    /// Latency (from the scheduled start in the open model).
    pub latency: Duration,
    /// Status, if a response head arrived.
    pub status: Option<u16>,
    /// Failure class, if any.
    pub error: Option<ErrorKind>,
    /// Response body bytes.
    pub bytes_in: u64,
    /// Request body bytes.
    pub bytes_out: u64,
    /// Octets on the wire, both ways (see [`Wire`]).
    pub wire: Wire,
    /// Times the request went again on another connection (see [`Outcome::reconnects`]).
    pub reconnects: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_low_cardinality_strings() {
        assert_eq!(ErrorKind::Status(503).as_str(), "503");
        assert_eq!(ErrorKind::Timeout.as_str(), "timeout");
        assert_eq!(ErrorKind::ConnectionRefused.as_str(), "connection_refused");
        let keys: std::collections::BTreeSet<u32> = [
            ErrorKind::Timeout,
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionClosed,
            ErrorKind::Tls,
            ErrorKind::Dns,
            ErrorKind::Protocol,
            ErrorKind::Io,
            ErrorKind::Cancelled,
            ErrorKind::TooManyOpenFiles,
            ErrorKind::NoStream,
            ErrorKind::Status(599),
        ]
        .into_iter()
        .map(ErrorKind::key)
        .collect();
        assert_eq!(keys.len(), 12);
        for k in &keys {
            assert_eq!(ErrorKind::from_key(*k).map(ErrorKind::key), Some(*k));
        }
        assert_eq!(ErrorKind::TooManyOpenFiles.as_str(), "too_many_open_files");
    }
}
